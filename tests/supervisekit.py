"""A deploy repo of hand-made edge bundles for tests of the agent running its runners: each release
is one signed desired state naming bundles of runner.json + the tiny model (tests.runnerkit), so a
test chooses exactly what the runner will meet (a file, an OPC UA server, a missing secret)."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.config import AgentConfig
from agent.releases import machine_arch
from compiler.bundle import BundleRef, DesiredState, sign, write_bundle
from compiler.bundle import runner as contract
from compiler.signing import keygen, load_private_key
from tests.agentkit import FAST_HEALTH, git
from tests.runnerkit import MODEL, config_for, free_port

DEVICE = "edge-1"


def file_config(csv: Path, version: str = "1.0.0", port: int | None = None, window: float = 15.0,
                deployment: str = "d", latency_p95: float | None = None, **kw) -> contract.RunnerConfig:  # fmt: skip
    """A runner replaying `csv` (columns a, b), serving on `port`, gated within `window` seconds
    (and, with `latency_p95`, by that p95 inference latency budget in seconds)."""
    fields = tuple(contract.FileField(name=n, dtype="float64", address=contract.FileAddress(column=n)) for n in "ab")
    src = contract.FileSource(path=str(csv), format="csv", fields=fields)
    return with_health(config_for("f", src, **kw), version, port, window, deployment, latency_p95)


def with_health(config: contract.RunnerConfig, version: str, port: int | None, window: float,
                deployment: str = "d", latency_p95: float | None = None) -> contract.RunnerConfig:  # fmt: skip
    gate = contract.RunnerGate(window_seconds=window, max_error_rate=0.01, max_latency_p95_seconds=latency_p95)
    model = dataclasses.replace(config.model, version=version)
    health = contract.Health(http_port=port or free_port(), gate=gate)
    return config.with_(model=model, health=health, deployment=deployment)


@dataclass
class Fleet:
    root: Path
    remote: Path = field(init=False)
    work: Path = field(init=False)
    private: Path = field(init=False)
    public: Path = field(init=False)
    generation: int = 0

    def __post_init__(self) -> None:
        self.remote = self.root / "deploy.git"
        git("init", "-q", "--bare", str(self.remote))
        git("config", "uploadpack.allowFilter", "true", cwd=self.remote)
        self.work = self.root / "work"
        git("init", "-q", "-b", "deploy", str(self.work))
        self.private, self.public, _ = keygen(self.root / "keys")

    def release(self, *configs: contract.RunnerConfig, units: dict[str, bytes] | None = None) -> list[str]:
        """Publish one bundle per config as the next generation; the bundle digests."""
        refs = []
        for config in configs:
            files = {"model/model.onnx": MODEL, contract.RUNNER_JSON: config.to_json()}
            if units and config.deployment in units:
                files["takt-runner.service"] = units[config.deployment]
            manifest = write_bundle(
                self.work / "bundles", f"{config.deployment}/t", "edge-pc", files, {"arch": machine_arch()}
            )
            refs.append(BundleRef(manifest.name, manifest.digest))
        self.generation += 1
        expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=7)
        state = DesiredState(DEVICE, self.generation, expires, tuple(refs))
        ddir = self.work / "devices" / DEVICE
        ddir.mkdir(parents=True, exist_ok=True)
        data = state.to_bytes()
        (ddir / "desired.json").write_bytes(data)
        (ddir / "desired.json.sig").write_bytes(sign(data, load_private_key(str(self.private))))
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "-m", f"generation {self.generation}", cwd=self.work)
        git("push", "-q", "--force", str(self.remote), "HEAD:deploy", cwd=self.work)
        return [r.digest for r in refs]

    def config(self, state: Path, **kw) -> AgentConfig:
        fast = self.root / "fast-health"
        if not fast.exists():
            fast.write_text(FAST_HEALTH)
            fast.chmod(0o755)
        kw.setdefault("supervise", True)
        kw.setdefault("runner_command", (sys.executable, "-m", "runner"))
        kw.setdefault("plant_grace", 3.0)
        kw.setdefault("observe_seconds", 0.5)
        kw.setdefault("drain_seconds", 5.0)
        return AgentConfig(
            repo=kw.pop("repo", str(self.remote)),
            branch="deploy",
            device=DEVICE,
            state_dir=state,
            trusted_keys=(self.public,),
            reserve_bytes=0,
            python=str(fast),
            **kw,
        )


def opcua_config(endpoint: str, node_ids: dict[str, str], version: str = "1.0.0", port: int | None = None,
                 window: float = 15.0) -> contract.RunnerConfig:  # fmt: skip
    """A runner subscribed to fields a and b at `node_ids` on the OPC UA server at `endpoint`."""
    fields = tuple(
        contract.OpcUaField(name=n, dtype="float64", address=contract.OpcUaAddress(node_id=node_ids[n])) for n in "ab"
    )
    src = contract.OpcUaSource(
        endpoint=endpoint,
        security=contract.OpcUaSecurity(mode="None", policy="None"),
        sampling_interval=0.05,
        fields=fields,
    )
    return with_health(config_for("plc", src), version, port, window)


FAKE_SYSTEMCTL = '''#!{python}
"""A stand-in for systemctl: records every call; `restart` runs the installed unit's ExecStart in
its WorkingDirectory (as systemd would), `show` reports whether that process still runs."""
import json, os, shlex, signal, subprocess, sys
from pathlib import Path

units, log = Path({units!r}), Path({log!r})
args = sys.argv[1:]
with log.open("a") as fh:
    fh.write(json.dumps(args) + "\\n")
verb = args[0]
def pidfile(name): return units / (name + ".pid")
def stop(name):
    if pidfile(name).exists():
        try:
            os.killpg(int(pidfile(name).read_text()), signal.SIGTERM)
        except ProcessLookupError:
            pass
        pidfile(name).unlink()
if verb == "restart":
    name = args[1]
    stop(name)
    lines = (units / name).read_text().splitlines()
    unit = dict(line.split("=", 1) for line in lines if "=" in line and line[0] != "#")
    proc = subprocess.Popen(shlex.split(unit["ExecStart"]), cwd=unit["WorkingDirectory"], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=open(units / (name + ".log"), "ab"))
    pidfile(name).write_text(str(proc.pid))
elif verb == "disable":
    stop(args[-1])
elif verb == "show":
    name = args[1]
    alive = False
    if pidfile(name).exists():
        pid = int(pidfile(name).read_text())
        try:
            alive = os.waitpid(pid, os.WNOHANG) == (0, 0)
        except ChildProcessError:
            alive = Path(f"/proc/{{pid}}").exists() and "zombie" not in Path(f"/proc/{{pid}}/status").read_text()
    print("ActiveState=" + ("active" if alive else "failed"))
    print("SubState=" + ("running" if alive else "failed"))
    print("ExecMainStatus=0")
    print("NRestarts=0")
'''


def fake_systemctl(root: Path) -> tuple[Path, Path, Path]:
    """(the fake systemctl, the unit directory it reads, the log of its calls)."""
    units, log = root / "units", root / "systemctl.log"
    units.mkdir(parents=True, exist_ok=True)
    exe = root / "systemctl"
    exe.write_text(FAKE_SYSTEMCTL.format(python=sys.executable, units=str(units), log=str(log)))
    exe.chmod(0o755)
    return exe, units, log


def rendered_unit(state: Path, deployment: str, port: int) -> bytes:
    """The edge-pc class's own unit template, rendered with installDir = <state>/current."""
    from compiler.render.plugins import target_classes

    workdir = f"{state}/current/deployments/{deployment}"
    return (
        target_classes()["edge-pc"]
        .templates()
        .get_template("takt-runner.service.j2")
        .render(
            bundle_name=f"{deployment}/t", description=f"takt runner {deployment}", user="takt", nice=0,
            workdir=workdir, command=str(Path(sys.executable).parent / "takt-runner"),
            config=f"{workdir}/runner.json", http_port=port, memory_max=None, cpu_quota=None,
        )
        .encode()
    )  # fmt: skip
