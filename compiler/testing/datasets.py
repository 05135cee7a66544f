"""Datasets for tests: CSV or NPZ, loaded into named columns, digested, refused precisely."""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from compiler.bundle.tree import TreeError, open_file, read_regular, regular_inside
from compiler.models.digest import DigestCache

MAX_CSV_BYTES = 2 << 30  # read whole today; streaming through Arrow lifts this


@dataclass(frozen=True)
class Dataset:
    name: str
    path: str
    sha256: str
    columns: dict[str, np.ndarray]
    rows: int

    def require(self, names: list[str]) -> str | None:
        missing = [n for n in names if n not in self.columns]
        if missing:
            have = ", ".join(sorted(self.columns)) or "none"
            return f"dataset {self.name!r} has no column(s) {', '.join(missing)} (it has: {have})"
        return None


def _csv_columns(text: str) -> dict[str, np.ndarray] | str:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        return "the CSV file is empty"
    if len(set(header)) != len(header):
        return "the CSV header repeats a column name"
    raw: list[list[str]] = [[] for _ in header]
    for line, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != len(header):
            return f"line {line} has {len(row)} fields, the header {len(header)}"
        for i, value in enumerate(row):
            raw[i].append(value.strip())
    columns: dict[str, np.ndarray] = {}
    for name, values in zip(header, raw, strict=True):
        try:
            columns[name] = np.array(
                [float(v) if v not in ("", "NA", "NaN", "nan") else np.nan for v in values], dtype=np.float64
            )
        except ValueError:
            columns[name] = np.array(values, dtype=object)
    return columns


def _npz_columns(path: Path) -> dict[str, np.ndarray] | str:
    try:
        with open_file(path) as fh, np.load(fh, allow_pickle=False) as npz:
            columns = {k: npz[k] for k in npz.files}
    except TreeError as exc:
        return exc.reason
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        return f"not a readable NPZ file ({type(exc).__name__}: {str(exc)[:120]})"
    lengths = {len(v) if v.ndim else 1 for v in columns.values()}
    if len(lengths) > 1:
        return "the arrays of the NPZ file have different lengths along their first axis"
    return columns


def load_dataset(root: Path, name: str, rel: str, fmt: str | None, cache: DigestCache) -> Dataset | str:
    """The dataset, or why it cannot be used (a message for a located diagnostic)."""
    try:
        path = regular_inside(root, rel)
    except FileNotFoundError:
        return f"dataset {name!r}: {rel} does not exist"
    except TreeError as exc:
        return f"dataset {name!r}: {rel} {exc.reason}"
    fmt = fmt or PurePosixPath(rel).suffix.lstrip(".").lower()
    if fmt == "csv":
        try:
            columns = _csv_columns(read_regular(path, MAX_CSV_BYTES, rel).decode("utf-8"))
        except UnicodeDecodeError:
            return f"dataset {name!r}: {rel} is not UTF-8 text"
        except TreeError as exc:
            return f"dataset {name!r}: {rel} {exc.reason}"
    elif fmt == "npz":
        columns = _npz_columns(path)
    else:
        return f"dataset {name!r}: unknown format {fmt!r} (csv or npz)"
    if isinstance(columns, str):
        return f"dataset {name!r}: {columns}"
    rows = max((len(v) if v.ndim else 1 for v in columns.values()), default=0)
    return Dataset(name, rel, cache.sha256(path), columns, rows)
