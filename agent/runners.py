"""The runners of the live release, and the two ways the agent runs them.

Each edge bundle of a release is one runner: `takt-runner --config current/deployments/<deployment>/
runner.json --http-port <health.httpPort>`, run from that directory — the same paths the rendered
systemd unit and compose file name, through the deployment link the agent keeps current.

- `SystemdUnits` installs each bundle's rendered unit as `takt-runner-<deployment>.service` in a
  unit directory, reloads systemd and restarts the unit (systemd restarts it on failure).
- `Supervisor` (`takt agent run --supervise`, for containers and devices without systemd) runs
  them as children: a crashed child is started again with exponential backoff, one that exits 2
  (its config cannot run) is not; on stop, children get SIGTERM, then SIGKILL after a timeout.

Both restart every runner on activation and tell the gate whether a runner died since.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from agent.layout import DEPLOYMENTS, SHADOW, deployment_of
from compiler.bundle import runner as contract
from compiler.bundle.atomic import write_atomic
from compiler.bundle.tree import TreeError, read_regular

CURRENT = "current"
DEFAULT_PORT = 8080  # the runner's own default, for bundles rendered before health.httpPort
DEFAULT_WINDOW = 300.0  # the spec's default health-gate window
UNIT_FILE = "takt-runner.service"
MAX_UNIT_BYTES = 64 << 10
EXIT_CONFIG = 2  # the runner's "this config cannot run": restarting cannot help
LOG_LIMIT = 1 << 20  # a child's log is cut when it passes this at a (re)start
TAIL_BYTES = 4096


class RunnerError(Exception):
    """A runner cannot be started as the release says (a bad unit, a port taken twice, systemctl failing)."""


@dataclass(frozen=True)
class RunnerSpec:
    deployment: str
    bundle: str  # the bundle digest it serves
    config: Path  # <state>/current/deployments/<deployment>/runner.json
    workdir: Path
    port: int
    gate: contract.RunnerGate
    unit: bytes | None = None  # the bundle's rendered systemd unit
    shadow: Path | None = None  # <state>/current/shadow/<deployment>.json: a challenger beside it (`--shadow`)


def runner_specs(state: Path, release: Path) -> list[RunnerSpec]:
    """One spec per bundle of `release` that carries a runner.json, in deployment order.

    The paths go through `current/deployments/<deployment>`: the runner is (re)started after the
    switch, so they name this release's bundle, exactly as the unit and compose file do."""
    meta = json.loads(read_regular(release / "release.json", 1 << 20))
    specs = []
    for ref in meta.get("bundles", []):
        if ref.get("shadow"):
            continue  # a challenger runs inside its deployment's runner (`--shadow`), never on its own
        bundle = release / "bundles" / ref["digest"]
        config_file = bundle / contract.RUNNER_JSON
        if not config_file.is_file():
            continue  # not a bundle this device runs a runner for (embedded, it-server)
        deployment = deployment_of(ref["name"])
        health = contract.RunnerConfig.parse(read_regular(config_file, contract.MAX_BYTES)).health
        health = health or contract.Health()
        unit = bundle / UNIT_FILE
        live = state / CURRENT / DEPLOYMENTS / deployment
        specs.append(
            RunnerSpec(
                deployment=deployment,
                bundle=ref["digest"],
                config=live / contract.RUNNER_JSON,
                workdir=live,
                port=health.http_port or DEFAULT_PORT,
                gate=health.gate or contract.RunnerGate(window_seconds=DEFAULT_WINDOW),
                unit=read_regular(unit, MAX_UNIT_BYTES) if unit.is_file() else None,
                shadow=state / CURRENT / SHADOW / f"{deployment}.json"
                if (release / SHADOW / f"{deployment}.json").is_file()
                else None,
            )
        )
    return sorted(specs, key=lambda s: s.deployment)


def port_conflicts(specs: Sequence[RunnerSpec]) -> list[str]:
    """Ports two runners of one release would both listen on."""
    seen: dict[int, str] = {}
    problems = []
    for s in specs:
        if s.port in seen:
            problems.append(f"deployments {seen[s.port]} and {s.deployment} both use port {s.port}")
        seen.setdefault(s.port, s.deployment)
    return problems


class RunnerControl(Protocol):
    def restart(self, specs: Sequence[RunnerSpec]) -> None:
        """Run exactly `specs`, each started afresh (after a switch); raises RunnerError."""

    def ensure(self, specs: Sequence[RunnerSpec]) -> None:
        """Run `specs`, starting only those that are not running (after the agent itself restarted)."""

    def exited(self, deployment: str) -> str | None:
        """Why the runner died since it was (re)started, or None while it has kept running."""

    def close(self) -> None:
        """Stop every runner (the agent is stopping)."""


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, fh.seek(0, 2) - TAIL_BYTES))
            lines = [ln for ln in fh.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


# --- supervised children -----------------------------------------------------------------------


@dataclass
class _Child:
    spec: RunnerSpec
    proc: subprocess.Popen[bytes] | None = None
    failures: int = 0  # consecutive, for the backoff
    died: str | None = None  # the first death since the last restart
    next_start: float = 0.0
    gave_up: bool = False


@dataclass
class Supervisor:
    """Runners as child processes of the agent, watched by one thread."""

    command: tuple[str, ...]  # the runner program: ("takt-runner",) or (python, "-m", "runner")
    logs: Path  # <state>/runners/: one log per deployment
    host: str = "127.0.0.1"
    drain_seconds: float = 10.0
    backoff: tuple[float, float] = (0.5, 30.0)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    clock: Callable[[], float] = time.monotonic
    poll: float = 0.1
    children: dict[str, _Child] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def argv(self, spec: RunnerSpec) -> list[str]:
        shadow = ["--shadow", str(spec.shadow)] if spec.shadow else []
        argv = [*self.command, "--config", str(spec.config), "--http-port", str(spec.port), "--http-host", self.host]
        return argv + shadow

    def _spawn(self, child: _Child) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{child.spec.deployment}.log"
        mode = "wb" if log.is_file() and log.stat().st_size > LOG_LIMIT else "ab"
        with log.open(mode) as out:
            try:
                child.proc = subprocess.Popen(
                    self.argv(child.spec), cwd=child.spec.workdir, stdin=subprocess.DEVNULL, stdout=out,
                    stderr=subprocess.STDOUT, env=dict(self.environ), start_new_session=True,
                )  # fmt: skip
            except OSError as exc:
                child.proc = None
                child.died = child.died or f"cannot start {self.command[0]}: {exc.strerror or exc}"
                child.failures += 1
                child.next_start = self.clock() + self._delay(child.failures)

    def _delay(self, failures: int) -> float:
        base, top = self.backoff
        return min(top, base * 2.0 ** min(failures - 1, 16))

    def _watch(self) -> None:
        while not self._stop.wait(self.poll):
            with self._lock:
                now = self.clock()
                for child in self.children.values():
                    proc = child.proc
                    if proc is not None and proc.poll() is not None:
                        code = proc.returncode
                        tail = _tail(self.logs / f"{child.spec.deployment}.log")
                        child.died = child.died or f"exit {code}" + (f": {tail}" if tail else "")
                        child.proc, child.failures = None, child.failures + 1
                        child.gave_up = code == EXIT_CONFIG
                        child.next_start = now + self._delay(child.failures)
                    if child.proc is None and not child.gave_up and now >= child.next_start:
                        self._spawn(child)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._watch, name="takt-supervisor", daemon=True)
            self._thread.start()

    def _terminate(self, children: Sequence[_Child]) -> None:
        procs = [c.proc for c in children if c.proc is not None and c.proc.poll() is None]
        for p in procs:
            p.send_signal(signal.SIGTERM)
        deadline = self.clock() + self.drain_seconds
        for p in procs:
            try:
                p.wait(max(0.0, deadline - self.clock()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for c in children:
            c.proc = None

    def restart(self, specs: Sequence[RunnerSpec]) -> None:
        with self._lock:
            self._terminate(list(self.children.values()))
            self.children = {s.deployment: _Child(s) for s in specs}
            for child in self.children.values():
                self._spawn(child)
        self._ensure_thread()

    def ensure(self, specs: Sequence[RunnerSpec]) -> None:
        with self._lock:
            wanted = {s.deployment: s for s in specs}
            stale = [c for d, c in self.children.items() if d not in wanted or c.spec != wanted[d]]
            self._terminate(stale)
            for c in stale:
                self.children.pop(c.spec.deployment, None)
            for d, s in wanted.items():
                if d not in self.children:
                    self.children[d] = child = _Child(s)
                    self._spawn(child)
        self._ensure_thread()

    def exited(self, deployment: str) -> str | None:
        with self._lock:
            child = self.children.get(deployment)
            return child.died if child else "not started"

    def pid(self, deployment: str) -> int | None:
        with self._lock:
            child = self.children.get(deployment)
            return child.proc.pid if child and child.proc else None

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        with self._lock:
            self._terminate(list(self.children.values()))
            self.children = {}


# --- systemd ------------------------------------------------------------------------------------


def unit_name(deployment: str) -> str:
    return f"takt-runner-{deployment}.service"


def unit_paths(unit: bytes) -> tuple[str | None, str | None]:
    """WorkingDirectory and the --config argument of ExecStart (systemd quotes like a shell there)."""
    workdir = config = None
    for line in unit.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition("=")
        if key == "WorkingDirectory":
            workdir = value
        elif key == "ExecStart":
            try:
                args = shlex.split(value)
            except ValueError:
                continue
            if "--config" in args[:-1]:
                config = args[args.index("--config") + 1]
    return workdir, config


def with_shadow(unit: bytes, shadow: Path | None) -> bytes:
    """The unit as installed: on a shadow device its ExecStart also names the challenger's entry (`--shadow`)."""
    if shadow is None:
        return unit
    path = str(shadow)
    if any(c in path for c in "%$\\\n'\"") or not path.isprintable():
        raise RunnerError(f"the shadow entry {path!r} cannot be written into a systemd unit")
    lines = unit.decode("utf-8").split("\n")
    starts = [i for i, line in enumerate(lines) if line.startswith("ExecStart=")]
    if len(starts) != 1:
        raise RunnerError("the bundle's unit has no single ExecStart= to add the shadow challenger to")
    lines[starts[0]] += f" --shadow {shlex.quote(path)}"
    return "\n".join(lines).encode()


@dataclass
class SystemdUnits:
    """Each bundle's rendered unit installed into `unit_dir`; systemd runs and restarts them."""

    unit_dir: Path
    systemctl: tuple[str, ...] = ("systemctl",)
    timeout: float = 60.0
    restarts: dict[str, int] = field(default_factory=dict)  # NRestarts when last (re)started

    def _ctl(self, *args: str) -> str:
        try:
            proc = subprocess.run([*self.systemctl, *args], capture_output=True, text=True, timeout=self.timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RunnerError(f"{self.systemctl[0]} {' '.join(args)}: {exc}") from None
        if proc.returncode != 0:
            why = (proc.stderr or proc.stdout).strip()[-300:] or f"exit {proc.returncode}"
            raise RunnerError(f"{self.systemctl[0]} {' '.join(args)}: {why}")
        return proc.stdout

    def _check(self, spec: RunnerSpec) -> bytes:
        """The unit must run this runner from the agent's layout: its paths are where the agent puts them."""
        if spec.unit is None:
            raise RunnerError(f"bundle of {spec.deployment} has no {UNIT_FILE}")
        workdir, config = unit_paths(spec.unit)
        if workdir != str(spec.workdir) or config != str(spec.config):
            raise RunnerError(
                f"the unit of {spec.deployment} runs {config} in {workdir}, but this agent keeps it at {spec.config}: "
                f"set the Target's profile.installDir to {spec.workdir.parent.parent}"
            )
        return spec.unit

    def _install(self, specs: Sequence[RunnerSpec]) -> bool:
        """Write the units that differ, remove ours that are no longer wanted; True when anything changed."""
        self.unit_dir.mkdir(parents=True, exist_ok=True)
        changed = False
        wanted = {unit_name(s.deployment): with_shadow(self._check(s), s.shadow) for s in specs}
        for old in sorted(self.unit_dir.glob("takt-runner-*.service")):
            if old.name not in wanted and not old.is_symlink():
                self._ctl("disable", "--now", old.name)
                old.unlink()
                changed = True
        for name, data in wanted.items():
            path = self.unit_dir / name
            try:
                same = not path.is_symlink() and read_regular(path, MAX_UNIT_BYTES) == data
            except (OSError, TreeError):
                same = False
            if not same:
                write_atomic(path, data)
                changed = True
        return changed

    def _show(self, name: str) -> dict[str, str]:
        out = self._ctl("show", name, "--property=ActiveState,SubState,ExecMainStatus,NRestarts")
        return dict(line.partition("=")[::2] for line in out.splitlines() if "=" in line)

    def restart(self, specs: Sequence[RunnerSpec]) -> None:
        self._install(specs)
        self._ctl("daemon-reload")
        for s in specs:
            name = unit_name(s.deployment)
            self._ctl("enable", name)
            self._ctl("restart", name)
            self.restarts[s.deployment] = _int(self._show(name).get("NRestarts"))

    def ensure(self, specs: Sequence[RunnerSpec]) -> None:
        if self._install(specs):
            self.restart(specs)

    def exited(self, deployment: str) -> str | None:
        name = unit_name(deployment)
        try:
            props = self._show(name)
        except RunnerError as exc:
            return str(exc)
        state, sub = props.get("ActiveState", "?"), props.get("SubState", "?")
        restarted = _int(props.get("NRestarts")) > self.restarts.get(deployment, 0)
        if state in ("failed", "inactive") or sub == "auto-restart" or restarted:
            return f"unit {name} {state}/{sub}, exit {props.get('ExecMainStatus', '?')}"
        return None

    def close(self) -> None:
        """systemd keeps running the units when the agent stops: nothing to do."""


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0
