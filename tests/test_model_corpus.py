"""`takt model check` against onnxruntime itself, on a real, foreign corpus.

The onnx wheel ships its backend test models (140 here). Each model, plus variants derived from
it, is judged twice: statically by takt (no session created) and by onnxruntime creating a CPU
session. The variants give the comparison teeth: the graph's float tensors retyped to double,
float16, int8 and uint16 (many then lack kernels), the opset raised past what the runtime
knows, and a node from an unregistered custom domain. The agreement figure is printed in the
test summary; every disagreement is listed when the floor is missed.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path

import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from compiler.diagnostics import Severity
from compiler.models.compat import RuntimeProfile, check_runtime
from compiler.models.inspect import describe
from compiler.models.tables import installed_table

CORPUS = Path(onnx.__file__).parent / "backend" / "test" / "data"
RETYPES = {
    "double": TensorProto.DOUBLE,
    "f16": TensorProto.FLOAT16,
    "int8": TensorProto.INT8,
    "uint16": TensorProto.UINT16,
}
FLOOR = 0.98


def _retype_tensor(t: onnx.TensorProto, new: int) -> None:
    arr = numpy_helper.to_array(t).astype(helper.tensor_dtype_to_np_dtype(new))
    t.CopyFrom(numpy_helper.from_array(arr, t.name))


def _retyped(model: onnx.ModelProto, new: int) -> onnx.ModelProto:
    m = copy.deepcopy(model)
    g = m.graph
    for vi in (*g.input, *g.output, *g.value_info):
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            vi.type.tensor_type.elem_type = new
    for t in g.initializer:
        if t.data_type == TensorProto.FLOAT:
            _retype_tensor(t, new)
    for node in g.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == TensorProto.FLOAT:
                _retype_tensor(a.t, new)
    return m


def _future_opset(model: onnx.ModelProto, version: int) -> onnx.ModelProto:
    m = copy.deepcopy(model)
    for o in m.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = version
    return m


def _custom_op(model: onnx.ModelProto) -> onnx.ModelProto:
    m = copy.deepcopy(model)
    out = m.graph.output[0]
    m.graph.node.append(helper.make_node("Frobnicate", [out.name], [out.name + "_x"], domain="com.acme"))
    m.graph.output[0].name = out.name + "_x"
    m.opset_import.append(helper.make_opsetid("com.acme", 1))
    return m


def corpus() -> list[tuple[str, onnx.ModelProto]]:
    models = []
    for path in sorted(CORPUS.glob("*/*/model.onnx")):
        name = str(path.relative_to(CORPUS).parent)
        base = onnx.load(path)
        models.append((name, base))
        models += [(f"{name}:{tag}", _retyped(base, et)) for tag, et in RETYPES.items()]
        models.append((f"{name}:future-opset", _future_opset(base, installed_table().max_opset["ai.onnx"] + 1)))
        models.append((f"{name}:custom-op", _custom_op(base)))
    return models


def _private_locale(tmp: Path) -> bool:
    """StringNormalizer needs en_US.UTF-8; compile it privately (LOCPATH) rather than touch the system."""
    if not shutil.which("localedef"):
        return False
    r = subprocess.run(["localedef", "-i", "en_US", "-f", "UTF-8", str(tmp / "en_US.UTF-8")], capture_output=True)
    return (tmp / "en_US.UTF-8").is_dir() or r.returncode == 0


@pytest.mark.slow
def test_static_check_agrees_with_onnxruntime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request):
    if _private_locale(tmp_path):
        monkeypatch.setenv("LOCPATH", str(tmp_path))
    runtime = RuntimeProfile(installed_table())
    options = ort.SessionOptions()
    options.log_severity_level = 4
    models = corpus()
    assert len(models) >= 140 * 7
    agree, refused, disagreements = 0, 0, []
    for name, model in models:
        data = model.SerializeToString()
        info = describe(model, name, len(data))
        problems = [p.message for p in check_runtime(info, runtime) if p.severity == Severity.ERROR]
        if info.checker_error:
            problems.insert(0, info.checker_error)
        try:
            ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
            loads, error = True, ""
        except Exception as exc:  # noqa: BLE001 - any refusal by onnxruntime is the ground truth "no"
            loads, error = False, str(exc).splitlines()[0][:200]
        refused += not loads
        if loads == (not problems):
            agree += 1
        else:
            disagreements.append(
                f"{name}: takt says {'runnable' if not problems else problems[0]!r}; "
                f"onnxruntime {'loads it' if loads else error!r}"
            )
    ratio = agree / len(models)
    request.config.cache.set("takt/model-agreement", [agree, len(models), refused, disagreements[:20]])
    assert refused > len(models) // 3, "the corpus must contain plenty of models onnxruntime refuses"
    assert ratio >= FLOOR, "\n".join(disagreements)


def test_corpus_numbers_are_stable():
    """The corpus itself is part of the claim: 140 foreign models from the onnx wheel."""
    assert len(list(CORPUS.glob("*/*/model.onnx"))) >= 140
