"""`takt test` as a request: validate, then run the TestSuites with onnxruntime."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.commands.errors import ExitCode, UsageError
from compiler.commands.validated import validated
from compiler.validate.pipeline import ValidationResult

if TYPE_CHECKING:
    from compiler.testing.report import ReportProvenance
    from compiler.testing.runner import SuiteResult


@dataclass(frozen=True)
class TestRequest:
    path: Path
    cwd: Path
    suites: tuple[str, ...] = ()
    memory: str = "1GiB"
    provenance: bool = False
    """Also say where the results come from (the spec commit, the models' digests), for an HTML report."""


@dataclass(frozen=True)
class TestOutcome:
    validation: ValidationResult
    suites: list[SuiteResult]
    provenance: ReportProvenance | None

    @property
    def exit_code(self) -> ExitCode:
        from compiler.testing.report import summary

        return ExitCode.FINDINGS if summary(self.suites)["blocking"] else ExitCode.OK


def run_tests(request: TestRequest, progress: Callable[[str], None] | None = None) -> TestOutcome:
    """UsageError for a bad --memory or an unknown suite; SpecErrors when the specs have errors."""
    from compiler.testing.session import run_suites
    from compiler.testing.stream import parse_memory

    try:
        budget = parse_memory(request.memory)
    except ValueError as exc:
        raise UsageError(str(exc), option="--memory") from exc
    result = validated(request.cwd / request.path, "test")
    unknown = sorted(set(request.suites) - {d.name for d in result.index.valid("TestSuite")})
    if unknown:
        raise UsageError(f"no TestSuite named {', '.join(unknown)}")
    suites = run_suites(result, list(request.suites) or None, progress, budget)
    provenance = _provenance(result) if request.provenance else None
    return TestOutcome(result, suites, provenance)


def _provenance(result: ValidationResult) -> ReportProvenance:
    from compiler.build import source_provenance
    from compiler.testing.report import ReportProvenance

    models = {
        d.name: (d.model.spec.version, d.model.spec.artifact.sha256)  # type: ignore[union-attr]
        for d in result.index.valid("Model")
        if d.name
    }
    return ReportProvenance.here(source_provenance(result.root).get("sourceCommit"), models)
