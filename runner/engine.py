"""Frames → inference → outputs, woken by every committed change of the Table.

A frame is the latest value of every bound field. Stale, bad-quality or NaN inputs skip the
inference (counted by reason); out-of-range values are counted and mark the outputs uncertain.
Updates that arrive while a frame is inferred coalesce into the next frame: the model always
sees the newest values, and a burst never queues up work.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

import frames
from compiler.bundle import runner as contract
from runner.model import LoadedModel
from runner.outputs.base import Delivery, Output
from runner.shadow import Challenger
from runner.table import Table

DRIFT_MIN_VALUES = 100


@dataclass(frozen=True)
class _BoundField:
    source: str
    field: str
    range: tuple[float, float] | None
    feature: str | None  # the model feature it feeds (for drift), None for tensor inputs


@dataclass(frozen=True)
class _BoundInput:
    spec: frames.InputSpec
    source: str
    fields: tuple[_BoundField, ...]
    nan_ok: bool


def _jsonable(value: np.ndarray) -> Any:
    out = value.tolist()
    while isinstance(out, list) and len(out) == 1:
        out = out[0]
    return out


class Engine:
    def __init__(self, config: contract.RunnerConfig, model: LoadedModel, table: Table, outputs: list[Output],
                 metrics: Any) -> None:  # fmt: skip
        self.config, self.model, self.table, self.outputs, self.metrics = config, model, table, outputs, metrics
        tensors = {t.name: t for t in config.model.inputs}
        self.pipeline = frames.Pipeline.from_steps(config.model.preprocessing, [t.name for t in config.model.inputs])
        self.stream = self.pipeline.stream()
        self.dtypes = {t.name: t.dtype for t in config.model.inputs}
        self.inputs: list[_BoundInput] = []
        for b in config.bindings:
            source = config.sources[b.source]
            by_name = {f.name: f for f in source.fields}
            tensor = tensors[b.input]
            names = tensor.columns if b.layout == "features" and len(tensor.columns) == len(b.fields) else ()
            bound = tuple(
                _BoundField(b.source, f, by_name[f].range, names[i] if names else None) for i, f in enumerate(b.fields)
            )
            spec = frames.InputSpec(b.input, tuple(b.fields), tensor.dtype, b.layout)
            self.inputs.append(_BoundInput(spec, b.source, bound, self.pipeline.accepts_missing(b.input)))
        self.drift: dict[str, frames.RollingPSI] = {}
        monitor = config.monitoring.drift
        if config.reference is not None and monitor is not None:
            for ref in config.reference.features:
                bins = frames.ReferenceBins(ref.edges, ref.fractions)
                self.drift[ref.name] = frames.RollingPSI(bins, monitor.window, DRIFT_MIN_VALUES)
        self.threshold = monitor.threshold if monitor is not None else math.inf
        self.hot = metrics.hot
        for i in self.inputs:
            for f in i.fields:
                self.hot.out_of_range.setdefault(f.field, 0)
        self.last: dict[str, np.ndarray] = {}  # the last outputs, for tests and the HTTP view
        self.challenger: Challenger | None = None  # a shadow challenger: fed these frames, never written

    def bound_sources(self) -> set[str]:
        return {i.source for i in self.inputs}

    async def run(self) -> None:
        table = self.table
        while True:
            await table.changed.wait()
            table.changed.clear()
            version = table.version
            self.step(table.clock())
            table.processed = version
            await asyncio.sleep(0)  # let sources and HTTP run between frames

    def step(self, now: float) -> bool:
        """One frame from the latest values; True when the model ran."""
        uncertain = False
        feeds: dict[str, np.ndarray] = {}
        sources = self.table.sources
        for bi in self.inputs:
            columns: dict[str, Any] = {}
            st = sources[bi.source]
            for bf in bi.fields:
                if not self.table.fresh(bf.source, bf.field, now):
                    f = st.fields[bf.field]
                    bad = st.connected and f.value is not None and not f.good
                    self.hot.skipped["bad-quality" if bad else "stale"] += 1
                    return False
                value = st.fields[bf.field].value
                if isinstance(value, np.ndarray):
                    if not bi.nan_ok and np.isnan(value).any():
                        self.hot.skipped["nan"] += 1
                        return False
                    columns[bf.field] = value[None, ...]
                    continue
                if value != value and not bi.nan_ok:  # NaN
                    self.hot.skipped["nan"] += 1
                    return False
                if bf.range is not None and not bf.range[0] <= value <= bf.range[1]:
                    self.hot.out_of_range[bf.field] += 1
                    uncertain = True
                columns[bf.field] = (value,)
            feeds.update(frames.assemble([bi.spec], columns))
        self.hot.frames += 1
        for bi in self.inputs:
            for bf in bi.fields:
                if bf.feature in self.drift:
                    self.drift[bf.feature].add(float(sources[bf.source].fields[bf.field].value), now)
        raw = feeds
        ready = self.stream.push(feeds)
        if ready is None:
            return False
        feeds = frames.cast(ready, self.dtypes)
        t0 = time.perf_counter()
        try:
            out = self.model.run(feeds)
        except Exception:  # noqa: BLE001 - a value the model rejects must not stop the loop
            self.hot.inference_errors += 1
            self.hot.skipped["error"] += 1
            return False
        hot = self.hot
        hot.observe(time.perf_counter() - t0)
        hot.inferences += 1
        if uncertain:
            hot.uncertain += 1
        self.last = out
        stamp = time.time()
        for o in self.outputs:
            value = out.get(o.source)
            if value is not None:
                o.submit(Delivery(_jsonable(value), uncertain, stamp))
        if self.challenger is not None:  # after the outputs: the line never waits for the challenger
            self.challenger.observe(raw, out)
        return True

    def drift_values(self, now: float) -> dict[str, float | None]:
        values = {name: r.value(now) for name, r in self.drift.items()}
        for name, v in values.items():
            self.metrics.drift_psi.labels(name).set(v if v is not None else math.nan)
        drifting = any(v is not None and v > self.threshold for v in values.values())
        self.metrics.drift.set(1 if drifting else 0)
        return values

    def drifting(self, now: float) -> bool:
        return any(v is not None and v > self.threshold for v in self.drift_values(now).values())
