"""A sliding time window of the shadow comparison, in bounded memory, for the gauges and the report.

The window of length W is kept as WINDOW_BUCKETS buckets of W / WINDOW_BUCKETS seconds each, a
ring indexed by the bucket's number (time // width); a bucket whose number has left the window
is cleared when its slot is reused, and skipped when totals are taken. The figures therefore
cover the current bucket and the WINDOW_BUCKETS - 1 before it: at least W - W/WINDOW_BUCKETS and
at most W seconds back (with the defaults, W less at most one 60th of it).

Per bucket: compared and agreeing values, the sum and count of float differences, challenger runs
and errors, the challenger's latency histogram, and for the p99 of the absolute difference:
- the exact differences while the bucket holds at most EXACT_PER_BUCKET of them: when every live
  bucket is exact, the p99 is numpy's (linear interpolation) over exactly the window's values;
- always, a log-bucketed histogram (the DDSketch layout: bin i holds (γ^(i-1), γ^i], γ = 1.02,
  reported as 2γ^i/(γ+1)): beyond the exact bound the p99 is the window's nearest-rank 99th
  percentile within a relative error of (γ-1)/(γ+1) < 1 % for differences in [1e-9, 1e9]
  (smaller ones count as 0, larger ones and NaN as the top bin).
Memory: WINDOW_BUCKETS × (HIST_BINS int32 + EXACT_PER_BUCKET floats) ≈ 0.6 MB at most, whatever the
frame rate or W; the histogram rows are allocated on the first float difference only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

WINDOW_BUCKETS = 60
EXACT_PER_BUCKET = 256
GAMMA = 1.02
MIN_DIFF, MAX_DIFF = 1e-9, 1e9
_LOG_GAMMA = math.log(GAMMA)
_LOW = math.ceil(math.log(MIN_DIFF) / _LOG_GAMMA)  # index of the lowest bin
HIST_BINS = math.ceil(math.log(MAX_DIFF) / _LOG_GAMMA) - _LOW + 2  # + the zero bin (index 0)
RELATIVE_ERROR = (GAMMA - 1) / (GAMMA + 1)
_COUNTS = ("values", "agreeing", "diffs", "runs", "errors", "frames")
_V, _A, _D, _R, _E, _F = range(len(_COUNTS))


def _bins(diff: np.ndarray) -> np.ndarray:
    """Histogram bin of each absolute difference (0: below MIN_DIFF; NaN and huge: the top bin)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        index = np.ceil(np.log(diff) / _LOG_GAMMA) - _LOW + 1
    index = np.where(np.isnan(diff) | (diff > MAX_DIFF), HIST_BINS - 1, index)
    index = np.where(diff < MIN_DIFF, 0, index)
    return np.clip(index, 0, HIST_BINS - 1).astype(np.intp)


def _value_of(bin_: int) -> float:
    if bin_ == 0:
        return 0.0
    upper = GAMMA ** (bin_ - 1 + _LOW)
    return 2 * upper / (GAMMA + 1)


@dataclass(frozen=True)
class Totals:
    """The window's sums, taken at one instant."""

    counts: np.ndarray  # by _COUNTS
    diff_sum: float
    latency: np.ndarray  # challenger runs per latency bucket
    histogram: np.ndarray | None  # absolute differences per log bin
    exact: np.ndarray | None  # every difference in the window, when all live buckets kept them

    @property
    def frames(self) -> int:
        return int(self.counts[_F])

    def agreement(self) -> float | None:
        return float(self.counts[_A] / self.counts[_V]) if self.counts[_V] else None

    def mean_abs_diff(self) -> float | None:
        return self.diff_sum / float(self.counts[_D]) if self.counts[_D] else None

    def error_rate(self) -> float | None:
        attempts = self.counts[_R] + self.counts[_E]
        return float(self.counts[_E] / attempts) if attempts else None

    def p99_abs_diff(self) -> float | None:
        if not self.counts[_D]:
            return None
        if self.exact is not None:
            return float(np.percentile(self.exact, 99))
        assert self.histogram is not None
        rank = math.ceil(0.99 * int(self.histogram.sum()))  # nearest rank, 1-based
        return _value_of(int(np.searchsorted(np.cumsum(self.histogram), rank)))


class SlidingWindow:
    """The ring of buckets; owned by the engine's loop (one thread, no locks). Times are seconds of
    any monotonic clock, given by the caller (so tests drive it without sleeping)."""

    def __init__(self, seconds: float, latency_bins: int, buckets: int = WINDOW_BUCKETS) -> None:
        if not (math.isfinite(seconds) and seconds > 0):
            raise ValueError("a window must be a finite positive number of seconds")
        self.width, self.n = seconds / buckets, buckets
        self.stamp = np.full(buckets, -1, dtype=np.int64)  # bucket number held by each slot (-1: empty)
        self.counts = np.zeros((buckets, len(_COUNTS)), dtype=np.int64)
        self.diff_sum = np.zeros(buckets, dtype=np.float64)
        self.latency = np.zeros((buckets, latency_bins), dtype=np.int64)
        self.histogram: np.ndarray | None = None
        self.exact: list[list[float] | None] = [[] for _ in range(buckets)]  # None: overflowed

    def _slot(self, now: float) -> int:
        number = math.floor(now / self.width)
        slot = number % self.n
        if self.stamp[slot] != number:  # reused for a new bucket: what it held left the window
            self.stamp[slot] = number
            self.counts[slot] = 0
            self.diff_sum[slot] = 0.0
            self.latency[slot] = 0
            if self.histogram is not None:
                self.histogram[slot] = 0
            self.exact[slot] = []
        return slot

    def run(self, now: float, latency_bin: int | None) -> None:
        """One challenger run (None: it raised) on one frame."""
        slot = self._slot(now)
        self.counts[slot, _F] += 1
        if latency_bin is None:
            self.counts[slot, _E] += 1
        else:
            self.counts[slot, _R] += 1
            self.latency[slot, latency_bin] += 1

    def compare(self, now: float, values: int, agreeing: int, diff: np.ndarray | None = None) -> None:
        """`values` compared, `agreeing` of them agree; `diff`: their absolute differences (float outputs)."""
        slot = self._slot(now)
        self.counts[slot, _V] += values
        self.counts[slot, _A] += agreeing
        if diff is None or not diff.size:
            return
        self.counts[slot, _D] += diff.size
        self.diff_sum[slot] += float(diff.sum())
        if self.histogram is None:
            self.histogram = np.zeros((self.n, HIST_BINS), dtype=np.int32)
        np.add.at(self.histogram[slot], _bins(diff), 1)
        kept = self.exact[slot]
        if kept is not None:
            self.exact[slot] = kept + diff.tolist() if len(kept) + diff.size <= EXACT_PER_BUCKET else None

    def totals(self, now: float) -> Totals:
        number = math.floor(now / self.width)
        live = (self.stamp > number - self.n) & (self.stamp <= number)
        rows = np.flatnonzero(live)
        exact_rows = [self.exact[i] for i in rows]
        exact = None
        if all(e is not None for e in exact_rows):
            exact = np.fromiter((x for e in exact_rows if e for x in e), dtype=np.float64)
        return Totals(
            counts=self.counts[rows].sum(axis=0),
            diff_sum=float(self.diff_sum[rows].sum()),
            latency=self.latency[rows].sum(axis=0),
            histogram=None if self.histogram is None else self.histogram[rows].sum(axis=0),
            exact=exact,
        )
