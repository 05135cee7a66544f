"""What a dataset probe says, without numpy or pyarrow: validation reuses cached probes and never imports them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

FORMATS = ("csv", "npz", "parquet", "arrow", "feather")
SUFFIXES = {"csv": "csv", "npz": "npz", "parquet": "parquet", "pq": "parquet", "arrow": "arrow", "ipc": "arrow"}
SUFFIXES["feather"] = "feather"
DEFAULT_MEMORY = 1 << 30  # `takt test --memory`'s default, and the build's for reference statistics


class DatasetError(Exception):
    """A dataset file that cannot be used; `reason` says why, without the file name."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # number | bool | string | tensor | other
    type: str  # the Arrow (or numpy) type, for messages
    unit: str | None = None  # from the field's metadata (`unit`), where the file carries one


@dataclass(frozen=True)
class Probe:
    format: str
    columns: tuple[Column, ...]
    rows: int | None  # known from metadata (Parquet, IPC file, NPZ); None for CSV until read


def infer_format(rel: str, declared: str | None) -> str:
    """The declared format, else the one the suffix names; DatasetError for neither."""
    if declared:
        return declared
    suffix = PurePosixPath(rel).suffix.lstrip(".").lower()
    if suffix in SUFFIXES:
        return SUFFIXES[suffix]
    raise DatasetError(f"unknown format {suffix!r} (set format: one of {', '.join(FORMATS)})")
