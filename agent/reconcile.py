"""One reconcile cycle under a lock: the steps of agent.steps, then status, metrics and memory.

Idempotent at every step: a kill at any instant leaves `current` on a whole, verified release
(the old or the new one), and the next cycle converges. Nothing is touched until the desired
state and every bundle byte are verified.
"""

from __future__ import annotations

import fcntl
import time

from agent.config import AgentConfig
from agent.cycle import Cycle, Outcome, Step, run_steps
from agent.reasons import Event, Reason, Result
from agent.releases import clean_staging, current_release, release_id_of, release_meta
from agent.runner_gate import control_for
from agent.runners import RunnerControl
from agent.status import Memory, MemoryUnreadable, write_metrics, write_status
from agent.steps import STEPS
from compiler.bundle.gitmessage import redact_url

__all__ = ["Outcome", "Reconciler"]


class Reconciler:
    def __init__(self, cfg: AgentConfig, steps: tuple[Step, ...] = STEPS, runners: RunnerControl | None = None) -> None:
        self.cfg = cfg
        self.steps = steps
        self.runners = runners if runners is not None else control_for(cfg)  # the loop keeps one across cycles
        self.state = cfg.state_dir
        self.state.mkdir(parents=True, exist_ok=True)
        self.repo_dir = self.state / "repo"

    def run_once(self) -> Outcome:
        """One cycle under an exclusive lock of the state directory (released when the process dies)."""
        with (self.state / "agent.lock").open("a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return Outcome(Result.REFUSED, Reason.LOCKED, f"another agent works on {self.state}")
            return self._run_once()

    def _run_once(self) -> Outcome:
        cfg, state = self.cfg, self.state
        t0 = time.perf_counter()
        clean_staging(state)
        steps, unreadable = self.steps, None
        try:
            mem = Memory.load(state)
        except MemoryUnreadable as exc:  # accept nothing, keep the live release, leave the file to an operator
            mem, unreadable = Memory(), exc
            steps = (Step("memory", lambda c: self._refuse_all(c, unreadable)), *steps)
        cycle = Cycle(cfg, state, cfg.clock(), mem, current=current_release(state), runners=self.runners)
        cycle.fields.update(device=cfg.device, repo=redact_url(cfg.repo), branch=cfg.branch)
        outcome = run_steps(cycle, steps)
        self._finish(cycle, outcome, t0, unreadable is None)
        return outcome

    @staticmethod
    def _refuse_all(cycle: Cycle, exc: MemoryUnreadable) -> Outcome:
        message = f"the agent's memory is unreadable; nothing is accepted until it is restored: {exc}"
        cycle.record(Event.INTERNAL_ERROR, step="memory", error=message)
        return Outcome(Result.FAILED, Reason.INTERNAL_ERROR, message)

    def _finish(self, cycle: Cycle, outcome: Outcome, t0: float, save: bool) -> None:
        """Status, metrics and memory after every cycle, whatever it decided (memory only if it was read)."""
        state, mem, result = self.state, cycle.mem, Result(outcome.result)
        current = current_release(state)
        cycle.timings["totalSeconds"] = round(time.perf_counter() - t0, 4)
        mem.reconciles[str(result)] = mem.reconciles.get(str(result), 0) + 1
        applied = release_meta(current)
        doc = write_status(
            state,
            cycle.now,
            ready=result.ready,
            reconciling=False,
            stalled=result.stalled,
            degraded=result.degraded or cycle.degraded is not None,
            reason=outcome.reason,
            message=outcome.message,
            degraded_by=None if result.degraded else cycle.degraded,
            fields={
                **cycle.fields,
                "result": str(result),
                "reason": str(outcome.reason),
                "lastError": None if result.ready else outcome.message,
                "appliedGeneration": applied.get("generation"),
                "appliedRelease": release_id_of(current),
                "appliedBundles": applied.get("bundles", []),
                "lastKnownGood": mem.last_known_good,
                "acceptedGeneration": mem.accepted_generation if save else None,
                "timings": cycle.timings,
                **({"runners": [h.to_json() for _, h in sorted(cycle.runner_health.items())]} if self.runners else {}),
            },
        )
        write_metrics(state, mem, doc, self.cfg.metrics_file)
        if save:
            mem.save(state)
