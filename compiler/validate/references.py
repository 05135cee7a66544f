"""References: every name a spec uses resolves, to a document of the right kind."""

from __future__ import annotations

from typing import Any

from compiler.diagnostics import Diagnostic
from compiler.spec.deployment import Deployment
from compiler.spec.device import Device
from compiler.spec.model import Model
from compiler.spec.testsuite import DataTest, LatencyTest, TestSuite
from compiler.validate.document import did_you_mean
from compiler.validate.index import SpecIndex


def check_references(index: SpecIndex) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    seen_ids: dict[str, Device] = {}
    seen_docs = {}
    for doc in index.valid("Device"):
        dev: Device = doc.model  # type: ignore[assignment]
        index.ref(doc, "Target", dev.spec.target, ("spec", "target"), out)
        first = seen_ids.get(dev.device_id)
        if first is not None:
            out.append(
                doc.diag(
                    "TAKT3005",
                    f"device id {dev.device_id!r} is also used by Device {first.metadata.name!r}",
                    ("spec", "id") if dev.spec.id else ("metadata", "name"),
                    related=[seen_docs[dev.device_id].locate(("metadata", "name"))],
                )
            )
        else:
            seen_ids[dev.device_id] = dev
            seen_docs[dev.device_id] = doc

    for doc in index.valid("TestSuite"):
        suite: TestSuite = doc.model  # type: ignore[assignment]
        index.ref(doc, "Model", suite.spec.model, ("spec", "model"), out)
        for i, test in enumerate(suite.spec.tests):
            if isinstance(test, DataTest) and test.source is not None:
                index.ref(doc, "DataSource", test.source, ("spec", "tests", i, "source"), out)
            if isinstance(test, LatencyTest):
                out += _latency_budget_keys(index, doc, test, i)

    for doc in index.valid("Deployment"):
        dep: Deployment = doc.model  # type: ignore[assignment]
        spec = dep.spec
        model_doc = index.ref(doc, "Model", spec.model.name, ("spec", "model"), out)
        if model_doc is not None and model_doc.model is not None and spec.model.version is not None:
            have = model_doc.model.spec.version  # type: ignore[attr-defined]
            if have != spec.model.version:
                out.append(
                    doc.diag(
                        "TAKT3004",
                        f"pins {spec.model.name}@{spec.model.version} but the Model spec is version {have}",
                        ("spec", "model"),
                        related=[model_doc.locate(("spec", "version"))],
                    )
                )
        for i, binding in enumerate(spec.bindings):
            index.ref(doc, "DataSource", binding.source, ("spec", "bindings", i, "source"), out)
        for i, name in enumerate(spec.targets):
            index.ref(doc, "Target", name, ("spec", "targets", i), out)
        for i, name in enumerate(spec.gates):
            index.ref(doc, "TestSuite", name, ("spec", "gates", i), out)
        for i, output in enumerate(spec.outputs):
            conn = getattr(output, "connection", None)
            if conn is not None:
                index.ref(doc, "DataSource", conn, ("spec", "outputs", i, "connection"), out)
        drift = spec.monitoring.drift if spec.monitoring else None
        if drift is not None:
            suite_doc = index.ref(doc, "TestSuite", drift.test_suite, ("spec", "monitoring", "drift", "testSuite"), out)
            if suite_doc is not None and suite_doc.model is not None:
                datasets = suite_doc.model.spec.datasets  # type: ignore[attr-defined]
                if drift.dataset not in datasets:
                    out.append(
                        doc.diag(
                            "TAKT3001",
                            f"TestSuite {drift.test_suite!r} has no dataset {drift.dataset!r}",
                            ("spec", "monitoring", "drift", "dataset"),
                            hint=did_you_mean(drift.dataset, datasets),
                        )
                    )

    for doc in index.valid("Model"):
        model: Model = doc.model  # type: ignore[assignment]
        lineage = model.spec.lineage
        if lineage and lineage.parent:
            parent = lineage.parent.partition("@")[0]
            if parent == model.metadata.name and lineage.parent.partition("@")[2] == model.spec.version:
                out.append(doc.diag("TAKT3003", "a model cannot be its own parent", ("spec", "lineage", "parent")))
    return out


def _latency_budget_keys(index: SpecIndex, doc: Any, test: LatencyTest, i: int) -> list[Diagnostic]:
    """A `budgets` key names a Target or a target class; a typo would leave its target on the default."""
    from compiler.render.plugins import target_classes

    classes = set(target_classes())
    return [
        doc.diag(
            "TAKT3006",
            f"latency budget {key!r} names no Target and no target class (classes: {', '.join(sorted(classes))})",
            ("spec", "tests", i, "budgets", key),
        )
        for key in test.budgets
        if key not in classes and index.get("Target", key) is None
    ]
