"""References: every name a spec uses resolves, to a document of the right kind (one check per code)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from compiler.diagnostics import Diagnostic
from compiler.loader.yamldoc import Path_
from compiler.spec.deployment import Deployment
from compiler.spec.device import Device
from compiler.spec.model import Model
from compiler.spec.target import Target
from compiler.spec.testsuite import DataTest, LatencyTest, TestSuite
from compiler.spec.types import SpecModel
from compiler.validate.checks import Check, run_checks
from compiler.validate.document import Named, SpecDocument, Valid, did_you_mean
from compiler.validate.index import SpecIndex
from compiler.validate.semantics import binding_parts_resolve


def check_references(index: SpecIndex) -> list[Diagnostic]:
    return run_checks(CHECKS, index)


def _ref(
    index: SpecIndex, src: SpecDocument, kind: str, name: str, path: Path_, out: list[Diagnostic]
) -> Named[SpecModel] | None:
    """Resolve a reference, or record TAKT3001 at the referring node."""
    target = index.get(kind, name)
    if target is None and not index.maybe_unparsed(name):
        out.append(
            src.diag(
                "TAKT3001",
                f"{kind} {name!r} does not exist",
                path,
                hint=did_you_mean(name, index.by_kind.get(kind, {})),
            )
        )
    return target


def references_resolve(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT3001: every document a spec names exists (and the parts of it named: dataset, input, field)."""
    out: list[Diagnostic] = []
    for doc in index.valid("Target"):
        extends = doc.model.spec.extends
        if extends is not None:
            _ref(index, doc, "Target", extends, ("spec", "extends"), out)
    for doc in index.valid("Device"):
        dev: Device = doc.model
        _ref(index, doc, "Target", dev.spec.target, ("spec", "target"), out)
    for doc in index.valid("TestSuite"):
        suite: TestSuite = doc.model
        _ref(index, doc, "Model", suite.spec.model, ("spec", "model"), out)
        for i, test in enumerate(suite.spec.tests):
            if isinstance(test, DataTest) and test.source is not None:
                _ref(index, doc, "DataSource", test.source, ("spec", "tests", i, "source"), out)
    for doc in index.valid("Deployment"):
        spec = doc.model.spec
        _ref(index, doc, "Model", spec.model.name, ("spec", "model"), out)
        for i, binding in enumerate(spec.bindings):
            _ref(index, doc, "DataSource", binding.source, ("spec", "bindings", i, "source"), out)
        for i, name in enumerate(spec.targets):
            _ref(index, doc, "Target", name, ("spec", "targets", i), out)
        for i, name in enumerate(spec.gates):
            _ref(index, doc, "TestSuite", name, ("spec", "gates", i), out)
        for i, output in enumerate(spec.outputs):
            conn = getattr(output, "connection", None)
            if conn is not None:
                _ref(index, doc, "DataSource", conn, ("spec", "outputs", i, "connection"), out)
        drift = spec.monitoring.drift if spec.monitoring else None
        if drift is not None:
            suite_doc = _ref(
                index, doc, "TestSuite", drift.test_suite, ("spec", "monitoring", "drift", "testSuite"), out
            )
            if suite_doc is not None and isinstance(suite_doc.model, TestSuite):
                datasets = suite_doc.model.spec.datasets
                if drift.dataset not in datasets:
                    out.append(
                        doc.diag(
                            "TAKT3001",
                            f"TestSuite {drift.test_suite!r} has no dataset {drift.dataset!r}",
                            ("spec", "monitoring", "drift", "dataset"),
                            hint=did_you_mean(drift.dataset, datasets),
                        )
                    )
    yield from out
    yield from binding_parts_resolve(index)


def drift_suites_are_gates(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT3009: the suite `monitoring.drift` names is one of the deployment's gates (the bins come from a
    gating suite's dataset). Else every bundle of the deployment failed to render, found only at build."""
    for doc in index.valid("Deployment"):
        spec = doc.model.spec
        drift = spec.monitoring.drift if spec.monitoring else None
        if drift is not None and drift.test_suite not in spec.gates and index.get("TestSuite", drift.test_suite):
            yield doc.diag(
                "TAKT3009",
                f"monitoring.drift.testSuite {drift.test_suite!r} is not one of the deployment's gates "
                f"({', '.join(spec.gates) or 'none'})",
                ("spec", "monitoring", "drift", "testSuite"),
            )


def device_ids_unique(index: SpecIndex) -> Iterator[Diagnostic]:
    seen: dict[str, tuple[Device, SpecDocument]] = {}
    for doc in index.valid("Device"):
        dev: Device = doc.model
        first = seen.get(dev.device_id)
        if first is None:
            seen[dev.device_id] = (dev, doc)
            continue
        first_dev, first_doc = first
        yield doc.diag(
            "TAKT3005",
            f"device id {dev.device_id!r} is also used by Device {first_dev.metadata.name!r}",
            ("spec", "id") if dev.spec.id else ("metadata", "name"),
            related=[first_doc.locate(("metadata", "name"))],
        )


def pinned_version_exists(index: SpecIndex) -> Iterator[Diagnostic]:
    for doc in index.valid("Deployment"):
        dep: Deployment = doc.model
        spec = dep.spec
        model_doc = index.get("Model", spec.model.name)
        if model_doc is not None and model_doc.model is not None and spec.model.version is not None:
            have = model_doc.model.spec.version
            if have != spec.model.version:
                yield doc.diag(
                    "TAKT3004",
                    f"pins {spec.model.name}@{spec.model.version} but the Model spec is version {have}",
                    ("spec", "model"),
                    related=[model_doc.locate(("spec", "version"))],
                )


def document_names_unique(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT3002: names are unique per kind across the spec repo (the index keeps the first)."""
    for doc in index.documents:
        first = index.by_kind[doc.kind].get(doc.name) if doc.name is not None else None
        if first is not None and first is not doc:
            yield doc.diag(
                "TAKT3002",
                f"{doc.kind} {doc.name!r} is already defined at {first.locate(())}",
                ("metadata", "name"),
                related=[first.locate(("metadata", "name"))],
            )


def _extends_cycle(index: SpecIndex, doc: Valid[Target]) -> list[str] | None:
    """The names around a cycle of `extends` that returns to `doc`, if one does."""
    chain: list[Named[SpecModel]] = [doc]
    while True:
        model = chain[-1].model
        extends = model.spec.extends if isinstance(model, Target) else None
        parent = index.get("Target", extends) if extends is not None else None
        if parent is None or parent.model is None:
            return None
        if parent in chain:
            return [d.name or "?" for d in [*chain, parent]] if parent is doc else None
        chain.append(parent)


def no_cycles(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT3003: no Target extends itself through others; no Model is its own lineage parent."""
    for doc in index.valid("Target"):
        names = _extends_cycle(index, doc)
        if names:
            yield doc.diag("TAKT3003", f"extends forms a cycle: {' → '.join(names)}", ("spec", "extends"))
    for doc in index.valid("Model"):
        model: Model = doc.model
        lineage = model.spec.lineage
        if lineage and lineage.parent:
            parent, _, version = lineage.parent.partition("@")
            if parent == model.metadata.name and version == model.spec.version:
                yield doc.diag("TAKT3003", "a model cannot be its own parent", ("spec", "lineage", "parent"))


def latency_budgets_name_targets(index: SpecIndex) -> Iterator[Diagnostic]:
    for doc in index.valid("TestSuite"):
        for i, test in enumerate(doc.model.spec.tests):
            if isinstance(test, LatencyTest):
                yield from _latency_budget_keys(index, doc, test, i)


def _latency_budget_keys(index: SpecIndex, doc: Any, test: LatencyTest, i: int) -> list[Diagnostic]:
    """A `budgets` key names a Target or a target class; a typo would leave its target on the default."""
    unknown = [key for key in test.budgets if index.get("Target", key) is None]
    if not unknown:  # loading the target classes imports every renderer: only when a key could name one
        return []
    from compiler.render.plugins import target_classes

    classes = set(target_classes())
    return [
        doc.diag(
            "TAKT3006",
            f"latency budget {key!r} names no Target and no target class (classes: {', '.join(sorted(classes))})",
            ("spec", "tests", i, "budgets", key),
        )
        for key in unknown
        if key not in classes
    ]


CHECKS: tuple[Check[SpecIndex, Diagnostic], ...] = (
    Check("TAKT3001", references_resolve),
    Check("TAKT3002", document_names_unique),
    Check("TAKT3003", no_cycles),
    Check("TAKT3004", pinned_version_exists),
    Check("TAKT3005", device_ids_unique),
    Check("TAKT3006", latency_budgets_name_targets),
    Check("TAKT3009", drift_suites_are_gates),
)
