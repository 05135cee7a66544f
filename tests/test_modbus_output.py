"""The Modbus output (`type: modbus`): spec, located diagnostics, runner.json, and a real write into an
in-process pymodbus server whose registers hold what onnxruntime predicts for the same frame."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from compiler.bundle import runner as contract
from runner import decode
from runner.outputs.modbus import scalar
from tests.conftest import only
from tests.runnerkit import config_for, expected, run_to_exit, start_runner, wait_for, write_bundle
from tests.serverkit import LoopThread, ModbusServer

MODBUS_SOURCE = """\
    apiVersion: takt/v1
    kind: DataSource
    metadata: {name: plc}
    spec:
      protocol: modbus
      transport: tcp
      endpoint: gw.plant.local:502
      unitId: 3
      addressing: one-based
      samplingInterval: 100ms
      fields:
        - name: temp
          dtype: float32
          unit: degC
          address: {registerType: holding-register, address: 1, dataType: float32}
        - name: pres
          dtype: float32
          unit: bar
          address: {registerType: holding-register, address: 3, dataType: float32}
    """


def _deploy(output: str) -> str:
    head = """\
        apiVersion: takt/v1
        kind: Deployment
        metadata: {name: d}
        spec:
          model: m
          bindings:
            - {input: x, source: plc, fields: [temp, pres]}
          targets: [ipc]
          selector: {matchLabels: {line: a}}
          gates: [suite]
          outputs:
        """
    return textwrap.dedent(head) + "    - " + output + "\n"


def _run(repo, output: str):
    return repo({"sources.yaml": MODBUS_SOURCE, "deploy.yaml": _deploy(output)})


def test_a_modbus_output_validates_clean(repo):
    result = _run(
        repo,
        "{type: modbus, from: y, connection: plc, address: {registerType: holding-register, "
        "address: 101, dataType: float32, wordOrder: little}}",
    )
    assert result.diagnostics == []


@pytest.mark.parametrize(
    ("output", "code", "column", "needle"),
    [
        (
            "{type: modbus, from: y, connection: plc, address: {registerType: input-register, address: 101, "
            "dataType: float32}}",
            "TAKT2024",
            "input-register",
            "read-only",
        ),
        (
            "{type: modbus, from: y, connection: plc, address: {registerType: holding-register, address: 101, "
            "dataType: bool, bit: 3}}",
            "TAKT2024",
            "bit",
            "other 15",
        ),
        (
            "{type: modbus, from: y, connection: plc, address: {registerType: holding-register, address: 65536, "
            "dataType: float32}}",
            "TAKT2020",
            "65536",
            "past the last register",
        ),
        (
            "{type: modbus, from: y, connection: plc, address: {registerType: holding-register, address: 0, "
            "dataType: int16}}",
            "TAKT2020",
            "0, dataType",
            "one-based",
        ),
        (
            "{type: modbus, from: y, connection: plc, address: {registerType: holding-register, address: 101, "
            "dataType: int16}}",
            "TAKT2025",
            "int16}}",
            "rounded",
        ),
        (
            "{type: modbus, from: y, endpoint: 'gw:99999', address: {registerType: holding-register, address: 1, "
            "dataType: float32}}",
            "TAKT2028",
            "'gw:99999'",
            "host:port",
        ),
        (
            "{type: modbus, from: y, connection: plc, address: {registerType: coil, address: 1, dataType: int16}}",
            "TAKT2021",
            "int16}}",
            "one bit",
        ),
    ],
    ids=["read-only", "bit", "past-end", "one-based-zero", "rounded", "endpoint", "coil-type"],
)
def test_modbus_output_problems_are_located(repo, output: str, code: str, column: str, needle: str):
    result = _run(repo, output)
    d = only(result, code)
    assert needle in d.message
    text = Path("deploy.yaml").read_text(encoding="utf-8").splitlines()
    assert d.location.file == "deploy.yaml" and d.location.line == len(text)
    assert text[d.location.line - 1][d.location.column - 1 :].startswith(column)


def test_a_modbus_output_needs_exactly_one_device(repo):
    both = _run(
        repo,
        "{type: modbus, from: y, connection: plc, endpoint: 'gw:502', address: "
        "{registerType: holding-register, address: 1, dataType: float32}}",
    )
    assert "exactly one of connection" in only(both, "TAKT1012").message
    wrong = repo(
        {
            "deploy.yaml": _deploy(
                "{type: modbus, from: y, connection: plc, address: "
                "{registerType: holding-register, address: 1, dataType: float32}}"
            )
        }
    )
    assert "speaks opcua" in only(wrong, "TAKT4033").message  # BASE's plc is an OPC UA source


def test_an_rtu_connection_cannot_carry_an_output(repo):
    rtu = MODBUS_SOURCE.replace("transport: tcp", "transport: rtu").replace("gw.plant.local:502", "/dev/ttyS1")
    rtu = rtu.replace("unitId: 3\n", "unitId: 3\n      serial: {baudRate: 19200}\n")
    result = repo(
        {
            "sources.yaml": rtu,
            "deploy.yaml": _deploy(
                "{type: modbus, from: y, connection: plc, address: {registerType: holding-register, address: 101, "
                "dataType: float32}}"
            ),
        }
    )
    d = only(result, "TAKT2024")
    assert "Modbus RTU" in d.message and d.location.file == "deploy.yaml"


def test_build_carries_the_output_into_runner_json(repo, tmp_path: Path):
    """What the edge-pc renderer writes is the contract's ModbusOutput, the connection's settings untouched."""
    from compiler.build import build

    result = _run(
        repo,
        "{type: modbus, from: y, connection: plc, unitId: 9, address: {registerType: "
        "holding-register, address: 101, dataType: float32, wordOrder: little, scale: 0.5}}",
    )
    assert result.diagnostics == []
    res = build(result, tmp_path / "out", run_gates=False)
    config = contract.RunnerConfig.parse(
        (tmp_path / "out/bundles" / res.bundles[0].digest / "runner.json").read_bytes()
    )
    (out,) = config.outputs
    assert isinstance(out, contract.ModbusOutput) and out.unit_id == 9 and out.connection == "plc"
    assert out.address == contract.ModbusAddress(
        register_type="holding-register", address=101, data_type="float32", word_order="little", scale=0.5
    )
    assert isinstance(config.sources["plc"], contract.ModbusSource) and config.sources["plc"].addressing == "one-based"


def test_the_contract_carries_a_modbus_output():
    out = contract.ModbusOutput(
        from_="y",
        connection="hyd",
        unit_id=7,
        address=contract.ModbusAddress(
            register_type="holding-register", address=200, data_type="float32", word_order="little"
        ),
    )
    source = contract.ModbusSource(
        transport="tcp",
        endpoint="127.0.0.1:502",
        sampling_interval=0.1,
        fields=tuple(
            contract.ModbusField(
                name=n,
                dtype="float32",
                address=contract.ModbusAddress(register_type="holding-register", address=i * 2, data_type="float32"),
            )
            for i, n in enumerate("ab")
        ),
    )
    config = config_for("hyd", source, outputs=(out,))
    again = contract.RunnerConfig.parse(config.to_json())
    assert again == config and again.outputs[0] == out
    assert b'"unitId": 7' in config.to_json() and b'"from": "y"' in config.to_json()


@pytest.mark.parametrize(
    ("data_type", "word", "byte"),
    [
        ("float32", "big", "big"),
        ("float32", "little", "big"),
        ("int32", "little", "little"),
        ("uint16", "big", "little"),
        ("float64", "little", "little"),
    ],
)
def test_the_output_encodes_what_the_source_decodes(data_type: str, word: str, byte: str):
    a = contract.ModbusAddress(
        register_type="holding-register",
        address=0,
        data_type=data_type,
        word_order=word,
        byte_order=byte,
        scale=0.01,
        offset=-20.0,
    )
    for value in (0.0, 12.34, 99.99, 300.5):
        assert decode.field_value(decode.field_registers(value, a), a) == pytest.approx(value, abs=0.006)


def test_threat_modbus_output_refuses_values_the_register_cannot_hold():
    """A prediction outside the register type is refused, never wrapped into a plausible number."""
    a = contract.ModbusAddress(register_type="holding-register", address=0, data_type="int16")
    for bad in (40000.0, -40000.0, float("nan"), float("inf")):
        with pytest.raises(decode.Rejected):
            decode.field_registers(bad, a)
    with pytest.raises(decode.Rejected):
        decode.field_registers(
            1e39, contract.ModbusAddress(register_type="holding-register", address=0, data_type="float32")
        )
    with pytest.raises(decode.Rejected):
        scalar([1.0, 2.0])  # two values, one register
    assert scalar([[0.25]]) == 0.25


# --- the runner writes the register -------------------------------------------------------------------


@pytest.fixture
def loop():
    lt = LoopThread()
    yield lt
    lt.close()


@pytest.mark.slow
def test_the_prediction_arrives_in_the_holding_register(tmp_path: Path, loop: LoopThread):
    server = ModbusServer(loop, unit=3, size=300)
    source = contract.ModbusSource(
        transport="tcp",
        endpoint=server.endpoint,
        unit_id=3,
        sampling_interval=0.05,
        addressing="one-based",
        fields=(
            contract.ModbusField(
                name="a",
                dtype="float32",
                address=contract.ModbusAddress(
                    register_type="holding-register", address=101, data_type="float32", word_order="little"
                ),
            ),
            contract.ModbusField(
                name="b",
                dtype="float32",
                address=contract.ModbusAddress(
                    register_type="input-register", address=13, data_type="int16", scale=0.1
                ),
            ),
        ),
    )
    swapped = contract.ModbusAddress(
        register_type="holding-register", address=201, data_type="float32", word_order="little", byte_order="little"
    )
    scaled = contract.ModbusAddress(register_type="holding-register", address=211, data_type="int16", scale=0.01)
    outputs = (
        contract.ModbusOutput(from_="y", name="plc-float", connection="hyd", address=swapped),
        contract.ModbusOutput(
            from_="y", name="plc-int", endpoint=server.endpoint, unit_id=3, addressing="one-based", address=scaled
        ),
    )
    server.set("hr", 100, decode.value_to_registers(181.5, "float32", "little", "big"))
    server.set("ir", 12, decode.value_to_registers(406, "int16", "big", "big"))  # 40.6
    want = expected(181.5, 40.6)
    rp = start_runner(write_bundle(tmp_path, config_for("hyd", source, outputs=outputs)))
    try:
        rp.wait_ready()
        read = lambda: decode.registers_to_value(server.get("hr", 200, 2), "float32", "little", "little")  # noqa: E731
        wait_for(lambda: read() != 0.0, what="the float register written")
        assert read() == want  # float32 both ways: bit for bit what onnxruntime computed
        wait_for(lambda: server.get("hr", 210, 1) != [0], what="the scaled register written")
        assert decode.registers_to_value(server.get("hr", 210, 1), "int16", "big", "big") == round(want / 0.01)
        assert rp.metric("takt_runner_output_sent_total", 'output="plc-float"') >= 1
    finally:
        code, err = rp.stop()
        server.stop()
    assert code == 0, err


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"address": 70000}, "outputs[0].address.address"),
        ({"address": 65535, "data_type": "float32"}, "outputs[0].address.address"),
        ({"scale": 0.0}, "outputs[0].address.scale"),
        ({"register_type": "input-register"}, "outputs[0].address.registerType"),
        ({"connection": "file"}, "outputs[0].connection"),
    ],
    ids=["past-the-end", "spans-past-the-end", "scale-zero", "read-only", "not-modbus"],
)
def test_threat_runner_refuses_a_modbus_output_it_cannot_write(tmp_path: Path, change: dict, field: str):
    """A runner.json the compiler would never write (hand-edited, another tool's) stops the runner at start
    with exit 2 naming the field, never a write loop that fails forever or a crash of the output."""
    data = tmp_path / "in.csv"
    data.write_text("a,b\n1,2\n", encoding="utf-8")
    source = contract.FileSource(
        path=str(data),
        format="csv",
        fields=tuple(contract.FileField(name=n, dtype="float32", address=contract.FileAddress(column=n)) for n in "ab"),
    )
    connection = change.pop("connection", None)
    address = contract.ModbusAddress(
        **{"register_type": "holding-register", "address": 10, "data_type": "int16", **change}
    )
    out = contract.ModbusOutput(
        from_="y", address=address, **({"connection": connection} if connection else {"endpoint": "127.0.0.1:1502"})
    )
    code, err = run_to_exit(write_bundle(tmp_path, config_for(connection or "file", source, outputs=(out,))))
    assert code == 2, err
    assert field in err and "Traceback" not in err
