"""The rollout decisions as pure functions: device choice, what publish assigns, how a gate judges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.layout import deployment_links
from compiler.bundle import BundleRef, DesiredState, ShadowOf
from compiler.bundle.report import RunnerHealth, ShadowHealth, StatusReport
from compiler.rollout.gate import Action, Verdict, decide
from compiler.rollout.plan import plan
from compiler.rollout.select import pick
from compiler.rollout.state import CanaryStep, Phase, RolloutSpec, RolloutState, ShadowStep, sealed, verified
from compiler.signing import keygen, load_private_key

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
OLD, NEW, OTHER = "a" * 64, "b" * 64, "c" * 64
DEP = "dep"
CANARY = RolloutSpec("canary", canary=CanaryStep(("d1",), 60.0, 0.01))
SHADOW = RolloutSpec("shadow", "canary", CanaryStep(("d2",), 60.0, 0.01), ShadowStep(("d1",), 60.0, 0.95, 0.1))


def _state(dev: str, gen: int, *refs: BundleRef) -> DesiredState:
    return DesiredState(dev, gen, T0 + timedelta(days=7), refs)


def _ref(digest: str, name: str = f"{DEP}/t") -> BundleRef:
    return BundleRef(name, digest)


def test_a_percentage_picks_the_same_devices_every_time_and_a_newcomer_moves_nobody():
    fleet = {f"dev-{i:03}": {} for i in range(200)}
    chosen = pick(DEP, fleet, percentage=10)
    assert len(chosen) == 20 and pick(DEP, dict(reversed(list(fleet.items()))), percentage=10) == chosen
    assert pick("another", fleet, percentage=10) != chosen  # deployments do not share their unlucky devices
    assert len(pick(DEP, {"only": {}}, percentage=1)) == 1  # at least one device


def test_plan_gives_the_new_bundle_to_canaries_only_and_keeps_the_record_on_a_second_publish():
    previous = {d: _state(d, 4, _ref(OLD), _ref(OTHER, "other/t")) for d in ("d1", "d2")}
    wanted = {d: (_ref(NEW), _ref(OTHER, "other/t")) for d in ("d1", "d2")}
    first = plan(wanted, {DEP: CANARY}, previous, {}, T0, "abc")
    assert first.started == [DEP]
    assert first.refs["d1"] == (_ref(NEW), _ref(OTHER, "other/t"))
    assert first.refs["d2"] == (_ref(OLD), _ref(OTHER, "other/t"))  # others keep their signed state
    second = plan(wanted, {DEP: CANARY}, previous, first.records, T0 + timedelta(hours=1), "abc")
    assert second.started == [] and second.records[DEP] == first.records[DEP] and second.refs == first.refs


def test_plan_rolls_a_new_deployment_out_at_once_and_starts_shadow_with_the_challenger_marked():
    wanted = {d: (_ref(NEW),) for d in ("d1", "d2")}
    assert plan(wanted, {DEP: CANARY}, {}, {}, T0, None).refs == wanted  # nothing ran before: nothing to protect
    previous = {d: _state(d, 2, _ref(OLD)) for d in ("d1", "d2")}
    shadow = plan(wanted, {DEP: SHADOW}, previous, {}, T0, None)
    assert shadow.refs["d1"] == (_ref(OLD), BundleRef(f"{DEP}/t", NEW, ShadowOf(0.1, 60.0)))  # with its window
    assert shadow.refs["d2"] == (_ref(OLD),)
    assert deployment_links(shadow.refs["d1"]) == {
        "deployments": {DEP: f"../bundles/{OLD}"},
        "shadow": {DEP: f"../bundles/{NEW}"},
    }


def test_threat_a_challenger_without_a_current_bundle_or_two_challengers_are_refused_by_the_agent():
    with pytest.raises(ValueError, match="needs a current bundle"):
        deployment_links((BundleRef(f"{DEP}/t", NEW, ShadowOf()),))
    with pytest.raises(ValueError, match="two challengers"):
        deployment_links((_ref(OLD), BundleRef(f"{DEP}/t", NEW, ShadowOf()), BundleRef(f"{DEP}/u", OTHER, ShadowOf())))


def test_a_desired_state_with_a_challenger_round_trips_and_one_without_keeps_its_bytes():
    plain = _state("d1", 1, _ref(OLD))
    assert b"shadow" not in plain.to_bytes()
    marked = _state("d1", 1, _ref(OLD), BundleRef(f"{DEP}/t", NEW, ShadowOf(0.25)))
    assert DesiredState.parse(marked.to_bytes()) == marked and marked.challengers == (marked.bundles[1],)


def _record(spec: RolloutSpec, phase: Phase) -> RolloutState:
    from compiler.rollout.state import DeviceBundles

    devices = {d: DeviceBundles(_ref(OLD), _ref(NEW)) for d in ("d1", "d2")}
    return RolloutState(DEP, phase, spec, devices, T0, {"d1": 5, "d2": 5})


def _report(seq: int, minutes: float, **runner) -> StatusReport:
    health = RunnerHealth(deployment=DEP, bundle=runner.pop("bundle", NEW), ready=runner.pop("ready", True),
                          inferences=100, error_rate=runner.pop("error_rate", 0.0), **runner)  # fmt: skip
    return StatusReport("d1", seq, T0 + timedelta(minutes=minutes), 5, 5, runners=(health,))


@pytest.mark.parametrize(
    ("history", "action", "why"),
    [
        ([], Action.WAIT, "no report yet"),
        ([_report(1, 0.5)], Action.WAIT, "inside the health window"),
        ([_report(1, 0.5), _report(2, 2)], Action.PROMOTE, "canary gate held"),
        ([_report(1, 2, ready=False, reason="plc down")], Action.ABORT, "runner not ready after the window (plc down)"),
        ([_report(1, 0.5, error_rate=0.2), _report(2, 2)], Action.ABORT, "error rate 0.2000 above 0.01"),
        ([_report(1, 0.5), _report(2, 1, ready=False), _report(3, 2)], Action.ABORT, "became unready"),
        ([_report(1, 2, bundle=OLD)], Action.ABORT, "not the new bundle"),
        ([StatusReport("d1", 1, T0, 5, 4, quarantined=(NEW,))], Action.ABORT, "quarantined the new bundle"),
    ],
)
def test_the_canary_gate_judges_the_whole_window(history, action, why):
    d = decide(_record(CANARY, Phase.CANARY), {"d1": history}, T0 + timedelta(hours=1))
    assert d.action == action and why in d.reason


def test_a_report_dated_in_the_future_cannot_end_the_window_early():
    d = decide(_record(CANARY, Phase.CANARY), {"d1": [_report(1, 2)]}, T0 + timedelta(seconds=30))
    assert d.action == Action.WAIT and d.verdicts[0].verdict == Verdict.WAIT


def _shadowed(agreement: float, minutes: float, seq: int) -> StatusReport:
    s = ShadowHealth(NEW, 500, agreement, 0.01, 0.05, 1.0, 0.0)
    return _report(seq, minutes, bundle=OLD, shadow=s)


def test_the_shadow_gate_needs_the_agreement_for_the_whole_window_then_moves_to_the_canary_step():
    record = _record(SHADOW, Phase.SHADOW)
    now = T0 + timedelta(hours=1)
    held = decide(record, {"d1": [_shadowed(0.97, 0.5, 1), _shadowed(0.99, 2, 2)]}, now)
    assert held.action == Action.ADVANCE and held.phase == Phase.CANARY and held.verdicts[0].agreement == 0.99
    dipped = decide(record, {"d1": [_shadowed(0.90, 0.5, 1), _shadowed(0.99, 2, 2)]}, now)
    assert dipped.action == Action.ABORT and "agreement 0.9000 below 0.95" in dipped.reason
    alone = RolloutSpec("shadow", "all-at-once", None, SHADOW.shadow)
    assert decide(_record(alone, Phase.SHADOW), {"d1": [_shadowed(0.99, 2, 1)]}, now).action == Action.PROMOTE


def test_threat_a_rollout_record_signed_by_another_key_or_for_another_deployment_is_refused(tmp_path):
    mine = load_private_key(str(keygen(tmp_path / "mine")[0]))
    theirs = load_private_key(str(keygen(tmp_path / "theirs")[0]))
    data, sig = sealed(_record(CANARY, Phase.CANARY), theirs)
    with pytest.raises(ValueError, match="untrusted key"):
        verified(data, sig, DEP, mine.public_key())
    data, sig = sealed(_record(CANARY, Phase.CANARY), mine)
    with pytest.raises(ValueError, match="is for"):
        verified(data, sig, "other", mine.public_key())
    assert verified(data, sig, DEP, mine.public_key()) == _record(CANARY, Phase.CANARY)


def test_fleet_status_reads_each_devices_phase_from_the_rollout_record(tmp_path: Path):
    from compiler.fleet.status import _phases

    data, _ = sealed(_record(CANARY, Phase.CANARY), load_private_key(str(keygen(tmp_path / "k")[0])))
    assert _phases({f"rollouts/{DEP}.json": data}) == {"d1": "canary (step)", "d2": "canary"}
