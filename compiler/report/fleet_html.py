"""`takt fleet status --format html`: one self-contained page for the people on the floor.

Devices grouped by plant and line (the Device labels `plant` and `line`), each with its model and
generation, rollout phase, its state in plain words, and the drift and error rate over its
reports' history as small inline SVG charts; stale devices are flagged. No script, no font, no
request leaves the file (a Content-Security-Policy says so to the browser), and every text from a
spec or a report is escaped.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Sequence

from compiler.fleet.status import DeviceStatus, FleetStatus
from compiler.report.fleet_text import summary
from compiler.report.fleet_words import DASH, age, gen, num, plain

_CSS = (
    "body{font:15px system-ui,sans-serif;margin:1.5em;color:#1d1d1f;background:#fafafa}"
    "h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.4em 0 .4em}"
    "h3{font-size:1em;margin:.8em 0 .3em;color:#555}.summary{color:#444;margin-bottom:1em}"
    "table{border-collapse:collapse;width:100%;background:#fff}th,td{border-bottom:1px solid #e3e3e3;"
    "padding:.35em .6em;text-align:left;vertical-align:middle}th{font-size:.85em;color:#555;font-weight:600}"
    ".state{font-weight:600}.Ready .state{color:#17803d}.Degraded .state{color:#b45309}"
    ".Stalled .state{color:#b91c1c}.Unknown .state{color:#6b7280}"
    ".stale{background:#fde68a;color:#78350f;border-radius:3px;padding:0 .35em;font-size:.8em;font-weight:700}"
    "tr.is-stale td{background:#fffbeb}.muted{color:#6b7280;font-size:.85em}.num{text-align:right}"
    "svg{display:block}.ignored li{margin:.2em 0}td:first-child{white-space:nowrap}"
)
_W, _H = 120, 28


def _spark(values: Sequence[float | None], color: str, label: str) -> str:
    """A small line chart of one series (None gaps are skipped); an empty box says 'no data'."""
    pts = [(i, v) for i, v in enumerate(values) if v is not None]
    title = f"<title>{html.escape(label)}</title>"
    if not pts:
        return (f'<svg width="{_W}" height="{_H}" role="img" aria-label="{html.escape(label)}: no data">{title}'
                f'<text x="2" y="{_H - 9}" font-size="10" fill="#9ca3af">no data</text></svg>')  # fmt: skip
    hi = max(v for _, v in pts) or 1.0
    n = max(len(values) - 1, 1)
    coords = [(2 + (_W - 4) * i / n, _H - 3 - (_H - 6) * (v / hi)) for i, v in pts]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    last_x, last_y = coords[-1]
    return (
        f'<svg width="{_W}" height="{_H}" role="img" aria-label="{html.escape(label)}">{title}'
        f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{path}"/>'
        f'<circle cx="{last_x:.1f}" cy="{last_y:.1f}" r="2" fill="{color}"/></svg>'
    )


def _row(d: DeviceStatus) -> str:
    e = html.escape
    drift = [p.drift_psi_max for p in d.history]
    errors = [p.error_rate for p in d.history]
    stale = ' <span class="stale">STALE</span>' if d.stale else ""
    models = ", ".join(d.models) or DASH
    cls = f"{d.state}{' is-stale' if d.stale else ''}"
    return (
        f'<tr class="{e(cls)}" data-device="{e(d.device)}">'
        f"<td><b>{e(d.device)}</b></td>"
        f"<td>{e(models)}<div class='muted'>generation {e(gen(d.applied_generation))} running, "
        f"{e(gen(d.desired_generation))} wanted</div></td>"
        f"<td>{e(d.phase or DASH)}</td>"
        f'<td><span class="state">{e(plain(d))}</span></td>'
        f"<td>{_spark(drift, '#2563eb', f'drift (PSI) of {d.device}')}"
        f"<div class='muted'>now {e(num(d.drift, 2))}</div></td>"
        f"<td>{_spark(errors, '#dc2626', f'error rate of {d.device}')}"
        f"<div class='muted'>now {e(num(d.error_rate))}</div></td>"
        f"<td>{e(age(d.age_seconds))}{stale}</td></tr>"
    )


def render_fleet_html(status: FleetStatus) -> str:
    e = html.escape
    groups: dict[str, dict[str, list[DeviceStatus]]] = defaultdict(lambda: defaultdict(list))
    for d in status.devices:
        groups[d.plant or "(no plant)"][d.line or "(no line)"].append(d)
    head = (
        "<tr><th>device</th><th>model and generation</th><th>rollout</th><th>state</th>"
        "<th>drift over time</th><th>error rate over time</th><th>last report</th></tr>"
    )
    body = []
    for plant in sorted(groups):
        body.append(f"<section><h2>Plant {e(plant)}</h2>")
        for line in sorted(groups[plant]):
            rows = "".join(_row(d) for d in groups[plant][line])
            body.append(f"<h3>Line {e(line)}</h3><table>{head}{rows}</table>")
        body.append("</section>")
    if not status.devices:
        body.append("<p>No devices are declared in this spec repository.</p>")
    if status.ignored:
        items = "".join(f"<li><code>{e(i.source)}</code>: <b>{e(str(i.reason))}</b> — {e(i.message)}</li>"
                        for i in status.ignored)  # fmt: skip
        body.append(f'<section class="ignored"><h2>Ignored reports</h2><ul>{items}</ul></section>')
    when = status.generated_at.strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>Fleet status — {e(when)}</title><style>{_CSS}</style></head><body>"
        f"<h1>Fleet status</h1><div class='summary'>{e(summary(status))} · as of {e(when)}; "
        f"a device is stale after {int(status.stale_after // 60)} minutes without a report</div>"
        + "".join(body)
        + "</body></html>\n"
    )
