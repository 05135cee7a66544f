"""Test results for people and machines: terminal summary, JSON, JUnit XML and an HTML report.

The HTML report is one self-contained file (inline CSS and SVG, no scripts, no network), so
it can be attached to a CI run or a release as it is. Every text in it is escaped.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree as ET

from rich.text import Text

from compiler import __version__
from compiler.testing.runner import SuiteResult, TestResult

STATUS_STYLE = {"passed": "green", "failed": "red", "error": "magenta"}
_COUNTED = {"recall": "positives", "precision": "predicted positives"}


@dataclass(frozen=True)
class ReportProvenance:
    """Where a result comes from, for a reader who was not there: spec, models, machine, runtime, time."""

    spec_commit: str | None
    models: dict[str, tuple[str, str]]  # model name → (version, sha256)
    host: str
    machine: str  # CPU architecture and count, since latency is measured here, not on the target
    onnxruntime: str
    created: str  # ISO 8601, UTC

    @classmethod
    def here(cls, spec_commit: str | None, models: dict[str, tuple[str, str]]) -> ReportProvenance:
        import os
        import platform
        from datetime import UTC, datetime
        from importlib.metadata import version

        return cls(
            spec_commit,
            models,
            platform.node(),
            f"{platform.machine()}, {os.cpu_count()} cores",
            version("onnxruntime"),
            datetime.now(UTC).replace(microsecond=0).isoformat(),
        )


def verdict(r: TestResult) -> str:
    """The result in plain words, for a reader who does not know confidence bounds."""
    d = r.details
    if r.type == "metric" and r.value is not None and r.bound is not None and r.threshold is not None:
        higher = d.get("metric") not in ("mae", "rmse")  # as the runner judges them
        counted = _COUNTED.get(str(d.get("metric")), "samples")
        side, word = ("lower", "below") if higher else ("upper", "above")
        head = f"{d.get('metric')} {r.value:.3f} on {d.get('n')} {counted}"
        point_ok = r.value >= r.threshold if higher else r.value <= r.threshold
        if r.status == "passed":
            return (
                f"{head}: even the {side} {d.get('confidence', 0.95):.0%} bound, {r.bound:.3f}, meets {r.threshold:g}."
            )
        if point_ok:
            return (
                f"{head}: the {side} {d.get('confidence', 0.95):.0%} bound is {r.bound:.3f}, {word} {r.threshold:g}; "
                f"more {counted} are needed to show it."
            )
        return f"{head} is {word} {r.threshold:g} already as an estimate: the model does not meet it."
    if r.type == "latency":
        return "Measured on the build machine, not on the target: judge it against the target's own budget."
    return ""


def summary(suites: list[SuiteResult]) -> dict[str, int]:
    results = [r for s in suites for r in s.results]
    return {
        "suites": len(suites),
        "tests": len(results),
        "passed": sum(r.status == "passed" for r in results),
        "failed": sum(r.status == "failed" for r in results),
        "errors": sum(r.status == "error" for r in results) + sum(s.error is not None for s in suites),
        "blocking": sum(r.blocks for r in results) + sum(s.error is not None for s in suites),
    }


def text_lines(suites: list[SuiteResult]) -> Text:
    """One line per test, readable in a terminal and in a CI log alike."""
    mark = {"passed": ("✔", "green"), "failed": ("✖", "red"), "error": ("!", "magenta")}
    out = Text()
    for s in suites:
        out.append(f"{s.suite}", style="bold")
        out.append(f"  model {s.model}  ({s.file})\n", style="dim")
        if s.error:
            out.append("  ! ", style="magenta")
            out.append(f"cannot run: {s.error}\n")
        width = max((len(r.name) for r in s.results), default=0)
        for r in s.results:
            symbol, style = mark[r.status]
            if r.status != "passed" and not r.gate:
                style = "yellow"
            out.append(f"  {symbol} ", style=style)
            out.append(f"{r.name:<{width}}  {r.type:<10} ")
            if not r.gate:
                out.append("(not gating) ", style="dim")
            out.append(r.summary + "\n")
    return out


def _result_json(r: TestResult) -> dict[str, Any]:
    return {
        "name": r.name,
        "type": r.type,
        "gate": r.gate,
        "status": r.status,
        "summary": r.summary,
        "value": r.value,
        "bound": r.bound,
        "threshold": r.threshold,
        "seconds": round(r.seconds, 4),
        "details": r.details,
    }


def render_json(suites: list[SuiteResult]) -> str:
    return (
        json.dumps(
            {
                "version": 1,
                "tool": {"name": "takt", "version": __version__, "command": "test"},
                "summary": summary(suites),
                "suites": [
                    {
                        "suite": s.suite,
                        "model": s.model,
                        "file": s.file,
                        "passed": s.passed,
                        "error": s.error,
                        "datasets": s.datasets,
                        "tests": [_result_json(r) for r in s.results],
                    }
                    for s in suites
                ],
            },
            indent=2,
            allow_nan=False,
            default=lambda o: None,
        )
        + "\n"
    )


def render_junit(suites: list[SuiteResult]) -> str:
    """Gating failures are <failure>, test errors <error>; non-gating failures are <skipped> with the reason."""
    root = ET.Element("testsuites", name="takt test")
    for s in suites:
        el = ET.SubElement(
            root,
            "testsuite",
            name=s.suite,
            tests=str(len(s.results)),
            failures=str(sum(r.status == "failed" and r.gate for r in s.results)),
            errors=str(sum(r.status == "error" for r in s.results) + (s.error is not None)),
            skipped=str(sum(r.status != "passed" and not r.gate for r in s.results)),
            time=f"{sum(r.seconds for r in s.results):.3f}",
        )
        if s.error:
            case = ET.SubElement(el, "testcase", classname=f"takt.{s.suite}", name="load-model")
            ET.SubElement(case, "error", message=s.error).text = s.error
        for r in s.results:
            case = ET.SubElement(el, "testcase", classname=f"takt.{s.suite}", name=r.name, time=f"{r.seconds:.3f}")
            if r.status != "passed" and not r.gate:
                ET.SubElement(case, "skipped", message=f"non-gating {r.status}: {r.summary}")
            elif r.status == "failed":
                ET.SubElement(case, "failure", type=r.type, message=r.summary).text = r.summary
            elif r.status == "error":
                ET.SubElement(case, "error", type=r.type, message=r.summary).text = r.summary
            ET.SubElement(case, "system-out").text = r.summary
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# --- HTML with inline SVG --------------------------------------------------------------------------


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """`count` round values spanning [lo, hi] (1-2-5 steps), for readable axes."""
    import math

    span = hi - lo
    if span <= 0 or not math.isfinite(span):
        return [lo]
    raw = span / max(count - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step + 1e-9) + 1)]


def _axis(x: Callable[[float], float], ticks: list[float], y: float, unit: str = "") -> str:
    return "".join(
        f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{y:.1f}" y2="{y + 4:.1f}" stroke="#555"/>'
        f'<text x="{x(t):.1f}" y="{y + 14:.1f}" font-size="9" text-anchor="middle">{t:.4g}{unit}</text>'
        for t in ticks
    )


def _label_x(x: float, width: float, chars: int, char_px: float = 5.5) -> tuple[float, str]:
    """An x and text-anchor that keep a label of `chars` characters inside [0, width]."""
    if x + chars * char_px > width:
        return x - 3, "end"
    return x + 3, "start"


def _svg_histogram(counts: list[int], edges: list[float], budgets: dict[str, float]) -> str:
    """Latency histogram on the measured range; budgets far outside it are stated, not drawn."""
    w, h, pad = 420, 168, 24
    peak = max(counts) or 1
    lo, hi = edges[0], edges[-1]
    shown = {k: v for k, v in budgets.items() if v <= hi * 1.5}
    hi = max(hi, *shown.values()) if shown else hi
    span = (hi - lo) or 1.0

    def x(v: float) -> float:
        return pad + (v - lo) / span * (w - 2 * pad)

    bars = "".join(
        f'<rect x="{x(edges[i]):.1f}" y="{h - pad - c / peak * (h - 2 * pad - 12):.1f}" '
        f'width="{max(x(edges[i + 1]) - x(edges[i]) - 1, 1):.1f}" height="{c / peak * (h - 2 * pad - 12):.1f}" '
        f'fill="#4a78b5"/>'
        for i, c in enumerate(counts)
    )
    lines = []
    for n, (k, v) in enumerate(shown.items()):
        label = f"budget {k} {v:.3g} ms"
        lx, anchor = _label_x(x(v), w, len(label))
        lines.append(
            f'<line x1="{x(v):.1f}" x2="{x(v):.1f}" y1="14" y2="{h - pad}" stroke="#c0392b" stroke-dasharray="4"/>'
            f'<text x="{lx:.1f}" y="{24 + 11 * n}" font-size="10" text-anchor="{anchor}">{html.escape(label)}</text>'
        )
    off = {k: v for k, v in budgets.items() if k not in shown}
    note = (
        (
            "budget "
            + ", ".join(f"{html.escape(k)} {v:.3g} ms" for k, v in off.items())
            + f" (off scale: {min(off.values()) / edges[-1]:.0f}× the slowest run)"
        )
        if off
        else ""
    )
    axis = (
        f'<line x1="{pad}" x2="{w - pad}" y1="{h - pad}" y2="{h - pad}" stroke="#555"/>'
        + _axis(x, _ticks(lo, hi), h - pad, " ms")
        + f'<text x="{pad}" y="12" font-size="10">{note}</text>'
    )
    body = bars + "".join(lines) + axis
    return f'<svg width="{w}" height="{h}" role="img" aria-label="latency histogram">{body}</svg>'


def _svg_interval(low: float, value: float, high: float, threshold: float) -> str:
    w, h, pad = 420, 72, 20
    finite = [v for v in (low, value, high, threshold) if v == v and abs(v) != float("inf")]
    lo, hi = min(finite), max(finite)
    span = (hi - lo) or 1.0
    lo, hi = lo - 0.1 * span, hi + 0.1 * span

    def x(v: float) -> float:
        return pad + (min(max(v, lo), hi) - lo) / (hi - lo) * (w - 2 * pad)

    return (
        f'<svg width="{w}" height="{h}" role="img" aria-label="metric with its interval">'
        f'<line x1="{x(low):.1f}" x2="{x(high):.1f}" y1="22" y2="22" stroke="#4a78b5" stroke-width="6"/>'
        f'<circle cx="{x(value):.1f}" cy="22" r="5" fill="#1d3557"/>'
        f'<line x1="{x(threshold):.1f}" x2="{x(threshold):.1f}" y1="6" y2="38" stroke="#c0392b" stroke-width="2"/>'
        f'<text x="{x(threshold) + 3:.1f}" y="50" font-size="10">threshold {threshold:.4g}</text>'
        f'<text x="{x(low):.1f}" y="10" font-size="10">bound {low:.4g}</text>'
        f'<text x="{x(value) - 10:.1f}" y="44" font-size="10">{value:.4g}</text>'
        + _axis(x, _ticks(lo, hi), 54)
        + "</svg>"
    )


def _svg_bars(values: dict[str, float], threshold: float) -> str:
    w, row, pad = 420, 18, 110
    peak = max([*values.values(), threshold]) or 1.0
    h = row * len(values) + 20
    out = [f'<svg width="{w}" height="{h}" role="img" aria-label="drift per feature">']
    for i, (name, v) in enumerate(values.items()):
        y = i * row + 4
        color = "#c0392b" if v >= threshold else "#4a78b5"
        out.append(
            f'<text x="0" y="{y + 12}" font-size="11">{html.escape(name[:16])}</text>'
            f'<rect x="{pad}" y="{y}" width="{v / peak * (w - pad - 50):.1f}" height="{row - 4}" fill="{color}"/>'
            f'<text x="{pad + v / peak * (w - pad - 50) + 4:.1f}" y="{y + 12}" font-size="10">{v:.4f}</text>'
        )
    tx = pad + threshold / peak * (w - pad - 50)
    out.append(
        f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="0" y2="{h - 14}" stroke="#c0392b" stroke-dasharray="4"/>'
        f'<text x="{tx - 80:.1f}" y="{h - 2}" font-size="10">threshold {threshold:.4g}</text></svg>'
    )
    return "".join(out)


def _plot(r: TestResult) -> str:
    d = r.details
    if r.type == "latency" and d.get("histogram"):
        return _svg_histogram(d["histogram"]["counts"], d["histogram"]["edgesMs"], d.get("budgetMs", {}))
    if r.type == "metric" and r.threshold is not None and "low" in d:
        return _svg_interval(d["low"], r.value or 0.0, d["high"], r.threshold)
    if r.type == "drift" and d.get("perFeature") and r.threshold is not None:
        return _svg_bars(d["perFeature"], r.threshold)
    return ""


def _how_one(h: dict[str, Any]) -> str:
    if h.get("method") == "sketch":
        return (
            f"sketch from a seeded sample of {h['sampleRows']:,} of {h['rows']:,} rows "
            f"(CDF within ±{h['cdfBound']:.4f} with probability {1 - h['delta']:.3g})"
        )
    if h.get("method") == "head":
        return f"on the first {h.get('rows', 0):,} rows (a windowed model's samples span rows: no sample of rows)"
    return f"exact over {h.get('rows', 0):,} rows"


def computed(r: TestResult) -> str:
    """How the statistic was computed, in words: exact or a sketch with its bound, over how many rows."""
    how = r.details.get("computation")
    if not isinstance(how, dict):
        return ""
    if "method" in how:
        return _how_one(how)
    words = [f"{side}: {_how_one(h)}" for side, h in how.items() if side in ("reference", "candidate")]
    if "statisticBound" in how:
        b = how["statisticBound"]
        words.append(f"statistic within ±{b['abs']:.4f} of the exact one with probability {b['probability']:.3g}")
    return "; ".join(words)


def _provenance_html(p: ReportProvenance | None) -> str:
    if p is None:
        return ""
    e = html.escape
    models = "".join(
        f"<li>model <code>{e(n)}</code> {e(v)} · sha256 <code>{e(sha[:16])}…</code></li>"
        for n, (v, sha) in sorted(p.models.items())
    )
    return (
        "<ul class='prov'>"
        f"<li>spec commit <code>{e(p.spec_commit or 'not a Git checkout')}</code></li>{models}"
        f"<li>run on <code>{e(p.host)}</code> ({e(p.machine)}), onnxruntime {e(p.onnxruntime)}, {e(p.created)}</li>"
        "</ul>"
    )


def render_html(suites: list[SuiteResult], provenance: ReportProvenance | None = None) -> str:
    s = summary(suites)
    e = html.escape
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>takt test report</title>",
        "<style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;"
        "width:100%}td,th{border-bottom:1px solid #ddd;padding:6px 8px;text-align:left;vertical-align:top}"
        ".passed{color:#1e8449}.failed{color:#c0392b}.error{color:#8e44ad}h2{margin-top:1.6em}"
        "code{background:#f4f4f4;padding:1px 4px}.verdict{margin:.3em 0 0;color:#444}.prov{color:#555}"
        ".how{margin:.3em 0 0;color:#666;font-size:12px}"
        "</style></head><body>",
        f"<h1>takt test report</h1><p>{s['tests']} tests in {s['suites']} suites: {s['passed']} passed, "
        f"{s['failed']} failed, {s['errors']} errors; <b>{s['blocking']} blocking</b>. takt {e(__version__)}.</p>",
        _provenance_html(provenance),
    ]
    for suite in suites:
        state = "passed" if suite.passed else "failed"
        parts.append(
            f"<h2>{e(suite.suite)} <small class='{state}'>{state}</small></h2>"
            f"<p>model <code>{e(suite.model)}</code> · spec <code>{e(suite.file)}</code></p>"
        )
        if suite.datasets:
            parts.append(
                "<p>datasets: "
                + ", ".join(f"<code>{e(k)}</code> sha256 {e(v[:16])}…" for k, v in suite.datasets.items())
                + "</p>"
            )
        if suite.error:
            parts.append(f"<p class='error'>{e(suite.error)}</p>")
        parts.append("<table><tr><th>test</th><th>type</th><th>gate</th><th>result</th><th>detail</th><th></th></tr>")
        for r in suite.results:
            parts.append(
                f"<tr><td>{e(r.name)}</td><td>{e(r.type)}</td><td>{'yes' if r.gate else 'no'}</td>"
                f"<td class='{r.status}'>{r.status}</td><td>{e(r.summary)}"
                + (f"<p class='verdict'>{e(plain)}</p>" if (plain := verdict(r)) else "")
                + (f"<p class='how'>computed: {e(how)}</p>" if (how := computed(r)) else "")
                + f"</td><td>{_plot(r)}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "".join(parts)
