"""A shadow challenger in takt-runner, against a real asyncua server and mosquitto: it is fed the same
frames as the current model, nothing of it reaches an output, and its agreement is what onnxruntime
gives offline for both models on those frames."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from compiler.bundle import runner as contract
from tests.runnerkit import MODEL, config_for, start_runner, wait_for, write_bundle
from tests.serverkit import LoopThread, Mosquitto, MqttProbe, OpcUaServer

pytestmark = pytest.mark.slow

TOLERANCE = 0.5
B = 2.0  # b stays put; a moves, so every frame is (a, B) and the current output tells which a it saw


def _challenger_model() -> bytes:
    """y = 0.6·x0 + 0.4·x1: the same signature as the current model, other weights."""
    from onnx import helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "B"], ["y"])],
        "challenger",
        [helper.make_tensor_value_info("x", 1, ["batch", 2])],
        [helper.make_tensor_value_info("y", 1, ["batch", 1])],
        [
            numpy_helper.from_array(np.array([[0.6], [0.4]], np.float32), "W"),
            numpy_helper.from_array(np.zeros(1, np.float32), "B"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    return model.SerializeToString(deterministic=True)


def _offline(model: bytes, a: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    x = np.stack([a, np.full_like(a, B)], axis=1).astype(np.float32)
    return sess.run(None, {"x": x})[0][:, 0].astype(np.float64)


@pytest.fixture
def loop():
    lt = LoopThread()
    yield lt
    lt.close()


def test_the_challenger_never_writes_and_its_agreement_matches_both_models_offline(tmp_path: Path, loop: LoopThread):
    broker = Mosquitto(tmp_path / "mqtt")
    server = OpcUaServer(loop)
    probe = MqttProbe(broker.port, subscribe="out/#")
    rp = None
    try:
        fields = tuple(
            contract.OpcUaField(name=n, dtype="float64", address=contract.OpcUaAddress(node_id=server.node_id(n)))
            for n in "ab"
        )
        src = contract.OpcUaSource(
            endpoint=server.endpoint,
            security=contract.OpcUaSecurity(mode="None", policy="None"),
            sampling_interval=0.05,
            fields=fields,
        )
        outputs = (
            contract.OpcUaOutput(from_="y", node_id=server.node_id("y"), connection="plc", name="y-node"),
            contract.MqttOutput(from_="y", topic="out/y", broker=f"mqtt://127.0.0.1:{broker.port}", name="y-mqtt"),
        )
        current = config_for("plc", src, outputs=outputs)
        config = write_bundle(tmp_path / "current", current)
        model = _challenger_model()
        challenger = current.with_(model=current.model.__class__(**{**current.model.__dict__,
                                                                    "sha256": hashlib.sha256(model).hexdigest()}),
                                   outputs=())  # fmt: skip
        write_bundle(tmp_path / "challenger", challenger, model)
        digest = "c" * 64
        entry = contract.ShadowEntry(
            deployment="d", challenger=digest, config="../challenger/runner.json", tolerance=TOLERANCE
        )
        (tmp_path / "shadow").mkdir()
        (tmp_path / "shadow" / contract.SHADOW_JSON).write_bytes(entry.to_json())
        server.write("b", B)
        server.write("a", 0.0)
        rp = start_runner(config, extra=("--shadow", str(tmp_path / "shadow" / contract.SHADOW_JSON)))
        rp.wait_ready()
        for a in (1.0, 3.0, 4.5, 6.0, 9.0, 12.0, 15.5, 20.0, 2.0, 30.0):  # |a - 2|·0.1 straddles the tolerance
            seen = len(probe.messages)
            server.write("a", a)
            wait_for(lambda n=seen: len(probe.messages) > n, what=f"output for a={a}")
        wait_for(lambda: server.read("y")[0] == pytest.approx(0.5 * 30.0 + 0.5 * B), what="last value at the PLC")
        values = np.array([json.loads(p)["value"] for _, p, _ in probe.messages], np.float64)
        frames = 2 * values - B  # the current model is y = (a + b) / 2: each output names its frame's a
        current_out, challenger_out = _offline(MODEL, frames), _offline(model, frames)
        np.testing.assert_allclose(values, current_out, rtol=1e-6)  # every value at the output is the current model's
        assert not np.any(np.isclose(values[:, None], challenger_out[None, :])[~np.isclose(frames, B)])
        diff = np.abs(current_out - challenger_out)
        label = f'challenger="{digest}"'
        wait_for(lambda: rp.metric("takt_runner_shadow_frames_total", label) == len(frames), what="shadow frames")
        assert rp.metric("takt_runner_shadow_agreement", label) == pytest.approx(np.mean(diff <= TOLERANCE))
        assert rp.metric("takt_runner_shadow_abs_diff_mean", label) == pytest.approx(diff.mean(), rel=1e-6)
        assert rp.metric("takt_runner_shadow_abs_diff_p99", label) == pytest.approx(np.percentile(diff, 99), rel=1e-6)
        assert rp.metric("takt_runner_shadow_inference_errors_total", label) == 0
        assert 0 < np.mean(diff <= TOLERANCE) < 1  # the frames really test the tolerance both ways
    finally:
        if rp is not None:
            code, err = rp.stop()
            assert code == 0, err
        probe.close()
        server.stop()
        broker.stop()
