"""`takt validate` as a request: which project and files the paths name, and the exit code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from compiler.commands.errors import ExitCode
from compiler.diagnostics import Severity
from compiler.validate.pipeline import ValidationResult


@dataclass(frozen=True)
class ValidateRequest:
    paths: tuple[Path, ...]
    """Directories or files, relative to `cwd`; none: `cwd` itself."""
    cwd: Path
    ignore: tuple[str, ...] = ()
    """Codes or globs, each possibly a comma-separated list (`-i TAKT2002,TAKT20*`)."""
    fail_level: str = "error"


@dataclass(frozen=True)
class ValidateOutcome:
    result: ValidationResult
    exit_code: ExitCode


def split_codes(values: tuple[str, ...]) -> list[str]:
    return [c.strip() for v in values for c in v.split(",") if c.strip()]


def run_validate(request: ValidateRequest, progress: Callable[[int, int], None] | None = None) -> ValidateOutcome:
    """Several paths, or files, restrict the report to them; references still resolve across the project."""
    from compiler.validate.pipeline import validate

    targets = [request.cwd / p for p in request.paths] or [request.cwd]
    roots = {p.resolve() if p.is_dir() else p.resolve().parent for p in targets}
    only = [p for p in targets if p.is_file()] or None
    start = min(roots, key=lambda p: len(p.parts))
    result = validate(start, ignore=split_codes(request.ignore), only=only, progress=progress)
    threshold = Severity.parse(request.fail_level)
    failed = any(d.severity >= threshold for d in result.diagnostics)
    return ValidateOutcome(result, ExitCode.FINDINGS if failed else ExitCode.OK)
