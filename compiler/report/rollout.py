"""`takt rollout status|promote` output: text for a terminal, JSON for tools, Markdown for a PR or CI summary."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from compiler.fleet.reports import Ignored
from compiler.rollout.gate import Decision, DeviceVerdict


def _fmt(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _when(t: datetime | None) -> str:
    return "-" if t is None else t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _verdict_json(v: DeviceVerdict) -> dict[str, Any]:
    return {
        "device": v.device,
        "verdict": v.verdict.value,
        "reason": v.reason,
        "reportTime": _when(v.report_time) if v.report_time else None,
        "ready": v.ready,
        "errorRate": v.error_rate,
        "agreement": v.agreement,
        "meanAbsDiff": v.mean_abs_diff,
        "p99AbsDiff": v.p99_abs_diff,
        "challengerErrorRate": v.challenger_error_rate,
    }


def as_json(decisions: Sequence[Decision], ignored: Sequence[Ignored], extra: dict[str, Any] | None = None) -> str:
    doc = {
        "rollouts": [
            {
                "deployment": d.deployment,
                "action": d.action.value,
                "phase": d.phase.value,
                "reason": d.reason,
                "devices": [_verdict_json(v) for v in d.verdicts],
            }
            for d in decisions
        ],
        "ignoredReports": [i.to_json() for i in ignored],
        **(extra or {}),
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def as_text(decisions: Sequence[Decision], ignored: Sequence[Ignored]) -> str:
    lines = [] if decisions else ["no rollout on the deploy branch"]
    for d in decisions:
        lines.append(f"{d.deployment}: {d.phase.value} ({d.action.value}) — {d.reason}")
        for v in d.verdicts:
            figures = f"ready={v.ready} errorRate={_fmt(v.error_rate)}"
            if v.agreement is not None or v.mean_abs_diff is not None:
                figures += (
                    f" agreement={_fmt(v.agreement)} meanAbsDiff={_fmt(v.mean_abs_diff)} p99={_fmt(v.p99_abs_diff)}"
                )
            lines.append(f"  {v.device:<24} {v.verdict.value:<4} {figures}  {v.reason}")
    if ignored:
        lines.append(f"ignored {len(ignored)} report(s):")
        lines += [f"  {i.device}: {i.reason} — {i.message}" for i in ignored[:50]]
    return "\n".join(lines) + "\n"


def as_markdown(decisions: Sequence[Decision], ignored: Sequence[Ignored]) -> str:
    lines = ["## Rollouts", ""]
    if not decisions:
        lines.append("No rollout on the deploy branch.")
    for d in decisions:
        lines += [f"### `{d.deployment}`: {d.phase.value} ({d.action.value})", "", _cell(d.reason), ""]
        if d.verdicts:
            lines += ["| device | verdict | ready | error rate | agreement | mean abs diff | p99 abs diff | reason |",
                      "|---|---|---|---|---|---|---|---|"]  # fmt: skip
            lines += [
                f"| {v.device} | {v.verdict.value} | {v.ready} | {_fmt(v.error_rate)} | {_fmt(v.agreement)} | "
                f"{_fmt(v.mean_abs_diff)} | {_fmt(v.p99_abs_diff)} | {_cell(v.reason)} |"
                for v in d.verdicts
            ]
            lines.append("")
    if ignored:
        lines += [f"**Ignored reports ({len(ignored)})**", ""]
        lines += [f"- `{_cell(i.device)}`: {i.reason} — {_cell(i.message)}" for i in ignored[:50]]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """Report text is device-written: no table breaks, no HTML, no links in a PR comment."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace("\n", " ").replace("[", "\\[")[:300]


RENDERERS = {"text": as_text, "markdown": as_markdown}
