"""`takt fleet status` in a terminal: one line per device, stale devices and ignored reports flagged."""

from __future__ import annotations

from compiler.fleet.status import FleetStatus
from compiler.report.fleet_words import DASH, age, gen, num, plain
from compiler.report.words import plural


def summary(status: FleetStatus) -> str:
    parts = [plural(len(status.devices), "device"), f"{status.count('Ready')} ready",
             f"{status.count('Degraded')} degraded", f"{status.count('Stalled')} stalled",
             f"{status.stale} stale", plural(len(status.ignored), "ignored report")]  # fmt: skip
    return ", ".join(parts)


def render_fleet_text(status: FleetStatus) -> str:
    lines = []
    head = f"{'DEVICE':<24} {'PLANT/LINE':<16} {'DESIRED':>7} {'APPLIED':>7} {'PHASE':<14} {'STATE':<9} " \
           f"{'DRIFT':>6} {'ERRORS':>6} {'REPORT':<12} REASON"  # fmt: skip
    lines.append(head)
    for d in status.devices:
        where = "/".join(x for x in (d.plant, d.line) if x) or DASH
        flag = " STALE" if d.stale else ""
        lines.append(
            f"{d.device:<24} {where:<16} {gen(d.desired_generation):>7} {gen(d.applied_generation):>7} "
            f"{d.phase or DASH:<14} {d.state:<9} {num(d.drift, 2):>6} {num(d.error_rate, 3):>6} "
            f"{age(d.age_seconds) + flag:<12} {plain(d)}"
        )
    for i in status.ignored:
        lines.append(f"ignored {i.source}: {i.reason} — {i.message}")
    lines.append(summary(status))
    return "\n".join(lines) + "\n"
