"""agent/cycle.py on its own, with hand-made steps: the order steps run in, where the first decision
stops them, what the `after` steps see and may replace, how a step's defect is located and journaled,
and how the steps of one phase add up their timings. The agent tests reach these only through whole
cycles against a Git server, too slow to run once per mutant."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

import agent.cycle
from agent.config import AgentConfig
from agent.cycle import Cycle, MissingContext, Outcome, Step, need, run_steps
from agent.reasons import Event, Reason, Result
from agent.status import Memory
from tests.statekit import journal_events

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def _cycle(tmp_path: Path) -> Cycle:
    cfg = AgentConfig("file:///nowhere", "deploy", "dev-1", tmp_path, ())
    return Cycle(cfg, tmp_path, NOW, Memory())


def test_need_returns_what_is_known_even_when_it_is_falsy_and_refuses_only_none() -> None:
    assert need(0, "zero") == 0
    assert need("", "empty") == ""
    assert need([], "nothing") == []
    with pytest.raises(MissingContext, match="the clone is not known yet"):
        need(None, "the clone")


def test_a_decided_outcome_cannot_be_changed_by_a_later_step() -> None:
    out = Outcome(Result.APPLIED, Reason.APPLIED, "ok")
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.result = Result.FAILED  # type: ignore[misc]
    assert out == Outcome(Result.APPLIED, Reason.APPLIED, "ok")
    assert {out: 1}[Outcome(Result.APPLIED, Reason.APPLIED, "ok")] == 1  # hashable by value


def test_a_step_of_the_shared_step_list_cannot_be_changed() -> None:
    step = Step("a", lambda cycle: None, "fetchSeconds")
    with pytest.raises(dataclasses.FrozenInstanceError):
        step.after = True  # type: ignore[misc]
    assert (step.timing, step.after) == ("fetchSeconds", False)


@pytest.mark.parametrize("result", list(Result))
def test_an_outcome_is_ready_exactly_when_its_result_is(result: Result) -> None:
    assert Outcome(result, Reason.APPLIED, "").ready is result.ready


def test_a_fresh_cycle_knows_nothing_a_step_provides(tmp_path: Path) -> None:
    c = _cycle(tmp_path)
    assert (c.head, c.workdir, c.commit, c.desired, c.key_id, c.release_id) == (None,) * 6
    assert (c.current, c.release, c.outcome, c.runners, c.degraded) == (None,) * 5
    assert c.resumed is False
    assert (c.timings, c.fields, c.manifests, c.runner_health) == ({}, {}, {}, {})


def test_steps_run_in_order_until_one_decides_then_every_after_step_sees_the_decision(tmp_path: Path) -> None:
    c, ran = _cycle(tmp_path), []
    decided = Outcome(Result.REFUSED, Reason.SIGNATURE_INVALID, "no")

    def step(name: str, outcome: Outcome | None = None):
        def run(cycle: Cycle) -> Outcome | None:
            ran.append((name, cycle.outcome))
            return outcome

        return run

    steps = [
        Step("a", step("a")),
        Step("report-1", step("report-1"), after=True),
        Step("b", step("b", decided)),
        Step("c", step("c", Outcome(Result.APPLIED, Reason.APPLIED, "never"))),
        Step("report-2", step("report-2"), after=True),
    ]
    assert run_steps(c, steps) == decided
    assert ran == [("a", None), ("b", None), ("report-1", decided), ("report-2", decided)]
    assert c.outcome == decided


def test_when_no_step_decides_the_cycle_fails_as_an_agent_defect(tmp_path: Path) -> None:
    c, seen = _cycle(tmp_path), []
    out = run_steps(c, [Step("a", lambda cycle: None), Step("r", lambda cycle: seen.append(cycle.outcome), after=True)])
    assert (out.result, out.reason, out.message) == (Result.FAILED, Reason.INTERNAL_ERROR, "no step decided the cycle")
    assert seen == [out]


def test_an_after_step_that_decides_replaces_the_outcome_for_the_next_after_step(tmp_path: Path) -> None:
    c, seen = _cycle(tmp_path), []
    first = Outcome(Result.APPLIED, Reason.APPLIED, "ok")
    second = Outcome(Result.FAILED, Reason.INTERNAL_ERROR, "report broke")
    out = run_steps(c, [
        Step("a", lambda cycle: first),
        Step("r1", lambda cycle: second, after=True),
        Step("r2", lambda cycle: seen.append(cycle.outcome), after=True),
    ])
    assert seen == [second]
    assert out == second == c.outcome


def _deep(n: int) -> None:
    raise ValueError(f"broken at depth {n}")


def test_a_step_that_raises_ends_the_cycle_journaled_at_the_line_that_raised(tmp_path: Path) -> None:
    c = _cycle(tmp_path)

    def broken(cycle: Cycle) -> Outcome | None:
        _deep(2)  # the defect is inside a helper: the journal names the helper's line, not this one
        return None

    later = []
    out = run_steps(c, [Step("broken", broken), Step("later", lambda cycle: later.append(1))])
    assert later == []
    message = "step broken failed: ValueError: broken at depth 2"
    assert (out.result, out.reason, out.message) == (Result.FAILED, Reason.INTERNAL_ERROR, message)
    [entry] = journal_events(tmp_path)
    assert entry["event"] == str(Event.INTERNAL_ERROR)
    line = _deep.__code__.co_firstlineno + 1
    assert entry["details"] == {"step": "broken", "error": message, "at": f"test_mutants_cycle.py:{line}"}


def test_a_failing_after_step_is_reported_like_any_other_defect(tmp_path: Path) -> None:
    c = _cycle(tmp_path)

    def report(cycle: Cycle) -> Outcome | None:
        raise OSError("disk full")

    out = run_steps(c, [Step("a", lambda cycle: Outcome(Result.APPLIED, Reason.APPLIED, "ok")),
                        Step("report", report, after=True)])
    assert (out.result, out.reason, out.message) == (
        Result.FAILED, Reason.INTERNAL_ERROR, "step report failed: OSError: disk full"
    )


def test_a_step_that_is_interrupted_is_not_swallowed(tmp_path: Path) -> None:
    def stop(cycle: Cycle) -> Outcome | None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_steps(_cycle(tmp_path), [Step("stop", stop)])


def test_steps_of_one_phase_add_up_their_time_rounded_to_a_tenth_of_a_millisecond(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = iter([10.0, 10.123456, 20.0, 30.0, 31.0])  # an untimed step reads the clock once
    monkeypatch.setattr(agent.cycle.time, "perf_counter", lambda: next(ticks))
    c = _cycle(tmp_path)
    run_steps(c, [
        Step("fetch-state", lambda cycle: None, "fetchSeconds"),
        Step("untimed", lambda cycle: None),
        Step("fetch-bundles", lambda cycle: Outcome(Result.APPLIED, Reason.APPLIED, ""), "fetchSeconds"),
    ])
    # 0.123456 → 0.1235 (from nothing: the first step of a phase starts at 0); then + 1.0 (the untimed
    # step is counted nowhere)
    assert list(c.timings) == ["fetchSeconds"]
    assert c.timings["fetchSeconds"] == pytest.approx(1.1235, abs=1e-9)
