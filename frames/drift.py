"""Reference quantile bins and the population stability index, at build time and on the line.

`reference_bins` fixes the bins once, from the reference data (each bin holds about the same share
of it); the bundle carries the interior edges and the reference's share per bin, so the runner
needs no reference data. `psi` and `RollingPSI` score candidate values against those bins, the
same numbers `takt test` reports.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

EPS = 1e-4  # share given to empty bins, so the logarithm stays finite


@dataclass(frozen=True)
class ReferenceBins:
    """Interior edges (bins [-inf, e0), [e0, e1), …, [e_last, inf], as np.histogram counts) and the
    reference's share of each."""

    edges: tuple[float, ...]
    fractions: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.fractions) != len(self.edges) + 1:
            raise ValueError(f"{len(self.edges)} edges make {len(self.edges) + 1} bins, not {len(self.fractions)}")
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("edges must increase strictly")

    def counts(self, values: np.ndarray) -> np.ndarray:
        finite = values[np.isfinite(values)]
        edges = np.concatenate(([-np.inf], np.asarray(self.edges, dtype=np.float64), [np.inf]))
        return np.histogram(finite, edges)[0]

    def bin_of(self, value: float) -> int:
        """The bin a single value falls in, as np.histogram counts it."""
        return int(np.searchsorted(np.asarray(self.edges), value, side="right")) if self.edges else 0

    def psi_counts(self, counts: np.ndarray, eps: float = EPS) -> float | None:
        total = counts.sum()
        if total == 0:
            return None
        r = np.asarray(self.fractions, dtype=np.float64)
        c = counts / total
        r = np.where(r == 0, eps, r)
        c = np.where(c == 0, eps, c)
        return float(np.sum((c - r) * np.log(c / r)))

    def psi(self, candidate: np.ndarray, eps: float = EPS) -> float | None:
        return self.psi_counts(self.counts(np.asarray(candidate, dtype=np.float64)), eps)


def reference_bins(reference: np.ndarray, bins: int = 10) -> ReferenceBins | None:
    """Quantile bins of the reference's finite values; None without any.

    Few distinct values: each becomes its own bin. A constant reference gets a bin of its own and
    one on either side, so a moved constant still shows as drift.
    """
    ref = np.asarray(reference, dtype=np.float64)
    ref = ref[np.isfinite(ref)]
    if ref.size == 0:
        return None
    q = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)))
    interior = q[1:-1] if q.size > 2 else q
    if q.size == 1:
        interior = np.array([q[0], np.nextafter(q[0], np.inf)])
    edges = np.concatenate(([-np.inf], interior, [np.inf]))
    fractions = np.histogram(ref, edges)[0] / ref.size
    return ReferenceBins(tuple(float(e) for e in interior), tuple(float(f) for f in fractions))


def psi(reference: np.ndarray, candidate: np.ndarray, bins: int = 10, eps: float = EPS) -> float | None:
    """PSI of candidate against the reference's quantile bins; None when either has no finite value."""
    ref_bins = reference_bins(reference, bins)
    return None if ref_bins is None else ref_bins.psi(np.asarray(candidate, dtype=np.float64), eps)


class RollingPSI:
    """PSI of the values seen in the last `window` seconds, kept as bin counts (memory ∝ values in window,
    one small int each). No figure until `min_count` values are in the window."""

    def __init__(self, bins: ReferenceBins, window: float, min_count: int = 100) -> None:
        self.bins, self.window, self.min_count = bins, window, min_count
        self._counts = np.zeros(len(bins.fractions), dtype=np.int64)
        self._seen: deque[tuple[float, int]] = deque()

    def add(self, value: float, now: float) -> None:
        if not np.isfinite(value):
            return
        b = self.bins.bin_of(value)
        self._counts[b] += 1
        self._seen.append((now, b))
        self._expire(now)

    def _expire(self, now: float) -> None:
        while self._seen and self._seen[0][0] < now - self.window:
            _, b = self._seen.popleft()
            self._counts[b] -= 1

    def value(self, now: float) -> float | None:
        self._expire(now)
        if len(self._seen) < self.min_count:
            return None
        return self.bins.psi_counts(self._counts)
