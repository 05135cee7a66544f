"""`takt model check`: is this ONNX file runnable on a target (or on the installed onnxruntime)?

Exit codes: 0 runnable, 1 not runnable, 2 unreadable input or unknown target.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from compiler.diagnostics import Severity

if TYPE_CHECKING:  # onnx and pydantic load only when a model command runs, not for `takt agent`
    from compiler.models.compat import Problem, RuntimeProfile
    from compiler.models.inspect import ModelInfo, TensorInfo

EXIT_RUNNABLE, EXIT_NOT_RUNNABLE, EXIT_UNREADABLE = 0, 1, 2


def _resolve_target(name: str, spec_root: Path) -> tuple[RuntimeProfile, str | None] | str:
    from compiler.models.profile import target_profile
    from compiler.validate.pipeline import validate

    result = validate(spec_root, check_artifacts=False)
    if result.project is None:
        return f"no takt.yaml at or above {spec_root}"
    spec = result.index.resolved_targets.get(name)
    if spec is None:
        known = ", ".join(sorted(result.index.resolved_targets)) or "none"
        broken = result.index.get("Target", name)
        why = "it has errors (run takt validate)" if broken else f"known targets: {known}"
        return f"target {name!r} not found or not valid in {result.root}: {why}"
    return target_profile(spec, name)


def _tensor(t: TensorInfo) -> dict[str, Any]:
    """Spec dtype names (float32), so a signature can be pasted into a Model spec."""
    from compiler.models.inspect import ONNX_TO_SPEC

    return {
        "name": t.name,
        "dtype": ONNX_TO_SPEC.get(t.elem_type or "", t.elem_type),
        "onnxType": t.elem_type,
        "shape": list(t.shape) if t.shape is not None else None,
    }


def model_report(info: ModelInfo, problems: list[Problem], profile: RuntimeProfile, sha256: str) -> dict[str, Any]:
    errors = [p for p in problems if p.severity == Severity.ERROR]
    return {
        "model": info.path,
        "sha256": sha256,
        "runnable": not errors,
        "runtime": {
            "onnxruntime": profile.table.version,
            "providers": list(profile.effective_providers),
            "label": profile.label,
        },
        "problems": [p.as_dict() for p in problems],
        "irVersion": info.ir_version,
        "producer": info.producer,
        "opsets": info.opsets,
        "inputs": [_tensor(t) for t in info.inputs],
        "outputs": [_tensor(t) for t in info.outputs],
        "operators": [{"domain": d, "op": o, "sinceVersion": v} for d, o, v in info.operators],
        "fileBytes": info.file_bytes,
        "paramBytes": info.param_bytes,
        "activationBytes": info.activation_bytes,
        "warnings": list(info.warnings),
    }


def _print_text(console: Console, report: dict[str, Any]) -> None:
    console.print(
        f"[bold]{report['model']}[/bold]  sha256 {report['sha256'][:16]}…  IR {report['irVersion']}  "
        f"opsets {', '.join(f'{d} {v}' for d, v in report['opsets'].items())}"
    )
    table = Table(show_header=True, header_style="bold", box=None)
    for col in ("", "name", "dtype", "shape"):
        table.add_column(col)
    for side in ("inputs", "outputs"):
        for t in report[side]:
            table.add_row(side[:-1], t["name"], t["dtype"] or "?", str(t["shape"]))
    console.print(table)
    ops = ", ".join(o["op"] if o["domain"] == "ai.onnx" else f"{o['domain']}:{o['op']}" for o in report["operators"])
    console.print(f"operators ({len(report['operators'])}): {ops}")
    console.print(
        f"size: {report['fileBytes']:,} bytes file, {report['paramBytes']:,} bytes of weights, "
        f"~{report['activationBytes']:,} bytes of activations"
    )
    rt = report["runtime"]
    for p in report["problems"]:
        style = "red" if p["severity"] == "error" else "yellow"
        console.print(f"[{style}]{p['severity']}[/{style}] {p['code']} {p['message']}")
    verdict = "[green]runnable[/green]" if report["runnable"] else "[red]NOT runnable[/red]"
    console.print(f"{verdict} on onnxruntime {rt['onnxruntime']} ({', '.join(rt['providers'])}; {rt['label']})")


@click.group("model")
def model_group() -> None:
    """Inspect ONNX models and check them against target runtimes."""


@model_group.command("check")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--target", "target_name", help="Check against this Target of the spec repo.")
@click.option(
    "--spec-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Spec repo holding --target.",
)
@click.option("--format", "-f", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def check(model: Path, target_name: str | None, spec_root: Path, fmt: str) -> None:
    """Check MODEL.onnx statically: validity, opsets, every operator's kernel, size, quantization.

    Without --target, against the installed onnxruntime's CPU provider.
    """
    from compiler.models.compat import Problem, check_runtime
    from compiler.models.digest import sha256_file
    from compiler.models.inspect import Unreadable, inspect_model
    from compiler.models.profile import installed_profile

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    info = inspect_model(model) if model.is_file() else Unreadable(f"{model} does not exist or is not a file")
    if isinstance(info, Unreadable):
        err.print(f"[red]error:[/red] {model}: {info.reason}")
        sys.exit(EXIT_UNREADABLE)
    if target_name:
        resolved = _resolve_target(target_name, spec_root)
        if isinstance(resolved, str):
            err.print(f"[red]error:[/red] {resolved}")
            sys.exit(EXIT_UNREADABLE)
        profile, note = resolved
    else:
        profile, note = installed_profile(), None
    problems = check_runtime(info, profile)
    if info.checker_error:
        problems.insert(0, Problem("TAKT5004", f"invalid ONNX model: {info.checker_error}"))
    if note:
        problems.append(Problem("TAKT5014", note))
    report = model_report(info, problems, profile, sha256_file(model))
    if fmt == "json":
        click.echo(json.dumps(report, indent=2))
    else:
        _print_text(Console(highlight=False, soft_wrap=True), report)
    sys.exit(EXIT_RUNNABLE if report["runnable"] else EXIT_NOT_RUNNABLE)


@click.command("matrix")
@click.argument("path", type=click.Path(exists=True, path_type=Path), default=Path("."))
@click.option("--format", "-f", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def matrix(path: Path, fmt: str) -> None:
    """Which model runs on which target: every model of the spec repo × every target.

    Exit 0 when the matrix could be computed (cells may say "no"); 2 when the repo has no project.
    """
    from compiler.models.matrix import compatibility_matrix
    from compiler.validate.pipeline import validate

    result = validate(path)
    if result.project is None:
        Console(stderr=True).print(f"[red]error:[/red] no takt.yaml at or above {path}")
        sys.exit(EXIT_UNREADABLE)
    models, targets, cells = compatibility_matrix(result)
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "models": models,
                    "targets": targets,
                    "cells": [
                        {
                            "model": c.model,
                            "target": c.target,
                            "deployed": c.deployed,
                            "runnable": c.runnable,
                            "problems": [p.as_dict() for p in c.problems],
                        }
                        for c in cells
                    ],
                },
                indent=2,
            )
        )
        return
    console = Console(highlight=False, soft_wrap=True)
    table = Table(title="model × target (* = deployed there)", header_style="bold")
    table.add_column("model")
    for t in targets:
        table.add_column(t, justify="center")
    by_pair = {(c.model, c.target): c for c in cells}
    for m in models:
        row = []
        for t in targets:
            c = by_pair[(m, t)]
            errors = [p for p in c.problems if p.severity == Severity.ERROR]
            mark = "[green]ok[/green]" if not errors else f"[red]✗ {errors[0].code}[/red]"
            if not errors and c.problems:
                mark = "[yellow]ok (warn)[/yellow]"
            row.append(mark + (" *" if c.deployed else ""))
        table.add_row(m, *row)
    console.print(table)
    for c in cells:
        for p in c.problems:
            if p.severity == Severity.ERROR:
                console.print(f"  {c.model} on {c.target}: {p.code} {p.message}")
