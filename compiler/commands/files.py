"""Files a command writes for the user (schemas, reports): atomically, so CI never reads half a SARIF,
and with the user's umask, like any tool's output."""

from __future__ import annotations

import os
from pathlib import Path

from compiler.bundle.atomic import write_atomic as _write_bytes


def _umask() -> int:
    """The process umask, read without changing it where Linux tells it (/proc/self/status)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Path, text: str) -> None:
    """Whole or not at all; a file written for the user gets the user's umask, like any tool's output."""
    _write_bytes(path, text.encode("utf-8"))
    os.chmod(path, 0o666 & ~_umask())
