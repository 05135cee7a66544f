"""agent/runner_gate.py without runners: the gate's clock, its probes and its runner control are
replaced at the module's own boundary (time, probe, counters, runner_specs, the control object), so
every decision of the gate — ready, refused, kept for the plant, died, too many errors, too slow —
is reached in milliseconds and named exactly (reason, figure, source, journal, quarantine). The
agent tests reach the gate only through real runners, too slow to run once per mutant."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import agent.runner_gate as gate
from agent.config import AgentConfig
from agent.cycle import Cycle, MissingContext
from agent.probe import Counters, Probe
from agent.reasons import Reason, Result
from agent.releases import current_release
from agent.runners import RunnerError, RunnerSpec, Supervisor, SystemdUnits
from agent.status import Memory
from compiler.bundle import DesiredState
from compiler.bundle import readiness as rd
from compiler.bundle import runner as contract
from compiler.bundle.report import RunnerHealth
from compiler.bundle.tree import TreeError
from tests.statekit import journal_events

NOW = datetime(2030, 1, 1, tzinfo=UTC)
READY = Probe(True, rd.Readiness(True, (rd.SourceReadiness("plc", True, True),)))
DOWN = Probe(True, rd.Readiness(False, (rd.SourceReadiness("plc", False, False),)))
STALE = Probe(True, rd.Readiness(False, (rd.SourceReadiness("plc", True, False),)))
REFUSED = Probe(
    True,
    rd.Readiness(False, (rd.SourceReadiness("ok", True, True),
                         rd.SourceReadiness("mqtt", True, True, "topic x: denied"))),
)
SILENT = Probe(False, None, "no answer on port 9100 (refused)")
GARBLED = Probe(True, None, "HTTP 200 with an unreadable readiness body (x)")
GOOD = Counters(frames=50, inferences=99, errors=1, p99_ms=4.0)


def _spec(deployment: str = "line", port: int = 9100, **gate_kw: Any) -> RunnerSpec:
    g = contract.RunnerGate(**{"window_seconds": 10, "max_error_rate": 0.01, **gate_kw})
    live = Path("/s/current/deployments") / deployment
    return RunnerSpec(deployment, "d" * 64, live / "runner.json", live, port, g)


class Clock:
    """time.monotonic and time.sleep of the gate: sleeping advances the clock, nothing waits."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        if s < 0:
            raise ValueError("sleep length must be non-negative")
        self.sleeps.append(s)
        self.t += s


@dataclass
class Runners:
    """A runner control: what was restarted and ensured, and a death per deployment (from a time on)."""

    clock: Clock
    deaths: dict[str, tuple[float, str]] = field(default_factory=dict)  # deployment -> (from elapsed, why)
    fail: Exception | None = None
    restarts: list[list[str]] = field(default_factory=list)
    ensured: list[list[str]] = field(default_factory=list)

    def restart(self, specs: Sequence[RunnerSpec]) -> None:
        if self.fail is not None:
            fail, self.fail = self.fail, None  # once: stopping them afterwards works
            raise fail
        self.restarts.append([s.deployment for s in specs])

    def ensure(self, specs: Sequence[RunnerSpec]) -> None:
        if self.fail is not None:
            raise self.fail
        self.ensured.append([s.deployment for s in specs])

    def exited(self, deployment: str) -> str | None:
        at, why = self.deaths.get(deployment, (float("inf"), ""))
        return why if round(self.clock.t - 1000.0, 6) >= at else None

    def close(self) -> None:
        pass


@dataclass
class World:
    clock: Clock
    runners: Runners
    probes: list[tuple[str, float]]  # (deployment, elapsed) of every probe
    script: dict[str, Callable[[float], Probe]]
    figures: dict[str, Counters | Exception]
    specs: dict[str, list[RunnerSpec] | Exception]
    cycle: Cycle


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    clock = Clock()
    runners = Runners(clock)
    probes: list[tuple[str, float]] = []
    script: dict[str, Callable[[float], Probe]] = {}
    figures: dict[str, Counters | Exception] = {}
    specs: dict[str, list[RunnerSpec] | Exception] = {}
    cfg = AgentConfig("file:///deploy", "deploy", "dev-1", tmp_path / "state", (), runner_host="10.9.8.7",
                      plant_grace=3.0, observe_seconds=2.0)
    state = tmp_path / "state"
    (state / "releases").mkdir(parents=True)

    def probe(host: str, spec: RunnerSpec) -> Probe:
        assert host == "10.9.8.7"
        assert len(probes) < 1000, "the gate probes without end"  # a mutant that loops dies fast
        probes.append((spec.deployment, round(clock.t - 1000.0, 6)))
        return script.get(spec.deployment, lambda t: READY)(round(clock.t - 1000.0, 6))

    def counters(host: str, spec: RunnerSpec) -> Counters:
        assert host == "10.9.8.7"
        got = figures.get(spec.deployment, GOOD)
        if isinstance(got, Exception):
            raise got
        return got

    def runner_specs(st: Path, release: Path) -> list[RunnerSpec]:
        assert st == state
        got = specs.get(release.name, [_spec()])
        if isinstance(got, Exception):
            raise got
        return got

    monkeypatch.setattr(gate, "time", SimpleNamespace(monotonic=clock.monotonic, sleep=clock.sleep))
    monkeypatch.setattr(gate, "probe", probe)
    monkeypatch.setattr(gate, "counters", counters)
    monkeypatch.setattr(gate, "runner_specs", runner_specs)
    c = Cycle(cfg, state, NOW, Memory(), runners=runners)
    return World(clock, runners, probes, script, figures, specs, c)


def _release(w: World, name: str) -> Path:
    path = w.cycle.state / "releases" / name
    path.mkdir()
    return path


def _events(w: World) -> list[tuple[str, dict[str, Any]]]:
    return [(e["event"], e["details"]) for e in journal_events(w.cycle.state)]


def _for(w: World, deployment: str, fn: Callable[[float], Probe]) -> None:
    w.script[deployment] = fn


# --- Finding, control_for, latency_over_budget ------------------------------------------------------


def test_a_finding_says_its_gate_and_figure_and_names_its_deployment_when_it_has_one() -> None:
    f = gate.Finding("error-rate", Reason.ERROR_RATE_EXCEEDED, "rate 0.5", "plc", "line")
    assert f.text() == "line: error-rate gate: rate 0.5"
    assert gate.Finding("runner-start", Reason.RUNNER_START_FAILED, "boom").text() == "runner-start gate: boom"
    assert f.details() == {"gate": "error-rate", "reason": "ErrorRateExceeded", "figure": "rate 0.5",
                           "source": "plc", "deployment": "line"}


def test_the_control_is_a_supervisor_systemd_or_nothing_as_configured(tmp_path: Path) -> None:
    base = {"repo": "r", "branch": "b", "device": "d", "state_dir": tmp_path, "trusted_keys": ()}
    sup = gate.control_for(AgentConfig(**base, supervise=True, runner_command=("run", "it"), runner_host="10.0.0.2",
                                       drain_seconds=4.5, unit_dir=tmp_path / "units"))
    assert isinstance(sup, Supervisor)
    assert (sup.command, sup.logs, sup.host) == (("run", "it"), tmp_path / "runners", "10.0.0.2")
    assert sup.drain_seconds == 4.5
    units = gate.control_for(AgentConfig(**base, unit_dir=tmp_path / "units", systemctl=("sc", "--user")))
    assert isinstance(units, SystemdUnits)
    assert (units.unit_dir, units.systemctl) == (tmp_path / "units", ("sc", "--user"))
    assert gate.control_for(AgentConfig(**base)) is None


def test_latency_within_or_without_a_budget_is_not_judged() -> None:
    fig = Counters(p95=(0.02, 0.01, 0.025), timed=40)
    assert gate.latency_over_budget(None, fig) is None
    assert gate.latency_over_budget(0.001, Counters()) is None
    assert gate.latency_over_budget(0.02, fig) is None  # at the budget: within it
    assert gate.latency_over_budget(0.03, fig) is None


def test_latency_over_budget_names_the_estimate_the_budget_and_the_bucket() -> None:
    fig = Counters(p95=(0.0175, 0.01, 0.025), timed=40)
    assert gate.latency_over_budget(0.0174, fig) == (
        "inference latency p95 17.50 ms > maxLatencyP95 17.4 ms "
        "(estimated from the runner's latency histogram of 40 inferences, in the 10-25 ms bucket)"
    )
    top = Counters(p95=(0.5, 0.5, float("inf")), timed=7)
    assert gate.latency_over_budget(0.1, top) == (
        "inference latency p95 500.00 ms > maxLatencyP95 100 ms "
        "(estimated from the runner's latency histogram of 7 inferences, above 500 ms)"
    )


# --- judge -------------------------------------------------------------------------------------------


def test_a_runner_ready_at_once_passes_after_the_observation(world: World) -> None:
    v = gate.judge(world.cycle, _spec())
    assert v.failure is None and v.degraded is None
    assert world.clock.sleeps == [2.0]  # no poll: ready at the first probe; then the observation
    assert world.probes == [("line", 0.0), ("line", 2.0)]  # the health is read after the observation
    h = v.health
    assert (h.deployment, h.bundle, h.ready, h.live, h.reason) == ("line", "d" * 64, True, True, "")
    assert (h.frames, h.inferences, h.errors, h.error_rate, h.inference_p99_ms) == (50, 99, 1, 0.01, 4.0)


def test_the_gate_polls_until_ready(world: World) -> None:
    _for(world, "line", lambda t: READY if t >= 1.0 else SILENT)
    v = gate.judge(world.cycle, _spec())
    assert v.failure is None and v.degraded is None
    assert world.clock.sleeps[:-1] == [gate.POLL] * 5 and world.clock.sleeps[-1] == 2.0
    assert gate.POLL == 0.2


def test_a_runner_that_died_before_it_was_ready_crashed(world: World) -> None:
    world.runners.deaths["line"] = (0.0, "exit 3: bad config")
    v = gate.judge(world.cycle, _spec())
    assert v.failure == gate.Finding("runner-live", Reason.RUNNER_CRASHED, "the runner died: exit 3: bad config",
                                     None, "line")
    assert world.probes == []
    assert (v.health.ready, v.health.live, v.health.reason) == (False, False, "runner died: exit 3: bad config")


def test_a_runner_that_dies_while_polled_crashed_with_its_last_probe(world: World) -> None:
    world.runners.deaths["line"] = (0.5, "exit 1")
    _for(world, "line", lambda t: SILENT)
    v = gate.judge(world.cycle, _spec())
    assert v.failure is not None and v.failure.figure == "the runner died: exit 1"
    assert len(world.probes) == 3  # 0, 0.2, 0.4; dead at 0.6


def test_a_refused_source_fails_at_once_naming_the_source(world: World) -> None:
    _for(world, "line", lambda t: REFUSED)
    v = gate.judge(world.cycle, _spec())
    assert v.failure == gate.Finding("runner-ready", Reason.SOURCE_REFUSED,
                                     "source mqtt refused by its server: topic x: denied", "mqtt", "line")
    assert world.clock.sleeps == []
    assert (v.health.ready, v.health.live) == (False, True)


def test_sources_down_for_the_plant_grace_keep_the_release_degraded(world: World) -> None:
    _for(world, "line", lambda t: SILENT if t < 0.4 else DOWN)
    v = gate.judge(world.cycle, _spec())
    assert v.failure is None
    assert v.degraded == gate.Finding(
        "runner-ready", Reason.SOURCE_UNAVAILABLE,
        "source plc is not connected (live; waited 3.0 s): the release is kept", "plc", "line")
    assert world.probes[0] == ("line", 0.0) and world.probes[-1][1] == pytest.approx(3.4)
    assert (v.health.ready, v.health.live, v.health.reason) == (False, True, "source plc is not connected")
    assert v.health.inferences == 0  # no counters read for a kept release


def test_the_plant_grace_is_capped_by_the_window(world: World) -> None:
    _for(world, "line", lambda t: STALE)
    v = gate.judge(world.cycle, _spec(window_seconds=1))
    assert v.degraded is not None
    assert v.degraded.figure == "source plc is stale (live; waited 1.0 s): the release is kept"
    assert world.probes[-1][1] == pytest.approx(1.0)


def test_the_agent_caps_the_window_the_bundle_names(world: World, tmp_path: Path) -> None:
    world.cycle.cfg = AgentConfig("r", "b", "d", tmp_path, (), runner_host="10.9.8.7", runner_window=0.5)
    _for(world, "line", lambda t: SILENT)
    v = gate.judge(world.cycle, _spec(window_seconds=10))
    assert v.failure == gate.Finding(
        "runner-ready", Reason.RUNNER_NOT_READY,
        "no answer on port 9100 (refused) within the window of 0.5 s", None, "line")
    assert world.probes[-1][1] == pytest.approx(0.6)
    world.cycle.cfg = AgentConfig("r", "b", "d", tmp_path, (), runner_host="10.9.8.7", runner_window=30)
    world.probes.clear()
    v = gate.judge(world.cycle, _spec(window_seconds=1))
    assert v.failure is not None and v.failure.figure.endswith("within the window of 1 s")


def test_no_answer_within_the_window_is_not_ready(world: World) -> None:
    _for(world, "line", lambda t: SILENT)
    v = gate.judge(world.cycle, _spec(window_seconds=2))
    assert v.failure is not None and v.failure.reason is Reason.RUNNER_NOT_READY
    assert v.failure.figure == "no answer on port 9100 (refused) within the window of 2 s"
    assert world.probes[-1][1] == pytest.approx(2.0)
    assert (v.health.live, v.health.reason) == (False, "no answer on port 9100 (refused)")


def test_a_live_runner_without_readable_readiness_is_kept_at_the_window(world: World) -> None:
    _for(world, "line", lambda t: GARBLED)
    v = gate.judge(world.cycle, _spec(window_seconds=2))
    assert v.failure is None and v.degraded is not None
    assert v.degraded.figure == ("HTTP 200 with an unreadable readiness body (x) (live; waited 2.0 s): "
                                 "the release is kept")
    assert v.degraded.source is None


def test_a_source_down_late_in_the_window_counts_from_when_it_went_down(world: World) -> None:
    world.cycle.cfg = AgentConfig("r", "b", "d", world.cycle.state, (), runner_host="10.9.8.7", plant_grace=5.0)
    _for(world, "line", lambda t: SILENT if t < 1.5 else (DOWN if t < 1.9 else GARBLED))
    v = gate.judge(world.cycle, _spec(window_seconds=2))
    assert v.degraded is not None
    assert v.degraded.figure.endswith("(live; waited 0.4 s): the release is kept")


def test_a_runner_that_dies_during_the_observation_crashed(world: World) -> None:
    world.runners.deaths["line"] = (1.0, "exit 9")
    v = gate.judge(world.cycle, _spec())
    assert v.failure == gate.Finding("runner-live", Reason.RUNNER_CRASHED,
                                     "the runner died after it was ready: exit 9", None, "line")
    assert (v.health.ready, v.health.live) == (False, False)


def test_unreadable_metrics_fail_the_error_rate_gate(world: World) -> None:
    world.figures["line"] = ValueError("unreadable metrics (bad line)")
    v = gate.judge(world.cycle, _spec())
    assert v.failure == gate.Finding("error-rate", Reason.RUNNER_NOT_READY, "unreadable metrics (bad line)",
                                     None, "line")


def test_the_error_rate_at_its_maximum_passes_and_above_it_fails(world: World) -> None:
    world.figures["line"] = Counters(inferences=99, errors=1)
    assert gate.judge(world.cycle, _spec(max_error_rate=0.01)).failure is None
    world.figures["line"] = Counters(inferences=98, errors=2)
    v = gate.judge(world.cycle, _spec(max_error_rate=0.01))
    assert v.failure == gate.Finding(
        "error-rate", Reason.ERROR_RATE_EXCEEDED,
        "error rate 0.0200 > maxErrorRate 0.01 (2 failed of 100 inferences)", None, "line")
    assert (v.health.ready, v.health.errors, v.health.error_rate) == (True, 2, 0.02)
    world.figures["line"] = Counters()  # no inferences: no rate to judge
    assert gate.judge(world.cycle, _spec(max_error_rate=0.0)).failure is None


def test_a_p95_above_its_budget_fails_the_latency_gate(world: World) -> None:
    world.figures["line"] = Counters(inferences=10, p95=(0.05, 0.025, 0.05), timed=10)
    v = gate.judge(world.cycle, _spec(max_latency_p95_seconds=0.04))
    assert v.failure is not None
    assert (v.failure.gate, v.failure.reason, v.failure.deployment) == ("latency-p95", Reason.LATENCY_EXCEEDED, "line")
    assert v.failure.figure == gate.latency_over_budget(0.04, Counters(p95=(0.05, 0.025, 0.05), timed=10))
    assert v.health.ready
    assert gate.judge(world.cycle, _spec(max_latency_p95_seconds=0.05)).failure is None


def test_the_gate_needs_a_runner_control(world: World) -> None:
    world.cycle.runners = None
    with pytest.raises(MissingContext):
        gate.judge(world.cycle, _spec())


# --- the steps ---------------------------------------------------------------------------------------


def _staged(w: World, name: str = "r2", generation: int = 7) -> Path:
    rel = _release(w, name)
    w.cycle.release, w.cycle.release_id = rel, "rid-2"
    w.cycle.desired = DesiredState("dev-1", generation, NOW + timedelta(days=1), ())
    return rel


def test_a_healthy_release_passes_its_gate(world: World) -> None:
    rel = _staged(world)
    world.specs["r2"] = [_spec("b", 9101), _spec("a", 9100)]
    world.cycle.degraded = (Reason.SOURCE_UNAVAILABLE, "old")
    assert gate.gate_runners(world.cycle) is None
    assert world.runners.restarts == [["b", "a"]]
    assert sorted(world.cycle.runner_health) == ["a", "b"] and world.cycle.runner_health["a"].ready
    assert world.cycle.degraded is None  # nothing kept: no longer Degraded
    assert world.cycle.mem.quarantine == {}
    assert _events(world) == [("runners-started", {"release": rel.name, "runners": ["b:9101", "a:9100"]})]


def test_a_release_whose_sources_are_down_is_kept_degraded(world: World) -> None:
    _staged(world)
    world.specs["r2"] = [_spec("a", 9100), _spec("b", 9101), _spec("c", 9102)]
    _for(world, "a", lambda t: DOWN)
    _for(world, "c", lambda t: STALE)
    assert gate.gate_runners(world.cycle) is None
    assert world.cycle.degraded == (
        Reason.SOURCE_UNAVAILABLE,
        "a: runner-ready gate: source plc is not connected (live; waited 3.0 s): the release is kept; "
        "c: runner-ready gate: source plc is stale (live; waited 3.0 s): the release is kept",
    )
    events = _events(world)
    assert [e for e, _ in events] == ["runners-started", "runner-degraded", "runner-degraded"]
    assert events[1][1]["deployment"] == "a" and events[2][1]["deployment"] == "c"
    assert events[1][1]["reason"] == "SourceUnavailable" and events[1][1]["source"] == "plc"
    assert world.cycle.fields["runnerGate"]["deployment"] == "a"
    assert world.cycle.mem.quarantine == {}


def test_runners_that_cannot_start_fail_the_gate_without_a_judgement(world: World) -> None:
    rel = _staged(world)
    world.runners.fail = RunnerError("systemctl restart: nope")
    world.cycle.current = None
    out = gate.gate_runners(world.cycle)
    assert out is not None and (out.result, out.reason) == (Result.REJECTED, Reason.RUNNER_START_FAILED)
    assert out.message == "runner-start gate: systemctl restart: nope; no earlier release to return to"
    assert world.probes == [] and world.runners.restarts == [[]]  # then stopped
    assert world.cycle.mem.quarantine == {"rid-2": 7}
    assert world.cycle.fields["runnerGate"]["gate"] == "runner-start"
    assert [e for e, _ in _events(world)] == ["runner-gate-failed"]
    assert _events(world)[0][1]["release"] == rel.name


@pytest.mark.parametrize("exc", [OSError("unit dir read-only"), RunnerError("x")])
def test_a_start_failing_with_an_os_error_is_a_start_failure(world: World, exc: Exception) -> None:
    _staged(world)
    world.runners.fail = exc
    verdicts, failure = gate._start(world.cycle, world.cycle.release)  # type: ignore[arg-type]
    assert verdicts == [] and failure == gate.Finding("runner-start", Reason.RUNNER_START_FAILED, str(exc))


@pytest.mark.parametrize("exc", [OSError("gone"), TreeError("model.onnx", "a link"), ValueError("bad json"),
                                 KeyError("digest"), TypeError("not a list")])
def test_unreadable_runner_specs_are_a_runner_error_naming_the_release(world: World, exc: Exception) -> None:
    rel = _staged(world)
    world.specs["r2"] = exc
    with pytest.raises(RunnerError) as info:
        gate._specs(world.cycle, rel)
    assert str(info.value) == f"cannot read the runners of r2: {exc}"
    assert info.value.__suppress_context__


def test_a_failed_gate_quarantines_and_rolls_back_to_the_live_release(world: World) -> None:
    old = _release(world, "r1")
    rel = _staged(world)
    world.cycle.current = old
    world.cycle.mem.pending_health = "r2"
    world.specs["r2"] = [_spec("a", 9100)]
    world.specs["r1"] = [_spec("b", 9200)]
    world.figures["a"] = Counters(inferences=1, errors=9)
    out = gate.gate_runners(world.cycle)
    assert out is not None and (out.result, out.reason) == (Result.ROLLED_BACK, Reason.ROLLED_BACK)
    assert out.message.startswith("r2 failed its runner gate (a: error-rate gate: error rate 0.9000 > maxErrorRate")
    assert out.message.endswith("; back on r1: its runner is healthy again")
    assert current_release(world.cycle.state) == old.resolve()
    assert world.runners.restarts == [["a"], ["b"]]
    assert world.cycle.mem.quarantine == {"rid-2": 7} and world.cycle.mem.pending_health is None
    assert world.cycle.fields["runnerGate"]["gate"] == "error-rate"
    events = _events(world)
    assert [e for e, _ in events] == ["runners-started", "runner-gate-failed", "runners-started", "runner-restored",
                                      "rolled-back"]
    assert events[1][1]["release"] == rel.name and events[1][1]["reason"] == "ErrorRateExceeded"
    assert events[3][1] == {"release": "r1", "runners": ["b"]}
    assert events[4][1]["failed"] == "r2" and events[4][1]["to"] == "r1"
    assert events[4][1]["restored"] == "its runner is healthy again"


def test_a_rollback_to_a_runner_waiting_for_the_plant_says_so(world: World) -> None:
    old = _release(world, "r1")
    _staged(world)
    world.cycle.current = old
    world.specs["r2"] = [_spec("a", 9100)]
    world.specs["r1"] = [_spec("b", 9200)]
    _for(world, "a", lambda t: REFUSED)
    _for(world, "b", lambda t: DOWN)
    out = gate.gate_runners(world.cycle)
    assert out is not None and out.result is Result.ROLLED_BACK
    assert out.message.endswith(
        "back on r1: its runner is healthy again, waiting for the plant (b: runner-ready gate: source plc is not "
        "connected (live; waited 3.0 s): the release is kept)")
    assert world.cycle.degraded is not None and world.cycle.degraded[0] is Reason.SOURCE_UNAVAILABLE


def test_a_restored_runner_that_is_not_healthy_stalls(world: World) -> None:
    old = _release(world, "r1")
    _staged(world)
    world.cycle.current = old
    world.specs["r2"] = [_spec("a", 9100)]
    world.specs["r1"] = [_spec("b", 9200)]
    _for(world, "a", lambda t: REFUSED)
    world.runners.deaths["b"] = (0.0, "exit 4")
    out = gate.gate_runners(world.cycle)
    assert out is not None and (out.result, out.reason) == (Result.REJECTED, Reason.RESTORE_UNHEALTHY)
    assert out.message.endswith("back on r1: its runner is not healthy either (b: runner-live gate: the runner "
                                "died: exit 4)")
    events = _events(world)
    assert [e for e, _ in events][-2:] == ["restore-failed", "rolled-back"]
    assert events[-2][1]["release"] == "r1" and events[-2][1]["gate"] == "runner-live"


def test_a_resumed_release_rolls_back_to_the_last_known_good(world: World) -> None:
    _release(world, "r0")
    live = _release(world, "r1")
    _staged(world)
    world.cycle.current, world.cycle.resumed = live, True
    world.cycle.mem.last_known_good = "r0"
    world.specs["r2"] = [_spec("a", 9100)]
    _for(world, "a", lambda t: REFUSED)
    out = gate.gate_runners(world.cycle)
    assert out is not None and out.result is Result.ROLLED_BACK and "back on r0" in out.message
    assert current_release(world.cycle.state) == (world.cycle.state / "releases" / "r0").resolve()


@pytest.mark.parametrize("case", ["none", "missing", "itself"])
def test_without_an_earlier_release_the_runners_stop_and_the_release_is_rejected(world: World, case: str) -> None:
    rel = _staged(world)
    world.specs["r2"] = [_spec("a", 9100)]
    _for(world, "a", lambda t: REFUSED)
    if case == "missing":
        world.cycle.mem.last_known_good = "r0"  # not on disk
    elif case == "itself":
        world.cycle.current = rel
    out = gate.gate_runners(world.cycle)
    assert out is not None and (out.result, out.reason) == (Result.REJECTED, Reason.SOURCE_REFUSED)
    assert out.message.endswith("; no earlier release to return to")
    assert world.runners.restarts == [["a"], []]
    assert not (world.cycle.state / "current").exists()


def test_restoring_without_runner_control_is_nothing_to_check(world: World) -> None:
    world.cycle.runners = None
    assert gate.restore_runners(world.cycle, _release(world, "r1")) == (True, "")
    world.cycle.current = world.cycle.state / "releases" / "r1"
    _staged(world)
    world.specs["r2"] = [_spec("a", 9100), _spec("b", 9100)]  # would conflict, were there runners
    assert gate.gate_runners(world.cycle) is None
    assert gate.observe_runners(world.cycle) is None and gate.check_ports(world.cycle) is None
    assert _events(world) == [] and world.probes == [] and world.cycle.degraded is None
    assert world.cycle.mem.quarantine == {}


def test_ports_taken_twice_reject_the_staged_release(world: World) -> None:
    _staged(world)
    world.specs["r2"] = [_spec("a", 9100), _spec("b", 9100)]
    out = gate.check_ports(world.cycle)
    assert out is not None and (out.result, out.reason) == (Result.REJECTED, Reason.PORT_CONFLICT)
    assert out.message == "new release not activated: deployments a and b both use port 9100"
    assert world.cycle.mem.quarantine == {"rid-2": 7}
    assert _events(world) == [("stage-failed", {"reason": "PortConflict",
                                                "message": "deployments a and b both use port 9100"})]


def test_unreadable_specs_reject_the_staged_release_too(world: World) -> None:
    _staged(world)
    world.specs["r2"] = KeyError("digest")
    out = gate.check_ports(world.cycle)
    assert out is not None and out.message == "new release not activated: cannot read the runners of r2: 'digest'"


def test_distinct_ports_a_resumed_release_or_none_staged_pass(world: World) -> None:
    assert gate.check_ports(world.cycle) is None  # nothing staged
    _staged(world)
    world.specs["r2"] = [_spec("a", 9100), _spec("b", 9101)]
    assert gate.check_ports(world.cycle) is None
    world.specs["r2"] = [_spec("a", 9100), _spec("b", 9100)]
    world.cycle.resumed = True
    assert gate.check_ports(world.cycle) is None
    assert world.cycle.mem.quarantine == {}


# --- observe_runners -----------------------------------------------------------------------------------


def test_observing_the_live_release_ensures_its_runners_and_records_their_health(world: World) -> None:
    world.cycle.current = _release(world, "r1")
    world.specs["r1"] = [_spec("a", 9100), _spec("b", 9101)]
    world.figures["b"] = ValueError("unreadable")
    assert gate.observe_runners(world.cycle) is None
    assert world.runners.ensured == [["a", "b"]] and world.runners.restarts == []
    assert world.cycle.degraded is None
    h = world.cycle.runner_health
    assert h["a"].ready and h["a"].inferences == 99 and h["b"].ready and h["b"].inferences == 0
    assert world.clock.sleeps == []


def test_observing_nothing_live_does_nothing(world: World) -> None:
    assert gate.observe_runners(world.cycle) is None
    assert world.runners.ensured == []


@pytest.mark.parametrize("exc", [RunnerError("unit bad"), OSError("read-only")])
def test_runners_that_cannot_be_ensured_degrade_the_device(world: World, exc: Exception) -> None:
    world.cycle.current = _release(world, "r1")
    world.runners.fail = exc
    assert gate.observe_runners(world.cycle) is None
    assert world.cycle.degraded == (Reason.RUNNER_START_FAILED, str(exc))


def test_unreadable_live_specs_degrade_the_device(world: World) -> None:
    world.cycle.current = _release(world, "r1")
    world.specs["r1"] = ValueError("bad")
    gate.observe_runners(world.cycle)
    assert world.cycle.degraded == (Reason.RUNNER_START_FAILED, "cannot read the runners of r1: bad")


def _observe(world: World, probes: dict[str, Probe], deaths: dict[str, str] | None = None) -> tuple[Reason, str]:
    world.cycle.current = _release(world, "r1")
    world.specs["r1"] = [_spec(d, 9100 + i) for i, d in enumerate(sorted(probes))]
    for d, p in probes.items():
        _for(world, d, lambda t, p=p: p)
    for d, why in (deaths or {}).items():
        world.runners.deaths[d] = (0.0, why)
    gate.observe_runners(world.cycle)
    assert world.cycle.degraded is not None
    return world.cycle.degraded


def test_a_dead_runner_outranks_every_other_reason(world: World) -> None:
    reason, text = _observe(world, {"a": SILENT, "b": REFUSED, "c": DOWN, "d": READY}, {"d": "exit 1"})
    assert reason is Reason.RUNNER_CRASHED
    assert text == ("a: no answer on port 9100 (refused); b: source mqtt refused by its server: topic x: denied; "
                    "c: source plc is not connected; d: runner died: exit 1")
    assert world.cycle.runner_health["d"].live is False


def test_a_refused_source_outranks_the_plant_and_silence(world: World) -> None:
    assert _observe(world, {"a": SILENT, "b": DOWN, "c": REFUSED})[0] is Reason.SOURCE_REFUSED


def test_the_plant_outranks_a_silent_runner(world: World) -> None:
    assert _observe(world, {"a": SILENT, "b": STALE})[0] is Reason.SOURCE_UNAVAILABLE


def test_a_silent_runner_is_not_ready(world: World) -> None:
    assert _observe(world, {"a": SILENT, "b": READY}) == (Reason.RUNNER_NOT_READY,
                                                         "a: no answer on port 9100 (refused)")


def test_a_dead_runner_with_a_down_source_is_crashed_not_the_plant(world: World) -> None:
    assert _observe(world, {"a": DOWN}, {"a": "exit 2"})[0] is Reason.RUNNER_CRASHED


def test_counters_are_read_only_from_a_live_runner(world: World) -> None:
    world.figures["a"] = ValueError("must not be read")
    world.figures["b"] = RuntimeError("must not be read")
    _observe(world, {"a": SILENT, "b": SILENT})
    assert world.cycle.runner_health["a"].inferences == 0


def test_findings_and_verdicts_are_frozen_values() -> None:
    f = gate.Finding("runner-live", Reason.RUNNER_CRASHED, "died")
    v = gate.Verdict(health_of_nothing(), failure=f)
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.figure = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.failure = None  # type: ignore[misc]
    assert hash(f) == hash(gate.Finding("runner-live", Reason.RUNNER_CRASHED, "died"))


def health_of_nothing() -> RunnerHealth:
    return RunnerHealth("line", "d" * 64, False)


# The boundaries, on a poll of 0.25 s: every time the gate computes is exact in binary, so `>=` and `>` differ.


def test_the_plant_grace_ends_exactly_at_its_length(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gate, "POLL", 0.25)
    world.clock.t = 0.0
    world.cycle.cfg = AgentConfig("r", "b", "d", world.cycle.state, (), runner_host="10.9.8.7", plant_grace=1.0)
    world.runners.deaths.clear()
    _for(world, "line", lambda t: DOWN)
    v = gate.judge(world.cycle, _spec(window_seconds=10))
    assert v.degraded is not None and "(live; waited 1.0 s)" in v.degraded.figure
    assert len(world.probes) == 5  # at 0, 0.25, 0.5, 0.75 and 1.0 s


def test_the_window_ends_exactly_at_its_length(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gate, "POLL", 0.25)
    world.clock.t = 0.0
    _for(world, "line", lambda t: SILENT)
    v = gate.judge(world.cycle, _spec(window_seconds=1))
    assert v.failure is not None and v.failure.reason is Reason.RUNNER_NOT_READY
    assert len(world.probes) == 5
