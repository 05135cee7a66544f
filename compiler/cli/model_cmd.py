"""`takt model check` and `takt matrix`: parse, call compiler.commands.model, render with
compiler.report.model (exit codes are the library's: model check 0 runnable, 1 not runnable,
2 unreadable input or unknown target; matrix 0 computed, 2 no project)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console


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
    import json

    from compiler.cli.main import _failing
    from compiler.commands.model import ModelCheckRequest, run_model_check
    from compiler.report.model import model_check_text

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    with _failing(err):
        outcome = run_model_check(ModelCheckRequest(model, Path.cwd(), target_name, spec_root))
    if fmt == "json":
        click.echo(json.dumps(outcome.report, indent=2))
    else:
        console = Console(highlight=False, soft_wrap=True)
        for part in model_check_text(outcome.report):
            console.print(part)
    sys.exit(outcome.exit_code)


@click.command("matrix")
@click.argument("path", type=click.Path(exists=True, path_type=Path), default=Path("."))
@click.option("--format", "-f", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def matrix(path: Path, fmt: str) -> None:
    """Which model runs on which target: every model of the spec repo × every target.

    Exit 0 when the matrix could be computed (cells may say "no"); 2 when the repo has no project.
    """
    from compiler.cli.main import _failing
    from compiler.commands.model import run_matrix
    from compiler.report.model import matrix_json, matrix_text

    with _failing(Console(stderr=True)):
        outcome = run_matrix(path)
    if fmt == "json":
        click.echo(matrix_json(outcome))
        return
    console = Console(highlight=False, soft_wrap=True)
    for part in matrix_text(outcome):
        console.print(part)
