"""Sparkplug B sources (Sparkplug 3.0): protobuf payloads, births with aliases, deaths, against mosquitto."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from compiler.bundle import runner as contract
from runner.sparkplug import Decoder, SparkplugError, Topic, companion_topics
from tests.runnerkit import config_for, expected, start_runner, wait_for, write_bundle
from tests.serverkit import Mosquitto, MqttProbe

DATA_TOPIC = "spBv1.0/press-line/DDATA/edge-7/press-01"
BIRTH_TOPIC = "spBv1.0/press-line/DBIRTH/edge-7/press-01"


def _metric(msg, name: str | None, alias: int | None, datatype: int, **value) -> None:
    m = msg.metrics.add()
    if name is not None:
        m.name = name
    if alias is not None:
        m.alias = alias
    m.datatype = datatype
    for k, v in value.items():
        setattr(m, k, v)


def _payload(*metrics: tuple, seq: int = 0) -> bytes:
    msg = Decoder().payload_class(seq=seq, timestamp=1_700_000_000_000)
    for m in metrics:
        _metric(msg, *m[:3], **m[3])
    return msg.SerializeToString()


def test_births_declare_aliases_that_data_messages_use() -> None:
    d = Decoder()
    birth = _payload(("Press/Force", 1, 9, {"float_value": 1.5}), ("Press/Temp", 2, 10, {"double_value": 40.25}))
    assert d.decode(Topic.parse(BIRTH_TOPIC), birth) == {"Press/Force": 1.5, "Press/Temp": 40.25}
    data = _payload((None, 2, 10, {"double_value": 41.0}))  # by alias only
    assert d.decode(Topic.parse(DATA_TOPIC), data) == {"Press/Temp": 41.0}
    d.forget(Topic.parse("spBv1.0/press-line/NDEATH/edge-7"))  # a node death voids its devices' aliases
    assert d.decode(Topic.parse(DATA_TOPIC), data) == {}


@pytest.mark.parametrize(
    ("datatype", "value", "want"),
    [
        (1, {"int_value": 0xFF}, -1.0),  # Int8 in a uint32, two's complement
        (2, {"int_value": 0x8000}, -32768.0),
        (3, {"int_value": 0xFFFFFFFE}, -2.0),
        (4, {"long_value": (1 << 64) - 5}, -5.0),
        (7, {"int_value": 0xFFFFFFFF}, 4294967295.0),
        (8, {"long_value": 1 << 63}, float(1 << 63)),
        (9, {"float_value": 0.5}, 0.5),
        (11, {"boolean_value": True}, True),
    ],
)
def test_values_are_read_as_their_datatype_says(datatype: int, value: dict, want: float) -> None:
    got = Decoder().decode(Topic.parse(DATA_TOPIC), _payload(("m", None, datatype, value)))["m"]
    assert got == want and type(got) is type(want)


def test_threat_null_unknown_and_garbage_payloads_are_reasons_not_crashes() -> None:
    d = Decoder()
    out = d.decode(Topic.parse(DATA_TOPIC), _payload(("n", None, 10, {"is_null": True}), ("t", None, 16, {})))
    assert {k: v.reason for k, v in out.items() if isinstance(v, SparkplugError)} == {
        "n": "null",
        "t": "unsupported-datatype",
    }
    with pytest.raises(SparkplugError, match="malformed"):
        d.decode(Topic.parse(DATA_TOPIC), b"\x12\xff\xff\xff\xff\x0f")  # a length past the end
    historical = _payload(("h", None, 10, {"double_value": 1.0, "is_historical": True}))
    assert d.decode(Topic.parse(DATA_TOPIC), historical) == {}


def test_a_data_subscription_also_follows_the_births_and_deaths_of_its_node() -> None:
    assert companion_topics("spBv1.0/g/DDATA/n/+") == [
        "spBv1.0/g/NBIRTH/n",
        "spBv1.0/g/NDEATH/n",
        "spBv1.0/g/DBIRTH/n/+",
        "spBv1.0/g/DDEATH/n/+",
    ]
    assert companion_topics("plant/press/a") == []


@pytest.mark.slow
def test_runner_reads_sparkplug_metrics_from_a_real_broker(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker")
    probe = MqttProbe(broker.port, subscribe="takt/press/y")
    source = contract.MqttSource(
        broker=broker.url,
        client_id="takt-spb",
        sparkplug=True,
        fields=tuple(
            contract.MqttField(name=n, dtype="float32", address=contract.MqttAddress(topic=DATA_TOPIC, metric=m))
            for n, m in (("a", "Press/Force"), ("b", "Press/Temp"))
        ),
    )
    out = contract.MqttOutput(from_="y", topic="takt/press/y", connection="press", qos=1, retain=False, name="p")
    rp = start_runner(write_bundle(tmp_path, config_for("press", source, outputs=(out,))))
    import json

    values = lambda: [json.loads(p) for t, p, _ in probe.messages if t == "takt/press/y"]  # noqa: E731
    try:
        wait_for(lambda: rp.metric("takt_runner_source_connected", 'source="press"') == 1, what="subscribed")
        probe.publish(BIRTH_TOPIC, _payload(("Press/Force", 1, 9, {"float_value": 3.0}), ("Press/Temp", 2, 9, {
            "float_value": 4.5})))  # fmt: skip
        wait_for(values, what="a prediction from the birth")
        assert values()[-1]["value"] == pytest.approx(expected(3.0, 4.5))
        probe.publish(DATA_TOPIC, _payload((None, 1, 9, {"float_value": 7.0})))  # alias only
        wait_for(lambda: len(values()) >= 2, what="a prediction from a DDATA by alias")
        assert values()[-1]["value"] == pytest.approx(expected(7.0, 4.5))
        probe.publish(DATA_TOPIC, b"\x0a\xff")  # hostile: not a payload
        wait_for(lambda: rp.metric("takt_runner_rejected_values_total", 'reason="malformed-sparkplug",source="press"'),
                 what="malformed counted")  # fmt: skip
        probe.publish("spBv1.0/press-line/DDEATH/edge-7/press-01", _payload())
        rp.wait_ready(False)  # dead device: its values are bad, no inference, not ready
        assert rp.get("/v2/health/live")[0] == 200
        n = len(values())
        probe.publish(DATA_TOPIC, _payload((None, 1, 9, {"float_value": 8.0})))  # aliases void after death
        probe.publish(BIRTH_TOPIC, _payload(("Press/Force", 1, 9, {"float_value": 9.0}), ("Press/Temp", 2, 9, {
            "float_value": 1.0})))  # fmt: skip
        wait_for(lambda: len(values()) > n, what="a prediction after the rebirth")
        assert values()[-1]["value"] == pytest.approx(expected(9.0, 1.0))
        assert not math.isnan(values()[-1]["value"])
    finally:
        code, err = rp.stop()
        probe.close()
        broker.stop()
    assert code == 0, err
