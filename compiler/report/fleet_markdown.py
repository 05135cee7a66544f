"""`takt fleet status --format markdown`: a table for a pull-request comment or a scheduled CI summary."""

from __future__ import annotations

from compiler.fleet.status import FleetStatus
from compiler.report.fleet_text import summary
from compiler.report.fleet_words import DASH, age, gen, num, plain


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render_fleet_markdown(status: FleetStatus) -> str:
    out = ["### Fleet status", "", summary(status), ""]
    if status.devices:
        out += [
            "| device | plant / line | desired | applied | phase | state | drift (PSI) | error rate | last report |",
            "|---|---|---:|---:|---|---|---:|---:|---|",
        ]
        for d in status.devices:
            where = " / ".join(x for x in (d.plant, d.line) if x) or DASH
            report = age(d.age_seconds) + (" ⚠️ **stale**" if d.stale else "")
            out.append(
                f"| `{_cell(d.device)}` | {_cell(where)} | {gen(d.desired_generation)} | {gen(d.applied_generation)} "
                f"| {_cell(d.phase or DASH)} | {_cell(plain(d))} | {num(d.drift, 2)} | {num(d.error_rate)} | {report} |"
            )
    if status.ignored:
        out += ["", f"<details><summary>{len(status.ignored)} ignored reports</summary>", ""]
        out += [f"- `{_cell(i.source)}`: **{i.reason}** — {_cell(i.message)}" for i in status.ignored]
        out += ["", "</details>"]
    return "\n".join(out) + "\n"
