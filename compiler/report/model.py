"""`takt model check` and `takt matrix` output: rich renderables for a terminal, JSON for tools."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rich.console import RenderableType
from rich.table import Table

from compiler.diagnostics import Severity

if TYPE_CHECKING:
    from compiler.commands.model import MatrixOutcome


def model_check_text(report: dict[str, Any]) -> list[RenderableType]:
    out: list[RenderableType] = [
        f"[bold]{report['model']}[/bold]  sha256 {report['sha256'][:16]}…  IR {report['irVersion']}  "
        f"opsets {', '.join(f'{d} {v}' for d, v in report['opsets'].items())}"
    ]
    table = Table(show_header=True, header_style="bold", box=None)
    for col in ("", "name", "dtype", "shape"):
        table.add_column(col)
    for side in ("inputs", "outputs"):
        for t in report[side]:
            table.add_row(side[:-1], t["name"], t["dtype"] or "?", str(t["shape"]))
    out.append(table)
    ops = ", ".join(o["op"] if o["domain"] == "ai.onnx" else f"{o['domain']}:{o['op']}" for o in report["operators"])
    out.append(f"operators ({len(report['operators'])}): {ops}")
    out.append(
        f"size: {report['fileBytes']:,} bytes file, {report['paramBytes']:,} bytes of weights, "
        f"~{report['activationBytes']:,} bytes of activations"
    )
    rt = report["runtime"]
    for p in report["problems"]:
        style = "red" if p["severity"] == "error" else "yellow"
        out.append(f"[{style}]{p['severity']}[/{style}] {p['code']} {p['message']}")
    verdict = "[green]runnable[/green]" if report["runnable"] else "[red]NOT runnable[/red]"
    out.append(f"{verdict} on onnxruntime {rt['onnxruntime']} ({', '.join(rt['providers'])}; {rt['label']})")
    return out


def matrix_json(m: MatrixOutcome) -> str:
    cells = [
        {
            "model": c.model,
            "target": c.target,
            "deployed": c.deployed,
            "runnable": c.runnable,
            "problems": [p.as_dict() for p in c.problems],
        }
        for c in m.cells
    ]
    return json.dumps({"models": m.models, "targets": m.targets, "cells": cells}, indent=2)


def matrix_text(m: MatrixOutcome) -> list[RenderableType]:
    table = Table(title="model × target (* = deployed there)", header_style="bold")
    table.add_column("model")
    for t in m.targets:
        table.add_column(t, justify="center")
    by_pair = {(c.model, c.target): c for c in m.cells}
    for model in m.models:
        row = []
        for t in m.targets:
            c = by_pair[(model, t)]
            errors = [p for p in c.problems if p.severity == Severity.ERROR]
            mark = "[green]ok[/green]" if not errors else f"[red]✗ {errors[0].code}[/red]"
            if not errors and c.problems:
                mark = "[yellow]ok (warn)[/yellow]"
            row.append(mark + (" *" if c.deployed else ""))
        table.add_row(model, *row)
    out: list[RenderableType] = [table]
    for c in m.cells:
        for p in c.problems:
            if p.severity == Severity.ERROR:
                out.append(f"  {c.model} on {c.target}: {p.code} {p.message}")
    return out
