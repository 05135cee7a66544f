"""What a runner tells the agent over HTTP: the body of `GET /v2/health/ready` and the metric names
the agent's post-activation gate reads from `/metrics`.

The gate judges the release, not the plant, so readiness names each bound source and says whether
it is merely unreachable or stale (the plant: a stopped line, a PLC switched off) or whether its
server refused what the release asked for — a node id, a topic, a register, a credential. Both
sides import this module; the agent parses the body bounded, as it parses anything from a socket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from compiler.bundle.boundedjson import loads_bounded

LIVE_PATH = "/v2/health/live"
READY_PATH = "/v2/health/ready"
METRICS_PATH = "/metrics"
MAX_READY_BYTES = 64 << 10  # a runner with a few hundred sources; anything larger is not a runner
MAX_METRICS_BYTES = 4 << 20  # a few thousand series (drift per feature); read no further
_MAX_TEXT = 300

# The metric families the gate reads (text format names, as prometheus_client renders them).
FRAMES = "takt_runner_frames_total"
INFERENCES = "takt_runner_inferences_total"
INFERENCE_ERRORS = "takt_runner_inference_errors_total"
SKIPPED_FRAMES = "takt_runner_skipped_frames_total"
INFERENCE_SECONDS = "takt_runner_inference_seconds"
SOURCE_CONNECTED = "takt_runner_source_connected"
DRIFT_PSI = "takt_runner_drift_psi"
# a shadow challenger beside the model (runner/shadow.py), labelled by the challenger's bundle digest
SHADOW_PREFIX = "takt_runner_shadow_"
SHADOW_FRAMES = SHADOW_PREFIX + "frames"  # a counter: exposed as …_total
SHADOW_AGREEMENT = SHADOW_PREFIX + "agreement"
SHADOW_ABS_DIFF_MEAN = SHADOW_PREFIX + "abs_diff_mean"
SHADOW_ABS_DIFF_P99 = SHADOW_PREFIX + "abs_diff_p99"
SHADOW_ERROR_RATE = SHADOW_PREFIX + "error_rate"
SHADOW_INFERENCE_P99_MS = SHADOW_PREFIX + "inference_p99_ms"


@dataclass(frozen=True)
class SourceReadiness:
    """One bound source: connected, every field fresh, and what its server refused (None: nothing)."""

    name: str
    connected: bool
    fresh: bool
    refused: str | None = None  # e.g. "node id nsu=…;s=X: BadNodeIdUnknown", "credentials: not authorized"


@dataclass(frozen=True)
class Readiness:
    ready: bool
    sources: tuple[SourceReadiness, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "sources": [
                {"name": s.name, "connected": s.connected, "fresh": s.fresh, "refused": _clip(s.refused)}
                for s in self.sources
            ],
        }

    @classmethod
    def parse(cls, data: bytes) -> Readiness:
        """The body, or ValueError: bounded in size and depth before it is parsed."""
        doc = loads_bounded(data, max_bytes=MAX_READY_BYTES, max_depth=4, what="readiness")
        if not isinstance(doc, dict) or not isinstance(doc.get("ready"), bool):
            raise ValueError("readiness is not an object with a boolean ready")
        sources = doc.get("sources", [])
        if not isinstance(sources, list):
            raise ValueError("readiness sources is not a list")
        out = []
        for s in sources:
            if not isinstance(s, dict) or not isinstance(s.get("name"), str):
                raise ValueError("a readiness source has no name")
            refused = s.get("refused")
            out.append(
                SourceReadiness(
                    _clip(s["name"]) or "",
                    s.get("connected") is True,
                    s.get("fresh") is True,
                    _clip(refused) if isinstance(refused, str) else None,
                )
            )
        return cls(doc["ready"], tuple(out))


def _clip(text: str | None) -> str | None:
    return text if text is None or len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "…"
