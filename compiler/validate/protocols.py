"""Cross-field rules of each data-access protocol (single values are checked by the models)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TypeVar

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
from compiler.spec.deployment import Deployment, ModbusOutput, OpcUaOutput
from compiler.validate.checks import Check, run_checks
from compiler.validate.document import SpecDocument, Valid
from compiler.validate.index import SpecIndex
from compiler.validate.semantics import conversion

_READ_ONLY = ("input-register", "discrete-input")  # an output cannot write them (TAKT2024)
_S = TypeVar("_S", OpcUaSource, MqttSource, ModbusSource)

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
    return run_checks(CHECKS, index)


def _sources(index: SpecIndex, spec_type: type[_S]) -> Iterator[tuple[SpecDocument, _S]]:
    for doc in index.valid("DataSource"):
        spec = doc.model.spec
        if isinstance(spec, spec_type):
            yield doc, spec


def field_names_unique(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT3007: a DataSource's field names are unique (bindings name them)."""
    for doc in index.valid("DataSource"):
        src: DataSource = doc.model
        names: dict[str, int] = {}
        for i, f in enumerate(src.spec.fields):
            if f.name in names:
                yield doc.diag(
                    "TAKT3007",
                    f"field {f.name!r} is already defined as fields[{names[f.name]}]",
                    ("spec", "fields", i, "name"),
                )
            names.setdefault(f.name, i)


def opcua_secured(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT2004: OPC UA traffic is signed or encrypted."""
    for doc, spec in _sources(index, OpcUaSource):
        if spec.security.mode == "None":
            yield doc.diag(
                "TAKT2004",
                "OPC UA security mode None: traffic is neither signed nor encrypted",
                ("spec", "security", "mode"),
            )


def opcua_policy_current(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT2005: no SHA-1 security policy."""
    for doc, spec in _sources(index, OpcUaSource):
        if spec.security.policy in ("Basic128Rsa15", "Basic256"):
            yield doc.diag(
                "TAKT2005", f"security policy {spec.security.policy} is deprecated", ("spec", "security", "policy")
            )


def _node_ids(index: SpecIndex) -> Iterator[tuple[SpecDocument, str, Path_]]:
    """Every OPC UA node id a spec names: source fields and output nodes."""
    for doc, spec in _sources(index, OpcUaSource):
        for i, f in enumerate(spec.fields):
            yield doc, f.address.node_id, ("spec", "fields", i, "address", "nodeId")
    for doc in index.valid("Deployment"):
        dep: Deployment = doc.model
        for i, o in enumerate(dep.spec.outputs):
            if isinstance(o, OpcUaOutput):
                yield doc, o.node_id, ("spec", "outputs", i, "nodeId")


def node_id_by_namespace_uri(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT2002: a namespace index can change between servers and restarts."""
    for doc, node_id, path in _node_ids(index):
        if opcua_uses_namespace_index(node_id):
            yield doc.diag(
                "TAKT2002",
                f"node id {node_id[:120]!r} uses a namespace index",
                path,
                hint="write nsu=<namespace URI>;… so the address survives server changes",
            )


def node_id_has_namespace(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT2008: a string or GUID id in namespace 0 finds no node (its ids are numeric)."""
    for doc, node_id, path in _node_ids(index):
        if not opcua_uses_namespace_index(node_id) and opcua_misses_namespace(node_id):
            yield doc.diag(
                "TAKT2008",
                f"node id {node_id[:120]!r} "
                + ("is in" if node_id.startswith(("ns=", "nsu=")) else "has no namespace, so it is looked up in")
                + " namespace 0, the OPC UA namespace, which has numeric ids only",
                path,
                hint=f"write nsu=<namespace URI>;{_identifier_part(node_id)[:60]}",
            )


def _identifier_part(node_id: str) -> str:
    """`s=X` of `ns=0;s=X`: what follows the namespace, if one is written."""
    return node_id.partition(";")[2] if node_id.startswith(("ns=", "nsu=")) else node_id


def sparkplug_topic(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT2011: a Sparkplug B field reads a metrics topic of the namespace."""
    for doc, spec in _sources(index, MqttSource):
        if not spec.sparkplug:
            continue
        for i, f in enumerate(spec.fields):
            at, topic = ("spec", "fields", i, "address", "topic"), f.address.topic
            problem = sparkplug_topic_problem(topic)
            if problem:
                yield doc.diag("TAKT2011", f"invalid Sparkplug B topic {topic!r}: {problem}", at)
            elif topic.split("/")[1] == "STATE" and topic.count("/") == 2:
                yield doc.diag(
                    "TAKT2011",
                    f"{topic!r} carries a host application's online state, not metrics",
                    at,
                    hint="read metrics from NBIRTH/NDATA or DBIRTH/DDATA topics",
                )


def mqtt_payload_address(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT2013: a field addresses its value the way the payload is encoded: a Sparkplug B metric
    (protobuf), or a JSON path (JSON)."""
    for doc, spec in _sources(index, MqttSource):
        for i, f in enumerate(spec.fields):
            base, a = ("spec", "fields", i, "address"), f.address
            if spec.sparkplug and a.metric is None:
                yield doc.diag("TAKT2013", "Sparkplug B fields name their metric", base, hint="add `metric:`")
            if spec.sparkplug and a.json_path is not None:
                yield doc.diag(
                    "TAKT2013",
                    "Sparkplug B payloads are protobuf: use metric, not jsonPath",
                    (*base, "jsonPath"),
                    key=True,
                )
            if not spec.sparkplug and a.metric is not None:
                yield doc.diag(
                    "TAKT2013", "metric is only for Sparkplug B sources (sparkplug: true)", (*base, "metric"), key=True
                )


_TCP_ENDPOINT = re.compile(r"^(\[[0-9A-Fa-f:]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$")


def tcp_endpoint_problem(endpoint: str) -> bool:
    """True when `endpoint` is not host:port with a port in 1..65535."""
    m = _TCP_ENDPOINT.match(endpoint)
    return not m or not 0 < int(m.group(2)) < 65536


def modbus_endpoint(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT2028: an RTU endpoint is a serial device, a TCP one host:port."""
    for doc, spec in _sources(index, ModbusSource):
        if spec.transport == "rtu" and not re.match(r"^(/dev/\S+|COM[0-9]+)$", spec.endpoint):
            yield doc.diag(
                "TAKT2028",
                f"Modbus RTU endpoint {spec.endpoint!r} must be a serial device such as /dev/ttyUSB0",
                ("spec", "endpoint"),
            )
        elif spec.transport != "rtu" and tcp_endpoint_problem(spec.endpoint):
            yield doc.diag(
                "TAKT2028",
                f"Modbus TCP endpoint {spec.endpoint!r} must be host:port (usually port 502)",
                ("spec", "endpoint"),
            )
    for doc, o, path in modbus_outputs(index):
        if o.endpoint is not None and tcp_endpoint_problem(o.endpoint):
            yield doc.diag(
                "TAKT2028",
                f"Modbus TCP endpoint {o.endpoint!r} must be host:port (usually port 502)",
                (*path, "endpoint"),
            )


def modbus_transport_settings(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT2026: serial settings and unit ids fit the transport (RTU: serial, unit 1..247; TCP: no serial)."""
    for doc, spec in _sources(index, ModbusSource):
        if spec.transport == "rtu":
            if spec.serial is None:
                yield doc.diag("TAKT2026", "Modbus RTU needs serial settings", ("spec",), hint="add `serial:`")
            if not 1 <= spec.unit_id <= 247:
                yield doc.diag("TAKT2026", f"Modbus RTU unit id {spec.unit_id} must be 1..247", ("spec", "unitId"))
        elif spec.serial is not None:
            yield doc.diag("TAKT2026", "serial settings apply to transport rtu only", ("spec", "serial"), key=True)


def _modbus_fields(index: SpecIndex) -> Iterator[tuple[SpecDocument, ModbusSource, int, ModbusField]]:
    for doc, spec in _sources(index, ModbusSource):
        for i, f in enumerate(spec.fields):
            yield doc, spec, i, f


def modbus_data_type_fits_register(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT2021: coils and discrete inputs hold bits; a bool in a register names its bit."""
    for doc, _, i, f in _modbus_fields(index):
        base, a = ("spec", "fields", i, "address"), f.address
        bit_register = a.register_type in ("coil", "discrete-input")
        if bit_register and a.data_type != "bool":
            yield doc.diag(
                "TAKT2021",
                f"{a.register_type} holds single bits: dataType must be bool, not {a.data_type}",
                (*base, "dataType"),
            )
        if not bit_register and a.data_type == "bool" and a.bit is None:
            yield doc.diag("TAKT2021", f"a bool in a {a.register_type} needs `bit: 0..15`", base)
        if a.bit is not None and (bit_register or a.data_type != "bool"):
            yield doc.diag("TAKT2021", "bit applies to bool values packed in a register", (*base, "bit"), key=True)
    for doc, o, path in modbus_outputs(index):
        a = o.address
        if a.register_type == "coil" and a.data_type != "bool":
            yield doc.diag(
                "TAKT2021",
                f"a coil holds one bit: dataType must be bool, not {a.data_type}",
                (*path, "address", "dataType"),
            )


def modbus_scale_nonzero(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT2027: scale 0 turns every reading into the offset (and an output into a division by zero)."""
    for doc, _, i, f in _modbus_fields(index):
        if f.address.scale == 0:
            yield doc.diag(
                "TAKT2027",
                "scale 0 would turn every reading into the offset",
                ("spec", "fields", i, "address", "scale"),
            )
    for doc, o, path in modbus_outputs(index):
        if o.address.scale == 0 and o.address.register_type not in _READ_ONLY:
            yield doc.diag(
                "TAKT2027", "scale 0: the register holds (prediction − offset) / scale", (*path, "address", "scale")
            )


def modbus_outputs(index: SpecIndex) -> Iterator[tuple[Valid[Deployment], ModbusOutput, Path_]]:
    """Every Modbus output of every Deployment, with its path."""
    for doc in index.valid("Deployment"):
        dep: Deployment = doc.model
        for i, o in enumerate(dep.spec.outputs):
            if isinstance(o, ModbusOutput):
                yield doc, o, ("spec", "outputs", i)


def output_addressing(index: SpecIndex, o: ModbusOutput) -> str:
    """The output's own addressing, else its connection's, else zero-based."""
    conn = index.get("DataSource", o.connection) if o.connection else None
    src = conn.model.spec if conn is not None and conn.model is not None else None
    return o.addressing or (src.addressing if isinstance(src, ModbusSource) else "zero-based")


def modbus_address_exists(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT2020: every register a value spans exists, counted the way the spec counts (one-based has no 0)."""
    for doc, spec, i, f in _modbus_fields(index):
        a = f.address
        words = 1 if a.register_type in ("coil", "discrete-input") else _WORDS[a.data_type]
        yield from _address(doc, a.address, a.data_type, words, spec.addressing == "one-based", ("spec", "fields", i))
    for doc, o, path in modbus_outputs(index):
        a = o.address
        if a.register_type in _READ_ONLY:
            problem = _register_number_problem(a.address)
            if problem:
                yield doc.diag("TAKT2020", problem, (*path, "address", "address"))
            continue  # no span to judge: TAKT2024
        words = 1 if a.register_type == "coil" else _WORDS[a.data_type]
        yield from _address(doc, a.address, a.data_type, words, output_addressing(index, o) == "one-based", path)


def _register_number_problem(value: int) -> str | None:
    """Registers are 0..65535 (1..65536 counted from 1); a 6-digit Modicon reference is named as one."""
    if 0 <= value <= MAX_REGISTER + 1:
        return None
    ref = modicon_reference(value)
    if ref is not None:
        return (
            f"address {value} is past the last register; it looks like Modicon notation ({ref.pattern}) for "
            f"{ref.register_type} {ref.offset + 1}: write registerType: {ref.register_type}, address: {ref.offset} "
            f"(or {ref.offset + 1} with addressing: one-based)"
        )
    return f"address {value} is outside 0..65535 (1..65536 with addressing: one-based)"


def _address(
    doc: SpecDocument, address: int, data_type: str, words: int, one_based: bool, path: Path_
) -> Iterator[Diagnostic]:
    at = (*path, "address", "address")
    problem = _register_number_problem(address)
    if problem:
        yield doc.diag("TAKT2020", problem, at)
        return  # no register table holds it: its span says nothing more
    if one_based and address == 0:
        yield doc.diag(
            "TAKT2020",
            "address 0 with one-based addressing; the first register is 1",
            at,
            hint="set `addressing: zero-based` or count from 1",
        )
    span = _register_span(address, data_type, words, one_based)
    if span:
        yield doc.diag("TAKT2020", span, at)


def modbus_field_holds_value(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT2022: the field's dtype holds what the register decodes to."""
    for doc, _, i, f in _modbus_fields(index):
        d = _field_holds_value(doc, f, ("spec", "fields", i))
        if d is not None:
            yield d


def modbus_fields_disjoint(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT2023: two values decoded from shared registers are one value misread."""
    for doc, spec in _sources(index, ModbusSource):
        yield from _overlaps(doc, spec)


def modbus_modicon_notation(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT2029: a 5-digit address that reads as Modicon notation is probably one."""
    for doc, spec, i, f in _modbus_fields(index):
        if _register_number_problem(f.address.address):
            continue  # not a register number at all: TAKT2020 names its Modicon reading
        d = _modicon_hint(
            doc,
            f.address.address,
            f.address.register_type,
            spec.addressing == "one-based",
            ("spec", "fields", i, "address", "address"),
        )
        if d is not None:
            yield d


_INTEGER_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")


def _field_holds_value(doc: SpecDocument, f: ModbusField, path: Path_) -> Diagnostic | None:
    """The field's dtype holds what the register decodes to (`dataType`, then × scale + offset)."""
    a = f.address
    decoded = "bool" if a.register_type in ("coil", "discrete-input") else a.data_type
    fractional = not (float(a.scale).is_integer() and float(a.offset).is_integer())
    if f.dtype in _INTEGER_DTYPES and fractional:
        problem = f"scale {a.scale:g} and offset {a.offset:g} give fractional values, which {f.dtype} truncates"
    elif conversion(decoded, f.dtype, f.range) in ("invalid", "lossy"):
        problem = f"the register holds {decoded}, which {f.dtype} cannot hold without loss"
    else:
        return None
    return doc.diag(
        "TAKT2022",
        f"field {f.name!r} is declared {f.dtype}: {problem}",
        (*path, "dtype"),
        hint=f"declare dtype: {_suggested_dtype(decoded, fractional)}, or read the register as the type "
        "the device stores",
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


def _overlaps(doc: SpecDocument, spec: ModbusSource) -> Iterator[Diagnostic]:
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
        yield _overlap_diag(doc, spec, later, earliest[later])


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


def _register_span(address: int, data_type: str, words: int, one_based: bool) -> str | None:
    """What is wrong when a register the value spans does not exist, counted the way the spec counts them."""
    last_register = MAX_REGISTER + 1 if one_based else MAX_REGISTER
    last = address + words - 1
    if last <= last_register:
        return None
    counting = "counted from 1" if one_based else "counted from 0"
    if words == 1:
        return f"address {address} is past the last register, {last_register} ({counting})"
    return (
        f"{data_type} at {address} spans {words} registers, {address}..{last}, "
        f"past the last register, {last_register} ({counting})"
    )


def _modicon_hint(
    doc: SpecDocument, address: int, register_type: str, one_based: bool, path: Path_
) -> Diagnostic | None:
    """A 5-digit address that reads as Modicon notation is probably one (6-digit ones cannot be
    register numbers at all and are refused by the model)."""
    ref = modicon_reference(address)
    if ref is None:
        return None
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
    return doc.diag("TAKT2029", message, path, hint=hint)


CHECKS = (
    Check("TAKT3007", field_names_unique),
    Check("TAKT2004", opcua_secured),
    Check("TAKT2005", opcua_policy_current),
    Check("TAKT2002", node_id_by_namespace_uri),
    Check("TAKT2008", node_id_has_namespace),
    Check("TAKT2011", sparkplug_topic),
    Check("TAKT2013", mqtt_payload_address),
    Check("TAKT2028", modbus_endpoint),
    Check("TAKT2026", modbus_transport_settings),
    Check("TAKT2021", modbus_data_type_fits_register),
    Check("TAKT2027", modbus_scale_nonzero),
    Check("TAKT2020", modbus_address_exists),
    Check("TAKT2022", modbus_field_holds_value),
    Check("TAKT2023", modbus_fields_disjoint),
    Check("TAKT2029", modbus_modicon_notation),
)
