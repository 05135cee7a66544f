"""Values from the wire → numbers: a bounded JSONPath subset, JSON numbers and tensors, Modbus registers.

Every function returns the value or raises `Rejected` with a short reason (counted by the runner
as `takt_runner_rejected_values_total{reason}`); none trusts its input.

JSONPath: exactly the subset `takt validate` accepts for `address.jsonPath` — `$` followed by
`.name`, `['name']`, `["name"]` or `[index]` steps, addressing one value (no wildcards, filters,
slices or recursive descent), at most 32 steps.
"""

from __future__ import annotations

import math
import re
import struct
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from compiler.bundle.runner import ModbusAddress

MAX_PATH_STEPS = 32
_STEP = re.compile(r"""\.([A-Za-z_][A-Za-z0-9_-]*)|\[([0-9]+)\]|\['([^']*)'\]|\["([^"]*)"\]""")
_WIDTH = {"bool": 1, "int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "int64": 4, "uint64": 4}
_WIDTH["float64"] = 4
_STRUCT = {"int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "float32": "f", "int64": "q", "uint64": "Q"}
_STRUCT["float64"] = "d"


class Rejected(ValueError):
    """A value that cannot be used; `reason` is a short label for the metric."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def compile_path(path: str | None) -> tuple[str | int, ...]:
    """`$.a.b[0]` → ("a", "b", 0); ValueError when outside the subset."""
    if path is None or path == "$":
        return ()
    if not path.startswith("$"):
        raise ValueError(f"JSON path {path!r} must start with $")
    steps: list[str | int] = []
    pos = 1
    while pos < len(path):
        m = _STEP.match(path, pos)
        if not m:
            raise ValueError(f"JSON path {path!r}: unsupported syntax at {path[pos:pos + 10]!r}")
        name, index, sq, dq = m.groups()
        key = next(g for g in (name, sq, dq, "") if g is not None)
        steps.append(int(index) if index is not None else key)
        pos = m.end()
        if len(steps) > MAX_PATH_STEPS:
            raise ValueError(f"JSON path {path!r} has more than {MAX_PATH_STEPS} steps")
    return tuple(steps)


def select(doc: Any, steps: tuple[str | int, ...]) -> Any:
    for step in steps:
        if isinstance(step, int):
            if not isinstance(doc, list) or step >= len(doc):
                raise Rejected("path-missing")
        elif not isinstance(doc, dict) or step not in doc:
            raise Rejected("path-missing")
        doc = doc[step]
    return doc


def number(value: Any, dtype: str) -> float:
    """A scalar reading as float (NaN passes: the engine counts it); strings, objects, None are refused."""
    if isinstance(value, bool):
        if dtype != "bool":
            raise Rejected("wrong-type")
        return float(value)
    if isinstance(value, int):
        if abs(value) > 2**64:
            raise Rejected("out-of-bounds")
        return float(value)
    if isinstance(value, float):
        return value
    raise Rejected("wrong-type")


def tensor(value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A nested list of numbers of exactly `shape`, as float64."""
    size = math.prod(shape)
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError):
        raise Rejected("wrong-type") from None
    if arr.size != size or arr.shape != tuple(shape):
        if arr.size == size and arr.ndim == 1:
            return arr.reshape(shape)
        raise Rejected("wrong-shape")
    return arr


def parse_plain(payload: bytes) -> float:
    """A payload that is the number itself (`21.5`)."""
    try:
        return float(payload.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise Rejected("not-a-number") from None


# --- Modbus --------------------------------------------------------------------------------------


def register_count(data_type: str) -> int:
    return _WIDTH[data_type]


def registers_to_value(
    registers: list[int], data_type: str, word_order: str, byte_order: str, bit: int | None = None
) -> float:
    """Registers as read (16-bit words in wire order) → the number, for all four byte/word orders.

    word_order big: the first register holds the most significant word; byte_order big: each
    register's high byte comes first (Modbus's own order). bool reads one bit of a register
    (`bit`, default 0).
    """
    width = _WIDTH[data_type]
    if len(registers) != width or any(not 0 <= r <= 0xFFFF for r in registers):
        raise Rejected("bad-registers")
    if data_type == "bool":
        return float((registers[0] >> (bit or 0)) & 1)
    words = registers if word_order == "big" else list(reversed(registers))
    raw = b"".join(w.to_bytes(2, "big" if byte_order == "big" else "little") for w in words)
    return float(struct.unpack(">" + _STRUCT[data_type], raw)[0])


_INT_RANGE = {
    code: (-(1 << (8 * struct.calcsize(code) - 1)), (1 << (8 * struct.calcsize(code) - 1)) - 1)
    if code.islower()
    else (0, (1 << (8 * struct.calcsize(code))) - 1)
    for code in "hHiIqQ"
}


def value_to_registers(value: float, data_type: str, word_order: str, byte_order: str) -> list[int]:
    """The inverse of `registers_to_value`: what the Modbus output writes, in the same four orders.

    Integer types take the nearest integer; a value the type cannot hold (or NaN) is `Rejected`,
    never wrapped around. bool writes 0 or 1 into one register.
    """
    if data_type == "bool":
        return [1 if value else 0]
    code = _STRUCT[data_type]
    if code not in "fd":
        if not math.isfinite(value):
            raise Rejected("not-a-number")
        low, high = _INT_RANGE[code]
        value = round(value)
        if not low <= value <= high:
            raise Rejected("out-of-bounds")
    elif code == "f" and math.isfinite(value) and abs(value) > 3.4028234663852886e38:
        raise Rejected("out-of-bounds")
    raw = struct.pack(">" + code, value)
    words = [int.from_bytes(raw[i : i + 2], "big" if byte_order == "big" else "little") for i in range(0, len(raw), 2)]
    return words if word_order == "big" else list(reversed(words))


def field_value(registers: list[int], address: ModbusAddress) -> float:
    """A Modbus field's reading: the decoded registers × scale + offset."""
    raw = registers_to_value(registers, address.data_type, address.word_order, address.byte_order, address.bit)
    return raw * address.scale + address.offset


def field_registers(value: float, address: Any) -> list[int]:
    """The registers whose reading through the same `address` is `value`: the inverse of `field_value`."""
    if not address.scale:
        raise Rejected("out-of-bounds")  # no register reads back as `value` through scale 0
    return value_to_registers((value - address.offset) / address.scale, address.data_type, address.word_order,
                              address.byte_order)  # fmt: skip
