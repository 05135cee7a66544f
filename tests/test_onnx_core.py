"""compiler.models.onnx_core: onnx's compiled core without `import onnx`, identical to onnx's own wrappers."""

from __future__ import annotations

import json
import subprocess
import sys

import onnx
import pytest
from onnx import TensorProto, helper

from compiler.models import onnx_core
from compiler.models.inspect import inspect_bytes


def _relu(opset: int = 13) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["h"]), helper.make_node("Abs", ["h"], ["y"])], "g", [x], [y]
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _mistyped() -> onnx.ModelProto:
    """Add of a float and an int64 input: the checker passes, strict type inference fails."""
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [2])
    b = helper.make_tensor_value_info("b", TensorProto.INT64, [2])
    c = helper.make_tensor_value_info("c", TensorProto.FLOAT, [2])
    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["c"])], "g", [a, b], [c])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _invalid() -> onnx.ModelProto:
    """A node whose input nothing produces: the checker refuses it."""
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Relu", ["nowhere"], ["y"])], "g", [], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _custom_and_subgraph() -> onnx.ModelProto:
    """A custom-domain operator and an If whose branches are subgraphs."""
    cond = helper.make_tensor_value_info("cond", TensorProto.BOOL, [])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1])
    branch_out = helper.make_tensor_value_info("v", TensorProto.FLOAT, [1])

    def branch(value: float) -> onnx.GraphProto:
        node = helper.make_node("Constant", [], ["v"], value=helper.make_tensor("t", TensorProto.FLOAT, [1], [value]))
        return helper.make_graph([node], f"b{value}", [], [branch_out])

    nodes = [
        helper.make_node("If", ["cond"], ["r"], then_branch=branch(1.0), else_branch=branch(0.0)),
        helper.make_node("Mystery", ["r"], ["out"], domain="com.example"),
    ]
    graph = helper.make_graph(nodes, "g", [cond], [out])
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
    return helper.make_model(graph, opset_imports=opsets)


MODELS = {"relu": _relu(), "old-opset": _relu(7), "mistyped": _mistyped(), "invalid": _invalid()}
MODELS["custom"] = _custom_and_subgraph()


def _outcome(call, *args, **kwargs):  # (result, None) or (None, (exception type name, message))
    try:
        return call(*args, **kwargs), None
    except Exception as exc:  # noqa: BLE001 - comparing whatever each side raises
        return None, (type(exc).__name__, str(exc))


def _their_inference(model: onnx.ModelProto, check_type: bool, strict: bool) -> bytes:
    return onnx.shape_inference.infer_shapes(model, check_type=check_type, strict_mode=strict).SerializeToString()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_core_answers_as_onnx_s_own_wrappers(name: str):
    model = MODELS[name]
    data = model.SerializeToString()
    assert _outcome(onnx_core.check_model, data) == _outcome(onnx.checker.check_model, model)
    for check_type, strict in ((True, True), (False, False)):
        ours = _outcome(onnx_core.infer_shapes, data, check_type, strict)
        assert ours == _outcome(_their_inference, model, check_type, strict)
    versions = {o.domain: o.version for o in model.opset_import}
    for node in model.graph.node:
        where = (node.op_type, versions[node.domain], node.domain)
        ours = _outcome(lambda w: onnx_core.get_schema(*w).since_version, where)
        assert ours == _outcome(lambda w: onnx.defs.get_schema(*w).since_version, where)


def test_with_onnx_imported_the_core_is_onnx_s_own():
    assert onnx_core.model_proto() is onnx.ModelProto
    assert onnx_core.attribute_graph_types() == (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
    assert onnx_core.variadic() == onnx.defs.OpSchema.FormalParameterOption.Variadic


def test_the_check_rejects_what_onnx_s_wrapper_rejects_for_size(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(onnx_core, "MAXIMUM_PROTOBUF", 10)
    with pytest.raises(ValueError, match="too large"):
        onnx_core.check_model(MODELS["relu"].SerializeToString())


_FRESH = """
import json, sys
from compiler.models.inspect import inspect_bytes
models = json.load(sys.stdin)
infos = {name: repr(inspect_bytes(bytes.fromhex(hexed), name)) for name, hexed in models.items()}
loaded = sorted(m for m in ("onnx", "numpy", "ml_dtypes") if m in sys.modules)
import onnx
from compiler.models import onnx_core
relu = onnx.load_model_from_string(bytes.fromhex(models["relu"]))
same = onnx.ModelProto is onnx_core.model_proto() and relu.graph.node[0].op_type == "Relu"
print(json.dumps({"infos": infos, "loaded": loaded, "same": same}))
"""


def test_a_fresh_process_inspects_without_onnx_numpy_or_ml_dtypes_and_finds_the_same():
    models = {name: m.SerializeToString().hex() for name, m in MODELS.items()}
    models["garbage"] = (b"\x00\x01garbage\xff" * 10).hex()
    proc = subprocess.run(
        [sys.executable, "-c", _FRESH], input=json.dumps(models), capture_output=True, text=True, check=True
    )
    fresh = json.loads(proc.stdout)
    assert fresh["loaded"] == []
    assert fresh["same"] is True  # a later `import onnx` reuses the core: one extension, the same classes
    here = {name: repr(inspect_bytes(bytes.fromhex(hexed), name)) for name, hexed in models.items()}
    assert fresh["infos"] == here
    assert "checker_error=None" in here["relu"] and "checker_error='type inference fails" in here["mistyped"]
    assert "Unreadable" in here["garbage"] and "If" in here["custom"] and "Constant" in here["custom"]
