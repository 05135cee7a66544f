"""takt-runner against a real mosquitto on 127.0.0.1: values in, predictions out, outages, credentials."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.bundle import runner as contract
from tests.runnerkit import config_for, expected, start_runner, wait_for, write_bundle
from tests.serverkit import Mosquitto, MqttProbe

pytestmark = pytest.mark.slow


def _source(broker: str, **kw) -> contract.MqttSource:
    return contract.MqttSource(
        broker=broker,
        client_id="takt-test",
        fields=(
            contract.MqttField(name="a", dtype="float32", range=(0.0, 100.0),
                               address=contract.MqttAddress(topic="plc/press/a", json_path="$.value")),
            contract.MqttField(name="b", dtype="float32", address=contract.MqttAddress(topic="plc/press/b")),
        ),
        **kw,
    )  # fmt: skip


def _bundle(tmp_path: Path, broker: Mosquitto, **kw) -> Path:
    out = contract.MqttOutput(from_="y", topic="takt/press/y", connection="press", qos=1, retain=True, name="pred")
    return write_bundle(tmp_path, config_for("press", _source(broker.url, **kw), outputs=(out,)))


def _values(probe: MqttProbe) -> list[dict]:
    return [json.loads(p) for t, p, _ in probe.messages if t == "takt/press/y"]


def test_value_at_the_broker_makes_the_prediction_appear(tmp_path: Path):
    broker = Mosquitto(tmp_path / "broker")
    probe = MqttProbe(broker.port, subscribe="takt/press/y")
    rp = start_runner(_bundle(tmp_path, broker))
    try:
        wait_for(lambda: rp.metric("takt_runner_source_connected", 'source="press"') == 1, what="subscribed")
        assert rp.get("/v2/health/ready")[0] == 503  # connected, but no value yet: not fresh
        probe.publish("plc/press/b", "4.5")
        probe.publish("plc/press/a", json.dumps({"value": 12.25}))
        wait_for(lambda: _values(probe), what="a prediction")
        got = _values(probe)[-1]
        assert got["value"] == pytest.approx(expected(12.25, 4.5)) and got["quality"] == "good"
        rp.wait_ready()
        probe.publish("plc/press/a", json.dumps({"value": 250.0}))  # out of range [0, 100]
        wait_for(lambda: len(_values(probe)) >= 2, what="the second prediction")
        assert _values(probe)[-1]["quality"] == "uncertain"
        assert _values(probe)[-1]["value"] == pytest.approx(expected(250.0, 4.5))
        probe.publish("plc/press/a", b"\x00" * 2_000_000)  # hostile: too large, counted, skipped
        probe.publish("plc/press/a", '{"value": "high"}')
        wait_for(lambda: rp.metric("takt_runner_rejected_values_total", 'reason="wrong-type",source="press"'),
                 what="wrong type counted")  # fmt: skip
        assert rp.metric("takt_runner_rejected_values_total", 'reason="too-large",source="press"') == 1
        assert rp.get("/v2/health/live")[0] == 200
    finally:
        code, err = rp.stop()
        probe.close()
        broker.stop()
    assert code == 0, err


def test_broker_outage_makes_ready_false_and_live_true_then_recovers(tmp_path: Path):
    broker = Mosquitto(tmp_path / "broker")
    probe = MqttProbe(broker.port)
    rp = start_runner(_bundle(tmp_path, broker))
    try:
        wait_for(lambda: rp.metric("takt_runner_source_connected", 'source="press"') == 1, what="subscribed")
        probe.publish("plc/press/a", json.dumps({"value": 1.0}))
        probe.publish("plc/press/b", "2.0")
        rp.wait_ready()
        probe.close()
        broker.stop()
        rp.wait_ready(False)
        assert rp.get("/v2/health/live")[0] == 200
        assert rp.metric("takt_runner_source_connected", 'source="press"') == 0
        code, body = rp.get("/v2/health/ready")  # unreachable, which the agent's gate waits out: not refused
        assert code == 503 and body["sources"] == [{"name": "press", "connected": False, "fresh": False,
                                                    "refused": None}]  # fmt: skip
        broker.start()
        wait_for(lambda: rp.metric("takt_runner_source_connected", 'source="press"') == 1, timeout=15,
                 what="reconnected")  # fmt: skip
        rp.wait_ready()  # the last values are fresh again with the session back
        probe = MqttProbe(broker.port, subscribe="takt/press/y")
        probe.publish("plc/press/b", "3.0")
        wait_for(lambda: any(v["value"] == pytest.approx(expected(1.0, 3.0)) for v in _values(probe)),
                 what="a prediction after the restart")  # fmt: skip
    finally:
        rp.stop()
        probe.close()
        broker.stop()


def test_wrong_credentials_keep_it_live_but_never_ready(tmp_path: Path):
    broker = Mosquitto(tmp_path / "broker", users={"takt": "right"})
    (tmp_path / "creds").write_text("takt:wrong\n")
    rp = start_runner(_bundle(tmp_path, broker, credentials_ref="file:creds"))
    try:
        for _ in range(10):
            assert rp.get("/v2/health/live")[0] == 200
            assert rp.get("/v2/health/ready")[0] == 503
        assert rp.metric("takt_runner_source_connected", 'source="press"') == 0
        assert rp.metric("takt_runner_output_errors_total", 'output="pred"') >= 0
        refused = wait_for(lambda: rp.get("/v2/health/ready")[1]["sources"][0]["refused"], what="refusal named")
        assert refused.startswith("credentials:"), refused  # told apart from an unreachable broker
    finally:
        rp.stop()
    (tmp_path / "creds").write_text("takt:right\n")
    rp = start_runner(_bundle(tmp_path, broker, credentials_ref="file:creds"))
    try:
        wait_for(lambda: rp.metric("takt_runner_source_connected", 'source="press"') == 1, what="authenticated")
    finally:
        rp.stop()
        broker.stop()
