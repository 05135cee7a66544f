"""TestSuite datasets read as far as their schema: readable, not empty, and of the DataSource's kinds and units.

Only metadata is read here (a Parquet footer, an IPC schema, the first CSV block), so `takt validate`
stays fast on plant-sized files and `takt test` never starts on a dataset it would refuse halfway.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from compiler.diagnostics import Diagnostic
from compiler.spec.datasource import DataSource
from compiler.spec.testsuite import Dataset, DataTest, TestSuite
from compiler.testing.datasets import open_dataset
from compiler.testing.formats import DatasetError, Probe
from compiler.testing.schema import check_columns
from compiler.validate.document import SpecDocument
from compiler.validate.index import SpecIndex


def check_datasets(
    doc: SpecDocument, suite: TestSuite, present: Mapping[str, Dataset], root: Path, index: SpecIndex
) -> list[Diagnostic]:
    """Located diagnostics for the datasets of one suite that exist on disk (`present`)."""
    out: list[Diagnostic] = []
    probes: dict[str, Probe] = {}
    for name, ds in present.items():
        at = ("spec", "datasets", name, "path")
        try:
            probe = open_dataset(root, ds.path, ds.format).probe()
        except DatasetError as exc:
            out.append(doc.diag("TAKT5020", f"dataset {name!r}: {ds.path} {exc.reason}", at))
            continue
        if probe.rows == 0:
            out.append(doc.diag("TAKT5023", f"dataset {name!r}: {ds.path} has no rows", at))
        probes[name] = probe
    for i, test in enumerate(suite.spec.tests):
        if not isinstance(test, DataTest) or test.source is None or test.dataset not in probes:
            continue
        src_doc = index.get("DataSource", test.source)
        source = src_doc.model if src_doc is not None else None
        if not isinstance(source, DataSource):
            continue
        for m in check_columns(probes[test.dataset].columns, source.spec.fields):
            out.append(
                doc.diag(
                    m.code,
                    f"dataset {test.dataset!r} against DataSource {test.source!r}: {m.message}",
                    ("spec", "tests", i, "source"),
                )
            )
    return out
