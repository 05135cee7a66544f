"""The runner's Prometheus metrics (`takt_runner_*`), in a registry of its own (no global state).

What changes on every frame (frames, inferences, the latency histogram, skips, out-of-range
values) is kept as plain integers in `HotStats` and turned into metric families only when
/metrics is scraped: a prometheus_client increment takes a lock and ~2 µs, which the per-inference
overhead budget (50 µs) cannot spend four times over.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from compiler.bundle import readiness as rd

LATENCY_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


SKIP_REASONS = ("stale", "bad-quality", "nan", "error")


class HotStats:
    """Per-frame counts, owned by the engine's loop (one thread: no locks)."""

    __slots__ = ("frames", "inference_errors", "inferences", "latency", "latency_sum", "out_of_range", "skipped",
                 "uncertain")  # fmt: skip

    def __init__(self) -> None:
        self.frames = self.inferences = self.inference_errors = self.uncertain = 0
        self.skipped = dict.fromkeys(SKIP_REASONS, 0)
        self.out_of_range: dict[str, int] = {}
        self.latency = [0] * (len(LATENCY_BUCKETS) + 1)  # the last: above every bucket
        self.latency_sum = 0.0

    def observe(self, seconds: float) -> None:
        self.latency[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum += seconds


class _HotCollector:
    def __init__(self, hot: HotStats) -> None:
        self.hot = hot

    def collect(self) -> Iterator[Metric]:
        h, p = self.hot, "takt_runner_"

        def family(sample: str) -> str:  # the agent's gate reads the samples
            return sample.removesuffix("_total")

        yield CounterMetricFamily(family(rd.FRAMES), "Frames assembled from the latest field values", value=h.frames)
        yield CounterMetricFamily(family(rd.INFERENCES), "Model runs on live frames", value=h.inferences)
        yield CounterMetricFamily(family(rd.INFERENCE_ERRORS), "Model runs that raised", value=h.inference_errors)
        yield CounterMetricFamily(p + "uncertain_outputs", "Outputs marked uncertain (an input out of range)",
                                  value=h.uncertain)  # fmt: skip
        skipped = CounterMetricFamily(family(rd.SKIPPED_FRAMES), "Frames not inferred, by reason", labels=["reason"])
        for reason, n in h.skipped.items():
            skipped.add_metric([reason], n)
        yield skipped
        oor = CounterMetricFamily(p + "out_of_range", "Field values outside their valid range", labels=["field"])
        for name, n in sorted(h.out_of_range.items()):
            oor.add_metric([name], n)
        yield oor
        cumulative, buckets = 0, []
        for bound, n in zip((*map(str, LATENCY_BUCKETS), "+Inf"), h.latency, strict=True):
            cumulative += n
            buckets.append((bound, cumulative))
        yield HistogramMetricFamily(rd.INFERENCE_SECONDS, "onnxruntime run time per frame", buckets=buckets,
                                    sum_value=h.latency_sum)  # fmt: skip


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    hot: HotStats
    rejected: Counter
    output_sent: Counter
    output_dropped: Counter
    output_errors: Counter
    connected: Gauge
    ready: Gauge
    drift_psi: Gauge
    drift: Gauge

    @classmethod
    def create(cls) -> Metrics:
        r = CollectorRegistry(auto_describe=True)
        p = "takt_runner_"
        hot = HotStats()
        r.register(_HotCollector(hot))
        return cls(
            registry=r,
            hot=hot,
            rejected=Counter(
                p + "rejected_values", "Values from the wire that could not be used", ["source", "reason"], registry=r
            ),
            output_sent=Counter(p + "output_sent", "Values delivered, per output", ["output"], registry=r),
            output_dropped=Counter(
                p + "output_dropped", "Values dropped by a full output queue (oldest first)", ["output"], registry=r
            ),
            output_errors=Counter(p + "output_errors", "Delivery attempts that failed", ["output"], registry=r),
            connected=Gauge(rd.SOURCE_CONNECTED, "1 while the source is connected", ["source"], registry=r),
            ready=Gauge(p + "ready", "1 when the model is loaded and every source connected and fresh", registry=r),
            drift_psi=Gauge(rd.DRIFT_PSI, "PSI of the rolling window vs the reference", ["feature"], registry=r),
            drift=Gauge(p + "drift", "1 while some feature's PSI is past the monitoring threshold", registry=r),
        )
