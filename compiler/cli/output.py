"""Writing reports: to stdout, or atomically to a file so CI never reads half a SARIF."""

from __future__ import annotations

from pathlib import Path

from compiler.bundle.atomic import write_atomic as _write_bytes


def write_atomic(path: Path, text: str) -> None:
    _write_bytes(path, text.encode("utf-8"))
