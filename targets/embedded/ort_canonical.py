"""Rewrite an ORT-format model into one canonical flatbuffer layout, so model.ort is byte-reproducible.

onnxruntime's converter serialises from hash maps keyed by memory addresses, so the same model
converted twice (another machine, another environment size, address randomisation) gives the same
content in a different byte layout. Here the file is read with onnxruntime's own generated
flatbuffer readers and written again with the flatbuffers Builder in one fixed order: children
depth-first in slot order, every table's fields in slot order. The content is unchanged, so
onnxruntime loads it as before; only the layout is fixed.

The schema is not copied here: it is read from the generated reader and builder modules that ship
with the onnxruntime doing the conversion, so a converter release with new fields is followed.
An unknown construct (a union we do not know the members of) refuses the file instead of dropping it.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import pkgutil
import re
import struct
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import flatbuffers

FBS_PACKAGE = "onnxruntime.tools.ort_format_model.ort_flatbuffers_py.fbs"
FILE_IDENTIFIER = b"ORTM"
# The schema's one union (TypeInfo.value): member id → table, as declared in onnxruntime's ort.fbs.
UNIONS = {"TypeInfoValue": {1: "TensorTypeAndShape", 2: "SequenceType", 3: "MapType"}}
UNION_FIELDS = {("TypeInfo", "Value"): "TypeInfoValue"}
RAW_ALIGNMENT = 16  # byte vectors (tensor raw data) start 16-aligned, so they can be used in place


class CanonicalError(ValueError):
    """The file uses a construct this rewriter does not know; it is refused, never partly copied."""


@dataclass(frozen=True)
class FieldSpec:
    name: str
    slot: int
    kind: str  # scalar | string | table | union | vector-table | vector-string | vector-scalar | vector-struct
    scalar: str = ""  # flatbuffers number type (Int32, Float32, Bool, …) of a scalar or scalar vector
    default: Any = 0
    element: str = ""  # class of a table, or of a vector's tables or structs


@dataclass(frozen=True)
class TableSpec:
    name: str
    slots: int
    fields: tuple[FieldSpec, ...]


@dataclass(frozen=True)
class StructSpec:
    name: str
    size: int
    alignment: int


@dataclass(frozen=True)
class Schema:
    modules: dict[str, ModuleType]
    tables: dict[str, TableSpec]
    structs: dict[str, StructSpec]


_ADD = re.compile(
    r"^def (?P<table>\w+?)Add(?P<field>\w+)\(builder, \w+\):\n\s+builder\.Prepend(?P<kind>\w+?)Slot\("
    r"(?P<slot>\d+), (?P<value>.+), (?P<default>[^,()]+)\)\s*$",
    re.M,
)
_START = re.compile(r"^def (?P<table>\w+)Start\(builder\):\n\s+builder\.StartObject\((?P<n>\d+)\)", re.M)
_STRUCT = re.compile(r"def SizeOf\(cls\):\n\s+return (?P<size>\d+).*?builder\.Prep\((?P<align>\d+), \d+\)", re.S)


@functools.cache
def load_schema() -> Schema:
    """Derive the tables, fields and structs from the generated modules of the installed onnxruntime.

    Once per process: the modules do not change while it runs, and reading their source (`inspect`
    tokenising every reader method) took 18-19 ms of CPU, which every embedded bundle paid again. The
    schema is only read (walks look tables, fields and modules up)."""
    package = importlib.import_module(FBS_PACKAGE)
    modules = {
        info.name: importlib.import_module(f"{FBS_PACKAGE}.{info.name}")
        for info in pkgutil.iter_modules(package.__path__)
    }
    tables: dict[str, TableSpec] = {}
    structs: dict[str, StructSpec] = {}
    for name, module in modules.items():
        source = inspect.getsource(module)
        start = next((m for m in _START.finditer(source) if m["table"] == name), None)
        if start is not None:
            fields = tuple(
                _field(getattr(module, name), m)
                for m in _ADD.finditer(source)
                if m["table"] == name  # a union's tag (`…Type`) is a plain scalar field beside it
            )
            tables[name] = TableSpec(name, int(start["n"]), tuple(sorted(fields, key=lambda f: f.slot)))
            continue
        struct = _STRUCT.search(source)
        if struct is not None:
            structs[name] = StructSpec(name, int(struct["size"]), int(struct["align"]))
    return Schema(modules, tables, structs)


def _field(cls: type, m: re.Match[str]) -> FieldSpec:
    name, slot, kind = m["field"], int(m["slot"]), m["kind"]
    if kind != "UOffsetTRelative":
        return FieldSpec(name, slot, "scalar", scalar=kind, default=ast.literal_eval(m["default"].strip()))
    reader = inspect.getsource(getattr(cls, name))
    imported = re.search(r"import (\w+)\s*$", reader, re.M)
    element = imported.group(1) if imported else ""
    number = re.search(r"flatbuffers\.number_types\.(\w+)Flags, a \+", reader)
    if re.search(r"def \w+\(self, j\)", reader):
        if "Indirect(x)" in reader and element:
            return FieldSpec(name, slot, "vector-table", element=element)
        if "self._tab.String(" in reader:
            return FieldSpec(name, slot, "vector-string")
        if number:
            return FieldSpec(name, slot, "vector-scalar", scalar=number.group(1))
        if element:
            return FieldSpec(name, slot, "vector-struct", element=element)
    elif "self._tab.String(o" in reader:
        return FieldSpec(name, slot, "string")
    elif "self._tab.Union(" in reader:
        return FieldSpec(name, slot, "union")
    elif "Indirect(o" in reader and element:
        return FieldSpec(name, slot, "table", element=element)
    raise CanonicalError(f"field {cls.__name__}.{name} has a form this rewriter does not know")


@dataclass
class _Walk:
    schema: Schema
    overrides: dict[tuple[str, str], bytes]
    element_types: set[int]  # every tensor element type the model uses (TensorDataType values)


# Fields whose values say which tensor element types a model uses.
_ELEMENT_TYPE_FIELDS = {("Tensor", "DataType"), ("TensorTypeAndShape", "ElemType"), ("SparseTensor", "DataType")}
# ORT format versions onnxruntime releases read (onnxruntime's ort_format_version.h): 5 removed the kernel def
# hashes (1.13, not backwards compatible), 6 added the float8 element types (1.16) and still reads 5.
FORMATS_READ_BY = (((1, 13), ("5",)), ((1, 16), ("5", "6")))
_FIRST_TYPE_AFTER_V5 = 17  # TensorDataType.FLOAT8E4M3FN: the types from here on need format 6


def readable_formats(release: tuple[int, ...]) -> tuple[str, ...]:
    """The ORT format versions an onnxruntime release reads; () for releases before format 5."""
    formats: tuple[str, ...] = ()
    for since, read in FORMATS_READ_BY:
        if release[:2] >= since:
            formats = read
    return formats


def for_release(data: bytes, release: tuple[int, ...] | None) -> bytes:
    """Canonical ORT bytes in a format version `release` reads (None: as converted).

    Format 6 differs from 5 only by the float8 element types, so a model without them is written as 5
    for a release that reads only 5; anything else a release cannot read is refused, naming why.
    """
    schema = load_schema()
    walk = _Walk(schema, {}, set())
    canonical = _canonical(data, walk)
    if release is None:
        return canonical
    root = schema.modules["InferenceSession"].InferenceSession.GetRootAs(canonical, 0)
    written = (root.OrtVersion() or b"").decode("ascii", "replace")
    readable = readable_formats(release)
    if written in readable:
        return canonical
    wanted = ".".join(map(str, release))
    if written == "6" and "5" in readable and max(walk.element_types, default=0) < _FIRST_TYPE_AFTER_V5:
        return _canonical(data, _Walk(schema, {("InferenceSession", "OrtVersion"): b"5"}, set()))
    if not readable:
        raise CanonicalError(
            f"onnxruntime {wanted} reads only ORT formats before 5, which no supported converter writes"
        )
    raise CanonicalError(
        f"the model needs ORT format {written} (it uses element types of that format); onnxruntime {wanted}"
        f" reads {', '.join(readable)}"
    )


def canonical_ort(data: bytes, schema: Schema | None = None) -> bytes:
    """The same ORT model in the canonical layout; raises CanonicalError for what it cannot rewrite."""
    return _canonical(data, _Walk(schema or load_schema(), {}, set()))


def _canonical(data: bytes, walk: _Walk) -> bytes:
    schema = walk.schema
    if data[4:8] != FILE_IDENTIFIER:
        raise CanonicalError("not an ORT-format file (no ORTM identifier)")
    cls = schema.modules["InferenceSession"].InferenceSession
    root = cls.GetRootAs(data, 0)
    builder = flatbuffers.Builder(len(data) + 1024)
    try:
        offset = _table(builder, walk, "InferenceSession", root)
    except CanonicalError:
        raise
    except (IndexError, TypeError, AttributeError, KeyError, ValueError, struct.error, RecursionError) as exc:
        # a buffer the readers cannot walk: offsets out of range, or a cycle of offsets
        raise CanonicalError(f"ORT file cannot be read as its schema says ({type(exc).__name__})") from None
    builder.Finish(offset, file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


def _table(b: flatbuffers.Builder, walk: _Walk, name: str, obj: Any) -> int:
    spec = walk.schema.tables.get(name)
    if spec is None:
        raise CanonicalError(f"table {name} is not in the schema")
    children: dict[int, int] = {}
    for f in spec.fields:  # children first: the builder cannot nest them inside an open table
        if f.kind == "scalar":
            continue
        off = _child(b, walk, spec.name, f, obj)
        if off is not None:
            children[f.slot] = off
    b.StartObject(spec.slots)
    for f in spec.fields:
        if f.kind == "scalar":
            value = getattr(obj, f.name)()
            if (name, f.name) in _ELEMENT_TYPE_FIELDS:
                walk.element_types.add(int(value))
            getattr(b, f"Prepend{f.scalar}Slot")(f.slot, value, f.default)
        elif f.slot in children:
            b.PrependUOffsetTRelativeSlot(f.slot, children[f.slot], 0)
    return int(b.EndObject())


def _child(b: flatbuffers.Builder, walk: _Walk, table: str, f: FieldSpec, obj: Any) -> int | None:
    read = getattr(obj, f.name)
    if f.kind == "string":
        value = walk.overrides.get((table, f.name), read())
        return None if value is None else int(b.CreateSharedString(value))
    if f.kind == "table":
        child = read()
        return None if child is None else _table(b, walk, f.element, child)
    if f.kind == "union":
        return _union(b, walk, table, f, obj)
    if getattr(obj, f"{f.name}IsNone")():
        return None
    n = getattr(obj, f"{f.name}Length")()
    if f.kind == "vector-table":
        offsets = [_table(b, walk, f.element, read(j)) for j in range(n)]
        return _offset_vector(b, offsets)
    if f.kind == "vector-string":
        return _offset_vector(b, [int(b.CreateSharedString(read(j))) for j in range(n)])
    if f.kind == "vector-scalar":
        return _scalar_vector(b, f, obj, n)
    return _struct_vector(b, walk.schema.structs[f.element], read, n)


def _union(b: flatbuffers.Builder, walk: _Walk, table: str, f: FieldSpec, obj: Any) -> int | None:
    union = UNION_FIELDS.get((table, f.name))
    if union is None:
        raise CanonicalError(f"union {table}.{f.name} is not known to this rewriter")
    tag = getattr(obj, f"{f.name}Type")()
    holder = getattr(obj, f.name)()
    if tag == 0 or holder is None:
        return None
    member = UNIONS[union].get(tag)
    if member is None:
        raise CanonicalError(f"union {union} member {tag} is not known to this rewriter")
    child = getattr(walk.schema.modules[member], member)()
    child.Init(holder.Bytes, holder.Pos)
    return _table(b, walk, member, child)


def _offset_vector(b: flatbuffers.Builder, offsets: list[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return int(b.EndVector())


def _scalar_vector(b: flatbuffers.Builder, f: FieldSpec, obj: Any, n: int) -> int:
    as_numpy = getattr(obj, f"{f.name}AsNumpy", None)
    values = as_numpy() if as_numpy is not None else None
    if f.scalar in ("Uint8", "Int8") and values is not None and not isinstance(values, int):
        raw = values.tobytes()
        b.StartVector(1, len(raw), RAW_ALIGNMENT)
        b.head = b.head - len(raw)  # the builder's own byte-vector write, with a stronger alignment
        b.Bytes[b.head : b.head + len(raw)] = raw
        return int(b.EndVector())
    read = getattr(obj, f.name)
    items = [read(j) for j in range(n)]
    size = flatbuffers.number_types.__dict__[f"{f.scalar}Flags"].bytewidth
    b.StartVector(size, n, size)
    prepend = getattr(b, f"Prepend{f.scalar}")
    for v in reversed(items):
        prepend(v)
    return int(b.EndVector())


def _struct_vector(b: flatbuffers.Builder, spec: StructSpec, read: Any, n: int) -> int:
    raws = []
    for j in range(n):
        s = read(j)
        raws.append(bytes(s._tab.Bytes[s._tab.Pos : s._tab.Pos + spec.size]))
    b.StartVector(spec.size, n, spec.alignment)
    for raw in reversed(raws):
        b.Prep(spec.alignment, spec.size)
        for byte in reversed(raw):
            b.PrependUint8(byte)
    return int(b.EndVector())
