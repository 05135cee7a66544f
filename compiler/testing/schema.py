"""A dataset's columns against the DataSource fields it stands for: kinds and units, before any row is used."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from compiler.spec.datasource import FieldBase
from compiler.testing.dataset_types import Column

NUMERIC_KINDS = {"number", "bool"}


@dataclass(frozen=True)
class Mismatch:
    code: str  # TAKT5021 (type) or TAKT5022 (unit)
    field: str
    message: str


def _expected_kind(f: FieldBase) -> set[str]:
    if f.shape and any(d != 1 for d in f.shape):
        return {"tensor"}
    if f.dtype == "string":
        return {"string"}
    return NUMERIC_KINDS


def check_columns(columns: Sequence[Column], fields: Sequence[FieldBase]) -> list[Mismatch]:
    """Every column named like a field must hold the field's kind of value and, where the file
    states a unit, the field's unit. Absent columns are the data test's to report."""
    by_name = {c.name: c for c in columns}
    out: list[Mismatch] = []
    for f in fields:
        col = by_name.get(f.name)
        if col is None:
            continue
        want = _expected_kind(f)
        if col.kind not in want:
            what = "strings" if col.kind == "string" else f"{col.kind} values"
            out.append(
                Mismatch("TAKT5021", f.name, f"column {f.name!r} holds {what} ({col.type}); the field is {f.dtype}")
            )
        if col.unit is not None and f.unit is not None and col.unit != f.unit:
            out.append(
                Mismatch("TAKT5022", f.name, f"column {f.name!r} is in {col.unit!r}; the field is in {f.unit!r}")
            )
    return out
