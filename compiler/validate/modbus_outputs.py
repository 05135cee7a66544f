"""Modbus outputs: the register is writable, holds one value per frame, and keeps the prediction.

Cross-document rules (the connection's transport, the model output's shape and dtype), one check per
code; the endpoint, the coil's data type, scale and the address of an output are checked with the
sources' in protocols.py, single values by the spec model, the connection's protocol by semantics.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from compiler.diagnostics import Diagnostic
from compiler.spec.datasource import ModbusSource
from compiler.spec.deployment import Deployment, ModbusOutput
from compiler.spec.model import Model, Tensor
from compiler.validate.checks import Check, run_checks
from compiler.validate.index import SpecIndex
from compiler.validate.protocols import modbus_outputs

_FLOAT_OUTPUTS = ("float16", "bfloat16", "float32", "float64")


def check_modbus_outputs(index: SpecIndex) -> list[Diagnostic]:
    return run_checks(CHECKS, index)


def _tensor(index: SpecIndex, dep: Deployment, o: ModbusOutput) -> Tensor | None:
    model_doc = index.get("Model", dep.spec.model.name)
    model: Model | None = model_doc.model if model_doc else None  # type: ignore[assignment]
    return next((t for t in model.spec.outputs if t.name == o.from_), None) if model else None


def modbus_output_writable(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT2024: a Modbus output writes one whole value per frame into a holding-register or coil over TCP."""
    for doc, o, path in modbus_outputs(index):
        a, where = o.address, (*path, "address")
        conn = index.get("DataSource", o.connection) if o.connection else None
        src = conn.model.spec if conn is not None and conn.model is not None else None  # type: ignore[attr-defined]
        if isinstance(src, ModbusSource) and src.transport != "tcp":
            yield doc.diag(
                "TAKT2024", f"DataSource {o.connection!r} is Modbus RTU; outputs write over TCP", (*path, "connection")
            )
        if a.register_type in ("input-register", "discrete-input"):
            yield doc.diag(
                "TAKT2024",
                f"{a.register_type}s are read-only: a Modbus output writes a holding-register or a coil",
                (*where, "registerType"),
                hint="registerType: holding-register",
            )
            continue
        if a.bit is not None:
            yield doc.diag(
                "TAKT2024",
                "a Modbus output writes whole registers: writing one bit would overwrite the other 15",
                (*where, "bit"),
                key=True,
                hint="write a coil, or a register of its own",
            )
        tensor = _tensor(index, doc.model, o)  # type: ignore[arg-type]
        if tensor is None:
            continue  # an unknown output is TAKT4008
        sizes = [d for d in tensor.shape[1:] if isinstance(d, int)]
        if math.prod(sizes) > 1:
            yield doc.diag(
                "TAKT2024",
                f"output {o.from_!r} has shape {tensor.shape}: a register holds one value per frame",
                (*path, "from"),
                hint="write an output of shape [batch] or [batch, 1]",
            )


def modbus_output_keeps_decimals(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT2025: a float prediction written into an integer register without a scale is rounded."""
    for doc, o, path in modbus_outputs(index):
        a = o.address
        if a.register_type in ("input-register", "discrete-input"):
            continue  # TAKT2024
        tensor = _tensor(index, doc.model, o)  # type: ignore[arg-type]
        integer = a.data_type not in ("float32", "float64", "bool")
        if tensor is not None and integer and tensor.dtype in _FLOAT_OUTPUTS and float(a.scale) == 1.0:
            yield doc.diag(
                "TAKT2025",
                f"{tensor.dtype} output {o.from_!r} is rounded to a whole {a.data_type}",
                (*path, "address", "dataType"),
                hint="set scale (e.g. 0.01: the register holds value × 100) or write dataType: float32",
            )


CHECKS = (
    Check("TAKT2024", modbus_output_writable),
    Check("TAKT2025", modbus_output_keeps_decimals),
)
