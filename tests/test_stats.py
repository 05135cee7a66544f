"""Test statistics against scipy, an independent implementation, including the edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats

from compiler.testing.stats import f1_score, ks_2samp, metric_estimate, percentiles, psi, wilson


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (95, 100), (1, 1), (480, 500)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_matches_scipy(k: int, n: int, confidence: float):
    est = wilson(k, n, confidence)
    # a one-sided bound at c is the matching end of the two-sided interval at 2c - 1
    ref = stats.binomtest(k, n).proportion_ci(confidence_level=2 * confidence - 1, method="wilson")
    assert est.low == pytest.approx(ref.low, abs=1e-12)
    assert est.high == pytest.approx(ref.high, abs=1e-12)
    assert est.value == k / n


def test_wilson_without_data_is_none():
    assert wilson(0, 0, 0.95) is None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ks_matches_scipy(seed: int):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, 1, 300), rng.normal(0.2, 1.1, 250)
    d, p = ks_2samp(a, b)
    ref = stats.ks_2samp(a, b, method="asymp")
    assert d == pytest.approx(ref.statistic, abs=1e-12)
    en = math.sqrt(len(a) * len(b) / (len(a) + len(b)))
    assert p == pytest.approx(stats.kstwobign.sf(en * d), abs=1e-12)  # the limiting Kolmogorov law
    assert p == pytest.approx(ref.pvalue, abs=0.03)  # scipy's finite-n correction is small at this size


def test_ks_edge_cases():
    assert ks_2samp(np.array([]), np.array([1.0])) is None
    d, p = ks_2samp(np.ones(50), np.ones(60))  # constant and equal
    assert d == 0 and p == 1
    d, p = ks_2samp(np.zeros(50), np.ones(60))  # constant and disjoint
    assert d == 1 and p < 1e-6
    d, _ = ks_2samp(np.array([1.0, np.nan, 2.0]), np.array([1.0, 2.0]))  # NaN ignored
    assert d == 0


def _psi_reference(ref, cand, bins):
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)))
    edges[0], edges[-1] = -np.inf, np.inf
    r = np.maximum(np.histogram(ref, edges)[0] / ref.size, 1e-4)
    c = np.maximum(np.histogram(cand, edges)[0] / cand.size, 1e-4)
    return float(np.sum(special.rel_entr(c, r) + special.rel_entr(r, c)))  # symmetric KL = PSI


@pytest.mark.parametrize("shift", [0.0, 0.1, 0.5, 2.0])
def test_psi_matches_symmetric_kl(shift: float):
    rng = np.random.default_rng(3)
    ref, cand = rng.normal(0, 1, 2000), rng.normal(shift, 1, 1500)
    assert psi(ref, cand, 10) == pytest.approx(_psi_reference(ref, cand, 10), rel=1e-9)


def test_psi_grows_with_drift_and_handles_edges():
    rng = np.random.default_rng(4)
    ref = rng.normal(0, 1, 2000)
    values = [psi(ref, rng.normal(s, 1, 2000)) for s in (0, 0.25, 0.5, 1.0)]
    assert values == sorted(values) and values[0] < 0.02 and values[-1] > 0.5
    assert psi(np.array([]), ref) is None
    assert psi(np.full(100, 3.0), np.full(80, 3.0)) == pytest.approx(0.0)  # constant, unchanged
    assert psi(np.full(100, 3.0), np.full(80, 4.0)) > 1.0  # constant, moved
    assert psi(np.full(100, 3.0), np.full(80, 2.0)) > 1.0  # constant, moved down
    binary = np.array([0.0, 1.0] * 50)
    assert psi(binary, binary) == pytest.approx(0.0)
    assert psi(binary, np.ones(100)) > 1.0  # a two-valued feature keeps two bins
    assert math.isfinite(psi(ref, np.concatenate([ref, [np.nan] * 10])))


def test_metrics_against_direct_computation():
    rng = np.random.default_rng(5)
    truth = rng.integers(0, 2, 400)
    pred = np.where(rng.random(400) < 0.85, truth, 1 - truth)
    tp = np.sum((pred == 1) & (truth == 1))
    acc = metric_estimate("accuracy", pred, truth, 0.95)
    assert acc.value == pytest.approx(np.mean(pred == truth)) and acc.low < acc.value < acc.high
    rec = metric_estimate("recall", pred, truth, 0.95)
    assert rec.value == pytest.approx(tp / np.sum(truth == 1))
    prec = metric_estimate("precision", pred, truth, 0.95)
    assert prec.value == pytest.approx(tp / np.sum(pred == 1))
    from scipy.stats import hmean

    f1 = metric_estimate("f1", pred, truth, 0.95)
    assert f1.value == pytest.approx(hmean([prec.value, rec.value]))
    assert f1.low < f1.value < f1.high


def test_bootstrap_bounds_agree_with_scipy():
    rng = np.random.default_rng(6)
    y, yhat = rng.normal(0, 1, 500), rng.normal(0, 1, 500) * 0.3
    mae = metric_estimate("mae", yhat, y, 0.95)
    ref = stats.bootstrap(
        (np.abs(yhat - y),), np.mean, confidence_level=0.90, method="percentile", n_resamples=4000, random_state=1
    )
    assert mae.value == pytest.approx(np.mean(np.abs(yhat - y)))
    assert mae.low == pytest.approx(ref.confidence_interval.low, abs=0.01)
    assert mae.high == pytest.approx(ref.confidence_interval.high, abs=0.01)
    rmse = metric_estimate("rmse", yhat, y, 0.95)
    assert rmse.value == pytest.approx(np.sqrt(np.mean((yhat - y) ** 2)))


def test_metric_edge_cases():
    assert metric_estimate("accuracy", np.array([]), np.array([]), 0.95) is None
    one_class = np.ones(20, int)
    assert metric_estimate("recall", one_class, one_class, 0.95).value == 1.0
    assert metric_estimate("precision", np.zeros(20, int), one_class, 0.95) is None  # nothing predicted positive
    assert f1_score(np.zeros(5), np.zeros(5), 1) == 0.0
    assert metric_estimate("mae", np.ones(10), np.ones(10), 0.95).high == 0.0


def test_percentiles_match_numpy():
    x = np.random.default_rng(7).exponential(1, 1001)
    assert percentiles(x) == {"p50": np.percentile(x, 50), "p95": np.percentile(x, 95), "p99": np.percentile(x, 99)}
    assert percentiles(np.array([])) == {}
