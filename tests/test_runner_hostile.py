"""takt-runner against hostile input: values from the wire, configs it cannot run. Written first.

Wire values are fed through the real decoding paths (MQTT payload handling, Modbus register
decoding, JSONPath) into the real Table and Engine; configs go through the real CLI in a
subprocess, which must exit non-zero with one line and never a traceback.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest

from compiler.bundle import runner as contract
from runner import decode
from runner.connect import MqttParams
from runner.engine import Engine
from runner.errors import StartError
from runner.metrics import Metrics
from runner.model import load_model
from runner.outputs.base import Delivery, DropOldestQueue, Output
from runner.secrets import SecretResolver
from runner.sources.mqtt import MAX_PAYLOAD, MqttSourceRunner
from runner.table import Table
from tests.runnerkit import MODEL, config_for, expected, run_to_exit, write_bundle


def _mqtt_source(**kw) -> contract.MqttSource:
    return contract.MqttSource(
        broker="mqtt://127.0.0.1:1883",
        fields=(
            contract.MqttField(name="a", dtype="float32", range=(0.0, 10.0),
                               address=contract.MqttAddress(topic="plc/a", json_path="$.v")),
            contract.MqttField(name="b", dtype="float32", address=contract.MqttAddress(topic="plc/b")),
        ),
        **kw,
    )  # fmt: skip


class _Collect(Output):
    def __init__(self, metrics: Metrics) -> None:
        super().__init__("collect", "y", metrics, maxsize=1000)


@pytest.fixture
def rig(tmp_path: Path):
    """A real Table, MQTT payload handler and Engine with the model, no broker: handle() → step()."""
    config = config_for("plc", _mqtt_source())
    write_bundle(tmp_path, config)
    metrics = Metrics.create()
    table = Table()
    table.on_reject = lambda source, reason: metrics.rejected.labels(source, reason).inc()
    source = MqttSourceRunner("plc", config.sources["plc"], MqttParams("127.0.0.1", 1883, {}), table)
    out = _Collect(metrics)
    engine = Engine(config, load_model(config, tmp_path), table, [out], metrics)
    table.set_connected("plc", True)

    class Rig:
        def send(self, topic: str, payload: bytes) -> bool:
            source.handle(topic, payload)
            return engine.step(table.clock())

        def sample(self, name: str, **labels: str) -> float:
            return metrics.registry.get_sample_value(name, labels) or 0.0

        outputs = out
        tab = table

    return Rig()


def test_good_values_infer_and_equal_onnxruntime(rig):
    assert not rig.send("plc/a", b'{"v": 2.0}')  # b has no value yet: stale, no inference
    assert rig.send("plc/b", b"4.5")
    item = rig.outputs.queue._items[-1]
    assert item.value == pytest.approx(expected(2.0, 4.5)) and not item.uncertain


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"x" * (MAX_PAYLOAD + 1), "too-large"),
        (b"{not json", "malformed-json"),
        (b'{"v": "12.5"}', "wrong-type"),  # a string where a number goes
        (b'{"v": {"deep": 1}}', "wrong-type"),
        (b'{"v": null}', "wrong-type"),
        (b'{"v": true}', "wrong-type"),
        (b'{"w": 1}', "path-missing"),
        (b"[1, 2]", "path-missing"),
        (b'{"v": 1e999999}', None),  # JSON infinity: a float, out of range below
        (b"[" * 200_000 + b"]" * 200_000, "malformed-json"),  # recursion bomb
        (b"\xff\xfe\x00garbage", "malformed-json"),
    ],
)
def test_hostile_mqtt_payloads_are_counted_and_skipped(rig, payload: bytes, reason: str | None):
    rig.send("plc/b", b"1.0")
    rig.send("plc/a", b'{"v": 3.0}')
    before = rig.sample("takt_runner_inferences_total")
    ran = rig.send("plc/a", payload)
    if reason is None:
        assert ran and rig.outputs.queue._items[-1].uncertain  # inf is out of range: counted, marked uncertain
        assert rig.sample("takt_runner_out_of_range_total", field="a") == 1
        return
    assert not ran and rig.sample("takt_runner_inferences_total") == before
    assert rig.sample("takt_runner_rejected_values_total", source="plc", reason=reason) == 1
    assert rig.sample("takt_runner_skipped_frames_total", reason="bad-quality") >= 1
    assert rig.send("plc/a", b'{"v": 3.0}')  # the next good value recovers at once


def test_nan_skips_inference_and_out_of_range_marks_uncertain(rig):
    rig.send("plc/b", b"1.0")
    assert not rig.send("plc/a", b'{"v": NaN}')
    assert rig.sample("takt_runner_skipped_frames_total", reason="nan") == 1
    assert not rig.send("plc/b", b"nan")
    assert rig.sample("takt_runner_skipped_frames_total", reason="nan") == 2
    assert not rig.send("plc/b", b"twelve")
    assert rig.sample("takt_runner_rejected_values_total", source="plc", reason="not-a-number") == 1
    rig.send("plc/b", b"1.0")
    assert rig.send("plc/a", b'{"v": 11.0}')  # range [0, 10]
    assert rig.outputs.queue._items[-1].uncertain
    assert rig.sample("takt_runner_out_of_range_total", field="a") == 1
    assert rig.sample("takt_runner_uncertain_outputs_total") == 1
    assert rig.send("plc/a", b'{"v": 9.0}') and not rig.outputs.queue._items[-1].uncertain


def test_disconnected_source_is_stale_until_it_reconnects(rig):
    rig.send("plc/b", b"1.0")
    assert rig.send("plc/a", b'{"v": 1.0}')
    stale = rig.sample("takt_runner_skipped_frames_total", reason="stale")
    rig.tab.set_connected("plc", False)
    assert not rig.send("plc/a", b'{"v": 2.0}')
    assert rig.sample("takt_runner_skipped_frames_total", reason="stale") == stale + 1
    assert not rig.tab.source_fresh("plc", rig.tab.clock())
    rig.tab.set_connected("plc", True)
    assert rig.send("plc/a", b'{"v": 2.0}')


def test_polled_source_goes_stale_after_three_intervals():
    now = [100.0]
    table = Table(clock=lambda: now[0])
    table.add_source("hyd", ["p"], max_age=3 * 0.1)
    table.set_connected("hyd", True)
    table.update("hyd", "p", 1.0)
    now[0] += 0.29
    assert table.fresh("hyd", "p", now[0])
    now[0] += 0.02
    assert not table.fresh("hyd", "p", now[0])


def test_drop_oldest_queue_counts_drops():
    dropped = []
    q = DropOldestQueue(3, lambda: dropped.append(1))
    for i in range(5):
        q.put(Delivery(i, False, 0.0))
    assert len(q) == 3 and len(dropped) == 2
    assert [q._items[i].value for i in range(3)] == [2, 3, 4]


# --- Modbus register decoding: all four byte/word orders, against struct's own encoding ------------------


@pytest.mark.parametrize("data_type", ["int16", "uint16", "int32", "uint32", "float32", "int64", "uint64", "float64"])
@pytest.mark.parametrize("word_order", ["big", "little"])
@pytest.mark.parametrize("byte_order", ["big", "little"])
def test_registers_decode_in_every_order(data_type: str, word_order: str, byte_order: str):
    value = {"int16": -1234, "uint16": 54321, "int32": -123456789, "uint32": 3000000000, "float32": -1.5e3,
             "int64": -(2**40) - 7, "uint64": 2**63 + 11, "float64": math.pi}[data_type]  # fmt: skip
    code = {"int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "float32": "f", "int64": "q", "uint64": "Q",
            "float64": "d"}[data_type]  # fmt: skip
    raw = struct.pack(">" + code, value)  # big-endian bytes: the reference layout
    words = [raw[i : i + 2] for i in range(0, len(raw), 2)]
    if word_order == "little":
        words.reverse()
    registers = [int.from_bytes(w if byte_order == "big" else w[::-1], "big") for w in words]
    got = decode.registers_to_value(registers, data_type, word_order, byte_order)
    assert got == pytest.approx(value)
    assert decode.value_to_registers(value, data_type, word_order, byte_order) == registers


def test_bad_registers_and_bits():
    with pytest.raises(decode.Rejected):
        decode.registers_to_value([1], "float32", "big", "big")  # short read
    with pytest.raises(decode.Rejected):
        decode.registers_to_value([70000], "uint16", "big", "big")
    assert decode.registers_to_value([0b100], "bool", "big", "big", bit=2) == 1.0
    assert decode.registers_to_value([0b100], "bool", "big", "big", bit=1) == 0.0


def test_json_path_subset():
    assert decode.compile_path("$.a['b c'][2].d") == ("a", "b c", 2, "d")
    assert decode.select({"a": {"b c": [0, 1, {"d": 5}]}}, ("a", "b c", 2, "d")) == 5
    for bad in ("$..a", "$.a[*]", "$[?(@.x)]", "a.b", "$." + ".a" * 40):
        with pytest.raises(ValueError):
            decode.compile_path(bad)
    with pytest.raises(decode.Rejected):
        decode.select({"a": [1]}, ("a", 5))
    with pytest.raises(decode.Rejected):
        decode.tensor([[1, 2], [3]], (2, 2))
    np.testing.assert_array_equal(decode.tensor([1, 2, 3, 4], (2, 2)), [[1, 2], [3, 4]])


# --- secrets -----------------------------------------------------------------------------------------


def test_secret_references(tmp_path: Path):
    (tmp_path / "cred").write_text('{"username": "u", "password": "p:w"}\n')
    (tmp_path / "plain").write_text("user:pa:ss\n")
    r = SecretResolver({"TOKEN": "t0k"}, tmp_path)
    assert r.resolve("env:TOKEN", "x") == "t0k"
    assert r.credentials("file:cred", "x").password == "p:w"
    c = r.credentials(f"file:{tmp_path / 'plain'}", "x")
    assert (c.username, c.password) == ("user", "pa:ss") and "pa:ss" not in repr(c)
    for ref, words in [
        ("env:NOPE", "NOPE is not set"),
        ("file:missing", "cannot read secret file"),
        ("k8s:ns/name#key", "scheme k8s: cannot be resolved"),
        ("aws-sm:arn", "scheme aws-sm:"),
        ("vault:kv/x#y", "VAULT_ADDR"),
    ]:
        with pytest.raises(StartError) as info:
            r.resolve(ref, "sources.plc.credentialsRef")
        assert words in str(info.value) and info.value.what == "sources.plc.credentialsRef"


# --- configs it cannot run: the real CLI -------------------------------------------------------------------


def _file_config(tmp_path: Path, **kw) -> contract.RunnerConfig:
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    src = contract.FileSource(
        path="data.csv",
        format="csv",
        fields=tuple(contract.FileField(name=n, dtype="float32", address=contract.FileAddress(column=n)) for n in "ab"),
    )
    return config_for("f", src, **kw)


def _assert_clean_refusal(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err and err.count("\n") <= 2, err
    for w in words:
        assert w in err, err


def test_unknown_contract_version_exits_2_with_the_reason(tmp_path: Path):
    path = write_bundle(tmp_path, _file_config(tmp_path))
    doc = json.loads(path.read_text())
    doc["apiVersion"] = "takt/runner/v7"
    path.write_text(json.dumps(doc))
    _assert_clean_refusal(*run_to_exit(path), "takt/runner/v7", contract.API_VERSION)


def test_model_digest_mismatch_exits_2(tmp_path: Path):
    path = write_bundle(tmp_path, _file_config(tmp_path), model=MODEL + b"\x00")
    _assert_clean_refusal(*run_to_exit(path), "model.sha256", "the contract says")


def test_unresolvable_secret_exits_2_naming_the_field(tmp_path: Path):
    out = contract.HttpOutput(from_="y", url="http://127.0.0.1:9/x", credentials_ref="env:TAKT_TEST_NO_SUCH_VAR")
    path = write_bundle(tmp_path, _file_config(tmp_path, outputs=(out,)))
    _assert_clean_refusal(*run_to_exit(path), "outputs[0].credentialsRef", "TAKT_TEST_NO_SUCH_VAR is not set")
    out = contract.HttpOutput(from_="y", url="http://127.0.0.1:9/x", credentials_ref="gcp-sm:projects/x")
    path = write_bundle(tmp_path, _file_config(tmp_path, outputs=(out,)))
    _assert_clean_refusal(*run_to_exit(path), "outputs[0].credentialsRef", "gcp-sm:")


def test_garbage_and_missing_configs_exit_2(tmp_path: Path):
    (tmp_path / "runner.json").write_bytes(b"\x00\xff not json")
    _assert_clean_refusal(*run_to_exit(tmp_path / "runner.json"), "not JSON")
    _assert_clean_refusal(*run_to_exit(tmp_path / "nowhere.json"), "cannot read the config")


def test_opcua_certificate_that_is_not_a_pem_pair_exits_2(tmp_path: Path):
    (tmp_path / "client.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    fields = tuple(
        contract.OpcUaField(name=n, dtype="float64", address=contract.OpcUaAddress(node_id=f"ns=2;s={n}")) for n in "ab"
    )
    src = contract.OpcUaSource(
        endpoint="opc.tcp://127.0.0.1:9/",
        security=contract.OpcUaSecurity(mode="Sign", policy="Basic256Sha256", certificate_ref="file:client.pem"),
        sampling_interval=0.1,
        fields=fields,
    )
    path = write_bundle(tmp_path, config_for("plc", src))
    _assert_clean_refusal(*run_to_exit(path), "sources.plc.security.certificateRef", "PEM certificate")
    security = contract.OpcUaSecurity(mode="SignAndEncrypt", policy="Basic256Sha256")
    src = contract.OpcUaSource(endpoint="opc.tcp://x:9/", sampling_interval=0.1, fields=fields, security=security)
    _assert_clean_refusal(*run_to_exit(write_bundle(tmp_path, config_for("plc", src))), "needs certificateRef")


def test_unsupported_protocol_features_exit_2(tmp_path: Path):
    src = _mqtt_source(sparkplug=True)  # its fields name topics and paths, but no Sparkplug metric
    _assert_clean_refusal(*run_to_exit(write_bundle(tmp_path, config_for("plc", src))), "names its metric")
    src = contract.ModbusSource(transport="rtu", endpoint="/dev/ttyUSB0", sampling_interval=0.1, fields=tuple(
        contract.ModbusField(name=n, dtype="float32", address=contract.ModbusAddress(
            register_type="holding-register", address=1, data_type="uint16")) for n in "ab"))  # fmt: skip
    _assert_clean_refusal(*run_to_exit(write_bundle(tmp_path, config_for("hyd", src))), "RTU")


def test_runner_imports_only_the_contract_from_the_compiler():
    """A device runs the runner without pydantic, jinja2 or the rest of the compiler in memory."""
    import subprocess
    import sys

    code = (
        "import sys, runner.app, runner.cli\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'jinja2', 'ruamel', 'click', 'git')"
        " or (m.startswith('compiler.') and not m.startswith('compiler.bundle')))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
