"""A shadow challenger: the new model fed the current model's frames, compared, never written anywhere.

The runner of a device in a shadow rollout loads the challenger bundle beside its current one
(`--shadow shadow.json`). Every frame the current model infers is preprocessed by the challenger's
own pipeline and run by it after the current outputs are submitted (so the line's latency is the
current model's alone); the challenger has no outputs at all — there is no object through which
it could write. Agreement is counted over the outputs the Deployment writes (or, without any, all
outputs both models have): a label or integer output agrees when equal, a float output when the
absolute difference is at most the rollout's tolerance, and float differences feed the mean and
p99 in the output's unit. The figures are what `ShadowHealth` in the device's report carries.

The gauges (agreement, mean and p99 difference, error rate, latency p99) cover the sliding window
the rollout declares (`shadow.window`), so an old disagreement ages out exactly as the gate
expects; the counters stay totals since the start, as Prometheus counters must. The window is
kept as WINDOW_BUCKETS time buckets (see runner.shadow_window), so memory does not grow with the
frame rate or the window's length.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

import frames
from compiler.bundle import readiness as rd
from compiler.bundle import runner as contract
from compiler.bundle.report import ShadowHealth
from runner.errors import StartError
from runner.metrics import LATENCY_BUCKETS, HotStats
from runner.model import LoadedModel, load_model
from runner.shadow_window import SlidingWindow


def read_entry(path: Path) -> contract.ShadowEntry:
    try:
        with path.open("rb") as fh:
            data = fh.read(contract.MAX_SHADOW_BYTES + 1)
    except OSError as exc:
        raise StartError(str(path), f"cannot read the shadow entry ({exc.strerror or exc})") from None
    try:
        return contract.ShadowEntry.parse(data)
    except contract.ContractError as exc:
        raise StartError(str(path), str(exc)) from None


class Challenger:
    """Counts and compares; owned by the engine's loop (one thread, no locks)."""

    def __init__(self, entry: contract.ShadowEntry, config: contract.RunnerConfig, model: LoadedModel,
                 current: contract.RunnerConfig, clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.entry, self.config, self.model = entry, config, model
        mine = {t.name: t.dtype for t in config.model.inputs}
        theirs = {t.name: t.dtype for t in current.model.inputs}
        if mine != theirs:
            raise StartError("shadow", f"the challenger takes inputs {mine}, the current model {theirs}")
        written = [o.from_ for o in current.outputs] or [t.name for t in current.model.outputs]
        available = {t.name: t.dtype for t in config.model.outputs}
        self.compared = tuple(dict.fromkeys(n for n in written if n in available))
        if not self.compared:
            raise StartError("shadow", "the challenger has none of the outputs the current model writes")
        self.labels = {n: not available[n].startswith(("float", "bfloat")) for n in self.compared}
        self.pipeline = frames.Pipeline.from_steps(config.model.preprocessing, [t.name for t in config.model.inputs])
        self.stream = self.pipeline.stream()
        self.dtypes = mine
        self.stats = HotStats()  # the challenger's own latency histogram and counts (totals)
        self.runs = self.errors = self.frames = 0  # totals since the start (the Prometheus counters)
        self.values = self.agreeing = 0
        self.clock = clock
        self.window = SlidingWindow(entry.window, len(LATENCY_BUCKETS) + 1)

    @classmethod
    def load(
        cls, entry_path: Path, current: contract.RunnerConfig, clock: Callable[[], float] = time.monotonic
    ) -> Challenger:
        """The challenger its entry names, checked against the current model (StartError otherwise)."""
        from runner.app import read_config

        entry = read_entry(entry_path)
        config_path = entry_path.parent / entry.config
        config = read_config(config_path)
        if config.deployment != current.deployment or entry.deployment != current.deployment:
            raise StartError(
                "shadow.deployment", f"the challenger is for {entry.deployment!r}, not {current.deployment!r}"
            )
        return cls(entry, config, load_model(config, config_path.parent), current, clock)

    def observe(self, raw: dict[str, np.ndarray], current: dict[str, np.ndarray]) -> None:
        """Run the challenger on the frame the current model just ran (`raw`: before preprocessing)."""
        ready = self.stream.push(raw)
        if ready is None:
            return
        self.frames += 1
        now = self.clock()
        t0 = time.perf_counter()
        try:
            out = self.model.run(frames.cast(ready, self.dtypes))
        except Exception:  # noqa: BLE001 - a challenger failing is a figure to report, never a stop
            self.errors += 1
            self.window.run(now, None)
            return
        seconds = time.perf_counter() - t0
        self.stats.observe(seconds)
        self.window.run(now, bisect_left(LATENCY_BUCKETS, seconds))
        self.runs += 1
        for name in self.compared:
            a, b = current.get(name), out.get(name)
            if a is None or b is None or np.shape(a) != np.shape(b):
                n = max(1, int(np.size(a)) if a is not None else 1)  # shape mismatch: disagrees
                self.values += n
                self.window.compare(now, n, 0)
                continue
            if self.labels[name]:
                n, agree = int(np.size(a)), int(np.count_nonzero(np.asarray(a) == np.asarray(b)))
                self.values += n
                self.agreeing += agree
                self.window.compare(now, n, agree)
                continue
            diff = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).ravel()
            agree = int(np.count_nonzero(diff <= self.entry.tolerance))
            self.values += diff.size
            self.agreeing += agree
            self.window.compare(now, diff.size, agree, diff)

    def agreement(self) -> float | None:
        """Share of the values compared within the window that agree."""
        return self.window.totals(self.clock()).agreement()

    def mean_abs_diff(self) -> float | None:
        return self.window.totals(self.clock()).mean_abs_diff()

    def p99_abs_diff(self) -> float | None:
        return self.window.totals(self.clock()).p99_abs_diff()

    def error_rate(self) -> float | None:
        return self.window.totals(self.clock()).error_rate()

    def inference_p99_ms(self) -> float | None:
        """The upper bound of the histogram bucket holding the window's 99th percentile (as Prometheus would say)."""
        latency = self.window.totals(self.clock()).latency
        total = int(latency.sum())
        if not total:
            return None
        seen = 0
        for bound, n in zip((*LATENCY_BUCKETS, float("inf")), latency.tolist(), strict=True):
            seen += n
            if seen >= 0.99 * total:
                return bound * 1000 if bound != float("inf") else None
        return None

    def health(self) -> ShadowHealth:
        """The report's figures, all over the window (`frames`: the frames compared in it)."""
        w = self.window.totals(self.clock())
        return ShadowHealth(
            challenger=self.entry.challenger,
            frames=w.frames,
            agreement=w.agreement(),
            mean_abs_diff=w.mean_abs_diff(),
            p99_abs_diff=w.p99_abs_diff(),
            inference_p99_ms=self.inference_p99_ms(),
            error_rate=w.error_rate(),
        )


class ShadowCollector:
    """`takt_runner_shadow_*` on /metrics, read from the challenger's counters at scrape time."""

    def __init__(self, challenger: Challenger) -> None:
        self.c = challenger

    def collect(self) -> Iterator[Metric]:
        c, p = self.c, rd.SHADOW_PREFIX
        labels = ["challenger"]
        digest = [c.entry.challenger]

        def gauge(name: str, doc: str, value: float | None) -> GaugeMetricFamily:
            g = GaugeMetricFamily(p + name, doc, labels=labels)
            g.add_metric(digest, math.nan if value is None else value)
            return g

        def counter(name: str, doc: str, value: int) -> CounterMetricFamily:
            m = CounterMetricFamily(p + name, doc, labels=labels)
            m.add_metric(digest, value)
            return m

        yield counter("frames", "Frames the challenger was fed", c.frames)
        yield counter("inferences", "Challenger runs that returned", c.runs)
        yield counter("inference_errors", "Challenger runs that raised", c.errors)
        yield counter("compared_values", "Output values compared with the current model's", c.values)
        yield counter("agreeing_values", "Compared values that agree (equal label, or within tolerance)", c.agreeing)
        yield gauge("agreement", "Share of compared values that agree", c.agreement())
        yield gauge("abs_diff_mean", "Mean absolute difference of float outputs, in the output's unit",
                    c.mean_abs_diff())  # fmt: skip
        yield gauge("abs_diff_p99", "99th percentile absolute difference of float outputs", c.p99_abs_diff())
        yield gauge("error_rate", "Challenger runs that raised, per attempt", c.error_rate())
        yield gauge("inference_p99_ms", "99th percentile of the challenger's inference time, ms", c.inference_p99_ms())
