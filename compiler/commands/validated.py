"""Validate first: commands that build, test or publish never act on a repo with spec errors."""

from __future__ import annotations

from pathlib import Path

from compiler.commands.errors import SpecErrors
from compiler.diagnostics import Severity
from compiler.validate.pipeline import ValidationResult


def validated(path: Path, command: str, *, check_artifacts: bool = True, jobs: int = 0) -> ValidationResult:
    """The validation of the project containing `path`, or SpecErrors naming every error; `jobs` as
    validate's (0: one process per core)."""
    from compiler.validate.pipeline import validate

    result = validate(path, check_artifacts=check_artifacts, jobs=jobs)
    errors = [d for d in result.diagnostics if d.severity == Severity.ERROR]
    if errors:
        raise SpecErrors(result, errors, command)
    return result
