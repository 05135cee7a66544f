"""agent/reconcile.py with hand-made steps: the lock, and what every cycle writes whatever it decided
(status fields and conditions, the reconcile counter, memory, metrics). The agent tests reach these
only through whole cycles against a Git server, too slow to run once per mutant."""

from __future__ import annotations

import fcntl
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

import agent.reconcile
from agent.config import AgentConfig
from agent.cycle import Cycle, Outcome, Step
from agent.reasons import Reason, Result
from agent.reconcile import Reconciler
from agent.releases import RELEASES, activate
from agent.runners import Supervisor
from agent.status import Memory
from compiler.bundle.report import RunnerHealth
from tests.statekit import journal_events, read_status

NOW = datetime(2030, 1, 1, tzinfo=UTC)
RID = "ab" * 32


def _cfg(state: Path, **kw) -> AgentConfig:
    return AgentConfig("file:///nowhere", "deploy", "dev-1", state, (), clock=lambda: NOW, **kw)


def _decide(outcome: Outcome, **on_cycle) -> tuple[Step, ...]:
    def run(c: Cycle) -> Outcome:
        for k, v in on_cycle.items():
            setattr(c, k, v)
        return outcome

    return (Step("decide", run),)


def _conditions(state: Path) -> dict[str, tuple[str, str, str]]:
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in read_status(state)["conditions"]}


def test_a_second_agent_on_the_same_state_is_refused_and_touches_nothing(tmp_path: Path) -> None:
    state, ran = tmp_path / "state", []
    rec = Reconciler(_cfg(state), steps=(Step("x", lambda c: ran.append(1)),), runners=None)
    with (state / "agent.lock").open("a") as other:  # another open file: flock conflicts even in one process
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        out = rec.run_once()
    assert (out.result, out.reason, out.message) == (Result.REFUSED, Reason.LOCKED, f"another agent works on {state}")
    assert ran == [] and not (state / "status.json").exists()


def test_the_lock_is_released_after_a_cycle(tmp_path: Path) -> None:
    state = tmp_path / "state"
    rec = Reconciler(_cfg(state), steps=_decide(Outcome(Result.UNCHANGED, Reason.UP_TO_DATE, "running")), runners=None)
    assert rec.run_once().result is Result.UNCHANGED
    with (state / "agent.lock").open("a") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises BlockingIOError if the cycle kept it
    assert rec.run_once().result is Result.UNCHANGED


def test_a_cycle_cleans_staging_left_by_a_kill_before_its_steps_run(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / RELEASES / f".staging-{RID}.99").mkdir(parents=True)
    seen = []
    Reconciler(_cfg(state), steps=(Step("look", lambda c: seen.append(sorted(p.name for p in (state / RELEASES)
                                                                              .iterdir()))),), runners=None).run_once()
    assert seen == [[]]


def test_the_steps_see_the_live_release_the_clock_and_the_remembered_memory(tmp_path: Path) -> None:
    state = tmp_path / "state"
    live = state / RELEASES / f"{RID}.3"
    live.mkdir(parents=True)
    (live / "release.json").write_text(json.dumps({"generation": 4, "bundles": [{"name": "b", "digest": "d"}]}))
    activate(state, live)
    Memory(accepted_generation=4, last_known_good=live.name).save(state)
    seen = []

    def look(c: Cycle) -> Outcome:
        seen.append((c.current, c.now, c.mem.accepted_generation, dict(c.fields)))
        return Outcome(Result.UNCHANGED, Reason.UP_TO_DATE, "generation 4 is running")

    Reconciler(_cfg(state), steps=(Step("look", look),), runners=None).run_once()
    assert seen == [(live.resolve(), NOW, 4, {"device": "dev-1", "repo": "file:///nowhere", "branch": "deploy"})]
    status = read_status(state)
    assert (status["appliedGeneration"], status["appliedRelease"], status["appliedBundles"]) == (
        4, RID, [{"name": "b", "digest": "d"}]
    )
    assert (status["lastKnownGood"], status["acceptedGeneration"]) == (live.name, 4)
    assert status["result"] == "unchanged" and status["reason"] == "UpToDate" and status["lastError"] is None
    assert _conditions(state)["Ready"] == ("True", "Applied", "generation 4 is running")
    assert _conditions(state)["Degraded"] == ("False", "Healthy", "")


def test_every_cycle_counts_its_result_in_memory_and_metrics(tmp_path: Path) -> None:
    state = tmp_path / "state"
    metrics = tmp_path / "textfile" / "takt.prom"
    results = [Result.APPLIED, Result.REFUSED, Result.REFUSED]
    outcomes = iter(Outcome(r, Reason.APPLIED if r is Result.APPLIED else Reason.SIGNATURE_INVALID, str(r))
                    for r in results)
    rec = Reconciler(_cfg(state, metrics_file=metrics), steps=(Step("next", lambda c: next(outcomes)),), runners=None)
    for _ in results:
        rec.run_once()
    assert Memory.load(state).reconciles == {"applied": 1, "refused": 2}
    text = metrics.read_text()
    assert 'takt_agent_reconciles_total{result="applied"} 1' in text
    assert 'takt_agent_reconciles_total{result="refused"} 2' in text
    assert text == (state / "metrics.prom").read_text()


def test_a_refused_cycle_is_stalled_and_degraded_with_its_message_as_the_last_error(tmp_path: Path) -> None:
    state = tmp_path / "state"
    out = Outcome(Result.REFUSED, Reason.SIGNATURE_INVALID, "bad signature")
    Reconciler(_cfg(state), steps=_decide(out), runners=None).run_once()
    status = read_status(state)
    assert (status["result"], status["reason"], status["lastError"]) == ("refused", "SignatureInvalid", "bad signature")
    assert _conditions(state) == {
        "Ready": ("False", "SignatureInvalid", "bad signature"),
        "Reconciling": ("False", "SignatureInvalid", ""),
        "Stalled": ("True", "SignatureInvalid", "bad signature"),
        "Degraded": ("True", "SignatureInvalid", "bad signature"),
    }


def test_a_successful_cycle_on_a_degraded_plant_is_ready_and_degraded_by_the_plant(tmp_path: Path) -> None:
    state = tmp_path / "state"
    out = Outcome(Result.UNCHANGED, Reason.UP_TO_DATE, "running")
    Reconciler(_cfg(state), steps=_decide(out, degraded=(Reason.FETCH_FAILED, "sources down")), runners=None).run_once()
    conditions = _conditions(state)
    assert conditions["Ready"] == ("True", "Applied", "running")
    assert conditions["Degraded"] == ("True", "FetchFailed", "sources down")


def test_a_failed_cycle_keeps_its_own_reason_for_degraded_even_with_a_degraded_plant(tmp_path: Path) -> None:
    state = tmp_path / "state"
    out = Outcome(Result.FETCH_FAILED, Reason.FETCH_FAILED, "unreachable")
    Reconciler(_cfg(state), steps=_decide(out, degraded=(Reason.SIGNATURE_INVALID, "plant")), runners=None).run_once()
    assert _conditions(state)["Degraded"] == ("True", "FetchFailed", "unreachable")


def test_the_runners_are_in_the_status_only_when_the_agent_runs_runners(tmp_path: Path) -> None:
    b = RunnerHealth("b-line", "d1", ready=True, frames=3)
    a = RunnerHealth("a-press", "d2", ready=False, reason="source down")
    out = Outcome(Result.UNCHANGED, Reason.UP_TO_DATE, "running")
    bare = tmp_path / "bare"
    Reconciler(_cfg(bare), steps=_decide(out), runners=None).run_once()
    assert "runners" not in read_status(bare)
    run = tmp_path / "run"
    runners = Supervisor(("true",), run / "runners", "127.0.0.1", 1.0)
    Reconciler(_cfg(run), steps=_decide(out, runner_health={"b-line": b, "a-press": a}), runners=runners).run_once()
    assert read_status(run)["runners"] == [a.to_json(), b.to_json()]  # by deployment name


def test_the_runner_control_given_is_kept_and_none_means_the_one_the_config_asks_for(tmp_path: Path) -> None:
    given = Supervisor(("true",), tmp_path / "r", "127.0.0.1", 1.0)
    assert Reconciler(_cfg(tmp_path / "a"), runners=given).runners is given
    assert Reconciler(_cfg(tmp_path / "b"), runners=None).runners is None
    assert isinstance(Reconciler(_cfg(tmp_path / "c", supervise=True), runners=None).runners, Supervisor)


def test_the_total_time_of_a_cycle_is_in_its_timings_rounded_to_a_tenth_of_a_millisecond(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = [100.0, 100.0, 101.234567]  # the cycle's start, the (untimed) step's start, the end
    monkeypatch.setattr(agent.reconcile.time, "perf_counter", lambda: ticks.pop(0) if len(ticks) > 1 else ticks[0])
    state = tmp_path / "state"
    Reconciler(_cfg(state), steps=_decide(Outcome(Result.UNCHANGED, Reason.UP_TO_DATE, "")), runners=None).run_once()
    assert read_status(state)["timings"]["totalSeconds"] == pytest.approx(1.2346, abs=1e-9)


def test_the_state_directory_is_created_with_its_parents(tmp_path: Path) -> None:
    state = tmp_path / "var" / "lib" / "takt"
    Reconciler(_cfg(state), steps=_decide(Outcome(Result.UNCHANGED, Reason.UP_TO_DATE, "")), runners=None).run_once()
    assert read_status(state)["result"] == "unchanged"


def _accepting_step(seen: list[int]) -> tuple[Step, ...]:
    def accept(c: Cycle) -> Outcome:  # what the verify step does with a replayed generation 2 once memory says 0
        seen.append(c.mem.accepted_generation)
        c.mem.accepted_generation = 2
        return Outcome(Result.APPLIED, Reason.APPLIED, "generation 2 applied")

    return (Step("accept", accept),)


@pytest.mark.parametrize("damage", ["truncated", "empty", "not-an-object", "no-generation", "link"])
def test_threat_a_damaged_memory_accepts_nothing_and_is_left_for_an_operator(tmp_path: Path, damage: str) -> None:
    state = tmp_path / "state"
    Memory(accepted_generation=9).save(state)
    saved = (state / "agent.json").read_bytes()
    if damage == "link":
        Memory(accepted_generation=1).save(tmp_path / "old")
        (state / "agent.json").unlink()
        (state / "agent.json").symlink_to(tmp_path / "old" / "agent.json")
    else:
        damaged = {"truncated": saved[: len(saved) // 2], "empty": b"", "not-an-object": b"[9]",
                   "no-generation": b'{"good": []}'}[damage]
        (state / "agent.json").write_bytes(damaged)
    before = (state / "agent.json").read_bytes()
    seen: list[int] = []
    out = Reconciler(_cfg(state), steps=_accepting_step(seen), runners=None).run_once()
    assert seen == [] and (out.result, out.reason) == (Result.FAILED, Reason.INTERNAL_ERROR)
    assert "memory is unreadable" in out.message and "agent.json" in out.message
    assert (state / "agent.json").read_bytes() == before  # not overwritten with a fresh memory
    assert (state / "agent.json").is_symlink() is (damage == "link")
    status = read_status(state)
    assert (status["result"], status["reason"], status["acceptedGeneration"]) == ("failed", "InternalError", None)
    assert status["lastError"] == out.message
    (entry,) = journal_events(state)
    assert (entry["event"], entry["details"]["step"]) == ("internal-error", "memory")
    # once an operator restores it, cycles go on from the remembered generation
    (state / "agent.json").unlink()
    (state / "agent.json").write_bytes(saved)
    assert Reconciler(_cfg(state), steps=_accepting_step(seen), runners=None).run_once().result is Result.APPLIED
    assert seen == [9]


def test_a_state_directory_without_memory_starts_fresh_and_saves_it(tmp_path: Path) -> None:
    state, seen = tmp_path / "state", []
    assert Reconciler(_cfg(state), steps=_accepting_step(seen), runners=None).run_once().result is Result.APPLIED
    assert seen == [0] and Memory.load(state).accepted_generation == 2
