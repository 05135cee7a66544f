"""`takt build` as a request: validate, then render every (deployment, target) bundle."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from compiler.build import BuildResult
from compiler.commands.errors import ExitCode
from compiler.commands.validated import validated
from compiler.validate.pipeline import ValidationResult
from compiler.workers import default_jobs


@dataclass(frozen=True)
class BuildRequest:
    path: Path
    cwd: Path
    out_dir: Path = Path("out")
    """Relative to `cwd`, like every path on the command line."""
    jobs: int | None = None
    """Worker processes; None: one per core."""
    run_gates: bool = True


@dataclass(frozen=True)
class BuildOutcome:
    validation: ValidationResult
    result: BuildResult
    out_dir: Path

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.FINDINGS if self.result.failed else ExitCode.OK


def run_build(request: BuildRequest, progress: Callable[[str], None] | None = None) -> BuildOutcome:
    """BuildError (exit 2) when the output directory is unusable; SpecErrors (exit 1) on spec errors."""
    from compiler.build import build

    jobs = request.jobs or default_jobs()
    result = validated(request.cwd / request.path, "build", jobs=jobs)
    out_dir = request.cwd / request.out_dir
    res = build(result, out_dir, jobs=jobs, run_gates=request.run_gates, progress=progress)
    return BuildOutcome(result, res, out_dir)
