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
                deployment: str = "d", **kw) -> contract.RunnerConfig:  # fmt: skip
    """A runner replaying `csv` (columns a, b), serving on `port`, gated within `window` seconds."""
    fields = tuple(contract.FileField(name=n, dtype="float64", address=contract.FileAddress(column=n)) for n in "ab")
    src = contract.FileSource(path=str(csv), format="csv", fields=fields)
    return with_health(config_for("f", src, **kw), version, port, window, deployment)


def with_health(config: contract.RunnerConfig, version: str, port: int | None, window: float,
                deployment: str = "d") -> contract.RunnerConfig:  # fmt: skip
    gate = contract.RunnerGate(window_seconds=window, max_error_rate=0.01)
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
            repo=str(self.remote),
            branch="deploy",
            device=DEVICE,
            state_dir=state,
            trusted_keys=(self.public,),
            reserve_bytes=0,
            python=str(fast),
            **kw,
        )
