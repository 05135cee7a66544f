"""Baseline for bench/bench_test_data.py, never used by takt: the hand-written CSV reader `takt test` had
until pyarrow replaced it (`compiler/testing/datasets.py` at 92b0b6f^, `_csv_columns`, copied unchanged).

It read each dataset whole, decoded, into Python lists and then numpy columns: ~80 % of `takt test`'s
time on 10⁶ rows in issue #17. `python bench/baseline_csv_reader.py FILE...` reads each file as that
`takt test` did (whole, UTF-8, once per dataset), so the bench can time it beside today's CSV path.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import numpy as np


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


def main() -> None:
    for name in sys.argv[1:]:
        columns = _csv_columns(Path(name).read_bytes().decode("utf-8"))
        if isinstance(columns, str):
            raise SystemExit(f"{name}: {columns}")


if __name__ == "__main__":
    main()
