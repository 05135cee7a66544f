"""Kernel tables of onnxruntime releases: which operator versions and types each provider implements.

A target pins its onnxruntime release; checks use that release's table, not the installed one.
Tables ship as JSON next to their generator; the installed release is read live when asked.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler.spec.types import version_tuple

TABLE_DIR = Path(__file__).resolve().parent / "kernels"


@dataclass(frozen=True)
class KernelTable:
    version: str
    max_ir_version: int | None
    max_opset: dict[str, int]
    kernels: dict[str, dict[str, dict[str, list[Any]]]]  # provider → domain → op → [[start, end, {T: types}]]
    functions: dict[str, dict[str, list[int]]]  # domain → op → since versions with an ONNX function body

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KernelTable:
        return cls(
            data["onnxruntime"],
            data.get("max_ir_version"),
            data["max_opset"],
            data["kernels"],
            data.get("functions", {}),
        )

    @property
    def release(self) -> tuple[int, ...]:
        return version_tuple(self.version)[:2]


@functools.cache
def shipped_tables() -> dict[tuple[int, ...], KernelTable]:
    tables = {}
    for path in sorted(TABLE_DIR.glob("ort-*.json")):
        table = KernelTable.from_json(json.loads(path.read_text(encoding="utf-8")))
        tables[table.release] = table
    return tables


@functools.cache
def installed_table() -> KernelTable:
    """The onnxruntime installed here, read from its own kernel registry."""
    from compiler.models.kernels.generate_table import build_table

    return KernelTable.from_json(build_table())


def table_for(version: str) -> tuple[KernelTable, str | None]:
    """The table of a release, or the closest shipped one with a note saying so.

    An unknown release is checked against the newest older table (conservative: fewer kernels),
    or the oldest table when it predates them all.
    """
    wanted = version_tuple(version)[:2]
    tables = shipped_tables()
    if wanted in tables:
        return tables[wanted], None
    installed = installed_table()
    if installed.release == wanted:
        return installed, None
    older = [r for r in tables if r < wanted]
    chosen = tables[max(older)] if older else tables[min(tables)]
    known = ", ".join(".".join(map(str, r)) for r in sorted(tables))
    return chosen, (f"no kernel table for onnxruntime {version} (shipped: {known}); checked against {chosen.version}")
