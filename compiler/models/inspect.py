"""What an ONNX file really is: IR, opsets, every operator with its input types, signature, sizes.

Errors are values: `inspect_model` returns a `ModelInfo` or an `Unreadable` explaining why not.
External weights are not loaded (sizes come from the metadata), so huge models stay cheap.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.bundle.tree import TooLarge, TreeError, read_regular
from compiler.models import onnx_core

if TYPE_CHECKING:  # onnx itself is never imported here: onnx_core loads only its compiled core and protobuf classes
    import onnx

# TensorProto.DataType numbers (part of ONNX's protobuf wire format, fixed forever) → ONNX names;
# literal so that reading a cached inspection needs no onnx import (a test compares with onnx's enum).
ELEM_TYPES: dict[int, str] = {
    1: "float",
    2: "uint8",
    3: "int8",
    4: "uint16",
    5: "int16",
    6: "int32",
    7: "int64",
    8: "string",
    9: "bool",
    10: "float16",
    11: "double",
    12: "uint32",
    13: "uint64",
    14: "complex64",
    15: "complex128",
    16: "bfloat16",
    17: "float8e4m3fn",
    18: "float8e4m3fnuz",
    19: "float8e5m2",
    20: "float8e5m2fnuz",
    21: "uint4",
    22: "int4",
    23: "float4e2m1",
}
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL

STANDARD_DOMAINS = {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.preview.training"}

# spec dtype names (compiler.spec.types.DType) as ONNX names
SPEC_TO_ONNX = {
    "float32": "float",
    "float64": "double",
    "float16": "float16",
    "bfloat16": "bfloat16",
    "int8": "int8",
    "int16": "int16",
    "int32": "int32",
    "int64": "int64",
    "uint8": "uint8",
    "uint16": "uint16",
    "uint32": "uint32",
    "uint64": "uint64",
    "bool": "bool",
    "string": "string",
}
ONNX_TO_SPEC = {v: k for k, v in SPEC_TO_ONNX.items()}
_BYTES = {
    "float": 4,
    "uint8": 1,
    "int8": 1,
    "uint16": 2,
    "int16": 2,
    "int32": 4,
    "int64": 8,
    "bool": 1,
    "float16": 2,
    "double": 8,
    "uint32": 4,
    "uint64": 8,
    "complex64": 8,
    "complex128": 16,
    "bfloat16": 2,
}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    elem_type: str | None  # ONNX name: float, int64, … ; None for non-tensor values
    shape: tuple[int | str | None, ...] | None  # None: rank unknown; str: symbolic; None entry: unknown dim


Formal = tuple[tuple[str, ...], tuple[str, ...]]  # the schema's type parameter of each input and output


@dataclass(frozen=True)
class NodeUse:
    """One operator as used in the graph, with the types it sees; identical uses are counted once."""

    domain: str
    op_type: str
    opset: int | None
    since_version: int | None
    input_types: tuple[str | None, ...]
    output_types: tuple[str | None, ...]
    count: int = 1
    example: str = ""  # a node name, to point at
    # the schema's type parameter (T, T1, …) of each actual input and output; None: no ONNX schema
    formal: Formal | None = None


@dataclass(frozen=True)
class ModelInfo:
    path: str
    file_bytes: int
    ir_version: int
    producer: str
    opsets: dict[str, int]
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    nodes: tuple[NodeUse, ...]
    param_bytes: int
    activation_bytes: int  # upper bound: every intermediate tensor with a known size, batch 1
    checker_error: str | None = None
    warnings: tuple[str, ...] = field(default=())

    @property
    def operators(self) -> list[tuple[str, str, int | None]]:
        return sorted({(n.domain, n.op_type, n.since_version) for n in self.nodes}, key=lambda t: (t[0], t[1]))


@dataclass(frozen=True)
class Unreadable:
    reason: str


def domain_name(domain: str) -> str:
    return domain or "ai.onnx"


def type_string(tp: onnx.TypeProto) -> str | None:
    """onnxruntime's notation: tensor(float), seq(tensor(int64)), optional(…)."""
    which = tp.WhichOneof("value")
    if which == "tensor_type":
        name = ELEM_TYPES.get(tp.tensor_type.elem_type)
        return f"tensor({name})" if name else None
    if which == "sequence_type":
        inner = type_string(tp.sequence_type.elem_type)
        return f"seq({inner})" if inner else None
    if which == "optional_type":
        inner = type_string(tp.optional_type.elem_type)
        return f"optional({inner})" if inner else None
    if which == "sparse_tensor_type":
        name = ELEM_TYPES.get(tp.sparse_tensor_type.elem_type)
        return f"sparse_tensor({name})" if name else None
    return None


def _tensor_info(vi: onnx.ValueInfoProto) -> TensorInfo:
    tp = vi.type
    if tp.WhichOneof("value") != "tensor_type":
        return TensorInfo(vi.name, None, None)
    t = tp.tensor_type
    shape = None
    if t.HasField("shape"):
        dims: list[int | str | None] = []
        for d in t.shape.dim:
            kind = d.WhichOneof("value")
            dims.append(d.dim_value if kind == "dim_value" else d.dim_param if kind == "dim_param" else None)
        shape = tuple(dims)
    return TensorInfo(vi.name, ELEM_TYPES.get(t.elem_type), shape)


def _initializer_bytes(t: onnx.TensorProto) -> int:
    if t.data_location == _EXTERNAL:
        for kv in t.external_data:
            if kv.key == "length":
                return int(kv.value)
    count = 1
    for d in t.dims:
        count *= d
    return count * _BYTES.get(ELEM_TYPES.get(t.data_type, ""), 1)


def _graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """The graph and every subgraph of If/Loop/Scan bodies, depth first."""
    graph_type, graphs_type = onnx_core.attribute_graph_types()
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == graph_type:
                yield from _graphs(attr.g)
            elif attr.type == graphs_type:
                for g in attr.graphs:
                    yield from _graphs(g)


def parse_model(data: bytes) -> onnx.ModelProto | Unreadable:
    if not data:
        return Unreadable("the file is empty")
    from google.protobuf.message import DecodeError

    try:
        model = onnx_core.model_proto()()
        decoded = model.ParseFromString(data)
        if decoded is not None and decoded != len(data):  # what onnx.load_model_from_string refuses
            raise DecodeError(f"Protobuf decoding consumed too few bytes: {decoded} out of {len(data)}")
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types for garbage input
        return Unreadable(f"not an ONNX model ({type(exc).__name__}: {str(exc)[:200]})")
    if model.ir_version == 0 or not model.HasField("graph"):
        return Unreadable("not an ONNX model (no IR version or no graph)")
    return model


PROTOBUF_LIMIT = 2**31 - 1  # a single-file ONNX model cannot be larger: bigger weights live in external data


def read_model(path: Path) -> bytes | Unreadable:
    """The bytes of a single-file ONNX model (a regular file within protobuf's limit)."""
    try:
        return read_regular(path, PROTOBUF_LIMIT, path.name)
    except TooLarge:
        return Unreadable(
            f"{path.name} is over protobuf's 2 GiB limit for one ONNX file; store large weights as external data"
        )
    except TreeError as exc:
        return Unreadable(f"{path.name} {exc.reason}")
    except OSError as exc:
        return Unreadable(f"cannot read {path.name}: {exc.strerror or exc}")


def inspect_bytes(data: bytes, path: str) -> ModelInfo | Unreadable:
    """What the model in `data` is; depends on nothing but the bytes (and onnx), `path` is only its label."""
    model = parse_model(data)
    if isinstance(model, Unreadable):
        return model
    return describe(model, path, len(data))


def inspect_model(path: Path) -> ModelInfo | Unreadable:
    data = read_model(path)
    return data if isinstance(data, Unreadable) else inspect_bytes(data, str(path))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def formal_types(op_type: str, domain: str, since_version: int | None, n_in: int, n_out: int) -> Formal | None:
    """The type parameter of each actual input and output, from the ONNX schema (None: none known)."""
    if since_version is None:
        return None
    try:
        schema = onnx_core.get_schema(op_type, since_version, "" if domain == "ai.onnx" else domain)
    except Exception:  # noqa: BLE001 - not an ONNX schema: no type check possible
        return None

    def expand(params: Sequence[onnx.defs.OpSchema.FormalParameter], count: int) -> tuple[str, ...]:
        out: list[str] = []
        for i in range(count):
            if i < len(params):
                out.append(params[i].type_str)
            elif params and params[-1].option == onnx_core.variadic():
                out.append(params[-1].type_str)
            else:
                out.append("")
        return tuple(out)

    return expand(schema.inputs, n_in), expand(schema.outputs, n_out)


def _inferred(serialised: bytes, check_type: bool, strict_mode: bool) -> onnx.ModelProto:
    """onnx.shape_inference.infer_shapes: the model with inferred value_info (raises as onnx does)."""
    inferred = onnx_core.model_proto()()
    inferred.ParseFromString(onnx_core.infer_shapes(serialised, check_type, strict_mode))
    return inferred


# (domain, op type, opset, since version, input types, output types): the fields NodeUse starts with
_UseKey = tuple[str, str, int | None, int | None, tuple[str | None, ...], tuple[str | None, ...]]


def describe(model: onnx.ModelProto, path: str, file_bytes: int) -> ModelInfo:
    serialised = model.SerializeToString()  # what onnx's checker and inference wrappers pass to its C++ core
    checker_error = None
    try:
        onnx_core.check_model(serialised)
    except Exception as exc:  # noqa: BLE001 - ValidationError and C++ errors alike: the model is invalid
        checker_error = _first_line(exc)
    warnings: list[str] = []
    try:
        inferred = _inferred(serialised, check_type=True, strict_mode=True)
    except Exception as exc:  # noqa: BLE001 - a type error onnxruntime would refuse the model for
        standard = all(o.domain in STANDARD_DOMAINS for g in _graphs(model.graph) for o in g.node)
        if standard:
            checker_error = checker_error or f"type inference fails: {_first_line(exc)}"
        else:  # onnx knows no schemas of contrib/custom domains; onnxruntime may well run them
            warnings.append(f"type inference incomplete: {_first_line(exc)}")
        try:
            inferred = _inferred(serialised, check_type=False, strict_mode=False)
        except Exception as exc2:  # noqa: BLE001 - inference is best effort; types stay unknown
            inferred = model
            warnings.append(f"shape inference failed: {_first_line(exc2)}")
    opsets = {domain_name(o.domain): o.version for o in model.opset_import}
    types: dict[str, str | None] = {}
    infos: dict[str, TensorInfo] = {}
    init_names: set[str] = set()
    param_bytes = 0
    for g in _graphs(inferred.graph):
        for vi in (*g.input, *g.output, *g.value_info):
            types[vi.name] = type_string(vi.type)
            infos[vi.name] = _tensor_info(vi)
        for init in g.initializer:
            types[init.name] = f"tensor({ELEM_TYPES.get(init.data_type, '?')})"
            init_names.add(init.name)
            param_bytes += _initializer_bytes(init)
    uses: Counter[_UseKey] = Counter()
    examples: dict[_UseKey, str] = {}
    for g in _graphs(inferred.graph):
        for node in g.node:
            dom = domain_name(node.domain)
            opset = opsets.get(dom)
            since = None
            if opset is not None:
                try:
                    since = onnx_core.get_schema(node.op_type, opset, node.domain).since_version
                except Exception:  # noqa: BLE001 - unknown to this onnx (custom or future op)
                    since = None
            key: _UseKey = (
                dom,
                node.op_type,
                opset,
                since,
                tuple(types.get(i) if i else None for i in node.input),
                tuple(types.get(o) if o else None for o in node.output),
            )
            uses[key] += 1
            examples.setdefault(key, node.name)
    nodes = tuple(
        NodeUse(*k, count=c, example=examples[k], formal=formal_types(k[1], k[0], k[3], len(k[4]), len(k[5])))
        for k, c in uses.items()
    )
    graph_inputs = tuple(_tensor_info(vi) for vi in model.graph.input if vi.name not in init_names)
    activations = 0
    for name, info in infos.items():
        if info.elem_type and info.shape is not None and name not in init_names:
            size = _BYTES.get(info.elem_type, 4)
            for d in info.shape:
                size *= d if isinstance(d, int) and d > 0 else 1
            activations += size
    return ModelInfo(
        path=path,
        file_bytes=file_bytes,
        ir_version=model.ir_version,
        producer=f"{model.producer_name} {model.producer_version}".strip(),
        opsets=opsets,
        inputs=graph_inputs,
        outputs=tuple(_tensor_info(vi) for vi in model.graph.output),
        nodes=nodes,
        param_bytes=param_bytes,
        activation_bytes=activations,
        checker_error=checker_error,
        warnings=tuple(warnings),
    )
