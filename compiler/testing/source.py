"""One TestSuite dataset as a stream: its file, schema, digest, and batches of only the columns a test reads."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from compiler.testing.formats import READ_BUFFER, DatasetError, DatasetFile, Probe

NUMERIC = ("number", "bool")


class DataUnusable(Exception):
    """A dataset that cannot be read further; the message names the dataset and its file."""


@dataclass(frozen=True)
class TestData:
    __test__ = False  # not a pytest class

    name: str
    rel: str
    file: DatasetFile
    probe: Probe
    sha256: str

    @property
    def kinds(self) -> dict[str, str]:
        return {c.name: c.kind for c in self.probe.columns}

    def require(self, names: list[str]) -> str | None:
        missing = [n for n in names if n not in self.kinds]
        if missing:
            have = ", ".join(sorted(self.kinds)) or "none"
            return f"dataset {self.name!r} has no column(s) {', '.join(missing)} (it has: {have})"
        return None

    def batches(self, names: list[str], rows: int, buffer: int = READ_BUFFER) -> Iterator[dict[str, np.ndarray]]:
        """Batches of the named columns that exist (at least one column, so rows are counted)."""
        present = [n for n in names if n in self.kinds] or [c.name for c in self.probe.columns[:1]]
        try:
            yield from self.file.batches(present, rows, buffer)
        except DatasetError as exc:
            raise DataUnusable(f"dataset {self.name!r}: {self.rel} {exc.reason}") from None


def rows_of(batch: dict[str, np.ndarray]) -> int:
    return len(next(iter(batch.values()))) if batch else 0
