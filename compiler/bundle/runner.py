"""The runner contract: `runner.json` (`takt/runner/v1`) as typed, frozen dataclasses.

The renderers write it, the agent's health gate and `takt-runner` read it, all through this one
module, so no side spells a key of its own. Standard library only: a device imports it without
pydantic. Keys are the camelCase of the field names (`sampling_interval` → `samplingInterval`),
or the field's `key` metadata where Python cannot spell the name (`from`). `parse()` refuses
unknown versions, unknown keys, wrong types, oversized or too deeply nested documents, and
dangling references between sections, each with a path to the offending value.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final, Literal, Union

from compiler.bundle import jsontext
from compiler.bundle.dtypes import DType

API_VERSION: Final = "takt/runner/v1"
RUNNER_JSON = "runner.json"
MAX_BYTES = 16 << 20  # the reference statistics of a few hundred features fit many times over
MAX_DEPTH = 24  # the deepest v1 path is 6 levels; anything far deeper is not a runner config
SCHEMA_ID = "https://takt.dev/schemas/runner/v1/runner.json"

Number = int | float  # kept as written: an integer stays an integer in the JSON bytes


class ContractError(ValueError):
    """runner.json cannot be used; `path` names the offending value (`sources.plc.fields[0]`)."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.reason, self.path = message, path


def _key(name: str) -> dict[str, str]:
    """Field metadata for a key Python cannot spell as a field name."""
    return {"key": name}


# --- the model -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Feature:
    name: str
    unit: str | None = None


@dataclass(frozen=True, kw_only=True)
class Tensor:
    name: str
    dtype: DType
    shape: tuple[int | str, ...]
    features: tuple[Feature, ...] | None = None
    description: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """The feature names along the last axis, or the tensor's own name when it is one value."""
        return tuple(f.name for f in self.features) if self.features else (self.name,)


@dataclass(frozen=True, kw_only=True)
class Standardize:
    mean: tuple[float, ...]
    std: tuple[float, ...]
    op: Literal["standardize"] = "standardize"
    input: str | None = None


@dataclass(frozen=True, kw_only=True)
class MinMax:
    min: tuple[float, ...]
    max: tuple[float, ...]
    op: Literal["minmax"] = "minmax"
    input: str | None = None


@dataclass(frozen=True, kw_only=True)
class Clip:
    min: float
    max: float
    op: Literal["clip"] = "clip"
    input: str | None = None


@dataclass(frozen=True, kw_only=True)
class FillMissing:
    op: Literal["fill-missing"] = "fill-missing"
    value: float = 0.0
    input: str | None = None


@dataclass(frozen=True, kw_only=True)
class Window:
    size: int
    op: Literal["window"] = "window"
    stride: int = 1
    input: str | None = None


Step = Standardize | MinMax | Clip | FillMissing | Window


@dataclass(frozen=True, kw_only=True)
class ModelSection:
    name: str
    version: str
    file: str
    sha256: str
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    preprocessing: tuple[Step, ...] = ()


# --- sources -------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class OpcUaAddress:
    node_id: str


@dataclass(frozen=True, kw_only=True)
class MqttAddress:
    topic: str
    json_path: str | None = None
    metric: str | None = None


@dataclass(frozen=True, kw_only=True)
class ModbusAddress:
    register_type: Literal["coil", "discrete-input", "input-register", "holding-register"]
    address: int
    data_type: Literal["bool", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"]
    bit: int | None = None
    word_order: Literal["big", "little"] = "big"
    byte_order: Literal["big", "little"] = "big"
    scale: float = 1.0
    offset: float = 0.0


@dataclass(frozen=True, kw_only=True)
class FileAddress:
    column: str


@dataclass(frozen=True, kw_only=True)
class _Field:
    name: str
    dtype: DType
    unit: str | None = None
    range: tuple[float, float] | None = None
    shape: tuple[int, ...] | None = None
    description: str | None = None


@dataclass(frozen=True, kw_only=True)
class OpcUaField(_Field):
    address: OpcUaAddress


@dataclass(frozen=True, kw_only=True)
class MqttField(_Field):
    address: MqttAddress


@dataclass(frozen=True, kw_only=True)
class ModbusField(_Field):
    address: ModbusAddress


@dataclass(frozen=True, kw_only=True)
class FileField(_Field):
    address: FileAddress


@dataclass(frozen=True, kw_only=True)
class OpcUaSecurity:
    mode: Literal["None", "Sign", "SignAndEncrypt"]
    policy: Literal[
        "None", "Basic128Rsa15", "Basic256", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"
    ]
    credentials_ref: str | None = None
    certificate_ref: str | None = None


@dataclass(frozen=True, kw_only=True)
class OpcUaSource:
    endpoint: str
    security: OpcUaSecurity
    sampling_interval: float
    fields: tuple[OpcUaField, ...]
    protocol: Literal["opcua"] = "opcua"


@dataclass(frozen=True, kw_only=True)
class MqttTls:
    ca_ref: str | None = None
    certificate_ref: str | None = None


@dataclass(frozen=True, kw_only=True)
class MqttSource:
    broker: str
    fields: tuple[MqttField, ...]
    protocol: Literal["mqtt"] = "mqtt"
    client_id: str | None = None
    qos: Literal[0, 1, 2] = 1
    credentials_ref: str | None = None
    tls: MqttTls | None = None
    sparkplug: bool = False
    sampling_interval: float | None = None


@dataclass(frozen=True, kw_only=True)
class ModbusSerial:
    baud_rate: int = 19200
    parity: Literal["N", "E", "O"] = "E"
    data_bits: Literal[7, 8] = 8
    stop_bits: Literal[1, 2] = 1


@dataclass(frozen=True, kw_only=True)
class ModbusSource:
    transport: Literal["tcp", "rtu"]
    endpoint: str
    sampling_interval: float
    fields: tuple[ModbusField, ...]
    protocol: Literal["modbus"] = "modbus"
    serial: ModbusSerial | None = None
    unit_id: int = 1
    addressing: Literal["zero-based", "one-based"] = "zero-based"


@dataclass(frozen=True, kw_only=True)
class FileSource:
    path: str
    format: Literal["csv", "npz", "jsonl"]
    fields: tuple[FileField, ...]
    protocol: Literal["file"] = "file"
    sampling_interval: float | None = None


Source = OpcUaSource | MqttSource | ModbusSource | FileSource


@dataclass(frozen=True, kw_only=True)
class Binding:
    input: str
    source: str
    fields: tuple[str, ...]
    layout: Literal["features", "tensor"] = "features"


# --- outputs -------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class MqttOutput:
    from_: str = field(metadata=_key("from"))
    topic: str
    type: Literal["mqtt"] = "mqtt"
    name: str | None = None
    connection: str | None = None
    broker: str | None = None
    qos: Literal[0, 1, 2] = 1
    retain: bool = False


@dataclass(frozen=True, kw_only=True)
class OpcUaOutput:
    from_: str = field(metadata=_key("from"))
    node_id: str
    connection: str
    type: Literal["opcua"] = "opcua"
    name: str | None = None


@dataclass(frozen=True, kw_only=True)
class HttpOutput:
    from_: str = field(metadata=_key("from"))
    url: str
    type: Literal["http"] = "http"
    name: str | None = None
    method: Literal["POST", "PUT"] = "POST"
    credentials_ref: str | None = None


@dataclass(frozen=True, kw_only=True)
class ModbusOutput:
    """A prediction written to a register; `connection` (a Modbus source) or `endpoint` names the device."""

    from_: str = field(metadata=_key("from"))
    address: ModbusAddress
    type: Literal["modbus"] = "modbus"
    name: str | None = None
    connection: str | None = None
    endpoint: str | None = None
    unit_id: int | None = None
    addressing: Literal["zero-based", "one-based"] | None = None


Output = MqttOutput | OpcUaOutput | HttpOutput | ModbusOutput


# --- resources, monitoring, health, reference statistics -------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Resources:
    cpu: float | None = None
    memory: int | None = None
    gpu: int | None = None


@dataclass(frozen=True, kw_only=True)
class DriftMonitor:
    test_suite: str
    dataset: str
    method: Literal["psi", "ks"] = "psi"
    threshold: float = 0.2
    window: float = 3600.0


@dataclass(frozen=True, kw_only=True)
class Monitoring:
    metrics: tuple[str, ...] | None = None
    drift: DriftMonitor | None = None


@dataclass(frozen=True, kw_only=True)
class HealthSamples:
    """An NPZ of `<input>` and `expected/<output>` arrays the agent replays, with its tolerance."""

    file: str
    abs: float = 0.0
    rel: float = 0.0


@dataclass(frozen=True, kw_only=True)
class RunnerGate:
    """The agent's post-activation gate: the runner ready within the window, then an inference error
    rate at most the maximum and, when set, a p95 inference latency at most the budget (the
    Deployment's rollout health gate)."""

    window_seconds: Number = 300
    max_error_rate: float = 0.01
    max_latency_p95_seconds: float | None = None


@dataclass(frozen=True, kw_only=True)
class Health:
    timeout_seconds: Number = 30
    samples: HealthSamples | None = None
    latency_seconds: float | None = None
    http_port: int | None = None  # the port the unit and compose file pass as --http-port (the agent probes it)
    gate: RunnerGate | None = None


@dataclass(frozen=True, kw_only=True)
class FeatureReference:
    """Quantile bins of one input feature on the reference data: interior edges (±inf implied) and
    the reference's share of each of the len(edges) + 1 bins."""

    name: str
    edges: tuple[float, ...]
    fractions: tuple[float, ...]


@dataclass(frozen=True, kw_only=True)
class Reference:
    """Where the reference statistics come from (suite, dataset and its digest) and the bins per feature."""

    test_suite: str
    dataset: str
    sha256: str
    bins: int
    features: tuple[FeatureReference, ...]


# --- the document --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RunnerConfig:
    deployment: str
    target: str
    model: ModelSection
    bindings: tuple[Binding, ...]
    sources: dict[str, Source] = field(default_factory=dict)
    outputs: tuple[Output, ...] = ()
    resources: Resources = Resources()
    monitoring: Monitoring = Monitoring()
    health: Health | None = None
    reference: Reference | None = None
    api_version: Literal["takt/runner/v1"] = API_VERSION

    def to_json(self) -> bytes:
        """Sorted keys, two-space indent, UTF-8, one trailing newline: byte-stable for bundles."""
        return dump_json(encode(self)).encode("utf-8")

    def with_(self, **changes: Any) -> RunnerConfig:
        return dataclasses.replace(self, **changes)

    @classmethod
    def parse(cls, data: bytes) -> RunnerConfig:
        """The config, or ContractError naming what is wrong and where."""
        if len(data) > MAX_BYTES:
            raise ContractError(f"{len(data)} bytes is over the limit of {MAX_BYTES}")
        try:
            doc = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
        except RecursionError:
            raise ContractError(f"nested deeper than {MAX_DEPTH} levels") from None
        except (UnicodeDecodeError, ValueError) as exc:
            raise ContractError(f"not JSON ({exc})") from None
        return cls.from_obj(doc)

    @classmethod
    def from_obj(cls, doc: Any) -> RunnerConfig:
        if _depth(doc) > MAX_DEPTH:
            raise ContractError(f"nested deeper than {MAX_DEPTH} levels")
        if not isinstance(doc, dict):
            raise ContractError("the document is not a JSON object")
        key = _field_key(next(f for f in dataclasses.fields(cls) if f.name == "api_version"))
        version = doc.get(key)
        if version != API_VERSION:
            raise ContractError(
                f"contract version {version!r} is not supported: this runner reads {API_VERSION} only",
                key,
            )
        config: RunnerConfig = decode(cls, doc)
        _check_references(config)
        return config


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _depth(obj: Any) -> int:
    deepest, stack = 0, [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            return depth
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return deepest


def _check_references(config: RunnerConfig) -> None:
    """Bindings name known sources, fields and inputs; outputs name model outputs and known connections."""
    inputs = {t.name for t in config.model.inputs}
    outputs = {t.name for t in config.model.outputs}
    for i, b in enumerate(config.bindings):
        where = f"bindings[{i}]"
        if b.input not in inputs:
            raise ContractError(f"input {b.input!r} is not a model input", where)
        source = config.sources.get(b.source)
        if source is None:
            raise ContractError(f"source {b.source!r} is not in sources", where)
        known = {f.name for f in source.fields}
        missing = [f for f in b.fields if f not in known]
        if missing:
            raise ContractError(f"source {b.source!r} has no field(s) {', '.join(missing)}", where)
    for i, o in enumerate(config.outputs):
        where = f"outputs[{i}]"
        if o.from_ not in outputs:
            raise ContractError(f"{o.from_!r} is not a model output", where)
        connection = getattr(o, "connection", None)
        if connection and connection not in config.sources:
            raise ContractError(f"connection {connection!r} is not in sources", where)
    for i, step in enumerate(config.model.preprocessing):
        if step.input is not None and step.input not in inputs:
            raise ContractError(f"input {step.input!r} is not a model input", f"model.preprocessing[{i}]")


def dump_json(obj: Any) -> str:
    """json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\\n", byte for byte."""
    return jsontext.dumps(obj)


# --- the generic codec (dataclass ↔ JSON value), also the source of the JSON Schema ---------------------


def _camel(name: str) -> str:
    head, *rest = name.rstrip("_").split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _field_key(f: dataclasses.Field[Any]) -> str:
    key = f.metadata.get("key")
    return key if isinstance(key, str) and key else _camel(f.name)


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@cache
def _union_args(tp: Any) -> tuple[Any, ...] | None:
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        return typing.get_args(tp)
    return None


@cache
def _shape(tp: Any) -> tuple[Any, tuple[Any, ...], bool]:
    """(origin, args, is a dataclass) of a type, looked up once: a bundle build decodes thousands of values."""
    return typing.get_origin(tp), typing.get_args(tp), dataclasses.is_dataclass(tp)


@cache
def _init_fields(cls: type) -> dict[str, tuple[str, Any, bool]]:
    """key → (field name, type, required) of the fields a document may carry."""
    hints = _hints(cls)
    return {
        _field_key(f): (
            f.name,
            hints[f.name],
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(cls)
        if f.init
    }


@cache
def _encoded_fields(cls: type) -> tuple[tuple[str, str], ...]:
    """(field name, key) of every field, in declaration order."""
    return tuple((f.name, _field_key(f)) for f in dataclasses.fields(cls))


@cache
def _tag(cls: type) -> tuple[str, Any] | None:
    """A dataclass's discriminator: its field typed as a one-value Literal (`protocol`, `op`, `type`)."""
    for f in dataclasses.fields(cls):
        tp = _hints(cls)[f.name]
        if typing.get_origin(tp) is Literal and len(typing.get_args(tp)) == 1 and f.name != "api_version":
            return _field_key(f), typing.get_args(tp)[0]
    return None


def _tag_of(cls: type) -> tuple[str, Any]:
    """The discriminator of a dataclass in a tagged union; a union member without one is a bug here."""
    tag = _tag(cls)
    if tag is None:
        raise TypeError(f"{cls.__name__} is in a union of dataclasses but has no one-value Literal field")
    return tag


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return {"str": "a string", "int": "an integer", "float": "a number", "bool": "a boolean"}.get(
            tp.__name__, tp.__name__
        )
    return str(tp)


def decode(tp: Any, value: Any, path: str = "") -> Any:
    """`value` (parsed JSON) as an instance of `tp`; ContractError with the path on any mismatch."""
    members = _union_args(tp)
    if members is not None:
        if value is None and type(None) in members:
            return None
        present = [m for m in members if m is not type(None)]
        if len(present) == 1:
            return decode(present[0], value, path)
        classes = [m for m in present if isinstance(m, type) and dataclasses.is_dataclass(m)]
        if classes and len(classes) == len(present):
            if not isinstance(value, dict):
                raise ContractError("must be an object", path)
            key = _tag_of(classes[0])[0]
            for cls in classes:
                if value.get(key) == _tag_of(cls)[1]:
                    return decode(cls, value, path)
            allowed = ", ".join(repr(_tag_of(c)[1]) for c in classes)
            raise ContractError(f"{key} {value.get(key)!r} is not one of {allowed}", path)
        errors = []
        for m in members:
            if m is type(None):
                continue
            try:
                return decode(m, value, path)
            except ContractError as exc:
                errors.append(exc.reason)
        raise ContractError(" or ".join(errors) or "has the wrong type", path)
    origin, args, is_dataclass = _shape(tp)
    if origin is Literal:
        choices = args
        if isinstance(value, bool) or value not in choices:
            raise ContractError(f"{value!r} is not one of {', '.join(repr(a) for a in choices)}", path)
        return value
    if is_dataclass:
        return _decode_dataclass(tp, value, path)
    if origin is tuple:
        if not isinstance(value, list):
            raise ContractError("must be a list", path)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ContractError(f"must be a list of {len(args)}", path)
        return tuple(decode(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if origin is dict:
        _, val_tp = args
        if not isinstance(value, dict):
            raise ContractError("must be an object", path)
        return {k: decode(val_tp, v, f"{path}.{k}" if path else k) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ContractError("must be a boolean", path)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ContractError("must be an integer", path)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ContractError("must be a finite number", path)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ContractError("must be a string", path)
        return value
    raise ContractError(f"has no decoder for {_type_name(tp)}", path)  # a bug in this module, not in the file


def _decode_dataclass(cls: type, value: Any, path: str) -> Any:
    if not isinstance(value, dict):
        raise ContractError("must be an object", path)
    fields = _init_fields(cls)
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise ContractError(f"unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(fields))})", path)
    kwargs = {}
    for key, (name, hint, required) in fields.items():
        sub = f"{path}.{key}" if path else key
        if key in value:
            kwargs[name] = decode(hint, value[key], sub)
        elif required:
            raise ContractError("is required", sub)
    return cls(**kwargs)


_PLAIN: Final = frozenset({str, int, float, bool, type(None)})  # exact types: encoded as themselves


@cache
def _is_dataclass_type(tp: Any) -> bool:
    return dataclasses.is_dataclass(tp)


def encode(obj: Any) -> Any:
    """A dataclass tree as JSON data: None values omitted, tuples as lists.

    Exact scalars are tried first, and inline in fields and lists: most values of a runner.json are
    strings and numbers, and each `is_dataclass` test costs more than returning one."""
    tp: Any = type(obj)  # a class (hashable), typed Any for the cache
    if tp in _PLAIN:
        return obj
    if _is_dataclass_type(tp):
        out = {}
        for name, key in _encoded_fields(tp):
            value = getattr(obj, name)
            if value is not None:
                out[key] = value if type(value) in _PLAIN else encode(value)
        return out
    if isinstance(obj, tuple | list):
        return [v if type(v) in _PLAIN else encode(v) for v in obj]
    if isinstance(obj, dict):
        return {k: encode(v) for k, v in obj.items()}
    return obj


# --- JSON Schema -----------------------------------------------------------------------------------


def _schema(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    members = _union_args(tp)
    if members is not None:
        branches = [_schema(m, defs) for m in members if m is not type(None)]
        return branches[0] if len(branches) == 1 else {"anyOf": branches}
    origin = typing.get_origin(tp)
    if origin is Literal:
        return {"enum": list(typing.get_args(tp))}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        name = tp.__name__.lstrip("_")
        if name not in defs:
            defs[name] = {}  # placeholder against recursion
            hints = _hints(tp)
            props, required = {}, []
            for f in dataclasses.fields(tp):
                key = _field_key(f)
                props[key] = _schema(hints[f.name], defs)
                no_default = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                if no_default:
                    required.append(key)
            tag = _tag(tp)
            if tag:
                required.append(tag[0])
            defs[name] = {
                "type": "object",
                "properties": props,
                "required": sorted(set(required)),
                "additionalProperties": False,
            }
            if tp.__doc__ and not tp.__doc__.startswith(tp.__name__ + "("):
                defs[name]["description"] = " ".join(tp.__doc__.split())
        return {"$ref": f"#/$defs/{name}"}
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": _schema(args[0], defs)}
        return {
            "type": "array",
            "prefixItems": [_schema(a, defs) for a in args],
            "minItems": len(args),
            "maxItems": len(args),
        }
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema(typing.get_args(tp)[1], defs)}
    return {bool: {"type": "boolean"}, int: {"type": "integer"}, float: {"type": "number"}, str: {"type": "string"}}[tp]


def json_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of runner.json, generated from the dataclasses above."""
    defs: dict[str, Any] = {}
    root = _schema(RunnerConfig, defs)
    name = root["$ref"].rsplit("/", 1)[1]
    body = defs.pop(name)
    body["properties"]["apiVersion"] = {"const": API_VERSION}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": f"runner.json ({API_VERSION})",
        **body,
        "$defs": dict(sorted(defs.items())),
    }


# --- the shadow entry: a challenger beside the current bundle ---------------------------------------

SHADOW_API_VERSION: Final = "takt/shadow/v1"
DEFAULT_SHADOW_WINDOW = 3600.0  # seconds; the Deployment's `shadow.window` default
SHADOW_JSON = "shadow.json"
MAX_SHADOW_BYTES = 64 * 1024


@dataclass(frozen=True, kw_only=True)
class ShadowEntry:
    """Tells a runner to feed a challenger bundle the frames of its current one, never writing its outputs.

    Written on the device from a desired state's shadow bundle (`BundleRef.shadow`). `config`: the
    challenger's runner.json, relative to this file. `tolerance`: regressors agree within this absolute
    difference, in the output's unit. `window`: seconds of the sliding window agreement is counted over.
    """

    deployment: str
    challenger: str  # the challenger bundle's digest
    config: str
    tolerance: float = 0.0
    window: float = DEFAULT_SHADOW_WINDOW
    api_version: Literal["takt/shadow/v1"] = SHADOW_API_VERSION

    def to_json(self) -> bytes:
        return dump_json(encode(self)).encode("utf-8")

    @classmethod
    def parse(cls, data: bytes) -> ShadowEntry:
        """The entry, or ContractError naming what is wrong and where."""
        if len(data) > MAX_SHADOW_BYTES:
            raise ContractError(f"{len(data)} bytes is over the limit of {MAX_SHADOW_BYTES}")
        try:
            doc = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise ContractError(f"not JSON ({exc})") from None
        if not isinstance(doc, dict) or doc.get("apiVersion") != SHADOW_API_VERSION:
            raise ContractError(f"not a {SHADOW_API_VERSION} shadow entry", "apiVersion")
        entry: ShadowEntry = decode(cls, doc)
        if len(entry.challenger) != 64 or any(c not in "0123456789abcdef" for c in entry.challenger):
            raise ContractError("must be a bundle digest (64 hex digits)", "challenger")
        if not math.isfinite(entry.tolerance) or entry.tolerance < 0:
            raise ContractError("must be a finite non-negative number", "tolerance")
        if not math.isfinite(entry.window) or entry.window <= 0:
            raise ContractError("must be a finite positive number of seconds", "window")
        return entry
