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

from compiler.testing.dataset_types import DEFAULT_MEMORY as DEFAULT_MEMORY  # named from here by the test runner

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


@dataclass(frozen=True)
class Budget:
    """`--memory` split across what one test holds at once. Tests run one after another, so each may use
    it all; within a test the shares add up to 7/8 of it, the last 1/8 is the allocators' slack:

    - `BATCH` (1/8): one record batch in flight — the Parquet read buffers, Arrow's decoded batch, its
      numpy columns, the model's feeds and outputs (≈ 64 bytes a row per column on the way);
    - `KEEP` (1/2): the rows a test keeps — drift's reference sample (and KS's candidate sample),
      invariance's rows, the (prediction, truth) pairs of a bootstrap — split between the samples it
      holds at once;
    - `WORK` (1/4): what a test computes over the kept rows — invariance's noisy copies and
      predictions, a bootstrap's resample indices and resampled arrays.

    The process itself (interpreter, numpy, pyarrow, onnxruntime, the model's session, CSV's 1 MiB
    blocks) is a fixed baseline on top, measured by `bench/bench_test_data.py`.
    """

    total: int

    BATCH = 1 / 8
    KEEP = 1 / 2
    WORK = 1 / 4

    def batch_rows(self, columns: int) -> int:
        """Rows per record batch of `columns` columns."""
        return int(min(MAX_BATCH, max(MIN_BATCH, self.total * self.BATCH // (64 * max(columns, 1)))))

    def read_buffer(self, columns: int) -> int:
        """Bytes of each Parquet column chunk read at a time (a quarter of the batch share across columns)."""
        return int(min(1 << 20, max(64 << 10, self.total * self.BATCH // (4 * max(columns, 1)))))

    def sample_rows(self, columns: int, samples: int = 1) -> int:
        """Rows each of `samples` samples of `columns` float64 columns held at once may keep."""
        return sample_capacity(self.total, columns, self.KEEP / samples)

    def pair_rows(self) -> int:
        """(prediction, truth) pairs a bootstrap may hold: 16 bytes each, twice while they are joined."""
        return int(self.total * self.KEEP) // 32

    def model_rows(self, row_bytes: int) -> int:
        """Rows the model runs on at once: their feeds within the batch share, with room for 8 times their
        size in the model's activations and outputs (one call per batch, not per 256 rows: onnxruntime's
        per-call cost was most of a test's time)."""
        return int(min(MAX_BATCH, max(1, self.total * self.BATCH // (8 * max(row_bytes, 1)))))

    def resample_values(self, arrays: int) -> int:
        """Resample indices drawn at a time: int64 each, and each array gathered by them (8 bytes a value)."""
        return max(1, int(self.total * self.WORK) // (8 * (1 + arrays)))


def batch_rows(memory: int, columns: int) -> int:
    """Rows per record batch within `memory` (see `Budget.batch_rows`)."""
    return Budget(memory).batch_rows(columns)


def sample_capacity(memory: int, columns: int, share: float) -> int:
    """Rows a sample of `columns` float64 columns may keep in `share` of the budget: `RowSample` holds at
    most 3 rows for each it keeps (new rows up to 2k, then the kept k while they are cut down column by column)."""
    per_row = 8 * max(columns, 1) + 16  # values, key, 8 B spare (a row index once: kept, k decides results)
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
        self._parts: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []  # (keys, columns), in stream order
        self._held = 0
        self._cut: float | None = None  # the k-th smallest key once k rows are kept

    def add(self, batch: Mapping[str, np.ndarray]) -> None:
        n = len(next(iter(batch.values()))) if batch else 0
        if n == 0:
            return
        keys = self._rng.random(n)
        self.seen += n
        cols = {k: np.asarray(v) for k, v in batch.items()}
        if self._cut is not None:  # a row above the k-th smallest key so far can never be kept
            keep = keys < self._cut
            keys, cols = keys[keep], {k: v[keep] for k, v in cols.items()}
        self._parts.append((keys, cols))
        self._held += keys.size
        if self._held > 2 * self.k:
            self._shrink()

    def _shrink(self) -> None:
        """Keep the rows of the k smallest keys, in stream order; merged and cut one column at a time, each
        part's column released as it is merged, so the peak stays near 3 rows for each kept."""
        parts, self._parts = self._parts, []
        keys = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
        keep = np.sort(np.argpartition(keys, self.k - 1)[: self.k]) if keys.size > self.k else None

        def merged(column: list[np.ndarray]) -> np.ndarray:
            whole = np.concatenate(column) if len(column) > 1 else column[0]
            column.clear()
            return whole if keep is None else whole[keep]

        names = list(parts[0][1])
        cols = {}
        for name in names:
            cols[name] = merged([p[1].pop(name) for p in parts])
        keys = keys if keep is None else keys[keep]
        if keep is not None:
            self._cut = float(keys.max())
        self._parts = [(keys, cols)]
        self._held = keys.size

    @property
    def exact(self) -> bool:
        return self.seen <= self.k

    def columns(self) -> dict[str, np.ndarray]:
        """The kept rows in stream order: every row while the stream has at most k."""
        if not self._parts:
            return {}
        self._shrink()
        return dict(self._parts[0][1])

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
