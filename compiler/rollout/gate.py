"""Judge a rollout step from the devices' verified reports, and decide what follows.

Only figures the devices' own runners counted are used (error rate, readiness, shadow agreement);
nothing is estimated here. A step device passes when its report, taken after the step's window
ended, shows it applied the step's generation and its runner served the new bundle (or compared
the challenger) within the gate; it fails at once when it quarantined or rolled back the new
bundle, stalled, or exceeded the error rate; otherwise it is still waiting. One failure aborts
the step; every device passing moves the rollout on.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypedDict

from compiler.bundle.report import RunnerHealth, StatusReport
from compiler.rollout.state import TERMINAL, Phase, RolloutState


class Verdict(enum.StrEnum):
    PASS = "pass"
    WAIT = "wait"
    FAIL = "fail"


@dataclass(frozen=True)
class DeviceVerdict:
    device: str
    verdict: Verdict
    reason: str
    report_time: datetime | None = None
    ready: bool | None = None
    error_rate: float | None = None
    agreement: float | None = None
    mean_abs_diff: float | None = None
    p99_abs_diff: float | None = None
    challenger_error_rate: float | None = None


class _Seen(TypedDict, total=False):
    """The figures of a report a verdict carries (DeviceVerdict's optional fields)."""

    report_time: datetime | None
    ready: bool | None
    error_rate: float | None
    agreement: float | None
    mean_abs_diff: float | None
    p99_abs_diff: float | None
    challenger_error_rate: float | None


class Action(enum.StrEnum):
    NONE = "none"  # the rollout is finished (promoted or aborted)
    WAIT = "wait"  # some step device has not shown enough yet
    ADVANCE = "advance"  # shadow → canary
    PROMOTE = "promote"  # → every device runs the new bundles
    ABORT = "abort"  # → every device back on its previous bundles


@dataclass(frozen=True)
class Decision:
    deployment: str
    action: Action
    phase: Phase  # the phase after the decision
    reason: str
    verdicts: tuple[DeviceVerdict, ...] = ()


def decide(record: RolloutState, reports: Mapping[str, Sequence[StatusReport]], now: datetime) -> Decision:
    """`reports`: each device's believed reports, oldest first (the newest is its current one).
    A report dated after `now` (a device clock ahead) counts as taken `now`: it cannot end a window early."""
    if record.phase in TERMINAL:
        return Decision(record.deployment, Action.NONE, record.phase, f"rollout is {record.phase.value}")
    step = record.step_devices()
    judge = _shadow if record.phase == Phase.SHADOW else _canary
    verdicts = tuple(judge(record, d, tuple(reports.get(d, ())), now) for d in step)
    failed = [v for v in verdicts if v.verdict == Verdict.FAIL]
    if not step:
        return Decision(
            record.deployment, Action.ABORT, Phase.ABORTED, f"the {record.phase.value} step holds no device"
        )
    if failed:
        why = "; ".join(f"{v.device}: {v.reason}" for v in failed[:5])
        return Decision(
            record.deployment, Action.ABORT, Phase.ABORTED, f"{record.phase.value} failed ({why})", verdicts
        )
    waiting = [v for v in verdicts if v.verdict == Verdict.WAIT]
    if waiting:
        why = "; ".join(f"{v.device}: {v.reason}" for v in waiting[:5])
        return Decision(record.deployment, Action.WAIT, record.phase, f"waiting ({why})", verdicts)
    names = ", ".join(step[:10]) + (" …" if len(step) > 10 else "")
    if record.phase == Phase.SHADOW and record.spec.then == "canary":
        why = f"shadow agreement held on {names}: canary step next"
        return Decision(record.deployment, Action.ADVANCE, Phase.CANARY, why, verdicts)
    return Decision(
        record.deployment, Action.PROMOTE, Phase.PROMOTED, f"{record.phase.value} gate held on {names}", verdicts
    )


def _window(record: RolloutState) -> float:
    step = record.spec.shadow if record.phase == Phase.SHADOW else record.spec.canary
    return step.window if step is not None else 0.0


def _common(record: RolloutState, device: str, report: StatusReport | None) -> DeviceVerdict | RunnerHealth | None:
    """A verdict already reached from the report's envelope, else the deployment's runner (None: none yet)."""
    if report is None:
        return DeviceVerdict(device, Verdict.WAIT, "no report yet")
    new = record.devices[device].new.digest
    if new in report.quarantined:
        return DeviceVerdict(device, Verdict.FAIL, "quarantined the new bundle (rolled back)", report.time)
    stalled = report.condition("Stalled")
    if stalled is not None and stalled.status:
        return DeviceVerdict(device, Verdict.FAIL, f"stalled: {stalled.reason} {stalled.message}".strip(), report.time)
    if report.time < record.started:
        return DeviceVerdict(device, Verdict.WAIT, "last report predates the step", report.time)
    want = record.generations.get(device)
    if want is None or report.applied_generation is None or report.applied_generation < want:
        applied = report.applied_generation
        return DeviceVerdict(device, Verdict.WAIT, f"applied generation {applied}, the step gave {want}", report.time)
    return next((r for r in report.runners if r.deployment == record.deployment), None)


def _in_step(record: RolloutState, device: str, history: tuple[StatusReport, ...]) -> list[RunnerHealth]:
    """The deployment's runner in every report since the device applied the step's generation, oldest first."""
    want = record.generations.get(device)
    return [
        r
        for rep in history
        if rep.time >= record.started and want is not None and (rep.applied_generation or 0) >= want
        for r in rep.runners
        if r.deployment == record.deployment
    ]


def _canary(record: RolloutState, device: str, history: tuple[StatusReport, ...], now: datetime) -> DeviceVerdict:
    report = history[-1] if history else None
    got = _common(record, device, report)
    if isinstance(got, DeviceVerdict):
        return got
    gate = record.spec.canary
    if report is None or gate is None:  # _common answered for a missing report; a canary phase has its step
        return DeviceVerdict(device, Verdict.WAIT, "no canary step to judge")
    new = record.devices[device].new.digest
    serving = [r for r in _in_step(record, device, history) if r.bundle == new]
    worst = max((r.error_rate for r in serving if r.error_rate is not None), default=None)
    if worst is not None and worst > gate.max_error_rate:
        why = f"error rate {worst:.4f} above {gate.max_error_rate} during the window"
        return DeviceVerdict(device, Verdict.FAIL, why, report.time, error_rate=worst)
    first_ready = next((n for n, r in enumerate(serving) if r.ready), None)
    if first_ready is not None and not all(r.ready for r in serving[first_ready:]):
        return DeviceVerdict(device, Verdict.FAIL, "runner became unready during the window", report.time)
    over = min(report.time, now) >= record.started + timedelta(seconds=_window(record))
    runner = got
    if runner is None:
        verdict = Verdict.FAIL if over else Verdict.WAIT
        return DeviceVerdict(device, verdict, "reports no runner for the deployment", report.time)
    seen = _Seen(report_time=report.time, ready=runner.ready, error_rate=runner.error_rate)
    if runner.bundle != record.devices[device].new.digest:
        return DeviceVerdict(device, Verdict.FAIL, f"runner serves {runner.bundle[:12]}, not the new bundle", **seen)
    if runner.error_rate is not None and runner.error_rate > gate.max_error_rate:
        why = f"error rate {runner.error_rate:.4f} above {gate.max_error_rate}"
        return DeviceVerdict(device, Verdict.FAIL, why, **seen)
    if not over:
        return DeviceVerdict(device, Verdict.WAIT, "inside the health window", **seen)
    if not runner.ready:
        why = f"runner not ready after the window ({runner.reason or 'no reason given'})"
        return DeviceVerdict(device, Verdict.FAIL, why, **seen)
    if runner.inferences == 0 or runner.error_rate is None:
        return DeviceVerdict(device, Verdict.FAIL, "ran no inference in the whole window", **seen)
    return DeviceVerdict(device, Verdict.PASS, "healthy for the whole window", **seen)


def _shadow(record: RolloutState, device: str, history: tuple[StatusReport, ...], now: datetime) -> DeviceVerdict:
    report = history[-1] if history else None
    got = _common(record, device, report)
    if isinstance(got, DeviceVerdict):
        return got
    gate = record.spec.shadow
    if report is None or gate is None:
        return DeviceVerdict(device, Verdict.WAIT, "no shadow step to judge")
    new = record.devices[device].new.digest
    compared = [
        r.shadow.agreement
        for r in _in_step(record, device, history)
        if r.shadow is not None and r.shadow.challenger == new and r.shadow.frames and r.shadow.agreement is not None
    ]
    if compared and min(compared) < gate.min_agreement:
        why = f"agreement {min(compared):.4f} below {gate.min_agreement} during the window"
        return DeviceVerdict(device, Verdict.FAIL, why, report.time, agreement=min(compared))
    over = min(report.time, now) >= record.started + timedelta(seconds=_window(record))
    shadow = got.shadow if got is not None else None
    if shadow is None or shadow.challenger != record.devices[device].new.digest:
        verdict = Verdict.FAIL if over else Verdict.WAIT
        return DeviceVerdict(device, verdict, "reports no comparison with the challenger", report.time)
    seen = _Seen(
        report_time=report.time,
        ready=got.ready if got is not None else None,
        error_rate=got.error_rate if got is not None else None,
        agreement=shadow.agreement,
        mean_abs_diff=shadow.mean_abs_diff,
        p99_abs_diff=shadow.p99_abs_diff,
        challenger_error_rate=shadow.error_rate,
    )
    if not over:
        return DeviceVerdict(device, Verdict.WAIT, "inside the shadow window", **seen)
    if shadow.frames == 0 or shadow.agreement is None:
        return DeviceVerdict(device, Verdict.FAIL, "compared no frame in the whole window", **seen)
    if shadow.agreement < gate.min_agreement:
        why = f"agreement {shadow.agreement:.4f} below {gate.min_agreement}"
        return DeviceVerdict(device, Verdict.FAIL, why, **seen)
    return DeviceVerdict(device, Verdict.PASS, f"agreement {shadow.agreement:.4f} for the whole window", **seen)
