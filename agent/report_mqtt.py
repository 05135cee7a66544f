"""The MQTT transport of status reports: a retained message on `takt/status/<device>` (QoS 1).

Plants whose OT network has a broker get the same signed envelope bytes as the Git ref; the
broker keeps the newest one for whoever subscribes later.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt

from compiler.bundle.report import MQTT_TOPIC_PREFIX


class ReportMqttError(Exception):
    pass


def _shown(url: str) -> str:
    """The URL as a message quotes it (into status.json): all before its last `@`, user and password, hidden
    whatever the URL's shape (a typo'd scheme too), and only then cut, so no part of a password survives."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)?.*@", r"\1***@", url, flags=re.DOTALL)[:80]


def _params(url: str) -> tuple[str, int, dict[str, Any]]:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ReportMqttError(f"report broker must be mqtt://host[:port] or mqtts://…, got {_shown(url)!r}")
    kwargs: dict[str, Any] = {}
    if parts.username:
        kwargs["username"] = unquote(parts.username)
        kwargs["password"] = unquote(parts.password or "")
    if parts.scheme == "mqtts":
        kwargs["tls_context"] = ssl.create_default_context()
    return parts.hostname, parts.port or (8883 if parts.scheme == "mqtts" else 1883), kwargs


def publish_report(url: str, device: str, envelope: bytes, timeout: float, client_id: str | None = None) -> None:
    """Publish the envelope retained; ReportMqttError when the broker does not acknowledge it in time."""
    host, port, kwargs = _params(url)

    async def go() -> None:
        async with aiomqtt.Client(host, port, identifier=client_id or f"takt-agent-{device}", timeout=timeout,
                                  **kwargs) as client:  # fmt: skip
            await client.publish(f"{MQTT_TOPIC_PREFIX}{device}", envelope, qos=1, retain=True)

    try:
        asyncio.run(asyncio.wait_for(go(), timeout))
    except (aiomqtt.MqttError, OSError, TimeoutError) as exc:
        raise ReportMqttError(f"cannot publish to {host}:{port}: {exc}") from None
