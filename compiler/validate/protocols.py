"""Cross-field rules of each data-access protocol (single values are checked by the models)."""

from __future__ import annotations

import re

from compiler.diagnostics import Diagnostic
from compiler.loader.yamldoc import Path_
from compiler.spec.addresses import (
    MAX_REGISTER,
    modicon_reference,
    opcua_misses_namespace,
    opcua_uses_namespace_index,
    sparkplug_topic_problem,
)
from compiler.spec.datasource import DataSource, ModbusField, ModbusSource, MqttSource, OpcUaSource
from compiler.spec.deployment import Deployment, OpcUaOutput
from compiler.validate.document import SpecDocument
from compiler.validate.index import SpecIndex
from compiler.validate.semantics import conversion

_WORDS = {
    "bool": 1,
    "int16": 1,
    "uint16": 1,
    "int32": 2,
    "uint32": 2,
    "float32": 2,
    "int64": 4,
    "uint64": 4,
    "float64": 4,
}


def check_protocols(index: SpecIndex) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for doc in index.valid("DataSource"):
        src: DataSource = doc.model
        names: dict[str, int] = {}
        for i, f in enumerate(src.spec.fields):
            if f.name in names:
                out.append(
                    doc.diag(
                        "TAKT3002",
                        f"field {f.name!r} is already defined as fields[{names[f.name]}]",
                        ("spec", "fields", i, "name"),
                    )
                )
            names.setdefault(f.name, i)
        spec = src.spec
        if isinstance(spec, OpcUaSource):
            _opcua(doc, spec, out)
        elif isinstance(spec, MqttSource):
            _mqtt(doc, spec, out)
        elif isinstance(spec, ModbusSource):
            _modbus(doc, spec, out)
    for doc in index.valid("Deployment"):
        dep: Deployment = doc.model
        for i, o in enumerate(dep.spec.outputs):
            if isinstance(o, OpcUaOutput):
                _node_id_lints(doc, o.node_id, ("spec", "outputs", i, "nodeId"), out)
    return out


def _opcua(doc: SpecDocument, spec: OpcUaSource, out: list[Diagnostic]) -> None:
    if spec.security.mode == "None":
        out.append(
            doc.diag(
                "TAKT2004",
                "OPC UA security mode None: traffic is neither signed nor encrypted",
                ("spec", "security", "mode"),
            )
        )
    if spec.security.policy in ("Basic128Rsa15", "Basic256"):
        out.append(
            doc.diag(
                "TAKT2005", f"security policy {spec.security.policy} is deprecated", ("spec", "security", "policy")
            )
        )
    for i, f in enumerate(spec.fields):
        _node_id_lints(doc, f.address.node_id, ("spec", "fields", i, "address", "nodeId"), out)


def _node_id_lints(doc: SpecDocument, node_id: str, path: Path_, out: list[Diagnostic]) -> None:
    """Valid node ids that will most likely not find their node on another server, or at all."""
    if opcua_uses_namespace_index(node_id):
        out.append(
            doc.diag(
                "TAKT2002",
                f"node id {node_id[:120]!r} uses a namespace index",
                path,
                hint="write nsu=<namespace URI>;… so the address survives server changes",
            )
        )
    elif opcua_misses_namespace(node_id):
        out.append(
            doc.diag(
                "TAKT2008",
                f"node id {node_id[:120]!r} "
                + ("is in" if node_id.startswith(("ns=", "nsu=")) else "has no namespace, so it is looked up in")
                + " namespace 0, the OPC UA namespace, which has numeric ids only",
                path,
                hint=f"write nsu=<namespace URI>;{_identifier_part(node_id)[:60]}",
            )
        )


def _identifier_part(node_id: str) -> str:
    """`s=X` of `ns=0;s=X`: what follows the namespace, if one is written."""
    return node_id.partition(";")[2] if node_id.startswith(("ns=", "nsu=")) else node_id


def _mqtt(doc: SpecDocument, spec: MqttSource, out: list[Diagnostic]) -> None:
    for i, f in enumerate(spec.fields):
        base = ("spec", "fields", i, "address")
        a = f.address
        if spec.sparkplug:
            problem = sparkplug_topic_problem(a.topic)
            if problem:
                out.append(doc.diag("TAKT2011", f"invalid Sparkplug B topic {a.topic!r}: {problem}", (*base, "topic")))
            elif a.topic.split("/")[1] == "STATE" and a.topic.count("/") == 2:
                out.append(
                    doc.diag(
                        "TAKT2011",
                        f"{a.topic!r} carries a host application's online state, not metrics",
                        (*base, "topic"),
                        hint="read metrics from NBIRTH/NDATA or DBIRTH/DDATA topics",
                    )
                )
            if a.metric is None:
                out.append(doc.diag("TAKT2011", "Sparkplug B fields name their metric", base, hint="add `metric:`"))
            if a.json_path is not None:
                out.append(
                    doc.diag(
                        "TAKT2011",
                        "Sparkplug B payloads are protobuf: use metric, not jsonPath",
                        (*base, "jsonPath"),
                        key=True,
                    )
                )
        elif a.metric is not None:
            out.append(
                doc.diag(
                    "TAKT2011", "metric is only for Sparkplug B sources (sparkplug: true)", (*base, "metric"), key=True
                )
            )


def _modbus(doc: SpecDocument, spec: ModbusSource, out: list[Diagnostic]) -> None:
    if spec.transport == "rtu":
        if spec.serial is None:
            out.append(doc.diag("TAKT2020", "Modbus RTU needs serial settings", ("spec",), hint="add `serial:`"))
        if not re.match(r"^(/dev/\S+|COM[0-9]+)$", spec.endpoint):
            out.append(
                doc.diag(
                    "TAKT2006",
                    f"Modbus RTU endpoint {spec.endpoint!r} must be a serial device such as /dev/ttyUSB0",
                    ("spec", "endpoint"),
                )
            )
        if not 1 <= spec.unit_id <= 247:
            out.append(doc.diag("TAKT2020", f"Modbus RTU unit id {spec.unit_id} must be 1..247", ("spec", "unitId")))
    else:
        m = re.match(r"^(\[[0-9A-Fa-f:]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$", spec.endpoint)
        if not m or not 0 < int(m.group(2)) < 65536:
            out.append(
                doc.diag(
                    "TAKT2006",
                    f"Modbus TCP endpoint {spec.endpoint!r} must be host:port (usually port 502)",
                    ("spec", "endpoint"),
                )
            )
        if spec.serial is not None:
            out.append(
                doc.diag("TAKT2020", "serial settings apply to transport rtu only", ("spec", "serial"), key=True)
            )
    one_based = spec.addressing == "one-based"
    for i, f in enumerate(spec.fields):
        base = ("spec", "fields", i, "address")
        a = f.address
        bit_register = a.register_type in ("coil", "discrete-input")
        if bit_register and a.data_type != "bool":
            out.append(
                doc.diag(
                    "TAKT2021",
                    f"{a.register_type} holds single bits: dataType must be bool, not {a.data_type}",
                    (*base, "dataType"),
                )
            )
        if not bit_register and a.data_type == "bool" and a.bit is None:
            out.append(doc.diag("TAKT2021", f"a bool in a {a.register_type} needs `bit: 0..15`", base))
        if a.bit is not None and (bit_register or a.data_type != "bool"):
            out.append(
                doc.diag("TAKT2021", "bit applies to bool values packed in a register", (*base, "bit"), key=True)
            )
        if a.scale == 0:
            out.append(doc.diag("TAKT2020", "scale 0 would turn every reading into the offset", (*base, "scale")))
        if one_based and a.address == 0:
            out.append(
                doc.diag(
                    "TAKT2020",
                    "address 0 with one-based addressing; the first register is 1",
                    (*base, "address"),
                    hint="set `addressing: zero-based` or count from 1",
                )
            )
        words = 1 if bit_register else _WORDS[a.data_type]
        _register_span(doc, a.address, a.data_type, words, one_based, (*base, "address"), out)
        _modicon_hint(doc, a.address, a.register_type, one_based, (*base, "address"), out)
        _field_holds_value(doc, f, ("spec", "fields", i), out)
    _overlaps(doc, spec, out)


_INTEGER_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")


def _field_holds_value(doc: SpecDocument, f: ModbusField, path: Path_, out: list[Diagnostic]) -> None:
    """The field's dtype holds what the register decodes to (`dataType`, then × scale + offset)."""
    a = f.address
    decoded = "bool" if a.register_type in ("coil", "discrete-input") else a.data_type
    fractional = not (float(a.scale).is_integer() and float(a.offset).is_integer())
    if f.dtype in _INTEGER_DTYPES and fractional:
        problem = f"scale {a.scale:g} and offset {a.offset:g} give fractional values, which {f.dtype} truncates"
    elif conversion(decoded, f.dtype, f.range) in ("invalid", "lossy"):
        problem = f"the register holds {decoded}, which {f.dtype} cannot hold without loss"
    else:
        return
    out.append(
        doc.diag(
            "TAKT2022",
            f"field {f.name!r} is declared {f.dtype}: {problem}",
            (*path, "dtype"),
            hint=f"declare dtype: {_suggested_dtype(decoded, fractional)}, or read the register as the type "
            "the device stores",
        )
    )


def _suggested_dtype(decoded: str, fractional: bool) -> str:
    """The narrowest dtype that holds the decoded value exactly."""
    if not fractional:
        return decoded
    return "float32" if decoded in ("bool", "int8", "int16", "uint8", "uint16", "float32") else "float64"


def _span(f: ModbusField) -> tuple[str, int, int, int | None]:
    """(register table, first, last register, bit) that a field reads."""
    a = f.address
    bit_register = a.register_type in ("coil", "discrete-input")
    words = 1 if bit_register else _WORDS[a.data_type]
    return a.register_type, a.address, a.address + words - 1, a.bit if a.data_type == "bool" else None


def _overlaps(doc: SpecDocument, spec: ModbusSource, out: list[Diagnostic]) -> None:
    """Two values decoded from shared registers are one value misread; bits of a register are not.
    Each field that shares registers with an earlier one is reported, naming the first of them."""
    spans = sorted(((_span(f), i) for i, f in enumerate(spec.fields)), key=lambda t: (t[0][0], t[0][1], t[1]))
    active: list[tuple[tuple[str, int, int, int | None], int]] = []
    earliest: dict[int, int] = {}
    for span, i in spans:
        active = [(s, j) for s, j in active if s[0] == span[0] and s[2] >= span[1]]
        for other, j in active:
            if span[3] == other[3]:  # both whole registers (None), or the same bit
                later, earlier = max(i, j), min(i, j)
                earliest[later] = min(earliest.get(later, earlier), earlier)
        active.append((span, i))
    for later in sorted(earliest):
        out.append(_overlap_diag(doc, spec, later, earliest[later]))


def _overlap_diag(doc: SpecDocument, spec: ModbusSource, later: int, earlier: int) -> Diagnostic:
    def describe(i: int) -> str:
        f = spec.fields[i]
        _, first, last, _ = _span(f)
        registers = f"register {first}" if first == last else f"registers {first}..{last}"
        return f"{f.name!r} ({f.address.data_type} at {f.address.address}: {registers})"

    table = spec.fields[later].address.register_type
    return doc.diag(
        "TAKT2023",
        f"field {describe(later)} overlaps field {describe(earlier)} in the {table}s",
        ("spec", "fields", later, "address", "address"),
        hint="a 32-bit value spans 2 registers and a 64-bit one 4: move the address past the other field",
        related=[doc.locate(("spec", "fields", earlier, "address", "address"))],
    )


def _register_span(
    doc: SpecDocument, address: int, data_type: str, words: int, one_based: bool, path: Path_, out: list[Diagnostic]
) -> None:
    """Every register a value spans exists, counted the way the spec counts them."""
    last_register = MAX_REGISTER + 1 if one_based else MAX_REGISTER
    last = address + words - 1
    if last <= last_register:
        return
    counting = "counted from 1" if one_based else "counted from 0"
    if words == 1:
        message = f"address {address} is past the last register, {last_register} ({counting})"
    else:
        message = (
            f"{data_type} at {address} spans {words} registers, {address}..{last}, "
            f"past the last register, {last_register} ({counting})"
        )
    out.append(doc.diag("TAKT2020", message, path))


def _modicon_hint(
    doc: SpecDocument, address: int, register_type: str, one_based: bool, path: Path_, out: list[Diagnostic]
) -> None:
    """A 5-digit address that reads as Modicon notation is probably one (6-digit ones cannot be
    register numbers at all and are refused by the model)."""
    ref = modicon_reference(address)
    if ref is None:
        return
    offset = ref.offset + 1 if one_based else ref.offset
    counting = "one-based" if one_based else "zero-based"
    if ref.register_type == register_type:
        message = f"address {address} looks like Modicon notation ({ref.pattern}: {ref.register_type} {ref.offset + 1})"
        hint = f"give the register number: {address} → {offset} ({counting}) with registerType {register_type}"
    else:
        message = (
            f"address {address} looks like Modicon notation of {'an' if ref.register_type[0] in 'aeiou' else 'a'} "
            f"{ref.register_type} ({ref.pattern}), "
            f"but registerType is {register_type}"
        )
        hint = f"if it is {ref.register_type} {ref.offset + 1}: registerType {ref.register_type}, address {offset}"
    out.append(doc.diag("TAKT2029", message, path, hint=hint))
