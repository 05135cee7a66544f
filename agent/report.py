"""Reporting to the fleet: a signed status report after every transition, and at least every
`report_interval`, over Git (this device's own status ref) and/or MQTT (a retained message).

The step runs after the cycle's outcome is decided, whatever it is, and never changes it: a
transport that fails is recorded in the status (`report`) and retried next cycle. The sequence
is persisted in the state directory *before* a report is sealed, so it only grows, across
restarts and kills; a report is only re-sent unchanged once the interval has passed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from agent.cycle import Cycle, Outcome
from agent.devicekey import DEVICE_KEY, DeviceKeyError, load_device_key
from agent.reasons import Reason, Result
from agent.releases import current_release, release_meta
from agent.report_git import ReportPushError, commit_report, push_report
from agent.report_mqtt import ReportMqttError, publish_report
from agent.status import STATUS, read_state_json
from compiler.bundle import BundleRef, canonical_json
from compiler.bundle.atomic import write_atomic
from compiler.bundle.report import Condition, RunnerHealth, StatusReport, runner_from_json, seal

REPORT_STATE = "report.json"  # sequence, when and what was last sent, which transports still owe it


@dataclass
class ReportMemory:
    sequence: int = 0
    sent_at: str | None = None  # ISO time of the last report sealed
    fingerprint: str | None = None  # of the last report's content, without sequence and time
    owed: tuple[str, ...] = ()  # transports whose last send failed

    @classmethod
    def load(cls, state: Path) -> ReportMemory:
        try:
            d = read_state_json(state / REPORT_STATE)
            return cls(int(d["sequence"]), d.get("sentAt"), d.get("fingerprint"), tuple(d.get("owed", ())))
        except (OSError, ValueError, KeyError, TypeError):
            return cls()

    def save(self, state: Path) -> None:
        doc = {"sequence": self.sequence, "sentAt": self.sent_at, "fingerprint": self.fingerprint,
               "owed": list(self.owed)}  # fmt: skip
        write_atomic(state / REPORT_STATE, canonical_json(doc))


def conditions(outcome: Outcome) -> tuple[Condition, ...]:
    """The cycle's conditions, as write_status words them (kstatus: Ready, Stalled, Degraded)."""
    result, reason, msg = Result(outcome.result), str(outcome.reason), outcome.message
    return (
        Condition("Ready", result.ready, str(Reason.APPLIED) if result.ready else reason, msg),
        Condition(
            "Stalled",
            result.stalled,
            reason if result.stalled else str(Reason.PROGRESSING),
            msg if result.stalled else "",
        ),
        Condition(
            "Degraded",
            result.degraded,
            reason if result.degraded else str(Reason.HEALTHY),
            msg if result.degraded else "",
        ),
    )


def runners(c: Cycle) -> tuple[RunnerHealth, ...]:
    """The runners' health this cycle found (`runners` in the cycle's status fields, as RunnerHealth
    JSON), else what the last status recorded; none when nothing supervises runners."""
    observed = getattr(c, "runner_health", None)  # the runner-supervision steps' RunnerHealth by deployment
    raw = list(observed.values()) if isinstance(observed, dict) and observed else c.fields.get("runners")
    if raw is None:
        try:
            raw = read_state_json(c.state / STATUS).get("runners")
        except (OSError, ValueError, AttributeError):
            raw = None
    out = []
    for item in raw if isinstance(raw, list) else []:
        try:
            out.append(item if isinstance(item, RunnerHealth) else runner_from_json(item))
        except ValueError:
            continue
    return tuple(out[:256])


def build_report(c: Cycle, outcome: Outcome, sequence: int) -> StatusReport:
    meta = release_meta(current_release(c.state))
    bundles = tuple(
        BundleRef(str(b.get("name")), str(b.get("digest")))
        for b in meta.get("bundles", [])
        if isinstance(b, dict) and isinstance(b.get("digest"), str) and len(b["digest"]) == 64
    )
    quarantined = tuple(sorted(k for k in c.mem.quarantine if isinstance(k, str) and len(k) == 64))
    return StatusReport(
        device=c.cfg.device,
        sequence=sequence,
        time=c.now,
        desired_generation=c.desired.generation if c.desired else c.fields.get("desiredGeneration"),
        applied_generation=meta.get("generation") if isinstance(meta.get("generation"), int) else None,
        bundles=bundles,
        conditions=conditions(outcome),
        runners=runners(c),
        quarantined=quarantined,
    )


def _fingerprint(report: StatusReport) -> str:
    content = {k: v for k, v in report.to_json().items() if k not in ("sequence", "time")}
    return hashlib.sha256(canonical_json(content)).hexdigest()


def _due(mem: ReportMemory, fingerprint: str, now: datetime, interval: float) -> bool:
    if mem.owed or mem.fingerprint != fingerprint or mem.sent_at is None:
        return True
    try:
        return now - datetime.fromisoformat(mem.sent_at) >= timedelta(seconds=interval)
    except ValueError:
        return True


def report_step(c: Cycle) -> Outcome | None:
    """Seal and send a report when something changed, a send is owed, or the interval has passed."""
    cfg = c.cfg
    transports = (("git",) if cfg.report_git else ()) + (("mqtt",) if cfg.report_mqtt else ())
    key_path = cfg.report_key or c.state / DEVICE_KEY
    if not transports:
        return None
    try:
        key = load_device_key(key_path)
    except DeviceKeyError as exc:
        c.fields["report"] = {"enabled": False, "reason": str(exc)}
        return None
    outcome = c.outcome
    mem = ReportMemory.load(c.state)
    probe = build_report(c, outcome, mem.sequence + 1)
    fingerprint = _fingerprint(probe)
    if not _due(mem, fingerprint, c.now, cfg.report_interval):
        c.fields["report"] = {"enabled": True, "sequence": mem.sequence, "sentAt": mem.sent_at, "sent": False}
        return None
    mem.sequence, mem.sent_at, mem.fingerprint = probe.sequence, c.now.isoformat(), fingerprint
    mem.owed = transports
    mem.save(c.state)  # before sealing: a kill after this never reuses the sequence
    envelope = seal(probe, key)
    results: dict[str, Any] = {}
    owed = []
    if cfg.report_git:
        try:
            commit_report(c.state, cfg.device, envelope, probe.sequence, c.now)
            push_report(c.state, cfg.repo, cfg.device, cfg.git_timeout)
            results["git"] = "pushed"
        except ReportPushError as exc:
            results["git"], owed = f"not pushed: {exc}", [*owed, "git"]
    if cfg.report_mqtt:
        try:
            publish_report(cfg.report_mqtt, cfg.device, envelope, min(cfg.git_timeout, 30.0))
            results["mqtt"] = "published"
        except ReportMqttError as exc:
            results["mqtt"], owed = f"not published: {exc}", [*owed, "mqtt"]
    mem.owed = tuple(owed)
    mem.save(c.state)
    c.fields["report"] = {"enabled": True, "sequence": probe.sequence, "sentAt": mem.sent_at, "sent": True, **results}
    return None
