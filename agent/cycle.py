"""A reconcile cycle as a list of small steps with one signature, after Flux's sub-reconcilers.

Each step reads and extends the cycle's context and returns None to go on or an Outcome to end
the cycle. A step that raises is a defect of the agent, never of the repository (repository
content is refused as a typed Reason): it ends the cycle as `failed`/`InternalError`, journaled
and reported, and the loop retries — it never exits.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from agent.config import AgentConfig
from agent.reasons import Event, Reason, Result
from agent.runners import RunnerControl
from agent.status import Memory, journal
from compiler.bundle import DesiredState, Manifest
from compiler.bundle.report import RunnerHealth


@dataclass(frozen=True)
class Outcome:
    result: Result
    reason: Reason
    message: str

    @property
    def ready(self) -> bool:
        return Result(self.result).ready


@dataclass
class Cycle:
    """What the steps of one cycle know; each step fills in what the later ones need."""

    cfg: AgentConfig
    state: Path
    now: datetime
    mem: Memory
    timings: dict[str, float] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)  # extra status fields
    head: str | None = None  # the branch tip ls-remote saw
    workdir: Path | None = None
    commit: str | None = None  # what the clone checked out
    desired: DesiredState | None = None  # verified
    key_id: str | None = None
    release_id: str | None = None
    manifests: dict[str, Manifest] = field(default_factory=dict)  # digest → verified manifest
    current: Path | None = None  # the live release when the cycle began
    release: Path | None = None  # the release being activated: staged now, or resumed after a kill
    resumed: bool = False  # killed after a switch, before its post check: finish that
    outcome: Outcome | None = None  # decided: what the `after` steps see
    runners: RunnerControl | None = None  # kept across cycles by the loop (agent/runners.py)
    runner_health: dict[str, RunnerHealth] = field(default_factory=dict)  # deployment → its runner
    degraded: tuple[Reason, str] | None = None  # Degraded although the cycle succeeded (the plant)

    def record(self, event: Event, **details: Any) -> None:
        journal(self.state, self.now, event, **details)


StepFn = Callable[[Cycle], Outcome | None]

T = TypeVar("T")


class MissingContext(RuntimeError):
    """A step ran before the step that provides what it reads: a defect of the agent's step list."""


def need(value: T | None, what: str) -> T:
    """What an earlier step filled in; its absence is an agent defect, reported as InternalError."""
    if value is None:
        raise MissingContext(f"{what} is not known yet: the step that provides it has not run")
    return value


@dataclass(frozen=True)
class Step:
    name: str
    run: StepFn
    timing: str | None = None  # the status timing this step adds to (steps of one phase share one)
    after: bool = False  # runs once the outcome is decided, whatever it is (e.g. reporting it)


def _run_step(cycle: Cycle, step: Step) -> Outcome | None:
    t = time.perf_counter()
    try:
        outcome = step.run(cycle)
    except Exception as exc:  # noqa: BLE001 - any defect becomes a reported, retried outcome
        where = traceback.extract_tb(exc.__traceback__)[-1]
        message = f"step {step.name} failed: {type(exc).__name__}: {exc}"
        at = f"{Path(where.filename).name}:{where.lineno}"
        cycle.record(Event.INTERNAL_ERROR, step=step.name, error=message, at=at)
        outcome = Outcome(Result.FAILED, Reason.INTERNAL_ERROR, message)
    if step.timing:
        cycle.timings[step.timing] = round(cycle.timings.get(step.timing, 0.0) + time.perf_counter() - t, 4)
    return outcome


def run_steps(cycle: Cycle, steps: Sequence[Step]) -> Outcome:
    """Run `steps` in order until one decides the outcome, then every `after` step with it decided.

    An `after` step returns None; if it returns an outcome (or fails), that outcome replaces the
    decided one, so a defect in reporting is reported like any other."""
    outcome = None
    for step in steps:
        if not step.after and outcome is None:
            outcome = _run_step(cycle, step)
    if outcome is None:
        outcome = Outcome(Result.FAILED, Reason.INTERNAL_ERROR, "no step decided the cycle")
    for step in steps:
        if step.after:
            cycle.outcome = outcome
            outcome = _run_step(cycle, step) or outcome
    cycle.outcome = outcome
    return outcome
