"""agent/report_mqtt.py: the broker URL's parts (credentials unquoted, TLS for mqtts, default ports), and a
real mosquitto on 127.0.0.1 for the publish itself (retained, QoS 1, on this device's topic, under the client
id asked for), a refused connection and a broker that never answers. One broker serves the whole file."""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

import agent.report_mqtt as report_mqtt
from agent.report_mqtt import ReportMqttError, _params, publish_report
from compiler.bundle.report import MQTT_TOPIC_PREFIX
from tests.serverkit import Mosquitto, free_port


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    m = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    yield m
    m.stop()


def retained(port: int, topic: str) -> tuple[bytes, int, bool]:
    """The retained message of a topic as a new subscriber (QoS 2, so it gets the QoS it was stored with) sees it."""
    import paho.mqtt.client as mqtt

    got: list[Any] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, m: got.append(m)
    client.connect("127.0.0.1", port)
    client.subscribe(topic, qos=2)
    client.loop_start()
    try:
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        client.loop_stop()
        client.disconnect()
    assert got, f"nothing retained on {topic}"
    return got[0].payload, got[0].qos, got[0].retain


def test_a_plain_url_names_host_and_port_and_nothing_else() -> None:
    assert _params("mqtt://broker.plant:1884") == ("broker.plant", 1884, {})
    assert _params("mqtt://broker.plant") == ("broker.plant", 1883, {})


def test_mqtts_defaults_to_8883_with_a_verifying_tls_context() -> None:
    host, port, kw = _params("mqtts://broker.plant")
    assert (host, port, set(kw)) == ("broker.plant", 8883, {"tls_context"})
    assert isinstance(kw["tls_context"], ssl.SSLContext) and kw["tls_context"].verify_mode == ssl.CERT_REQUIRED
    assert _params("mqtts://broker.plant:9000")[1] == 9000


def test_credentials_are_unquoted_and_a_missing_password_is_empty() -> None:
    assert _params("mqtt://us%40er:p%3Ass@h") == ("h", 1883, {"username": "us@er", "password": "p:ss"})
    assert _params("mqtt://user@h:1") == ("h", 1, {"username": "user", "password": ""})


@pytest.mark.parametrize("url", ["http://h:1883", "mqtt://", "mqtt://:1883", "h:1883", ""])
def test_anything_but_an_mqtt_url_with_a_host_is_refused(url: str) -> None:
    with pytest.raises(ReportMqttError, match="report broker must be mqtt://host"):
        _params(url)


def test_a_refused_url_is_quoted_cut_to_80_characters() -> None:
    url = "http://" + "h" * 200
    with pytest.raises(ReportMqttError) as err:
        _params(url)
    assert str(err.value).endswith(f", got {url[:80]!r}")


@pytest.mark.parametrize("password", ["s3cret", "s3cret" * 20])
def test_a_refused_url_never_shows_its_password(password: str) -> None:
    with pytest.raises(ReportMqttError) as err:  # the message goes into status.json
        _params(f"http://alice:{password}@broker.plant:1883")
    assert "s3cret" not in str(err.value) and str(err.value).endswith(", got 'http://***@broker.plant:1883'")
    with pytest.raises(ReportMqttError) as err:
        _params(f"mqtt//alice:{password}@broker.plant")
    assert str(err.value).endswith(", got '***@broker.plant'")
    with pytest.raises(ReportMqttError) as err:
        _params(f"http://alice:{password}\n@x@broker:1883")  # a newline or a second `@` in the password
    assert str(err.value).endswith(", got 'http://***@broker:1883'")


def test_the_report_is_retained_on_its_topic_at_qos_1(broker: Mosquitto, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[dict[str, Any]] = []
    real = aiomqtt.Client

    def client(*args: Any, **kw: Any) -> aiomqtt.Client:
        made.append({"args": args, **kw})
        return real(*args, **kw)

    monkeypatch.setattr(report_mqtt.aiomqtt, "Client", client)
    publish_report(broker.url, "dev-1", b'{"signed": true}', 5.0)
    assert retained(broker.port, f"{MQTT_TOPIC_PREFIX}dev-1") == (b'{"signed": true}', 1, True)
    assert made == [{"args": ("127.0.0.1", broker.port), "identifier": "takt-agent-dev-1", "timeout": 5.0}]
    publish_report(broker.url, "dev-2", b"two", 4.0, client_id="probe-7")
    assert made[-1]["identifier"] == "probe-7" and made[-1]["timeout"] == 4.0
    assert retained(broker.port, f"{MQTT_TOPIC_PREFIX}dev-2")[0] == b"two"


def test_a_refused_connection_is_a_report_error_naming_the_broker() -> None:
    port = free_port()
    with pytest.raises(ReportMqttError, match=rf"^cannot publish to 127\.0\.0\.1:{port}: "):
        publish_report(f"mqtt://127.0.0.1:{port}", "dev-1", b"x", 5.0)


def test_a_broker_that_never_answers_is_a_report_error_in_time(tmp_path: Path) -> None:
    with contextlib.closing(socket.socket()) as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(1)  # the connection is made, no CONNACK ever comes
        port = mute.getsockname()[1]
        start = time.monotonic()
        with pytest.raises(ReportMqttError, match=rf"^cannot publish to 127\.0\.0\.1:{port}: "):
            publish_report(f"mqtt://127.0.0.1:{port}", "dev-1", b"x", 0.5)
        assert time.monotonic() - start < 5


def test_an_os_error_from_the_client_is_a_report_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*a: Any, **kw: Any) -> Any:
        raise OSError("no route to host")

    monkeypatch.setattr(report_mqtt.aiomqtt, "Client", broken)
    with pytest.raises(ReportMqttError, match=r"^cannot publish to h:1883: no route to host$"):
        publish_report("mqtt://h", "dev-1", b"x", 1.0)


def test_a_timeout_from_the_client_is_a_report_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(*a: Any, **kw: Any) -> Any:
        raise TimeoutError("slow")

    monkeypatch.setattr(report_mqtt.aiomqtt, "Client", slow)
    with pytest.raises(ReportMqttError, match=r"^cannot publish to h:1883: slow$"):
        publish_report("mqtt://h", "dev-1", b"x", 1.0)


def test_an_mqtt_error_from_the_client_is_a_report_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*a: Any, **kw: Any) -> Any:
        raise aiomqtt.MqttError("not authorised")

    monkeypatch.setattr(report_mqtt.aiomqtt, "Client", refused)
    with pytest.raises(ReportMqttError, match=r"^cannot publish to h:1883: not authorised$"):
        publish_report("mqtt://h", "dev-1", b"x", 1.0)
