"""Bounded memory for model tests: the budget, batch sizes within it, and a seeded sample of a stream.

`RowSample` keeps the rows of a stream with the `k` smallest seeded random keys: while the stream has
at most `k` rows it keeps every one (in order), so the statistics computed from it are exact; past
that it is a uniform sample of `k` rows and each statistic states its bound — by the
Dvoretzky–Kiefer–Wolfowitz inequality the sample's empirical CDF is within
ε = sqrt(ln(2/δ) / 2k) of the stream's everywhere, with probability 1 − δ.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_MEMORY = 1 << 30
DELTA = 1e-3  # the probability a stated sketch bound may be exceeded
MIN_BATCH, MAX_BATCH = 1024, 65_536

_UNITS = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "ki": 1 << 10, "mi": 1 << 20, "gi": 1 << 30, "ti": 1 << 40}


def parse_memory(text: str) -> int:
    """'1GiB', '512MiB', '2G', '800m' or plain bytes; ValueError for anything else or under 16 MiB."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]i?)?b?\s*", text.lower())
    if not m:
        raise ValueError(f"{text!r} is not a size (e.g. 1GiB, 512MiB)")
    size = int(float(m.group(1)) * _UNITS[m.group(2) or ""])
    if size < 16 << 20:
        raise ValueError(f"{text!r} is under the 16 MiB a test needs")
    return size


def batch_rows(memory: int, columns: int) -> int:
    """Rows per record batch: a small share of the budget (float64 per column, copies on the way)."""
    return int(min(MAX_BATCH, max(MIN_BATCH, memory // (64 * 8 * max(columns, 1)))))


def sample_capacity(memory: int, columns: int, share: float) -> int:
    """Rows a sample of `columns` float64 columns may keep in `share` of the budget (x3 for merging)."""
    per_row = 8 * max(columns, 1) + 16  # values, key and row index
    return max(MIN_BATCH, int(memory * share) // (3 * per_row))


def dkw_bound(k: int, delta: float = DELTA) -> float:
    return math.sqrt(math.log(2 / delta) / (2 * k))


@dataclass(frozen=True)
class Computation:
    """How a statistic was computed, for the JSON and HTML results."""

    rows: int  # rows the statistic stands for
    method: str  # exact | sketch | head (the first rows: a windowed model's invariance past the budget)
    sample_rows: int | None = None  # rows of the sample behind a sketch
    bound: float | None = None  # ε: sup |F_sample − F| ≤ ε with probability 1 − delta
    delta: float | None = None

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"rows": self.rows, "method": self.method}
        if self.method == "sketch":
            d.update(sampleRows=self.sample_rows, cdfBound=self.bound, delta=self.delta)
        return d


class RowSample:
    """A seeded uniform sample of at most `k` rows of named columns (see the module)."""

    def __init__(self, k: int, seed: int = 0) -> None:
        self.k = k
        self.seen = 0
        self._rng = np.random.default_rng(seed)
        self._parts: list[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]] = []
        self._held = 0

    def add(self, batch: Mapping[str, np.ndarray]) -> None:
        n = len(next(iter(batch.values()))) if batch else 0
        if n == 0:
            return
        keys = self._rng.random(n)
        index = np.arange(self.seen, self.seen + n)
        self.seen += n
        self._parts.append((keys, index, {k: np.asarray(v) for k, v in batch.items()}))
        self._held += n
        if self._held > 2 * self.k:
            self._shrink()

    def _merged(self) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        if len(self._parts) == 1:
            return self._parts[0]
        keys = np.concatenate([p[0] for p in self._parts])
        index = np.concatenate([p[1] for p in self._parts])
        names = self._parts[0][2].keys()
        cols = {c: np.concatenate([p[2][c] for p in self._parts]) for c in names}
        return keys, index, cols

    def _shrink(self) -> None:
        keys, index, cols = self._merged()
        if keys.size > self.k:
            keep = np.sort(np.argpartition(keys, self.k - 1)[: self.k])  # still in stream order
            keys, index, cols = keys[keep], index[keep], {c: v[keep] for c, v in cols.items()}
        self._parts = [(keys, index, cols)]
        self._held = keys.size

    @property
    def exact(self) -> bool:
        return self.seen <= self.k

    def columns(self) -> dict[str, np.ndarray]:
        """The kept rows in stream order: every row while the stream has at most k."""
        if not self._parts:
            return {}
        self._shrink()
        return dict(self._parts[0][2])

    def computation(self) -> Computation:
        if self.exact:
            return Computation(self.seen, "exact")
        return Computation(self.seen, "sketch", self.k, dkw_bound(self.k), DELTA)


def window_batches(
    batches: Iterable[Mapping[str, np.ndarray]], size: int, stride: int
) -> Iterator[dict[str, np.ndarray]]:
    """Batches re-cut for a windowed model: the windows of `size` rows every `stride` rows taken within each
    yielded batch (ending at its rows size-1, size-1+stride, …) are the stream's windows, each exactly once.

    Each batch carries the rows of the previous one that the next window still needs (fewer than
    size + stride), so memory stays one batch plus that tail. A stream shorter than one window is
    yielded whole, once, for the model to refuse in its own words.
    """
    carry: dict[str, np.ndarray] | None = None
    skip = 0  # rows a stride longer than the batch's tail jumps over
    yielded = False
    for batch in batches:
        part = {k: np.asarray(v) for k, v in batch.items()}
        if skip:
            drop = min(skip, _rows(part))
            part, skip = {k: v[drop:] for k, v in part.items()}, skip - drop
        if not _rows(part):
            continue
        buf = part if carry is None else {k: np.concatenate([carry[k], part[k]]) for k in part}
        n = _rows(buf)
        made = len(range(size - 1, n, stride))
        if made == 0:
            carry = buf
            continue
        yield buf
        yielded = True
        cut = made * stride  # where the next window starts
        carry, skip = ({k: v[cut:] for k, v in buf.items()}, 0) if cut < n else (None, cut - n)
    if not yielded and carry is not None:
        yield carry


def _rows(batch: Mapping[str, np.ndarray]) -> int:
    return len(next(iter(batch.values()))) if batch else 0
