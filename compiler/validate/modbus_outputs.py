"""Modbus outputs: the register is writable, holds one value per frame, exists, and keeps the prediction.

Cross-document rules (the connection's addressing, the model output's shape and dtype); single values
are checked by the spec model, the connection's protocol by the semantics stage.
"""

from __future__ import annotations

import math
import re

from compiler.diagnostics import Diagnostic
from compiler.loader.yamldoc import Path_
from compiler.spec.datasource import ModbusSource
from compiler.spec.deployment import Deployment, ModbusOutput
from compiler.spec.model import Model
from compiler.validate.document import SpecDocument
from compiler.validate.index import SpecIndex
from compiler.validate.protocols import _WORDS, _register_span

_TCP_ENDPOINT = re.compile(r"^(\[[0-9A-Fa-f:]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$")
_FLOAT_OUTPUTS = ("float16", "bfloat16", "float32", "float64")


def check_modbus_outputs(index: SpecIndex) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for doc in index.valid("Deployment"):
        dep: Deployment = doc.model
        model_doc = index.get("Model", dep.spec.model.name)
        model: Model | None = model_doc.model if model_doc else None
        for i, o in enumerate(dep.spec.outputs):
            if isinstance(o, ModbusOutput):
                _output(doc, index, model, o, ("spec", "outputs", i), out)
    return out


def _output(
    doc: SpecDocument, index: SpecIndex, model: Model | None, o: ModbusOutput, path: Path_, out: list[Diagnostic]
) -> None:
    a, where = o.address, (*path, "address")
    addressing = o.addressing or "zero-based"
    conn = index.get("DataSource", o.connection) if o.connection else None
    if conn is not None and conn.model is not None and isinstance(conn.model.spec, ModbusSource):
        src: ModbusSource = conn.model.spec
        addressing = o.addressing or src.addressing
        if src.transport != "tcp":
            out.append(
                doc.diag(
                    "TAKT2024",
                    f"DataSource {o.connection!r} is Modbus RTU; outputs write over TCP",
                    (*path, "connection"),
                )
            )
    if o.endpoint is not None:
        m = _TCP_ENDPOINT.match(o.endpoint)
        if not m or not 0 < int(m.group(2)) < 65536:
            out.append(
                doc.diag(
                    "TAKT2006",
                    f"Modbus TCP endpoint {o.endpoint!r} must be host:port (usually port 502)",
                    (*path, "endpoint"),
                )
            )
    if a.register_type in ("input-register", "discrete-input"):
        out.append(
            doc.diag(
                "TAKT2024",
                f"{a.register_type}s are read-only: a Modbus output writes a holding-register or a coil",
                (*where, "registerType"),
                hint="registerType: holding-register",
            )
        )
        return
    if a.register_type == "coil" and a.data_type != "bool":
        out.append(
            doc.diag(
                "TAKT2021", f"a coil holds one bit: dataType must be bool, not {a.data_type}", (*where, "dataType")
            )
        )
    if a.bit is not None:
        out.append(
            doc.diag(
                "TAKT2024",
                "a Modbus output writes whole registers: writing one bit would overwrite the other 15",
                (*where, "bit"),
                key=True,
                hint="write a coil, or a register of its own",
            )
        )
    if a.scale == 0:
        out.append(doc.diag("TAKT2020", "scale 0: the register holds (prediction − offset) / scale", (*where, "scale")))
    one_based = addressing == "one-based"
    if one_based and a.address == 0:
        out.append(
            doc.diag("TAKT2020", "address 0 with one-based addressing; the first register is 1", (*where, "address"))
        )
    words = 1 if a.register_type == "coil" else _WORDS[a.data_type]
    _register_span(doc, a.address, a.data_type, words, one_based, (*where, "address"), out)
    tensor = next((t for t in model.spec.outputs if t.name == o.from_), None) if model else None
    if tensor is None:
        return  # an unknown output is TAKT4008
    sizes = [d for d in tensor.shape[1:] if isinstance(d, int)]
    if math.prod(sizes) > 1:
        out.append(
            doc.diag(
                "TAKT2024",
                f"output {o.from_!r} has shape {tensor.shape}: a register holds one value per frame",
                (*path, "from"),
                hint="write an output of shape [batch] or [batch, 1]",
            )
        )
    integer = a.data_type not in ("float32", "float64", "bool")
    if integer and tensor.dtype in _FLOAT_OUTPUTS and float(a.scale) == 1.0:
        out.append(
            doc.diag(
                "TAKT2025",
                f"{tensor.dtype} output {o.from_!r} is rounded to a whole {a.data_type}",
                (*where, "dataType"),
                hint="set scale (e.g. 0.01: the register holds value × 100) or write dataType: float32",
            )
        )
