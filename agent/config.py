"""The agent's settings, as given on the command line (or by tests)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AgentConfig:
    repo: str
    branch: str
    device: str
    state_dir: Path
    trusted_keys: tuple[Path, ...]
    interval: float = 60.0
    jitter: float = 0.1  # ± fraction of the interval
    keep_releases: int = 3  # good releases kept on disk besides the current one
    reserve_bytes: int = 64 << 20  # free disk that staging must leave
    git_timeout: float = 120.0
    health_timeout: float = 60.0
    hook_timeout: float = 60.0
    activate_hook: str | None = None  # command run after the switch (TAKT_RELEASE_DIR in its environment)
    post_check: str | None = None  # extra command judging the activated release
    python: str | None = None  # interpreter of the health-check subprocess (default: this one)
    max_backoff: float = 900.0
    metrics_file: Path | None = None  # also write the Prometheus text here (node_exporter textfile collector)
    arch: str | None = None  # this machine's architecture (default: detected)
    memory: int | None = None  # bytes available for models (default: MemAvailable)
    # the runners of the live release (agent/runners.py): supervised children, or systemd units
    supervise: bool = False  # run them as child processes (containers, devices without systemd)
    unit_dir: Path | None = None  # else install each bundle's unit here and drive it with `systemctl`
    systemctl: tuple[str, ...] = ("systemctl",)
    runner_command: tuple[str, ...] = ("takt-runner",)
    runner_host: str = "127.0.0.1"  # where the agent probes them
    runner_window: float | None = None  # cap on the health-gate window the bundle names (default: none)
    plant_grace: float = 15.0  # a live runner whose sources are only down this long: Degraded, kept
    observe_seconds: float = 2.0  # after ready, how long inferences are counted before the error rate
    drain_seconds: float = 10.0  # SIGTERM → SIGKILL for supervised runners
    clock: Callable[[], datetime] = field(default=utc_now)
    report_interval: float = 300.0  # a report at least this often (seconds), besides one after every transition
    report_git: bool = True  # push reports to refs/takt/status/<device> of the deploy repo
    report_mqtt: str | None = None  # also publish them retained to this broker (mqtt://host:port)
    report_key: Path | None = None  # the device key (default: device-key.pem in the state dir)
