"""model.ort is byte-reproducible and in a format version the target's onnxruntime reads (#16.6)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from targets.embedded.ort_canonical import CanonicalError, canonical_ort, for_release, readable_formats
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.slow  # runs onnxruntime's converter in subprocesses

MODEL = EXAMPLES / "press-line-anomaly/models/press_anomaly.onnx"


def _convert(model: Path, work: Path, env_padding: int) -> bytes:
    """onnxruntime's converter as a user's machine runs it: address randomisation on, its own environment."""
    work.mkdir(parents=True)
    (work / "m.onnx").write_bytes(model.read_bytes())
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PAD": "x" * env_padding}
    subprocess.run(
        [sys.executable, "-m", "onnxruntime.tools.convert_onnx_models_to_ort", "m.onnx", "--output_dir", "out"],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
    )
    return (work / "out/m.ort").read_bytes()


def _session_version(data: bytes) -> bytes:
    from onnxruntime.tools.ort_format_model.ort_flatbuffers_py.fbs.InferenceSession import InferenceSession

    return InferenceSession.GetRootAs(data, 0).OrtVersion()


def test_conversions_in_different_environments_give_one_canonical_file(tmp_path: Path) -> None:
    raws = [_convert(MODEL, tmp_path / str(n), pad) for n, pad in enumerate((0, 700, 3001, 12345))]
    canon = {canonical_ort(r) for r in raws}
    assert len(canon) == 1
    (c,) = canon
    # the rewrite depends on the content only, not on the layout it reads: its own layout differs from the
    # converter's (other size), and rewriting it again gives the same bytes
    assert all(len(r) != len(c) for r in raws)
    assert canonical_ort(c) == c


def test_the_canonical_file_computes_exactly_like_the_onnx_model(tmp_path: Path) -> None:
    data = canonical_ort(_convert(MODEL, tmp_path / "a", 0))
    ref = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    got = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    feeds = {
        i.name: rng.normal(size=[d if isinstance(d, int) else 4 for d in i.shape]).astype(np.float32)
        for i in ref.get_inputs()
    }
    for a, b in zip(ref.run(None, feeds), got.run(None, feeds), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_release_that_reads_only_format_5_gets_format_5(tmp_path: Path) -> None:
    raw = _convert(MODEL, tmp_path / "a", 0)
    assert _session_version(for_release(raw, (1, 32))) == b"6"
    v5 = for_release(raw, (1, 15, 1))
    assert _session_version(v5) == b"5"
    ort.InferenceSession(v5, providers=["CPUExecutionProvider"])  # still a model onnxruntime loads
    with pytest.raises(CanonicalError, match="before 5"):
        for_release(raw, (1, 12))


def test_a_model_with_float8_tensors_is_refused_for_a_release_before_them(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    nodes = [
        helper.make_node("Cast", ["x"], ["q"], to=TensorProto.FLOAT8E4M3FN),
        helper.make_node("Cast", ["q"], ["y"], to=TensorProto.FLOAT),
    ]
    model = helper.make_model(
        helper.make_graph(nodes, "f8", [x], [y]), opset_imports=[helper.make_opsetid("", 19)], ir_version=9
    )
    path = tmp_path / "f8.onnx"
    onnx.save(model, path)
    raw = _convert(path, tmp_path / "a", 0)
    assert _session_version(for_release(raw, (1, 16))) == b"6"
    with pytest.raises(CanonicalError, match="reads 5"):
        for_release(raw, (1, 15))


def test_threat_a_file_that_is_not_ort_is_refused() -> None:
    with pytest.raises(CanonicalError):
        canonical_ort(b"\x00" * 64)
    with pytest.raises(CanonicalError):
        canonical_ort(b"\x08\x00\x00\x00ORTM" + b"\xff" * 32)


def test_formats_by_release() -> None:
    assert readable_formats((1, 12, 9)) == ()
    assert readable_formats((1, 13)) == ("5",)
    assert readable_formats((1, 16, 3)) == ("5", "6")
