"""The statistics behind model tests, in numpy and the standard library only.

Metrics are judged by a one-sided confidence bound at a declared level, not by a point
estimate: "recall ≥ 0.9 with 95 % confidence" means the lower bound clears 0.9. Every function
says what it returns for empty data instead of raising or returning NaN silently.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

import frames

BOOTSTRAP_CHUNK_VALUES = 1 << 22  # 32 MiB of resample indices at a time


@dataclass(frozen=True)
class Estimate:
    value: float  # point estimate
    low: float  # one-sided lower bound at `confidence` (or -inf)
    high: float  # one-sided upper bound at `confidence` (or +inf)
    n: int
    method: str
    confidence: float


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(confidence)


def wilson(successes: int, n: int, confidence: float) -> Estimate | None:
    """Wilson score bounds of a proportion; each bound one-sided at `confidence`. None for n = 0.

    The interval holds the point estimate and lies in [0, 1]; rounding alone would put the lower bound of
    0 successes at ±1e-17 and the upper one of n at 1 ± 2e-16, so both are clamped to what they bound."""
    if n <= 0:
        return None
    p = successes / n
    z = _z(confidence)
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low, high = max(0.0, min(p, center - half)), min(1.0, max(p, center + half))
    return Estimate(p, low, high, n, "wilson", confidence)


def bootstrap(
    statistic: Callable[..., float],
    arrays: tuple[np.ndarray, ...],
    confidence: float,
    *,
    resamples: int = 2000,
    seed: int = 0,
    chunk_values: int = BOOTSTRAP_CHUNK_VALUES,
) -> Estimate | None:
    """Percentile bootstrap bounds (one-sided) of `statistic(*arrays)` over paired rows; `chunk_values`
    resample indices at a time (the draws, and so the bounds, do not depend on it). Arrays of different
    lengths are not paired rows: a ValueError, never a resample that pairs rows by accident."""
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError(f"bootstrap needs paired rows, got arrays of lengths {[len(a) for a in arrays]}")
    if n == 0:
        return None
    rng = np.random.default_rng(seed)
    # the index matrix in chunks of rows: the same draws as one (resamples, n) call, in bounded memory
    chunk = max(1, min(resamples, chunk_values // n))
    values: list[float] = []
    for start in range(0, resamples, chunk):
        idx = rng.integers(0, n, size=(min(chunk, resamples - start), n))
        values.extend(statistic(*(a[i] for a in arrays)) for i in idx)
    stats = np.array(values, dtype=float)
    stats = stats[np.isfinite(stats)]
    value = float(statistic(*arrays))
    if stats.size == 0:
        return Estimate(value, -math.inf, math.inf, n, "bootstrap", confidence)
    return Estimate(
        value,
        float(np.quantile(stats, 1 - confidence)),
        float(np.quantile(stats, confidence)),
        n,
        "bootstrap",
        confidence,
    )


def psi(reference: np.ndarray, candidate: np.ndarray, bins: int = 10, eps: float = 1e-4) -> float | None:
    """Population stability index over quantile bins of the reference; None without data.

    Computed by `frames.drift`, the implementation the runner uses on the line: bin edges are the
    reference quantiles widened to ±inf, empty bins get `eps`, a constant reference gets a bin of its own.
    """
    return frames.psi(reference, candidate, bins, eps)


def kolmogorov_sf(x: float) -> float:
    """P(K > x) for the Kolmogorov distribution (the asymptotic two-sample KS law)."""
    if x < 0.2:
        return 1.0  # the series converges slowly here; 1 - P(K > x) is under 6e-13 (x <= 0 included)
    total = 0.0
    for k in range(1, 101):
        term = (-1) ** (k - 1) * math.exp(-2 * k * k * x * x)
        total += term
        if abs(term) < 1e-16:
            break
    return max(0.0, min(1.0, 2 * total))


def ks_2samp(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, float] | None:
    """Two-sample Kolmogorov–Smirnov statistic D and its p-value under the limiting Kolmogorov law
    (scipy's kstwobign); None without data. Drift tests judge D; the p-value is for the report."""
    a = np.sort(reference[np.isfinite(reference)])
    b = np.sort(candidate[np.isfinite(candidate)])
    n, m = a.size, b.size
    if n == 0 or m == 0:
        return None
    pooled = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, pooled, side="right") / n
    cdf_b = np.searchsorted(b, pooled, side="right") / m
    d = float(np.max(np.abs(cdf_a - cdf_b)))
    en = math.sqrt(n * m / (n + m))
    return d, kolmogorov_sf(en * d)


def percentiles(samples: np.ndarray, qs: tuple[float, ...] = (50, 95, 99)) -> dict[str, float]:
    if samples.size == 0:
        return {}
    values = np.percentile(samples, qs)
    return {f"p{int(q)}": float(v) for q, v in zip(qs, values, strict=True)}


# --- metrics -------------------------------------------------------------------------------------


def confusion(pred: np.ndarray, truth: np.ndarray, positive: object) -> tuple[int, int, int, int]:
    """(tp, fp, fn, tn) for one positive class."""
    p = pred == positive
    t = truth == positive
    return int(np.sum(p & t)), int(np.sum(p & ~t)), int(np.sum(~p & t)), int(np.sum(~p & ~t))


def f1_score(pred: np.ndarray, truth: np.ndarray, positive: object) -> float:
    tp, fp, fn, _ = confusion(pred, truth, positive)
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


COUNTED = ("accuracy", "precision", "recall")  # proportions: streamed as counts, Wilson bounds
METRICS = (*COUNTED, "f1", "mae", "rmse")


def count_estimate(metric: str, correct: int, n: int, tp: int, fp: int, fn: int, confidence: float) -> Estimate | None:
    """accuracy, precision or recall from streamed counts: the same Wilson bounds as `metric_estimate`.
    None when there is nothing to count (no rows, or no predicted or true positive); any other metric is a
    ValueError, with data or without."""
    if metric not in COUNTED:
        raise ValueError(f"{metric} is not computed from counts")
    if metric == "accuracy":
        return wilson(correct, n, confidence)
    return wilson(tp, tp + fp if metric == "precision" else tp + fn, confidence)


def metric_estimate(
    metric: str,
    pred: np.ndarray,
    truth: np.ndarray,
    confidence: float,
    positive: object = 1,
    seed: int = 0,
    chunk_values: int = BOOTSTRAP_CHUNK_VALUES,
) -> Estimate | None:
    """The metric with its bounds: Wilson for proportions, bootstrap for F1 and errors (`chunk_values`
    resample indices at a time). None without data (each estimator says so); an unknown metric is a
    ValueError, with data or without."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric}")
    boot = {"seed": seed, "chunk_values": chunk_values}
    if metric == "accuracy":
        return wilson(int(np.sum(pred == truth)), int(pred.size), confidence)
    if metric in ("precision", "recall"):
        tp, fp, fn, _ = confusion(pred, truth, positive)
        return wilson(tp, tp + fp if metric == "precision" else tp + fn, confidence)
    if metric == "f1":
        return bootstrap(lambda p, t: f1_score(p, t, positive), (pred, truth), confidence, **boot)
    err = pred.astype(float) - truth.astype(float)
    if metric == "mae":
        return bootstrap(lambda e: float(np.mean(np.abs(e))), (err,), confidence, **boot)
    return bootstrap(lambda e: float(np.sqrt(np.mean(e * e))), (err,), confidence, **boot)
