"""Reading one runner over HTTP: its readiness (which source is down, which one refused) and its
/metrics, summarised as a RunnerHealth. Everything from the socket is bounded before it is parsed."""

from __future__ import annotations

import math
import urllib.error
import urllib.request
from dataclasses import dataclass

from agent.runners import RunnerSpec
from compiler.bundle import readiness as rd
from compiler.bundle.report import RunnerHealth, ShadowHealth

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1: never through a proxy


def _get(url: str, limit: int, timeout: float) -> tuple[int, bytes]:
    try:
        with _OPENER.open(url, timeout=timeout) as resp:
            code, body = resp.status, resp.read(limit + 1)
    except urllib.error.HTTPError as exc:
        code, body = exc.code, exc.read(limit + 1)
    if len(body) > limit:
        raise ValueError(f"{url}: more than {limit} bytes")
    return code, body


@dataclass(frozen=True)
class Probe:
    live: bool  # the runner's loop answered
    readiness: rd.Readiness | None
    error: str = ""  # why there is no readiness (no answer, a malformed body)


def probe(host: str, spec: RunnerSpec, timeout: float = 1.0) -> Probe:
    try:
        code, body = _get(f"http://{host}:{spec.port}{rd.READY_PATH}", rd.MAX_READY_BYTES, timeout)
    except (OSError, ValueError) as exc:
        return Probe(False, None, f"no answer on port {spec.port} ({getattr(exc, 'reason', exc)})"[:300])
    try:
        state = rd.Readiness.parse(body)
    except ValueError as exc:
        return Probe(True, None, f"HTTP {code} with an unreadable readiness body ({str(exc)[:120]})")
    return Probe(True, state)


def histogram_quantile(buckets: list[tuple[float, float]], q: float) -> tuple[float, float, float] | None:
    """The q-quantile of a Prometheus histogram's cumulative (le, count) buckets, as Prometheus's own
    histogram_quantile estimates it: linear interpolation inside the bucket that holds the q-th
    observation. Returns (estimate, bucket lower bound, bucket upper bound) in the histogram's unit;
    None without observations. In the +Inf bucket the estimate is the largest finite bound (a floor)."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if not math.isfinite(le):
                return lower, lower, le
            inside = count - below
            share = (rank - below) / inside if inside > 0 else 1.0
            return lower + (le - lower) * share, lower, le
        lower, below = le, count
    return None


@dataclass(frozen=True)
class Counters:
    frames: int = 0
    inferences: int = 0
    errors: int = 0
    skipped: dict[str, int] | None = None
    p99_ms: float | None = None
    p95: tuple[float, float, float] | None = None  # seconds: (estimate, bucket from, bucket to), histogram_quantile
    timed: int = 0  # inferences in the latency histogram (the p95's sample size)
    drift_max: float | None = None
    shadow: ShadowHealth | None = None  # a challenger's figures, when the runner has one

    @property
    def error_rate(self) -> float | None:
        runs = self.inferences + self.errors
        return self.errors / runs if runs else None


def counters(host: str, spec: RunnerSpec, timeout: float = 2.0) -> Counters:
    """The gate's figures from /metrics, parsed by prometheus_client's own parser; ValueError if unreadable."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        _, body = _get(f"http://{host}:{spec.port}{rd.METRICS_PATH}", rd.MAX_METRICS_BYTES, timeout)
    except OSError as exc:
        raise ValueError(f"no metrics on port {spec.port} ({getattr(exc, 'reason', exc)})") from None
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    try:
        for family in text_string_to_metric_families(body.decode("utf-8", "replace")):
            for s in family.samples:
                samples.setdefault(s.name, []).append((s.labels, s.value))
    except (ValueError, TypeError, IndexError) as exc:
        raise ValueError(f"unreadable metrics ({str(exc)[:120]})") from None

    def total(name: str) -> int:
        return int(sum(v for _, v in samples.get(name, []) if math.isfinite(v)))

    skipped = {labels.get("reason", ""): int(v) for labels, v in samples.get(rd.SKIPPED_FRAMES, [])}
    buckets = sorted(
        (float(labels["le"]), v) for labels, v in samples.get(rd.INFERENCE_SECONDS + "_bucket", []) if "le" in labels
    )
    # p99 as the upper bound of the bucket that holds it (a ceiling, as reports have always said it;
    # none when it lies in +Inf); the gate's p95 is the interpolated estimate inside its bucket
    q99 = histogram_quantile(buckets, 0.99)
    p99 = q99[2] * 1e3 if q99 is not None and math.isfinite(q99[2]) else None
    drift = [v for _, v in samples.get(rd.DRIFT_PSI, []) if math.isfinite(v)]

    def gauge(name: str) -> float | None:
        values = [v for _, v in samples.get(name, []) if math.isfinite(v)]
        return values[0] if values else None

    challengers = [labels.get("challenger", "") for labels, _ in samples.get(rd.SHADOW_FRAMES + "_total", [])]
    shadow = (
        ShadowHealth(
            challenger=challengers[0],
            frames=total(rd.SHADOW_FRAMES + "_total"),
            agreement=gauge(rd.SHADOW_AGREEMENT),
            mean_abs_diff=gauge(rd.SHADOW_ABS_DIFF_MEAN),
            p99_abs_diff=gauge(rd.SHADOW_ABS_DIFF_P99),
            inference_p99_ms=gauge(rd.SHADOW_INFERENCE_P99_MS),
            error_rate=gauge(rd.SHADOW_ERROR_RATE),
        )
        if challengers and len(challengers[0]) == 64
        else None
    )
    return Counters(
        frames=total(rd.FRAMES),
        inferences=total(rd.INFERENCES),
        errors=total(rd.INFERENCE_ERRORS),
        skipped=skipped,
        p99_ms=p99,
        p95=histogram_quantile(buckets, 0.95),
        timed=int(buckets[-1][1]) if buckets else 0,
        drift_max=max(drift) if drift else None,
        shadow=shadow,
    )


def not_ready_because(p: Probe) -> tuple[str, str | None]:
    """Why a probed runner is not ready, and the source that makes it so (None: the runner itself)."""
    if p.readiness is None:
        return p.error or "not answering", None
    for s in p.readiness.sources:
        if s.refused:
            return f"source {s.name} refused by its server: {s.refused}", s.name
    for s in p.readiness.sources:
        if not s.connected:
            return f"source {s.name} is not connected", s.name
        if not s.fresh:
            return f"source {s.name} is stale", s.name
    return "not ready", None


def health_of(spec: RunnerSpec, p: Probe, c: Counters | None, died: str | None = None) -> RunnerHealth:
    ready = p.readiness is not None and p.readiness.ready and died is None
    reason = "" if ready else (f"runner died: {died}" if died else not_ready_because(p)[0])
    c = c or Counters()
    return RunnerHealth(
        deployment=spec.deployment,
        bundle=spec.bundle,
        ready=ready,
        live=p.live and died is None,
        reason=reason,
        frames=c.frames,
        inferences=c.inferences,
        errors=c.errors,
        error_rate=c.error_rate,
        inference_p99_ms=c.p99_ms,
        drift_psi_max=c.drift_max,
        shadow=c.shadow,
    )
