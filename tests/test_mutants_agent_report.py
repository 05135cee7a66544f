"""agent/report.py on its own: what a report says (conditions, runners, bundles, quarantine), when one is due,
how the sequence is kept, and what a failing transport leaves behind. The transports are replaced by
recorders here (their own modules have their own guards); the agent tests reach this step only through whole
cycles against a Git server, too slow to run once per mutant."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import agent.report as report
from agent.config import AgentConfig
from agent.cycle import Cycle, Outcome
from agent.devicekey import DEVICE_KEY, keygen
from agent.reasons import Reason, Result
from agent.report import REPORT_STATE, ReportMemory, build_report, conditions, report_step, runners
from agent.report_git import ReportPushError
from agent.report_mqtt import ReportMqttError
from agent.status import STATUS, Memory
from compiler.bundle import BundleRef
from compiler.bundle.report import Condition, RunnerHealth, load_device_public_key, open_envelope, runner_to_json

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
D1, D2, D3 = "a" * 64, "b" * 64, "c" * 64


def _cfg(tmp_path: Path, **kw: Any) -> AgentConfig:
    base: dict[str, Any] = {"report_git": False, "report_mqtt": None}
    return AgentConfig("file:///nowhere", "deploy", "dev-1", tmp_path, (), **{**base, **kw})


def _cycle(tmp_path: Path, now: datetime = NOW, outcome: Outcome | None = None, **kw: Any) -> Cycle:
    c = Cycle(_cfg(tmp_path, **kw), tmp_path, now, Memory())
    c.outcome = outcome or Outcome(Result.APPLIED, Reason.APPLIED, "ok")
    return c


def _health(name: str, ready: bool = True) -> RunnerHealth:
    return RunnerHealth(deployment=name, bundle=D1, ready=ready, reason="" if ready else "warming up")


def _release(state: Path, meta: Any) -> None:
    rel = state / "releases" / "r1"
    rel.mkdir(parents=True)
    (rel / "release.json").write_text(json.dumps(meta))
    os.symlink("releases/r1", state / "current")


class Recorder:
    """Stands in for the transports: records each call, or fails like the real one."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, git_fails: bool = False, mqtt_fails: bool = False) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

        def commit(*a: Any) -> str:
            self.calls.append(("commit", a))
            return "c0ffee"

        def push(*a: Any) -> None:
            self.calls.append(("push", a))
            if git_fails:
                raise ReportPushError("remote said no")

        def publish(*a: Any) -> None:
            self.calls.append(("publish", a))
            if mqtt_fails:
                raise ReportMqttError("broker away")

        monkeypatch.setattr(report, "commit_report", commit)
        monkeypatch.setattr(report, "push_report", push)
        monkeypatch.setattr(report, "publish_report", publish)


# --- the memory -------------------------------------------------------------------------------------------------


def test_the_memory_round_trips_every_field(tmp_path: Path) -> None:
    ReportMemory(7, NOW.isoformat(), "f" * 64, ("git", "mqtt")).save(tmp_path)
    assert ReportMemory.load(tmp_path) == ReportMemory(7, NOW.isoformat(), "f" * 64, ("git", "mqtt"))
    doc = json.loads((tmp_path / REPORT_STATE).read_text())
    assert doc == {"sequence": 7, "sentAt": NOW.isoformat(), "fingerprint": "f" * 64, "owed": ["git", "mqtt"]}


def test_a_memory_with_only_a_sequence_defaults_the_rest(tmp_path: Path) -> None:
    (tmp_path / REPORT_STATE).write_text('{"sequence": 4}')
    assert ReportMemory.load(tmp_path) == ReportMemory(4, None, None, ())


@pytest.mark.parametrize("text", ["", "{", "[]", '{"sentAt": "x"}', '{"sequence": "four"}', '{"sequence": null}'])
def test_an_unreadable_memory_starts_from_nothing(tmp_path: Path, text: str) -> None:
    (tmp_path / REPORT_STATE).write_text(text)
    assert ReportMemory.load(tmp_path) == ReportMemory()
    assert ReportMemory() == ReportMemory(0, None, None, ())


def test_a_missing_memory_starts_from_nothing(tmp_path: Path) -> None:
    assert ReportMemory.load(tmp_path) == ReportMemory(0, None, None, ())


# --- conditions -------------------------------------------------------------------------------------------------


def test_a_ready_outcome_reads_ready_not_stalled_not_degraded() -> None:
    got = conditions(Outcome(Result.UNCHANGED, Reason.UP_TO_DATE, "same"))
    assert got == (
        Condition("Ready", True, "Applied", "same"),
        Condition("Stalled", False, "Progressing", ""),
        Condition("Degraded", False, "Healthy", ""),
    )


def test_a_refusal_reads_stalled_and_degraded_with_its_reason_and_message() -> None:
    got = conditions(Outcome(Result.REFUSED, Reason.SIGNATURE_INVALID, "bad sig"))
    assert got == (
        Condition("Ready", False, "SignatureInvalid", "bad sig"),
        Condition("Stalled", True, "SignatureInvalid", "bad sig"),
        Condition("Degraded", True, "SignatureInvalid", "bad sig"),
    )


def test_a_fetch_failure_is_degraded_but_not_stalled() -> None:
    got = conditions(Outcome(Result.FETCH_FAILED, Reason.FETCH_FAILED, "no route"))
    assert got == (
        Condition("Ready", False, "FetchFailed", "no route"),
        Condition("Stalled", False, "Progressing", ""),
        Condition("Degraded", True, "FetchFailed", "no route"),
    )


# --- runners ----------------------------------------------------------------------------------------------------


def test_the_runners_this_cycle_observed_come_first(tmp_path: Path) -> None:
    c = _cycle(tmp_path)
    c.runner_health = {"a": _health("a"), "b": _health("b", ready=False)}
    c.fields["runners"] = [runner_to_json(_health("stale"))]
    assert runners(c) == (_health("a"), _health("b", ready=False))


def test_without_observations_the_cycle_fields_count_and_bad_items_are_skipped(tmp_path: Path) -> None:
    c = _cycle(tmp_path)
    c.fields["runners"] = [runner_to_json(_health("x")), {"deployment": "broken"}, "junk", _health("y")]
    assert runners(c) == (_health("x"), _health("y"))


def test_an_empty_field_list_means_none_rather_than_the_last_status(tmp_path: Path) -> None:
    (tmp_path / STATUS).write_text(json.dumps({"runners": [runner_to_json(_health("old"))]}))
    c = _cycle(tmp_path)
    c.fields["runners"] = []
    assert runners(c) == ()


def test_else_the_last_status_counts(tmp_path: Path) -> None:
    (tmp_path / STATUS).write_text(json.dumps({"runners": [runner_to_json(_health("old"))]}))
    assert runners(_cycle(tmp_path)) == (_health("old"),)


@pytest.mark.parametrize("text", [None, "{", "[1, 2]", '{"runners": {"a": 1}}'])
def test_no_status_or_an_unusable_one_means_no_runners(tmp_path: Path, text: str | None) -> None:
    if text is not None:
        (tmp_path / STATUS).write_text(text)
    assert runners(_cycle(tmp_path)) == ()


def test_at_most_256_runners_are_reported(tmp_path: Path) -> None:
    c = _cycle(tmp_path)
    c.runner_health = {f"d{i}": _health(f"d{i}") for i in range(300)}
    got = runners(c)
    assert len(got) == 256 and got[0] == _health("d0") and got[-1] == _health("d255")
    c.runner_health = {f"d{i}": _health(f"d{i}") for i in range(256)}
    assert len(runners(c)) == 256


# --- the report -------------------------------------------------------------------------------------------------


def test_the_report_names_the_release_s_generation_and_its_well_formed_bundles(tmp_path: Path) -> None:
    bundles = [{"name": "m", "digest": D1}, {"name": "short", "digest": "a" * 63}, {"name": "long", "digest": "a" * 65},
               {"name": "num", "digest": 5}, "junk", {"name": "n", "digest": D2}]  # fmt: skip
    _release(tmp_path, {"generation": 3, "bundles": bundles})
    c = _cycle(tmp_path)
    c.fields["desiredGeneration"] = 4
    c.mem.quarantine = {D3: 2, D1: 1, "short": 1}
    r = build_report(c, c.outcome, 9)  # type: ignore[arg-type]
    assert (r.device, r.sequence, r.time) == ("dev-1", 9, NOW)
    assert (r.desired_generation, r.applied_generation) == (4, 3)
    assert r.bundles == (BundleRef("m", D1), BundleRef("n", D2))
    assert r.quarantined == (D1, D3)
    assert r.conditions == conditions(c.outcome)  # type: ignore[arg-type]


def test_a_generation_that_is_not_an_integer_is_not_reported(tmp_path: Path) -> None:
    _release(tmp_path, {"generation": "3", "bundles": []})
    c = _cycle(tmp_path)
    r = build_report(c, c.outcome, 1)  # type: ignore[arg-type]
    assert (r.desired_generation, r.applied_generation, r.bundles) == (None, None, ())


def test_the_verified_desired_state_s_generation_wins(tmp_path: Path) -> None:
    class Desired:
        generation = 11

    c = _cycle(tmp_path)
    c.fields["desiredGeneration"] = 4
    c.desired = Desired()  # type: ignore[assignment]
    assert build_report(c, c.outcome, 1).desired_generation == 11  # type: ignore[arg-type]


def test_the_fingerprint_ignores_sequence_and_time_only(tmp_path: Path) -> None:
    c = _cycle(tmp_path)
    r = build_report(c, c.outcome, 1)  # type: ignore[arg-type]
    fp = report._fingerprint(r)
    assert fp == report._fingerprint(r.next(NOW + timedelta(hours=1)))
    assert fp != report._fingerprint(r.next(NOW, applied_generation=2))
    assert len(fp) == 64 and int(fp, 16) >= 0


# --- when a report is due ---------------------------------------------------------------------------------------


def test_due_when_owed_changed_never_sent_or_unreadable_and_at_the_interval() -> None:
    sent = ReportMemory(3, NOW.isoformat(), "fp", ())
    assert report._due(sent, "fp", NOW + timedelta(seconds=299), 300) is False
    assert report._due(sent, "fp", NOW + timedelta(seconds=300), 300) is True
    assert report._due(sent, "fp", NOW + timedelta(seconds=301), 300) is True
    assert report._due(sent, "other", NOW, 300) is True
    assert report._due(ReportMemory(3, NOW.isoformat(), "fp", ("mqtt",)), "fp", NOW, 300) is True
    assert report._due(ReportMemory(3, None, "fp", ()), "fp", NOW, 300) is True
    assert report._due(ReportMemory(3, "yesterday", "fp", ()), "fp", NOW, 300) is True


# --- the step ---------------------------------------------------------------------------------------------------


def test_without_a_transport_nothing_is_read_or_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(monkeypatch)
    c = _cycle(tmp_path, report_git=False, report_mqtt=None)
    assert report_step(c) is None
    assert c.fields == {} and rec.calls == [] and not (tmp_path / REPORT_STATE).exists()


def test_without_a_key_the_status_says_why_and_nothing_is_sent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(monkeypatch)
    c = _cycle(tmp_path, report_git=True)
    assert report_step(c) is None
    assert c.fields["report"]["enabled"] is False and DEVICE_KEY in c.fields["report"]["reason"]
    assert rec.calls == [] and not (tmp_path / REPORT_STATE).exists()


def test_a_configured_key_path_is_used_rather_than_the_state_s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Recorder(monkeypatch)
    keys = tmp_path / "keys"
    keygen(keys)
    c = _cycle(tmp_path, report_git=True, report_key=keys / DEVICE_KEY)
    report_step(c)
    assert c.fields["report"]["sent"] is True


def test_a_git_report_is_signed_committed_then_pushed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(monkeypatch)
    pub = load_device_public_key(keygen(tmp_path))
    c = _cycle(tmp_path, report_git=True, git_timeout=45.0)
    assert report_step(c) is None
    assert [name for name, _ in rec.calls] == ["commit", "push"]
    (state, device, envelope, sequence, when), push = rec.calls[0][1], rec.calls[1][1]
    assert (state, device, sequence, when) == (tmp_path, "dev-1", 1, NOW)
    assert push == (tmp_path, "file:///nowhere", "dev-1", 45.0)
    got = open_envelope(envelope, {"dev-1": pub}, "dev-1")
    assert got == build_report(c, c.outcome, 1)  # type: ignore[arg-type]
    assert c.fields["report"] == {"enabled": True, "sequence": 1, "sentAt": NOW.isoformat(), "sent": True,
                                  "git": "pushed"}  # fmt: skip
    mem = ReportMemory.load(tmp_path)
    assert (mem.sequence, mem.sent_at, mem.owed) == (1, NOW.isoformat(), ())
    assert mem.fingerprint == report._fingerprint(got)


def test_an_mqtt_report_goes_with_a_bounded_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(monkeypatch)
    pub = load_device_public_key(keygen(tmp_path))
    c = _cycle(tmp_path, report_git=False, report_mqtt="mqtt://broker:1883", git_timeout=120.0)
    report_step(c)
    assert [name for name, _ in rec.calls] == ["publish"]
    url, device, envelope, timeout = rec.calls[0][1]
    assert (url, device, timeout) == ("mqtt://broker:1883", "dev-1", 30.0)
    assert open_envelope(envelope, {"dev-1": pub}, "dev-1").sequence == 1
    assert c.fields["report"]["mqtt"] == "published" and "git" not in c.fields["report"]
    c2 = _cycle(tmp_path, now=NOW + timedelta(hours=1), report_mqtt="mqtt://broker:1883", git_timeout=5.0)
    report_step(c2)
    assert rec.calls[-1][1][3] == 5.0


def test_the_sequence_is_saved_before_sealing_and_only_grows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(monkeypatch)
    keygen(tmp_path)
    seen: list[int] = []
    real_seal = report.seal

    def seal(probe: Any, key: Any) -> bytes:
        seen.append(ReportMemory.load(tmp_path).sequence)
        return real_seal(probe, key)

    monkeypatch.setattr(report, "seal", seal)
    (tmp_path / REPORT_STATE).write_text(json.dumps({"sequence": 41, "sentAt": None, "owed": []}))
    c = _cycle(tmp_path, report_git=True)
    report_step(c)
    assert seen == [42] and rec.calls[0][1][3] == 42 and c.fields["report"]["sequence"] == 42
    assert ReportMemory.load(tmp_path).sequence == 42


def test_a_report_sent_is_not_resent_until_the_interval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(monkeypatch)
    keygen(tmp_path)
    report_step(_cycle(tmp_path, report_git=True))
    quiet = _cycle(tmp_path, now=NOW + timedelta(seconds=60), report_git=True, report_interval=120.0)
    assert report_step(quiet) is None
    assert quiet.fields["report"] == {"enabled": True, "sequence": 1, "sentAt": NOW.isoformat(), "sent": False}
    assert len(rec.calls) == 2
    later = _cycle(tmp_path, now=NOW + timedelta(seconds=120), report_git=True, report_interval=120.0)
    report_step(later)
    assert later.fields["report"]["sequence"] == 2 and len(rec.calls) == 4


def test_a_change_is_sent_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Recorder(monkeypatch)
    keygen(tmp_path)
    report_step(_cycle(tmp_path, report_git=True))
    failed = Outcome(Result.ROLLED_BACK, Reason.APPLIED, "health gate failed")
    c = _cycle(tmp_path, now=NOW + timedelta(seconds=1), outcome=failed, report_git=True)
    report_step(c)
    assert c.fields["report"]["sequence"] == 2 and c.fields["report"]["sent"] is True


def test_a_failed_push_is_owed_and_the_next_cycle_sends_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Recorder(monkeypatch, git_fails=True)
    keygen(tmp_path)
    c = _cycle(tmp_path, report_git=True, report_mqtt="mqtt://broker")
    assert report_step(c) is None
    assert c.fields["report"]["git"] == "not pushed: remote said no"
    assert c.fields["report"]["mqtt"] == "published"
    assert ReportMemory.load(tmp_path).owed == ("git",)
    rec = Recorder(monkeypatch)
    again = _cycle(tmp_path, now=NOW + timedelta(seconds=1), report_git=True, report_mqtt="mqtt://broker")
    report_step(again)
    assert again.fields["report"]["sequence"] == 2 and [n for n, _ in rec.calls] == ["commit", "push", "publish"]
    assert ReportMemory.load(tmp_path).owed == ()


def test_both_transports_failing_are_both_owed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Recorder(monkeypatch, git_fails=True, mqtt_fails=True)
    keygen(tmp_path)
    c = _cycle(tmp_path, report_git=True, report_mqtt="mqtt://broker")
    report_step(c)
    assert c.fields["report"]["mqtt"] == "not published: broker away"
    assert ReportMemory.load(tmp_path).owed == ("git", "mqtt")


def test_a_kill_between_saving_and_sending_leaves_both_owed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Recorder(monkeypatch)
    keygen(tmp_path)

    def killed(*a: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "commit_report", killed)
    with pytest.raises(KeyboardInterrupt):
        report_step(_cycle(tmp_path, report_git=True, report_mqtt="mqtt://broker"))
    assert ReportMemory.load(tmp_path).owed == ("git", "mqtt")
