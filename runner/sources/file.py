"""Replay a CSV, JSONL or NPZ file (demos, tests): row by row, at its `timestamp` column's pace,
else at the sampling interval, else as fast as the engine consumes the rows."""

from __future__ import annotations

import asyncio
import csv
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from compiler.bundle import runner as contract
from runner import decode
from runner.errors import StartError
from runner.table import Table

TIME_COLUMNS = ("timestamp", "time")


def _rows(path: Path, fmt: str) -> Iterator[dict[str, Any]]:
    if fmt == "csv":
        with path.open(newline="", encoding="utf-8") as fh:
            yield from csv.DictReader(fh)
    elif fmt == "jsonl":
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    try:
                        doc = json.loads(line)
                    except ValueError:
                        doc = None
                    yield doc if isinstance(doc, dict) else {}
    else:
        with np.load(path, allow_pickle=False) as npz:
            columns = {k: npz[k] for k in npz.files}
        n = max((len(v) for v in columns.values() if v.ndim), default=0)
        for i in range(n):
            yield {k: v[i] for k, v in columns.items()}


def _value(raw: Any, field: contract.FileField) -> Any:
    if isinstance(raw, np.ndarray):
        return raw.astype(np.float64) if raw.ndim else float(raw)
    if isinstance(raw, np.generic):
        return float(raw)
    if isinstance(raw, str):
        text = raw.strip()
        if text in ("", "NA", "NaN", "nan"):
            return math.nan
        try:
            return float(text)
        except ValueError:
            raise decode.Rejected("not-a-number") from None
    if field.shape:
        return decode.tensor(raw, field.shape)
    return decode.number(raw, field.dtype)


class FileSourceRunner:
    def __init__(self, name: str, spec: contract.FileSource, base: Path, table: Table, loop_forever: bool = False):
        self.name, self.spec, self.table, self.loop_forever = name, spec, table, loop_forever
        self.path = Path(spec.path) if Path(spec.path).is_absolute() else base / spec.path
        if not self.path.is_file():
            raise StartError(f"sources.{name}.path", f"{self.path} does not exist")
        self.state = table.add_source(name, [f.name for f in spec.fields], None)
        self.done = asyncio.Event()

    async def run(self) -> None:
        self.table.set_connected(self.name, True)
        last_t: float | None = None
        loop = asyncio.get_running_loop()
        start = loop.time()
        offset = 0.0
        try:
            for i, row in enumerate(_rows(self.path, self.spec.format)):
                t = next((row[c] for c in TIME_COLUMNS if c in row), None)
                try:
                    t = float(t) if t is not None else None
                except (TypeError, ValueError):
                    t = None
                if t is not None and math.isfinite(t):
                    if last_t is None:
                        offset = t
                    delay = start + (t - offset) - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    last_t = t
                elif self.spec.sampling_interval and i:
                    await asyncio.sleep(self.spec.sampling_interval)
                for f in self.spec.fields:
                    if f.address.column not in row:
                        self.table.reject(self.name, f.name, "missing-column")
                        continue
                    try:
                        self.table.update(self.name, f.name, _value(row[f.address.column], f))
                    except decode.Rejected as exc:
                        self.table.reject(self.name, f.name, exc.reason)
                self.table.commit()
                await self.table.wait_processed(self.table.version)
        except (OSError, UnicodeDecodeError, ValueError, csv.Error) as exc:
            self.table.reject(self.name, None, f"unreadable-file:{type(exc).__name__}")
        self.done.set()
