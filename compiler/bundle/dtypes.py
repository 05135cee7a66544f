"""The tensor and field dtypes of the device contract, in a module of their own.

`compiler.bundle.runner` (runner.json) and the spec models (`compiler.spec.types`) both name them;
here they are one list that the spec can import without loading the whole runner contract (41
dataclasses, the largest import left on `takt validate`'s path).
"""

from __future__ import annotations

from typing import Literal

DType = Literal[
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
    "string",
]
