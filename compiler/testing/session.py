"""Run the TestSuites of a validated spec repo."""

from __future__ import annotations

from collections.abc import Callable

from compiler.diagnostics import Severity
from compiler.models.digest import DigestCache
from compiler.spec.testsuite import TestSuite
from compiler.testing.runner import SuiteResult, SuiteRunner
from compiler.testing.stream import DEFAULT_MEMORY
from compiler.validate.pipeline import CACHE_DIR, ValidationResult


def run_suites(
    result: ValidationResult,
    names: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
    memory: int = DEFAULT_MEMORY,
) -> list[SuiteResult]:
    """Every valid TestSuite (or those named), in name order, each test within `memory` bytes of data.

    A suite whose model or own document has validation errors does not run: its result says why.
    """
    cache = DigestCache.load(result.root / CACHE_DIR / "digests.json")
    off_host = off_host_targets(result)
    sources = {d.name: d.model for d in result.index.valid("DataSource")}
    broken_files = {(d.location.file, d.location.line) for d in result.diagnostics if d.severity == Severity.ERROR}
    out = []
    for doc in sorted(result.index.valid("TestSuite"), key=lambda d: d.name or ""):
        suite: TestSuite = doc.model
        if names and suite.metadata.name not in names:
            continue
        model_doc = result.index.get("Model", suite.spec.model)
        file = doc.yaml.file
        if model_doc is None or model_doc.model is None or suite.spec.model not in result.models.infos:
            res = SuiteResult(suite.metadata.name, suite.spec.model, file)
            res.error = f"model {suite.spec.model!r} is missing or invalid (run takt validate)"
            out.append(res)
            continue
        span = model_doc.yaml.span
        if any(f == model_doc.yaml.file and span.line <= line <= span.end_line for f, line in broken_files):
            res = SuiteResult(suite.metadata.name, suite.spec.model, file)
            res.error = f"model {suite.spec.model!r} has validation errors (run takt validate)"
            out.append(res)
            continue
        model = model_doc.model
        path = result.models.artifacts[suite.spec.model]  # the tree's file, DVC's cached copy or MLflow's download
        out.append(SuiteRunner(suite, model, path, result.root, cache, sources, file, memory, off_host).run(progress))
    cache.save()
    return out


def off_host_targets(result: ValidationResult) -> frozenset[str]:
    """Target classes, and targets of them, whose devices this host's latency figures do not stand for."""
    from compiler.render.plugins import target_classes

    classes = {name for name, tc in target_classes().items() if not tc.latency_on_build_host}
    targets = {name for name, t in result.index.resolved_targets.items() if t.class_ in classes}
    return frozenset(classes | targets)
