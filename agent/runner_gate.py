"""The runner gate: after the switch the agent (re)starts each deployment's runner and judges the
release by what its runner shows — not the plant.

- ready within the Deployment's health-gate window, then an inference error rate at most its
  maxErrorRate and a p95 inference latency at most its maxLatencyP95: the release passes;
- live but not ready only because a source is unreachable or stale (a PLC off, a broker down —
  the old release would fare no better): the release is kept, the device Degraded, the source named;
- the runner died, a server refused what the release asks for (a node id, topic, register or
  credential), no answer in the window, failing or too slow inferences: the release is quarantined for this
  generation and the agent rolls back to the last known good, restarts that runner and checks it
  again — "rolled back" is only said once the restored runner is seen healthy, else Stalled.

Steps (agent.cycle signature): `observe_runners` every cycle (runners of the live release run,
their state in status), `check_ports` before the switch, `gate_runners` after it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agent.config import AgentConfig
from agent.cycle import Cycle, Outcome, need
from agent.probe import Counters, Probe, counters, health_of, not_ready_because, probe
from agent.reasons import Event, Reason, Result
from agent.releases import StageError, activate
from agent.runners import RunnerError, RunnerSpec, Supervisor, SystemdUnits, port_conflicts, runner_specs
from compiler.bundle.report import RunnerHealth
from compiler.bundle.tree import TreeError

POLL = 0.2


@dataclass(frozen=True)
class Finding:
    """What a gate found: the gate, the reason, the figure it judged by and the source at fault."""

    gate: str  # runner-live | runner-ready | error-rate | latency-p95 | runner-start | runner-ports
    reason: Reason
    figure: str
    source: str | None = None
    deployment: str | None = None

    def text(self) -> str:
        who = f"{self.deployment}: " if self.deployment else ""
        return f"{who}{self.gate} gate: {self.figure}"

    def details(self) -> dict[str, str | None]:
        return {
            "gate": self.gate,
            "reason": str(self.reason),
            "figure": self.figure,
            "source": self.source,
            "deployment": self.deployment,
        }


@dataclass(frozen=True)
class Verdict:
    health: RunnerHealth
    failure: Finding | None = None  # the release failed
    degraded: Finding | None = None  # kept, but a source of the plant is down


def control_for(cfg: AgentConfig) -> Supervisor | SystemdUnits | None:
    """The runner control the configuration asks for (None: the agent does not run runners)."""
    if cfg.supervise:
        return Supervisor(cfg.runner_command, cfg.state_dir / "runners", cfg.runner_host, cfg.drain_seconds)
    if cfg.unit_dir is not None:
        return SystemdUnits(cfg.unit_dir, cfg.systemctl)
    return None


def judge(c: Cycle, spec: RunnerSpec) -> Verdict:
    """Watch one freshly started runner until the gate can decide (see the module docstring)."""
    cfg, runners = c.cfg, need(c.runners, "the runner control")
    window = float(spec.gate.window_seconds)
    if cfg.runner_window is not None:
        window = min(window, cfg.runner_window)
    start = time.monotonic()
    down_since: float | None = None
    last = Probe(False, None, "not probed")

    def fail(gate: str, reason: Reason, figure: str, source: str | None = None) -> Verdict:
        died = runners.exited(spec.deployment)
        health = health_of(spec, last, None, died)
        return Verdict(health, failure=Finding(gate, reason, figure, source, spec.deployment))

    while True:
        now = time.monotonic()
        died = runners.exited(spec.deployment)
        if died:
            return fail("runner-live", Reason.RUNNER_CRASHED, f"the runner died: {died}")
        last = probe(cfg.runner_host, spec)
        state = last.readiness
        if state is not None and state.ready:
            break
        if state is not None:
            refused = next((s for s in state.sources if s.refused), None)
            if refused is not None:
                return fail("runner-ready", Reason.SOURCE_REFUSED, not_ready_because(last)[0], refused.name)
            down_since = down_since if down_since is not None else now
            if now - down_since >= min(cfg.plant_grace, window):
                return _kept(spec, last, now - down_since)
        if now - start >= window:
            if last.live:
                return _kept(spec, last, now - (down_since or start))
            return fail("runner-ready", Reason.RUNNER_NOT_READY, f"{last.error} within the window of {window:g} s")
        time.sleep(POLL)
    time.sleep(cfg.observe_seconds)  # inferences on live data, then their error rate
    died = runners.exited(spec.deployment)
    if died:
        return fail("runner-live", Reason.RUNNER_CRASHED, f"the runner died after it was ready: {died}")
    try:
        figures = counters(cfg.runner_host, spec)
    except ValueError as exc:
        return fail("error-rate", Reason.RUNNER_NOT_READY, str(exc))
    health = health_of(spec, probe(cfg.runner_host, spec), figures)
    rate = figures.error_rate
    if rate is not None and rate > spec.gate.max_error_rate:
        figure = (
            f"error rate {rate:.4f} > maxErrorRate {spec.gate.max_error_rate:g} "
            f"({figures.errors} failed of {figures.errors + figures.inferences} inferences)"
        )
        return Verdict(health, failure=Finding("error-rate", Reason.ERROR_RATE_EXCEEDED, figure, None, spec.deployment))
    slow = latency_over_budget(spec.gate.max_latency_p95_seconds, figures)
    if slow is not None:
        return Verdict(health, failure=Finding("latency-p95", Reason.LATENCY_EXCEEDED, slow, None, spec.deployment))
    return Verdict(health)


def latency_over_budget(budget: float | None, figures: Counters) -> str | None:
    """The figure of a p95 inference latency above `budget` (seconds), else None.

    The p95 is estimated from the runner's own histogram (`takt_runner_inference_seconds`) as
    Prometheus's histogram_quantile does, over every inference since the gate restarted the runner
    (the gate window); no inferences, no budget: nothing to judge."""
    if budget is None or figures.p95 is None:
        return None
    p95, low, high = figures.p95
    if p95 <= budget:
        return None
    within = f"above {low * 1e3:g} ms" if high == float("inf") else f"in the {low * 1e3:g}-{high * 1e3:g} ms bucket"
    return (
        f"inference latency p95 {p95 * 1e3:.2f} ms > maxLatencyP95 {budget * 1e3:g} ms "
        f"(estimated from the runner's latency histogram of {figures.timed} inferences, {within})"
    )


def _kept(spec: RunnerSpec, p: Probe, for_seconds: float) -> Verdict:
    why, source = not_ready_because(p)
    figure = f"{why} (live; waited {for_seconds:.1f} s): the release is kept"
    finding = Finding("runner-ready", Reason.SOURCE_UNAVAILABLE, figure, source, spec.deployment)
    return Verdict(health_of(spec, p, None), degraded=finding)


def _specs(c: Cycle, release: Path) -> list[RunnerSpec]:
    try:
        return runner_specs(c.state, release)
    except (OSError, TreeError, ValueError, KeyError, TypeError) as exc:
        raise RunnerError(f"cannot read the runners of {release.name}: {exc}") from None


def _start(c: Cycle, release: Path) -> tuple[list[Verdict], Finding | None]:
    """Restart the runners of `release` (now current) and judge each."""
    try:
        specs = _specs(c, release)
        need(c.runners, "the runner control").restart(specs)
    except (RunnerError, OSError) as exc:  # OSError: the unit directory cannot be written
        return [], Finding("runner-start", Reason.RUNNER_START_FAILED, str(exc))
    c.record(Event.RUNNERS_STARTED, release=release.name, runners=[f"{s.deployment}:{s.port}" for s in specs])
    verdicts = [judge(c, s) for s in specs]
    c.runner_health = {v.health.deployment: v.health for v in verdicts}
    return verdicts, next((v.failure for v in verdicts if v.failure), None)


def _degrade(c: Cycle, verdicts: Sequence[Verdict]) -> str:
    kept = [v.degraded for v in verdicts if v.degraded]
    if not kept:
        c.degraded = None
        return ""
    c.degraded = (Reason.SOURCE_UNAVAILABLE, "; ".join(f.text() for f in kept))
    for f in kept:
        c.record(Event.RUNNER_DEGRADED, **f.details())
    c.fields["runnerGate"] = kept[0].details()
    return c.degraded[1]


def restore_runners(c: Cycle, fallback: Path) -> tuple[bool, str]:
    """After a switch back to `fallback`: its runners restarted and seen healthy (or live and only
    waiting for the plant). (ok, what to say); without runner control there is nothing to check."""
    if c.runners is None:
        return True, ""
    verdicts, failure = _start(c, fallback)
    if failure is not None:
        c.record(Event.RESTORE_FAILED, release=fallback.name, **failure.details())
        return False, f"its runner is not healthy either ({failure.text()})"
    waiting = _degrade(c, verdicts)
    c.record(Event.RUNNER_RESTORED, release=fallback.name, runners=sorted(c.runner_health))
    return True, "its runner is healthy again" + (f", waiting for the plant ({waiting})" if waiting else "")


def observe_runners(c: Cycle) -> Outcome | None:
    """Every cycle, first: the live release's runners run (started after an agent restart) and
    their state goes into status and metrics."""
    if c.runners is None or c.current is None:
        return None
    try:
        specs = _specs(c, c.current)
        c.runners.ensure(specs)
    except (RunnerError, OSError) as exc:
        c.degraded = (Reason.RUNNER_START_FAILED, str(exc))
        return None
    down, reasons = [], set()
    for spec in specs:
        p = probe(c.cfg.runner_host, spec)
        try:
            figures: Counters | None = counters(c.cfg.runner_host, spec) if p.live else None
        except ValueError:
            figures = None
        died = c.runners.exited(spec.deployment)
        h = health_of(spec, p, figures, died)
        c.runner_health[spec.deployment] = h
        if not h.ready:
            down.append(f"{spec.deployment}: {h.reason}")
            refused = p.readiness is not None and any(s.refused for s in p.readiness.sources)
            source = None if died else not_ready_because(p)[1]
            reasons.add(
                Reason.RUNNER_CRASHED if died
                else Reason.SOURCE_REFUSED if refused
                else Reason.SOURCE_UNAVAILABLE if source
                else Reason.RUNNER_NOT_READY
            )  # fmt: skip
    if down:  # the first of: died, refused, the plant, not answering
        order = (Reason.RUNNER_CRASHED, Reason.SOURCE_REFUSED, Reason.SOURCE_UNAVAILABLE, Reason.RUNNER_NOT_READY)
        c.degraded = (next(r for r in order if r in reasons), "; ".join(down))
    return None


def check_ports(c: Cycle) -> Outcome | None:
    """Before the switch: no two runners of the staged release on one port."""
    if c.runners is None or c.release is None or c.resumed:
        return None
    try:
        problems = port_conflicts(_specs(c, c.release))
    except RunnerError as exc:
        problems = [str(exc)]
    if not problems:
        return None
    c.mem.quarantine[need(c.release_id, "the release id")] = need(c.desired, "the desired state").generation
    error = StageError(Reason.PORT_CONFLICT, "; ".join(problems))
    c.record(Event.STAGE_FAILED, reason=error.reason, message=error.message)
    return Outcome(Result.REJECTED, error.reason, f"new release not activated: {error.message}")


def gate_runners(c: Cycle) -> Outcome | None:
    """After the switch: restart the runners and judge them; a failure rolls back (see the module)."""
    if c.runners is None:
        return None
    release = need(c.release, "the activated release")
    verdicts, failure = _start(c, release)
    if failure is None:
        _degrade(c, verdicts)
        return None  # the hook and the post check follow; they mark the release good
    mem, state = c.mem, c.state
    mem.pending_health = None
    mem.quarantine[need(c.release_id, "the release id")] = need(c.desired, "the desired state").generation
    c.fields["runnerGate"] = failure.details()
    c.record(Event.RUNNER_GATE_FAILED, release=release.name, **failure.details())
    previous = None if c.resumed else c.current
    fallback = previous or (state / "releases" / mem.last_known_good if mem.last_known_good else None)
    if fallback is None or not fallback.is_dir() or fallback == release:
        c.runners.restart([])
        return Outcome(Result.REJECTED, failure.reason, f"{failure.text()}; no earlier release to return to")
    from agent.steps import hook  # the one activate hook; steps imports this module's steps

    activate(state, fallback)
    hook(c.cfg, fallback)
    ok, note = restore_runners(c, fallback)
    c.record(Event.ROLLED_BACK, failed=release.name, to=fallback.name, reason=failure.text(), restored=note)
    message = f"{release.name} failed its runner gate ({failure.text()}); back on {fallback.name}: {note}"
    if not ok:
        return Outcome(Result.REJECTED, Reason.RESTORE_UNHEALTHY, message)
    return Outcome(Result.ROLLED_BACK, Reason.ROLLED_BACK, message)
