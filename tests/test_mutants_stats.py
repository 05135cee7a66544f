"""compiler/testing/stats.py: what the scipy comparisons in test_stats.py cannot pin (they agree only to a
tolerance): the bootstrap's draws, and so its bounds, exactly (its defaults, its chunks, its non-finite
statistics, its empty and unpaired input), the bounds' clamps to [0, 1], the Kolmogorov tail where its series
starts, and the edges of every estimator (no data, one row, nothing to count, an unknown metric)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import special
from scipy.stats import kstwobign

from compiler.testing import stats
from compiler.testing.stats import (
    BOOTSTRAP_CHUNK_VALUES,
    bootstrap,
    confusion,
    count_estimate,
    f1_score,
    kolmogorov_sf,
    ks_2samp,
    metric_estimate,
    percentiles,
    psi,
    wilson,
)


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x))


def _reference_bounds(statistic, arrays, confidence, resamples=2000, seed=0):  # type: ignore[no-untyped-def]
    """The percentile bootstrap written the plain way: one (resamples, n) index matrix, non-finite dropped."""
    n = len(arrays[0])
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    values = np.array([statistic(*(a[i] for a in arrays)) for i in idx], dtype=float)
    values = values[np.isfinite(values)]
    return float(np.quantile(values, 1 - confidence)), float(np.quantile(values, confidence))


@pytest.mark.parametrize("chunk_values", [1, 7, 500, 1 << 16, BOOTSTRAP_CHUNK_VALUES, 1 << 40])
def test_the_bootstrap_bounds_do_not_depend_on_the_chunk_size(chunk_values: int) -> None:
    e = np.random.default_rng(3).normal(0, 1, 50)
    one_call = bootstrap(lambda x: float(np.mean(x)), (e,), 0.9, resamples=300, seed=5, chunk_values=50 * 300)
    chunked = bootstrap(lambda x: float(np.mean(x)), (e,), 0.9, resamples=300, seed=5, chunk_values=chunk_values)
    assert chunked == one_call
    assert one_call is not None and one_call.low < one_call.value < one_call.high


def test_an_estimate_is_a_value_that_cannot_be_changed_after_it_is_judged() -> None:
    est = bootstrap(lambda x: float(np.mean(x)), (np.arange(10.0),), 0.9, resamples=50)
    assert est is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        est.low = 0.0  # type: ignore[misc]


@pytest.mark.parametrize("chunk_values", [50 * 7, BOOTSTRAP_CHUNK_VALUES])  # 7 rows do not divide 2000
def test_the_default_bootstrap_is_2000_resamples_of_seed_0_in_any_chunks(chunk_values: int) -> None:
    e = np.random.default_rng(8).exponential(1, 50)
    calls = []

    def statistic(x: np.ndarray) -> float:
        calls.append(x.size)
        return float(np.mean(x))

    est = bootstrap(statistic, (e,), 0.9, chunk_values=chunk_values)
    assert est is not None
    assert calls == [50] * 2001  # every resample of every row, then the point estimate
    assert (est.low, est.high) == _reference_bounds(_mean, (e,), 0.9)
    assert (est.value, est.n, est.method, est.confidence) == (float(np.mean(e)), 50, "bootstrap", 0.9)


def test_the_resample_count_and_seed_are_keywords_only() -> None:
    with pytest.raises(TypeError):
        bootstrap(_mean, (np.arange(5.0),), 0.9, 100)  # type: ignore[misc]
    est = bootstrap(_mean, (np.arange(5.0),), 0.9, resamples=100, seed=4)
    assert est is not None and (est.low, est.high) == _reference_bounds(_mean, (np.arange(5.0),), 0.9, 100, 4)


def _spy_rows(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The shape of every index draw the bootstrap makes (the draws themselves unchanged)."""
    shapes: list[tuple[int, int]] = []
    real = np.random.default_rng

    class Spy:
        def __init__(self, seed: int) -> None:
            self.gen = real(seed)

        def integers(self, low: int, high: int, size: tuple[int, int]) -> np.ndarray:
            shapes.append(size)
            return self.gen.integers(low, high, size=size)

    monkeypatch.setattr(stats.np.random, "default_rng", Spy)
    return shapes


@pytest.mark.parametrize(
    ("n", "resamples", "chunk_values", "rows"),
    [
        (5000, 2000, None, [838, 838, 324]),  # 32 MiB of int64 indices: 4,194,304 // 5,000 rows at a time
        (50, 20, 350, [7, 7, 6]),
        (50, 5, 7, [1] * 5),  # a row is more than the chunk: one row at a time, never more
        (10, 30, 10**9, [30]),  # all at once when they fit
    ],
)
def test_the_index_matrix_is_drawn_in_as_many_whole_rows_as_fit_the_chunk(
    monkeypatch: pytest.MonkeyPatch, n: int, resamples: int, chunk_values: int | None, rows: list[int]
) -> None:
    shapes = _spy_rows(monkeypatch)
    x = np.arange(float(n))
    chunk = {} if chunk_values is None else {"chunk_values": chunk_values}
    assert bootstrap(_mean, (x,), 0.9, resamples=resamples, **chunk) is not None
    assert shapes == [(r, n) for r in rows]
    assert (32 << 20) // np.dtype(np.int64).itemsize == 4_194_304  # the figure the first case is built on


def test_non_finite_statistics_are_dropped_and_never_finite_means_unbounded() -> None:
    x = np.arange(5.0)  # a resample without the 0 has a finite 1/min, one with it an infinite one

    def inv_min(v: np.ndarray) -> float:
        with np.errstate(divide="ignore"):
            return float(1 / np.min(v))

    est = bootstrap(inv_min, (x,), 0.8, resamples=400, seed=2)
    assert est is not None and math.isfinite(est.low) and math.isfinite(est.high)
    assert (est.low, est.high) == _reference_bounds(inv_min, (x,), 0.8, 400, 2)
    never = bootstrap(lambda v: math.nan, (x,), 0.9, resamples=50)
    assert never is not None and math.isnan(never.value)
    assert (never.low, never.high, never.n) == (-math.inf, math.inf, 5)


def test_no_rows_is_no_estimate_and_unpaired_rows_are_refused() -> None:
    assert bootstrap(_mean, (np.array([]),), 0.9) is None
    assert bootstrap(lambda a, b: 0.0, (np.array([]), np.array([])), 0.9) is None
    with pytest.raises(ValueError, match=r"paired rows, got arrays of lengths \[3, 2\]"):
        bootstrap(lambda a, b: float(np.mean(a) - np.mean(b)), (np.arange(3.0), np.arange(2.0)), 0.9)
    with pytest.raises(ValueError, match=r"lengths \[2, 3\]"):
        bootstrap(lambda a, b: float(np.mean(a) - np.mean(b)), (np.arange(2.0), np.arange(3.0)), 0.9)


def test_paired_rows_stay_paired_in_every_resample() -> None:
    a = np.arange(40.0)
    est = bootstrap(lambda u, v: float(np.max(np.abs(u - v))), (a, a.copy()), 0.9, resamples=200)
    assert est is not None and (est.value, est.low, est.high) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.95, 0.99])
def test_wilson_bounds_never_leave_0_to_1(confidence: float) -> None:
    # unclamped, k = 0 gives a lower bound of about ±1e-17 and k = n an upper one of 1 ± 2e-16 for many n
    for n in range(1, 80):
        for k in range(n + 1):
            est = wilson(k, n, confidence)
            assert est is not None and 0.0 <= est.low <= est.value <= est.high <= 1.0, (k, n)
    assert wilson(0, 5, 0.9).low == 0.0  # type: ignore[union-attr]  # -2.8e-17 unclamped
    assert wilson(0, 17, 0.99).low == 0.0  # type: ignore[union-attr]  # +1.4e-17 unclamped: above the estimate
    assert wilson(10, 10, 0.9).high == 1.0  # type: ignore[union-attr]  # 1 + 2.2e-16 unclamped
    assert wilson(4, 4, 0.8).high == 1.0  # type: ignore[union-attr]  # 1 - 1.1e-16 unclamped: below the estimate


def test_wilson_bounds_of_a_middle_proportion_are_inside_not_clamped() -> None:
    est = wilson(1, 2, 0.9)
    assert est is not None and 0.0 < est.low < 0.5 < est.high < 1.0
    assert est.low + est.high == pytest.approx(1.0, abs=1e-15)  # symmetric around 1/2


def test_the_kolmogorov_tail_is_one_below_0_2_and_the_series_from_there_on() -> None:
    for x in (-3.0, -0.5, -1e-9, 0.0, 1e-3, 0.05, 0.1, 0.15, 0.199999):
        assert kolmogorov_sf(x) == 1.0, x
    at = kolmogorov_sf(0.2)
    assert at < 1.0 and at == pytest.approx(kstwobign.sf(0.2), abs=1e-15)
    for x in (0.21, 0.3, 0.5, 0.8, 1.0, 1.36, 2.0, 3.0, 5.0):
        assert kolmogorov_sf(x) == pytest.approx(kstwobign.sf(x), rel=1e-12, abs=1e-300), x
    assert kolmogorov_sf(40.0) == 0.0  # every term underflows: a probability, never negative


def test_the_kolmogorov_tail_is_a_probability_whatever_it_is_given() -> None:
    assert kolmogorov_sf(math.inf) == 0.0 and kolmogorov_sf(-math.inf) == 1.0
    assert kolmogorov_sf(math.nan) == 1.0  # a series of NaN terms, clamped into [0, 1]: no evidence of drift


def test_ks_without_finite_data_on_either_side_is_none() -> None:
    x = np.arange(10.0)
    assert ks_2samp(x, np.array([])) is None
    assert ks_2samp(np.array([]), x) is None
    assert ks_2samp(x, np.array([np.nan, np.inf, -np.inf])) is None
    assert ks_2samp(np.array([np.nan]), x) is None
    d, p = ks_2samp(x, np.array([100.0]))  # one candidate value is data
    assert d == 1.0 and p == pytest.approx(kstwobign.sf(math.sqrt(10 / 11)), abs=1e-12)


def test_percentiles_of_one_sample_are_that_sample() -> None:
    assert percentiles(np.array([2.5])) == {"p50": 2.5, "p95": 2.5, "p99": 2.5}
    assert percentiles(np.arange(101.0), (10, 90)) == {"p10": 10.0, "p90": 90.0}


def _psi_reference(ref: np.ndarray, cand: np.ndarray, bins: int, eps: float) -> float:
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)))
    edges[0], edges[-1] = -np.inf, np.inf
    r = np.maximum(np.histogram(ref, edges)[0] / ref.size, eps)
    c = np.maximum(np.histogram(cand, edges)[0] / cand.size, eps)
    return float(np.sum(special.rel_entr(c, r) + special.rel_entr(r, c)))


def test_psi_defaults_are_ten_bins_and_an_eps_of_1e_4() -> None:
    rng = np.random.default_rng(9)
    ref = rng.normal(0, 1, 3000)
    near = rng.normal(0.3, 1, 2000)
    far = rng.normal(0, 1, 2000) + 5  # every candidate value in the last bin: nine empty bins get eps
    assert psi(ref, near) == pytest.approx(_psi_reference(ref, near, 10, 1e-4), rel=1e-9)
    assert psi(ref, far) == pytest.approx(_psi_reference(ref, far, 10, 1e-4), rel=1e-9)
    assert psi(ref, near) != pytest.approx(_psi_reference(ref, near, 11, 1e-4), rel=1e-6)


@pytest.mark.parametrize(
    ("tp", "fp", "fn", "f1"),
    [(1, 2, 1, 0.4), (1, 0, 1, 2 / 3), (2, 1, 0, 0.8), (0, 1, 1, 0.0), (0, 0, 0, 0.0), (3, 0, 0, 1.0)],
)
def test_f1_from_its_counts(tp: int, fp: int, fn: int, f1: float) -> None:
    pred = np.array([1] * tp + [1] * fp + [0] * fn + [0, 0])
    truth = np.array([1] * tp + [0] * fp + [1] * fn + [0, 0])
    assert confusion(pred, truth, 1) == (tp, fp, fn, 2)
    assert f1_score(pred, truth, 1) == pytest.approx(f1, abs=1e-15)


def test_streamed_counts_give_the_same_estimates_as_the_arrays() -> None:
    rng = np.random.default_rng(10)
    truth = rng.integers(0, 3, 300)
    pred = np.where(rng.random(300) < 0.7, truth, rng.integers(0, 3, 300))
    tp, fp, fn, _ = confusion(pred, truth, 2)
    correct = int(np.sum(pred == truth))
    for metric in ("accuracy", "precision", "recall"):
        streamed = count_estimate(metric, correct, 300, tp, fp, fn, 0.95)
        assert streamed == metric_estimate(metric, pred, truth, 0.95, positive=2), metric
    assert count_estimate("accuracy", correct, 300, tp, fp, fn, 0.95).value == correct / 300  # type: ignore[union-attr]
    assert count_estimate("precision", correct, 300, tp, fp, fn, 0.95).n == tp + fp  # type: ignore[union-attr]
    assert count_estimate("recall", correct, 300, tp, fp, fn, 0.95).n == tp + fn  # type: ignore[union-attr]


def test_nothing_to_count_is_no_estimate_and_one_row_is_one() -> None:
    for metric in ("accuracy", "precision", "recall"):
        assert count_estimate(metric, 0, 0, 0, 0, 0, 0.9) is None
    assert count_estimate("precision", 5, 5, 0, 0, 5, 0.9) is None  # nothing predicted positive
    assert count_estimate("recall", 5, 5, 0, 5, 0, 0.9) is None  # nothing truly positive
    one = count_estimate("accuracy", 1, 1, 1, 0, 0, 0.9)
    assert one is not None and (one.value, one.n) == (1.0, 1)
    empty = np.array([])
    for metric in ("accuracy", "precision", "recall", "f1", "mae", "rmse"):
        assert metric_estimate(metric, empty, empty, 0.9) is None, metric
        single = metric_estimate(metric, np.array([1]), np.array([1]), 0.9)
        assert single is not None and single.n == 1, metric


def test_an_unknown_metric_is_refused_with_data_or_without() -> None:
    for correct, n in ((0, 0), (3, 4)):
        with pytest.raises(ValueError, match="f1 is not computed from counts"):
            count_estimate("f1", correct, n, 1, 1, 1, 0.9)
    for size in (0, 4):
        with pytest.raises(ValueError, match="unknown metric mape"):
            metric_estimate("mape", np.ones(size), np.ones(size), 0.9)


@pytest.mark.parametrize("metric", ["f1", "mae", "rmse"])
def test_bootstrapped_metrics_use_seed_0_unless_told_and_their_own_statistic(metric: str) -> None:
    rng = np.random.default_rng(11)
    truth = rng.integers(0, 2, 60)
    pred = np.where(rng.random(60) < 0.75, truth, 1 - truth)
    if metric == "f1":
        arrays: tuple[np.ndarray, ...] = (pred, truth)

        def statistic(p: np.ndarray, t: np.ndarray) -> float:
            return f1_score(p, t, 1)
    else:
        arrays = (pred.astype(float) - truth.astype(float) * 0.5,)

        def statistic(e: np.ndarray) -> float:
            return float(np.mean(np.abs(e))) if metric == "mae" else float(np.sqrt(np.mean(e * e)))

    args = (pred, truth * 0.5) if metric != "f1" else (pred, truth)
    for seed in (None, 3):
        est = metric_estimate(metric, *args, 0.9, **({} if seed is None else {"seed": seed}))
        assert est is not None
        assert est.value == pytest.approx(statistic(*arrays), abs=1e-15)
        assert (est.low, est.high) == pytest.approx(_reference_bounds(statistic, arrays, 0.9, seed=seed or 0),
                                                    abs=1e-15)
