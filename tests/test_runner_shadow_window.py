"""Shadow agreement over the Deployment's sliding window, driven by an injected clock (no sleeps):
old disagreement ages out, and the figures equal numpy's over exactly the frames in the window."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from compiler.bundle import runner as contract
from runner.shadow import Challenger
from runner.shadow_window import EXACT_PER_BUCKET, RELATIVE_ERROR, WINDOW_BUCKETS, SlidingWindow
from tests.runnerkit import MODEL, config_for, write_bundle
from tests.test_runner_shadow import _challenger_model, _offline

WINDOW = 600.0  # seconds: buckets of 10 s
TOLERANCE = 0.5


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _challenger(tmp_path: Path, clock: Clock) -> Challenger:
    src = contract.FileSource(
        path="live.csv", format="csv",
        fields=tuple(contract.FileField(name=n, dtype="float32", address=contract.FileAddress(column=n)) for n in "ab"),
    )  # fmt: skip
    current = config_for("live", src)
    model = _challenger_model()
    section = current.model.__class__(**{**current.model.__dict__, "sha256": hashlib.sha256(model).hexdigest()})
    write_bundle(tmp_path / "challenger", current.with_(model=section), model)
    entry = contract.ShadowEntry(deployment="d", challenger="c" * 64, config="challenger/runner.json",
                                 tolerance=TOLERANCE, window=WINDOW)  # fmt: skip
    (tmp_path / contract.SHADOW_JSON).write_bytes(entry.to_json())
    return Challenger.load(tmp_path / contract.SHADOW_JSON, current, clock)


def _feed(ch: Challenger, clock: Clock, when: np.ndarray, a: np.ndarray) -> np.ndarray:
    """One frame (a, 2) per time, the current model's output beside it; returns |current − challenger|."""
    current = _offline(MODEL, a)
    for t, x, y in zip(when, a, current, strict=True):
        clock.now = float(t)
        ch.observe({"x": np.array([[x, 2.0]], np.float32)}, {"y": np.array([[y]], np.float32)})
    return np.abs(current - _offline(_challenger_model(), a))


def test_old_disagreement_ages_out_of_the_window_and_the_figures_are_numpys(tmp_path: Path):
    clock = Clock()
    ch = _challenger(tmp_path, clock)
    rng = np.random.default_rng(7)
    bad_t = np.linspace(0, 100, 50)  # an hour-old burst of disagreement: |a − 2|·0.1 is far over the tolerance
    bad = _feed(ch, clock, bad_t, rng.uniform(40, 60, bad_t.size))
    good_t = np.linspace(300, 1000, 400)
    good = _feed(ch, clock, good_t, rng.uniform(-8, 12, good_t.size))
    assert np.mean(bad <= TOLERANCE) == 0 and 0 < np.mean(good <= TOLERANCE) < 1

    clock.now = 1000.0  # the window holds the buckets of (400, 1000]: the whole burst has left
    live = good[good_t >= 1000.0 - WINDOW + WINDOW / WINDOW_BUCKETS]
    health = ch.health()
    assert health.frames == live.size
    assert health.agreement == pytest.approx(np.mean(live <= TOLERANCE), abs=1e-12)
    assert health.mean_abs_diff == pytest.approx(live.mean(), rel=1e-9)
    assert health.p99_abs_diff == pytest.approx(np.percentile(live, 99), rel=1e-9)
    assert health.error_rate == 0.0
    since_start = np.concatenate([bad, good])
    assert ch.values == since_start.size  # the counters stay totals (Prometheus counters only grow)
    assert ch.agreeing == np.count_nonzero(since_start <= TOLERANCE)
    assert ch.agreement() != pytest.approx(np.mean(since_start <= TOLERANCE))

    clock.now = 1000.0 + WINDOW  # nothing compared in the last window: no figure, not an old one
    assert ch.health().frames == 0 and ch.agreement() is None and ch.p99_abs_diff() is None


def test_midway_the_window_still_holds_the_disagreement(tmp_path: Path):
    clock = Clock()
    ch = _challenger(tmp_path, clock)
    bad = _feed(ch, clock, np.linspace(0, 50, 20), np.full(20, 50.0))
    good = _feed(ch, clock, np.linspace(100, 200, 20), np.full(20, 2.0))  # a = b: both models say 2
    clock.now = 200.0
    both = np.concatenate([bad, good])
    assert ch.agreement() == pytest.approx(np.mean(both <= TOLERANCE)) == pytest.approx(0.5)


def test_past_the_exact_bound_the_p99_is_the_sketchs_within_its_relative_error():
    window = SlidingWindow(60.0, 1)
    rng = np.random.default_rng(3)
    diffs = rng.lognormal(-3, 2, 60 * EXACT_PER_BUCKET * 2)  # twice what the buckets keep exactly
    times = np.sort(rng.uniform(0, 60, diffs.size))
    for t, d in zip(times, diffs, strict=True):
        window.compare(float(t), 1, 0, np.array([d]))
    totals = window.totals(59.999)
    assert totals.exact is None  # the exact values were given up: bounded memory
    want = np.percentile(diffs, 99, method="inverted_cdf")  # the nearest-rank percentile, offline
    assert abs(totals.p99_abs_diff() - want) <= RELATIVE_ERROR * want * 1.0001
    assert totals.mean_abs_diff() == pytest.approx(diffs.mean(), rel=1e-9)


def test_a_window_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        SlidingWindow(0.0, 1)
    with pytest.raises(contract.ContractError, match="window"):
        contract.ShadowEntry.parse(
            contract.ShadowEntry(deployment="d", challenger="c" * 64, config="x", window=1.0).to_json()
            .replace(b'"window": 1.0', b'"window": -5')
        )  # fmt: skip


def test_the_rollout_window_travels_from_the_signed_state_to_the_shadow_entry():
    from datetime import UTC, datetime

    from agent.layout import shadow_entries
    from compiler.bundle.desired import BundleRef, DesiredState, ShadowOf

    ref = BundleRef("d/t", "c" * 64, ShadowOf(0.25, 900.0))
    state = DesiredState("dev", 3, datetime(2026, 12, 2, tzinfo=UTC), (BundleRef("d/t", "a" * 64), ref))
    assert DesiredState.parse(state.to_bytes()).bundles == state.bundles
    entry = contract.ShadowEntry.parse(shadow_entries(state.bundles)["d.json"])
    assert (entry.tolerance, entry.window) == (0.25, 900.0)
    older = BundleRef("d/t", "c" * 64, ShadowOf(0.25))  # a state signed before the window was carried
    assert b"window" not in DesiredState("dev", 3, state.expires, (older,)).to_bytes()
    assert contract.ShadowEntry.parse(shadow_entries((older,))["d.json"]).window == 3600.0


def test_threat_a_state_with_a_bad_shadow_window_is_refused():
    from compiler.bundle.desired import DesiredState

    good = b'{"bundles":[{"digest":"' + b"c" * 64 + b'","name":"d/t","shadow":{"tolerance":0.1,"window":60.0}}],'
    tail = b'"device":"dev","expires":"2026-12-09T00:00:00Z","generation":3,"version":1}'
    assert DesiredState.parse(good + tail).bundles[0].shadow.window == 60.0
    for bad in (b"0", b"-1", b"1e999", b"true", b'"60"'):
        with pytest.raises(ValueError):
            DesiredState.parse(good.replace(b'"window":60.0', b'"window":' + bad) + tail)
