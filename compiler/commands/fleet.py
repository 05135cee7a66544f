"""`takt fleet status` as a request: the deploy repo from the options or takt.yaml, the fleet read back."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.commands.errors import CommandError, ExitCode
from compiler.commands.locations import DeployOptions, resolve_deploy
from compiler.commands.validated import validated

if TYPE_CHECKING:
    from compiler.fleet.status import FleetStatus


class FleetUnreadable(CommandError):
    """The deploy repo or the broker cannot be read: `takt fleet status` exits 2."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class FleetStatusRequest:
    path: Path
    cwd: Path
    now: datetime
    deploy: DeployOptions = field(default_factory=DeployOptions)
    stale_after: float = 900
    mqtt_url: str | None = None
    cache_dir: Path | None = None
    """Where the report memory is kept (default: the user's cache directory)."""


@dataclass(frozen=True)
class FleetStatusOutcome:
    status: FleetStatus
    memory: Path
    memory_error: str | None
    """Why the report memory could not be kept (a warning: the status itself stands)."""

    @property
    def exit_code(self) -> ExitCode:
        healthy = all(d.state == "Ready" and not d.stale for d in self.status.devices)
        return ExitCode.OK if healthy else ExitCode.FINDINGS


def run_fleet_status(request: FleetStatusRequest) -> FleetStatusOutcome:
    from compiler.build_cache import user_cache_dir
    from compiler.fleet.reports import declared_keys
    from compiler.fleet.seen import load_seen_file, save_seen_file
    from compiler.fleet.status import FleetReadError, load_fleet

    result = validated(request.cwd / request.path, "fleet status")
    where = resolve_deploy(request.deploy, result.project, result.root, request.cwd, need_key=False)
    devices = [d.model for d in result.documents if d.kind == "Device" and d.model is not None]
    deployments = [d.model for d in result.documents if d.kind == "Deployment" and d.model is not None]
    digest = hashlib.sha256(f"{where.url}#{where.branch}".encode()).hexdigest()[:24]
    memory = (request.cache_dir or user_cache_dir()) / "fleet" / f"{digest}.json"
    try:
        if request.mqtt_url:
            from compiler.fleet.mqtt import read_mqtt_reports  # aiomqtt only when a broker is asked for
        mqtt = read_mqtt_reports(request.mqtt_url, declared_keys(devices)) if request.mqtt_url else None  # type: ignore[arg-type]
        status = load_fleet(devices, deployments, where.url, where.branch, request.now,  # type: ignore[arg-type]
                            seen=load_seen_file(memory), mqtt=mqtt, stale_after=request.stale_after)  # fmt: skip
    except FleetReadError as exc:
        raise FleetUnreadable(str(exc)) from exc
    try:
        save_seen_file(memory, status.seen)
    except OSError as exc:
        return FleetStatusOutcome(status, memory, str(exc))
    return FleetStatusOutcome(status, memory, None)
