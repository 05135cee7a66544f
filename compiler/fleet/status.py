"""`takt fleet status`: per device, what the branch wants and what the device last said, in one typed view.

Inputs, none of them trusted: the spec repo's Devices and Deployments (names, labels, keys), the
deploy branch (each device's desired generation; `rollouts/<deployment>.json` for the rollout
phase when a rollout writes one; `fleet/seen.json`, the reader's memory), and the verified
status reports (compiler.fleet.reports). The renderers (compiler/report/fleet_*.py) only format
this view; nothing here prints.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from compiler.bundle.boundedjson import loads_bounded
from compiler.bundle.desired import DESIRED, MAX_DESIRED_BYTES
from compiler.bundle.report import RunnerHealth, StatusReport
from compiler.fleet.gitread import FleetReadError, branch_files
from compiler.fleet.reports import FleetReports, Ignored, declared_keys, read_reports
from compiler.fleet.seen import MAX_SEEN_BYTES, SEEN_PATH, Seen, SeenReport, merge, parse_seen
from compiler.rollout.state import RolloutState
from compiler.spec.deployment import Deployment
from compiler.spec.device import Device

ROLLOUTS_DIR = "rollouts"
MAX_ROLLOUT_BYTES = 1 << 20
DEFAULT_STALE_AFTER = 900.0  # seconds: three missed reports at the agent's default interval


@dataclass(frozen=True)
class Point:
    """One report in a device's history, as the charts plot it."""

    time: datetime
    sequence: int
    drift_psi_max: float | None
    error_rate: float | None


@dataclass(frozen=True)
class DeviceStatus:
    device: str
    labels: Mapping[str, str]
    models: tuple[str, ...]  # model@version of the deployments that select the device
    desired_generation: int | None  # from the deploy branch
    applied_generation: int | None  # from the device's report
    phase: str | None  # rollout phase from rollouts/ on the branch; None when no rollout is recorded
    state: str  # Ready | Degraded | Stalled | Unknown (no believed report)
    reason: str
    message: str
    report: StatusReport | None
    age_seconds: float | None
    stale: bool
    history: tuple[Point, ...] = ()

    @property
    def plant(self) -> str:
        return self.labels.get("plant", "")

    @property
    def line(self) -> str:
        return self.labels.get("line", "")

    @property
    def runners(self) -> tuple[RunnerHealth, ...]:
        return self.report.runners if self.report else ()

    @property
    def drift(self) -> float | None:
        values = [r.drift_psi_max for r in self.runners if r.drift_psi_max is not None]
        return max(values) if values else None

    @property
    def error_rate(self) -> float | None:
        values = [r.error_rate for r in self.runners if r.error_rate is not None]
        return max(values) if values else None

    def to_json(self) -> dict[str, Any]:
        r = self.report
        return {
            "device": self.device,
            "plant": self.plant or None,
            "line": self.line or None,
            "models": list(self.models),
            "desiredGeneration": self.desired_generation,
            "appliedGeneration": self.applied_generation,
            "phase": self.phase,
            "state": self.state,
            "reason": self.reason,
            "message": self.message,
            "sequence": r.sequence if r else None,
            "reportTime": r.to_json()["time"] if r else None,
            "ageSeconds": None if self.age_seconds is None else round(self.age_seconds, 1),
            "stale": self.stale,
            "driftPsiMax": self.drift,
            "errorRate": self.error_rate,
            "runners": [_runner_json(x) for x in self.runners],
            "history": [
                {"sequence": p.sequence, "driftPsiMax": p.drift_psi_max, "errorRate": p.error_rate}
                for p in self.history
            ],
        }


def _runner_json(r: RunnerHealth) -> dict[str, Any]:
    from compiler.bundle.report import runner_to_json

    return runner_to_json(r)


@dataclass(frozen=True)
class FleetStatus:
    generated_at: datetime
    stale_after: float
    devices: tuple[DeviceStatus, ...]
    ignored: tuple[Ignored, ...] = ()
    seen: Mapping[str, SeenReport] = field(default_factory=dict)

    def count(self, state: str) -> int:
        return sum(1 for d in self.devices if d.state == state)

    @property
    def stale(self) -> int:
        return sum(1 for d in self.devices if d.stale)

    def to_json(self) -> dict[str, Any]:
        return {
            "generatedAt": self.generated_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "staleAfterSeconds": self.stale_after,
            "summary": {
                "devices": len(self.devices),
                **{s.lower(): self.count(s) for s in ("Ready", "Degraded", "Stalled", "Unknown")},
                "stale": self.stale,
                "ignoredReports": len(self.ignored),
            },
            "devices": [d.to_json() for d in self.devices],
            "ignored": [i.to_json() for i in self.ignored],
        }


def state_of(report: StatusReport | None) -> tuple[str, str, str]:
    """(state, reason, message) in kstatus words: Stalled before Degraded before Ready; a runner
    that is not ready degrades a device whose agent is otherwise Ready."""
    if report is None:
        return "Unknown", "NoReport", "no verified status report"
    for kind in ("Stalled", "Degraded"):
        c = report.condition(kind)
        if c is not None and c.status:
            return kind, c.reason, c.message
    down = [r for r in report.runners if not r.ready]
    if down:
        r = down[0]
        return "Degraded", "RunnerNotReady", f"runner {r.deployment} is not ready: {r.reason or 'no reason given'}"
    ready = report.condition("Ready")
    if ready is not None and ready.status:
        return "Ready", ready.reason, ready.message
    return "Degraded", ready.reason if ready else "NotReady", ready.message if ready else ""


@dataclass(frozen=True)
class Branch:
    """What the fleet view reads from the deploy branch."""

    desired: Mapping[str, int]  # device → desired generation
    phases: Mapping[str, str]  # device → rollout phase
    seen: Mapping[str, SeenReport]


def read_branch(url: str, branch: str, devices: Sequence[str], workdir: Path | None = None) -> Branch:
    """Desired generations, rollout phases and the seen memory from the branch (only those files are fetched)."""
    desired_paths = {f"devices/{d}/{DESIRED}": d for d in devices}

    def wanted(path: str) -> bool:
        return path in desired_paths or path == SEEN_PATH or _rollout_path(path)

    with tempfile.TemporaryDirectory(prefix="takt-fleet-branch-", dir=workdir) as tmp:
        files = branch_files(url, branch, Path(tmp) / "branch.git", wanted, max(MAX_DESIRED_BYTES, MAX_SEEN_BYTES))
    if files is None:
        return Branch({}, {}, {})
    desired = {}
    for path, device in desired_paths.items():
        gen = _generation(files.get(path))
        if gen is not None:
            desired[device] = gen
    try:
        seen = parse_seen(files[SEEN_PATH]) if SEEN_PATH in files else {}
    except ValueError:
        seen = {}
    return Branch(desired, _phases({p: b for p, b in files.items() if _rollout_path(p)}), seen)


def _rollout_path(path: str) -> bool:
    head, _, name = path.partition("/")
    return head == ROLLOUTS_DIR and name.endswith(".json") and "/" not in name


def _generation(data: bytes | None) -> int | None:
    if data is None:
        return None
    try:
        doc = loads_bounded(data, max_bytes=MAX_DESIRED_BYTES, max_depth=8, what=DESIRED)
    except ValueError:
        return None
    gen = doc.get("generation") if isinstance(doc, dict) else None
    return gen if isinstance(gen, int) and not isinstance(gen, bool) and gen >= 0 else None


def _phases(files: Mapping[str, bytes]) -> dict[str, str]:
    """device → phase from `rollouts/<deployment>.json`: {"phase": …, "devices": {device: phase}}
    or {"phase": …, "canaries": [device, …]} (the rollout writes them; anything else is skipped)."""
    phases: dict[str, str] = {}
    for path in sorted(files)[:1000]:
        data = files[path]
        if len(data) > MAX_ROLLOUT_BYTES:
            continue
        try:
            doc = loads_bounded(data, max_bytes=MAX_ROLLOUT_BYTES, max_depth=8, what=path)
        except ValueError:
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("phase"), str):
            continue
        phase = doc["phase"][:64]
        if isinstance(doc.get("spec"), dict):  # the record `takt publish` and `takt rollout` write
            try:
                record = RolloutState.parse(data)
            except ValueError:
                continue
            step = set(record.step_devices())
            for device in record.devices:
                phases[device] = f"{record.phase.value} (step)" if device in step else record.phase.value
            continue
        per_device = doc.get("devices")
        if isinstance(per_device, dict):
            for device, p in per_device.items():
                if isinstance(p, str):
                    phases[str(device)] = p[:64]
        canaries = doc.get("canaries")
        if isinstance(canaries, list):
            for device in canaries:
                if isinstance(device, str):
                    phases.setdefault(device, f"{phase} (canary)")
    return phases


def fleet_status(
    devices: Sequence[Device],
    deployments: Sequence[Deployment],
    reports: FleetReports,
    branch: Branch,
    now: datetime,
    stale_after: float = DEFAULT_STALE_AFTER,
) -> FleetStatus:
    """The view of every declared device (a device that never reported is Unknown and stale)."""
    rows = []
    for device in sorted(devices, key=lambda d: (d.metadata.labels.get("plant", ""),
                                                   d.metadata.labels.get("line", ""), d.device_id)):  # fmt: skip
        did = device.device_id
        labels = dict(device.metadata.labels)
        models = tuple(
            sorted(
                {
                    f"{dep.spec.model.name}@{dep.spec.model.version}" if dep.spec.model.version else dep.spec.model.name
                    for dep in deployments
                    if device.spec.target in dep.spec.targets
                    and (dep.spec.selector is None or dep.spec.selector.matches(labels))
                }
            )
        )
        report = reports.latest.get(did)
        state, reason, message = state_of(report)
        age = (now - report.time).total_seconds() if report else None
        history = tuple(
            Point(r.time, r.sequence, _max(x.drift_psi_max for x in r.runners), _max(x.error_rate for x in r.runners))
            for r in reports.history.get(did, ())
        )
        rows.append(
            DeviceStatus(
                device=did,
                labels=labels,
                models=models,
                desired_generation=branch.desired.get(did),
                applied_generation=report.applied_generation if report else None,
                phase=branch.phases.get(did),
                state=state,
                reason=reason,
                message=message,
                report=report,
                age_seconds=age,
                stale=age is None or age > stale_after,
                history=history,
            )
        )
    return FleetStatus(now, stale_after, tuple(rows), reports.ignored, reports.seen)


def _max(values: Iterable[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return max(got) if got else None


def load_fleet(
    devices: Sequence[Device],
    deployments: Sequence[Deployment],
    url: str,
    branch: str,
    now: datetime,
    *,
    seen: Seen | None = None,
    mqtt: FleetReports | None = None,
    stale_after: float = DEFAULT_STALE_AFTER,
    workdir: Path | None = None,
) -> FleetStatus:
    """Read the deploy repo (branch and status refs) and build the view; FleetReadError when it cannot be read.

    `seen` is the caller's own memory (merged with the branch's `fleet/seen.json`); the result's
    `seen` is what to keep. `mqtt`: reports read from a broker, merged (higher sequence wins)."""
    ids = [d.device_id for d in devices]
    on_branch = read_branch(url, branch, ids, workdir)
    memory = merge(on_branch.seen, seen or {})
    reports = read_reports(url, declared_keys(devices), seen=memory, workdir=workdir)
    if mqtt is not None:
        reports = reports.merged(mqtt)
    return fleet_status(devices, deployments, reports, on_branch, now, stale_after)


__all__ = ["Branch", "DeviceStatus", "FleetReadError", "FleetStatus", "Point", "fleet_status", "load_fleet", "state_of"]
