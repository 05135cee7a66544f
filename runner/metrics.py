"""The runner's Prometheus metrics (`takt_runner_*`), in a registry of its own (no global state)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    frames: Counter
    inferences: Counter
    inference_errors: Counter
    latency: Histogram
    skipped: Counter
    out_of_range: Counter
    uncertain: Counter
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
        return cls(
            registry=r,
            frames=Counter(p + "frames", "Frames assembled from the latest field values", registry=r),
            inferences=Counter(p + "inferences", "Model runs on live frames", registry=r),
            inference_errors=Counter(p + "inference_errors", "Model runs that raised", registry=r),
            latency=Histogram(
                p + "inference_seconds", "onnxruntime run time per frame", buckets=LATENCY_BUCKETS, registry=r
            ),
            skipped=Counter(p + "skipped_frames", "Frames not inferred, by reason", ["reason"], registry=r),
            out_of_range=Counter(p + "out_of_range", "Field values outside their valid range", ["field"], registry=r),
            uncertain=Counter(p + "uncertain_outputs", "Outputs marked uncertain (an input out of range)", registry=r),
            rejected=Counter(
                p + "rejected_values", "Values from the wire that could not be used", ["source", "reason"], registry=r
            ),
            output_sent=Counter(p + "output_sent", "Values delivered, per output", ["output"], registry=r),
            output_dropped=Counter(
                p + "output_dropped", "Values dropped by a full output queue (oldest first)", ["output"], registry=r
            ),
            output_errors=Counter(p + "output_errors", "Delivery attempts that failed", ["output"], registry=r),
            connected=Gauge(p + "source_connected", "1 while the source is connected", ["source"], registry=r),
            ready=Gauge(p + "ready", "1 when the model is loaded and every source connected and fresh", registry=r),
            drift_psi=Gauge(p + "drift_psi", "PSI of the rolling window vs the reference", ["feature"], registry=r),
            drift=Gauge(p + "drift", "1 while some feature's PSI is past the monitoring threshold", registry=r),
        )
