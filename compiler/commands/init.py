"""`takt init` as a request: scaffold a starter spec repo, never over files that are already there."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from compiler.commands.errors import UsageError


@dataclass(frozen=True)
class InitRequest:
    directory: Path
    """Relative to `cwd`, like every path on the command line."""
    cwd: Path
    force: bool = False
    """Write into a directory that is not empty."""


@dataclass(frozen=True)
class InitOutcome:
    directory: Path
    written: list[Path]
    """As the user named them: `directory` joined with each file's path in the repo."""


def run_init(request: InitRequest) -> InitOutcome:
    """UsageError (exit 2) for a directory that is not empty without `force`."""
    from compiler.scaffold import scaffold

    target = request.cwd / request.directory
    if target.exists() and any(target.iterdir()) and not request.force:
        raise UsageError(f"{request.directory} is not empty (use --force to write into it)")
    written = scaffold(target)
    return InitOutcome(request.directory, [request.directory / p.relative_to(target) for p in written])
