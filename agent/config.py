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
    clock: Callable[[], datetime] = field(default=utc_now)
    report_interval: float = 300.0  # a report at least this often (seconds), besides one after every transition
    report_git: bool = True  # push reports to refs/takt/status/<device> of the deploy repo
    report_mqtt: str | None = None  # also publish them retained to this broker (mqtt://host:port)
    report_key: Path | None = None  # the device key (default: device-key.pem in the state dir)
