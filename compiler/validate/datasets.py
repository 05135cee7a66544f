"""TestSuite datasets read as far as their schema: readable, not empty, and of the DataSource's kinds and units.

Only metadata is read (a Parquet footer, an IPC schema, the first CSV block: compiler/validate/artifacts.py
probes each dataset once), so `takt validate` stays fast on plant-sized files and `takt test` never
starts on a dataset it would refuse halfway.
"""

from __future__ import annotations

from collections.abc import Iterator

from compiler.diagnostics import Diagnostic
from compiler.spec.datasource import DataSource
from compiler.spec.testsuite import DataTest
from compiler.testing.dataset_types import DatasetError
from compiler.testing.schema import check_columns
from compiler.validate.artifacts import ModelFiles
from compiler.validate.checks import Check


def datasets_readable(m: ModelFiles) -> Iterator[Diagnostic]:
    """TAKT5020: the dataset's format can be read as far as its schema."""
    for p in m.probed:
        if isinstance(p.probe, DatasetError):
            at = ("spec", "datasets", p.name, "path")
            yield p.doc.diag("TAKT5020", f"dataset {p.name!r}: {p.rel} {p.probe.reason}", at)


def datasets_have_rows(m: ModelFiles) -> Iterator[Diagnostic]:
    """TAKT5023: a test on an empty dataset proves nothing."""
    for p in m.probed:
        if not isinstance(p.probe, DatasetError) and p.probe.rows == 0:
            yield p.doc.diag(
                "TAKT5023", f"dataset {p.name!r}: {p.rel} has no rows", ("spec", "datasets", p.name, "path")
            )


def placed_column_mismatches(m: ModelFiles) -> Iterator[Diagnostic]:
    """compiler.testing.schema's column checks (TAKT5021, 5022), at the data test naming the DataSource."""
    for doc in m.index.valid("TestSuite"):
        probes = m.probes(doc)
        for i, test in enumerate(doc.model.spec.tests):
            if not isinstance(test, DataTest) or test.source is None or test.dataset not in probes:
                continue
            src_doc = m.index.get("DataSource", test.source)
            source = src_doc.model if src_doc is not None else None
            if not isinstance(source, DataSource):
                continue
            for mm in check_columns(probes[test.dataset].columns, source.spec.fields):
                yield doc.diag(
                    mm.code,
                    f"dataset {test.dataset!r} against DataSource {test.source!r}: {mm.message}",
                    ("spec", "tests", i, "source"),
                )


CHECKS: tuple[Check[ModelFiles, Diagnostic], ...] = (
    Check("TAKT5020", datasets_readable),
    Check("TAKT5023", datasets_have_rows),
)
