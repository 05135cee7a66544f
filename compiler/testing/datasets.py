"""Datasets for tests: Parquet, Arrow IPC/Feather, CSV or NPZ (read by `formats`), digested, refused precisely."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compiler.bundle.tree import TreeError
from compiler.models.digest import DigestCache
from compiler.stores.locate import locate_path
from compiler.stores.located import Refused
from compiler.testing.dataset_types import DatasetError, infer_format
from compiler.testing.formats import DatasetFile


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


def open_dataset(root: Path, rel: str, fmt: str | None) -> DatasetFile:
    """The dataset file inside the project; DatasetError (the reason) when it cannot be opened."""
    try:
        path = locate_path(root, rel)  # DVC's cached copy when DVC tracks the path
    except FileNotFoundError:
        raise DatasetError("does not exist") from None
    except TreeError as exc:
        raise DatasetError(exc.reason) from None
    except Refused as exc:
        raise DatasetError(exc.message.removeprefix(rel).strip()) from None
    return DatasetFile(path, infer_format(rel, fmt), rel)


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def load_dataset(root: Path, name: str, rel: str, fmt: str | None, cache: DigestCache) -> Dataset | str:
    """The dataset whole in memory, or why it cannot be used (a message for a located diagnostic)."""
    try:
        file = open_dataset(root, rel, fmt)
        probe = file.probe()
        if len({c.name for c in probe.columns}) != len(probe.columns):
            return f"dataset {name!r}: {rel} repeats a column name"
        parts: dict[str, list[np.ndarray]] = {c.name: [] for c in probe.columns}
        for batch in file.batches():
            for k, v in batch.items():
                parts[k].append(v)
        sha = cache.sha256(file.path)
    except DatasetError as exc:
        return f"dataset {name!r}: {rel} {exc.reason}"
    except TreeError as exc:
        return f"dataset {name!r}: {rel} {exc.reason}"
    columns = {k: _concat(v) if v else np.empty(0) for k, v in parts.items()}
    rows = max((len(v) if v.ndim else 1 for v in columns.values()), default=0)
    return Dataset(name, rel, sha, columns, rows)
