"""Sparkplug B (Eclipse Sparkplug 3.0) payloads: protobuf decoding, birth/death and metric aliases.

The payload schema (`org.eclipse.tahu.protobuf.Payload`) is declared here as a protobuf descriptor
and decoded by the protobuf library itself; only the fields a runner reads are declared (metadata,
properties, datasets and templates stay unknown fields, which protobuf skips). An edge node
announces its metrics in NBIRTH/DBIRTH with names and optional aliases; later NDATA/DDATA may name
a metric by alias only, so aliases are learned per node and device from the births. A death
certificate (NDEATH, or DDEATH for one device) makes that node's values bad until it is born again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

NAMESPACE = "spBv1.0"
DATA, BIRTH, DEATH = ("NDATA", "DDATA"), ("NBIRTH", "DBIRTH"), ("NDEATH", "DDEATH")

# Sparkplug B DataType codes (3.0 §6.4.16) → how the value is carried
_SIGNED32 = {1: 8, 2: 16, 3: 32}  # Int8, Int16, Int32 in int_value (uint32, two's complement)
_UNSIGNED32 = {5, 6, 7}  # UInt8, UInt16, UInt32 in int_value
_INT64, _UINT64, _DATETIME = 4, 8, 13  # in long_value (uint64)
_FLOAT, _DOUBLE, _BOOLEAN, _STRING, _TEXT = 9, 10, 11, 12, 14


def _message_class() -> Any:
    """The Payload message class, from a descriptor built here (no generated code, no protoc)."""
    fdp = descriptor_pb2.FileDescriptorProto(name="takt_sparkplug_b.proto", package="org.eclipse.tahu.protobuf")
    fdp.syntax = "proto2"
    f = descriptor_pb2.FieldDescriptorProto
    metric = fdp.message_type.add(name="Metric")
    for number, name, kind in (
        (1, "name", f.TYPE_STRING),
        (2, "alias", f.TYPE_UINT64),
        (3, "timestamp", f.TYPE_UINT64),
        (4, "datatype", f.TYPE_UINT32),
        (5, "is_historical", f.TYPE_BOOL),
        (6, "is_transient", f.TYPE_BOOL),
        (7, "is_null", f.TYPE_BOOL),
        (10, "int_value", f.TYPE_UINT32),
        (11, "long_value", f.TYPE_UINT64),
        (12, "float_value", f.TYPE_FLOAT),
        (13, "double_value", f.TYPE_DOUBLE),
        (14, "boolean_value", f.TYPE_BOOL),
        (15, "string_value", f.TYPE_STRING),
        (16, "bytes_value", f.TYPE_BYTES),
    ):
        metric.field.add(name=name, number=number, type=kind, label=f.LABEL_OPTIONAL)
    payload = fdp.message_type.add(name="Payload")
    payload.field.add(name="timestamp", number=1, type=f.TYPE_UINT64, label=f.LABEL_OPTIONAL)
    payload.field.add(
        name="metrics",
        number=2,
        type=f.TYPE_MESSAGE,
        label=f.LABEL_REPEATED,
        type_name=".org.eclipse.tahu.protobuf.Metric",
    )
    payload.field.add(name="seq", number=3, type=f.TYPE_UINT64, label=f.LABEL_OPTIONAL)
    payload.field.add(name="uuid", number=4, type=f.TYPE_STRING, label=f.LABEL_OPTIONAL)
    payload.field.add(name="body", number=5, type=f.TYPE_BYTES, label=f.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("org.eclipse.tahu.protobuf.Payload"))


class SparkplugError(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Topic:
    group: str
    kind: str  # NBIRTH, NDATA, NDEATH, DBIRTH, DDATA, DDEATH (STATE and NCMD/DCMD are not values)
    node: str
    device: str | None

    @classmethod
    def parse(cls, topic: str) -> Topic | None:
        parts = topic.split("/")
        if len(parts) not in (4, 5) or parts[0] != NAMESPACE:
            return None
        return cls(parts[1], parts[2], parts[3], parts[4] if len(parts) == 5 else None)

    @property
    def node_key(self) -> tuple[str, str]:
        return (self.group, self.node)


def companion_topics(subscription: str) -> list[str]:
    """A DATA subscription also needs the births (aliases, first values) and deaths of the same node."""
    parts = subscription.split("/")
    if len(parts) not in (4, 5) or parts[0] != NAMESPACE or parts[2] not in DATA:
        return []
    group, node = parts[1], parts[3]
    out = [f"{NAMESPACE}/{group}/NBIRTH/{node}", f"{NAMESPACE}/{group}/NDEATH/{node}"]
    if len(parts) == 5:
        out += [f"{NAMESPACE}/{group}/DBIRTH/{node}/{parts[4]}", f"{NAMESPACE}/{group}/DDEATH/{node}/{parts[4]}"]
    return out


@dataclass
class Decoder:
    """Decodes payloads into {metric name: value}; remembers each node's and device's aliases."""

    payload_class: Any = field(default_factory=_message_class)
    aliases: dict[tuple[str, str, str | None], dict[int, str]] = field(default_factory=dict)

    def decode(self, topic: Topic, data: bytes) -> dict[str, float | bool | str | SparkplugError]:
        """Metric values of a BIRTH or DATA payload, or per metric why it carries none (null, unknown type);
        raises SparkplugError for a payload that is not one."""
        msg = self.payload_class()
        try:
            msg.ParseFromString(data)
        except (DecodeError, RecursionError, ValueError):
            raise SparkplugError("malformed-sparkplug") from None
        key = (topic.group, topic.node, topic.device)
        if topic.kind in BIRTH:
            self.aliases[key] = {m.alias: m.name for m in msg.metrics if m.HasField("alias") and m.name}
        known = self.aliases.get(key, {})
        out: dict[str, float | bool | str | SparkplugError] = {}
        for m in msg.metrics:
            if m.is_historical:  # a stored value replayed later, not the current one
                continue
            name = m.name or (known.get(m.alias) if m.HasField("alias") else None)
            if not name:
                continue
            try:
                out[name] = _value(m)
            except SparkplugError as exc:
                out[name] = exc
        return out

    def forget(self, topic: Topic) -> None:
        """After a death the aliases are void: the next birth declares them again."""
        if topic.kind == "NDEATH":
            for key in [k for k in self.aliases if k[:2] == topic.node_key]:
                del self.aliases[key]
        else:
            self.aliases.pop((topic.group, topic.node, topic.device), None)


def _value(m: Any) -> float | bool | str:
    """The value as the metric's datatype says it is carried (3.0 §6.4.16), signed types by two's complement."""
    if m.is_null:
        raise SparkplugError("null")
    dt = m.datatype
    if dt in _SIGNED32:
        bits = _SIGNED32[dt]
        raw = m.int_value & ((1 << bits) - 1)
        return float(raw - (1 << bits) if raw >= 1 << (bits - 1) else raw)
    if dt in _UNSIGNED32:
        return float(m.int_value)
    if dt == _INT64:
        raw = m.long_value
        return float(raw - (1 << 64) if raw >= 1 << 63 else raw)
    if dt in (_UINT64, _DATETIME):
        return float(m.long_value)
    if dt == _FLOAT:
        return float(m.float_value)
    if dt == _DOUBLE:
        return float(m.double_value)
    if dt == _BOOLEAN:
        return bool(m.boolean_value)
    if dt in (_STRING, _TEXT):
        return str(m.string_value)
    raise SparkplugError("unsupported-datatype")  # datasets, templates, bytes: nothing a model input can take
