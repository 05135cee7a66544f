"""Bindings → model inputs: named columns stacked along the input's last axis, then cast."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

NP_DTYPES: dict[str, type] = {
    "float32": np.float32,
    "float64": np.float64,
    "float16": np.float16,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "uint32": np.uint32,
    "uint64": np.uint64,
    "bool": np.bool_,
    "string": np.object_,
}


@dataclass(frozen=True)
class InputSpec:
    """One model input: the columns (fields) that feed it, in order, and how they are laid out.

    features: one column per position of the last axis (stacked as float64);
    tensor: a single column carries the whole input as it is.
    """

    name: str
    columns: tuple[str, ...]
    dtype: str
    layout: Literal["features", "tensor"] = "features"


class FramesError(ValueError):
    """Inputs that cannot be assembled or preprocessed; the message names the input and why."""


class MissingColumns(FramesError):
    def __init__(self, input_name: str, missing: list[str]) -> None:
        super().__init__(f"no column(s) {', '.join(missing)} for input {input_name!r}")
        self.input_name, self.missing = input_name, missing


def assemble(specs: Sequence[InputSpec], columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each input's array over the same rows; raises MissingColumns naming what is absent. A `features` input
    is always a new array (callers may preprocess it in place); a `tensor` input is its column itself."""
    feeds: dict[str, np.ndarray] = {}
    for spec in specs:
        missing = [c for c in spec.columns if c not in columns]
        if missing:
            raise MissingColumns(spec.name, missing)
        if spec.layout == "features":
            parts = [np.asarray(columns[c]) for c in spec.columns]
            if all(p.ndim == 1 for p in parts) and len({p.shape for p in parts}) == 1:
                # (rows, fields) filled a column at a time: a single allocation and copy, not a transpose's two
                out = np.empty((parts[0].shape[0], len(parts)), dtype=np.float64)
                for i, part in enumerate(parts):
                    out[:, i] = part
                feeds[spec.name] = out
                continue
            # one array (fields, rows, …) then fields last: a single allocation, also for one live row
            arr = np.array(parts, dtype=np.float64)
            feeds[spec.name] = np.ascontiguousarray(arr.T if arr.ndim == 2 else np.moveaxis(arr, 0, -1))
        else:
            feeds[spec.name] = np.asarray(columns[spec.columns[0]])
    return feeds


def cast(feeds: Mapping[str, np.ndarray], dtypes: Mapping[str, str]) -> dict[str, np.ndarray]:
    """Every array in its input's declared dtype (no copy where it already is)."""
    return {k: v.astype(NP_DTYPES[dtypes[k]], copy=False) for k, v in feeds.items()}
