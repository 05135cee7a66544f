"""takt-runner polling an in-process pymodbus TCP server: registers in every order, scale and offset,
unit id, exception responses, an outage and its recovery."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.bundle import runner as contract
from runner.decode import value_to_registers
from tests.runnerkit import config_for, expected, start_runner, wait_for, write_bundle
from tests.serverkit import LoopThread, ModbusServer, Mosquitto, MqttProbe

pytestmark = pytest.mark.slow


@pytest.fixture
def loop():
    lt = LoopThread()
    yield lt
    lt.close()


def _source(server: ModbusServer, a_address: int = 100, unit: int = 3) -> contract.ModbusSource:
    return contract.ModbusSource(
        transport="tcp",
        endpoint=server.endpoint,
        unit_id=unit,
        sampling_interval=0.05,
        fields=(
            contract.ModbusField(name="a", dtype="float32", range=(0.0, 350.0), address=contract.ModbusAddress(
                register_type="holding-register", address=a_address, data_type="float32", word_order="little")),
            contract.ModbusField(name="b", dtype="float32", address=contract.ModbusAddress(
                register_type="input-register", address=12, data_type="int16", byte_order="little", scale=0.1,
                offset=-5.0)),
        ),
    )  # fmt: skip


def _bundle(tmp_path: Path, server: ModbusServer, broker: Mosquitto, **kw) -> Path:
    out = contract.MqttOutput(from_="y", topic="takt/hyd/y", broker=broker.url, name="pred")
    return write_bundle(tmp_path, config_for("hyd", _source(server, **kw), outputs=(out,)))


def _preds(probe: MqttProbe) -> list[float]:
    return [json.loads(p)["value"] for t, p, _ in probe.messages if t == "takt/hyd/y"]


def test_registers_written_at_the_plc_give_the_prediction(tmp_path: Path, loop: LoopThread):
    server = ModbusServer(loop, unit=3)
    broker = Mosquitto(tmp_path / "broker")
    probe = MqttProbe(broker.port, subscribe="takt/hyd/y")
    server.set("hr", 100, value_to_registers(181.5, "float32", "little", "big"))
    server.set("ir", 12, value_to_registers(456, "int16", "big", "little"))  # 456 · 0.1 − 5 = 40.6
    rp = start_runner(_bundle(tmp_path, server, broker))
    try:
        rp.wait_ready()
        wait_for(lambda: any(v == pytest.approx(expected(181.5, 40.6), rel=1e-5) for v in _preds(probe)),
                 what="the prediction")  # fmt: skip
        server.set("hr", 100, value_to_registers(-3.0, "float32", "little", "big"))  # out of range
        wait_for(lambda: rp.metric("takt_runner_out_of_range_total", 'field="a"') >= 1, what="out of range")
        server.stop()
        rp.wait_ready(False, timeout=10)
        assert rp.get("/v2/health/live")[0] == 200
        server.start()
        rp.wait_ready(timeout=15)
    finally:
        code, err = rp.stop()
        probe.close()
        broker.stop()
        server.stop()
    assert code == 0, err


def test_exception_responses_and_a_wrong_unit_are_counted_never_ready(tmp_path: Path, loop: LoopThread):
    server = ModbusServer(loop, unit=3, size=50)
    broker = Mosquitto(tmp_path / "broker")
    rp = start_runner(_bundle(tmp_path, server, broker, a_address=60000))  # beyond the server's registers
    try:
        wait_for(lambda: rp.metric("takt_runner_rejected_values_total", 'reason="modbus-exception",source="hyd"') >= 3,
                 what="exception responses counted")  # fmt: skip
        assert rp.get("/v2/health/ready")[0] == 503 and rp.get("/v2/health/live")[0] == 200
        assert rp.metric("takt_runner_inferences_total") == 0
    finally:
        rp.stop()
    rp = start_runner(_bundle(tmp_path, server, broker, unit=9))  # no such device behind the gateway
    try:
        wait_for(lambda: sum(rp.metric("takt_runner_rejected_values_total", f'reason="{r}",source="hyd"')
                             for r in ("modbus-exception", "read-failed")) >= 2, what="reads refused")  # fmt: skip
        assert rp.get("/v2/health/ready")[0] == 503
    finally:
        rp.stop()
        broker.stop()
        server.stop()
