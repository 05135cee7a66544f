"""Status reports from an MQTT broker: the retained `takt/status/<device>` messages, verified like the refs.

A retained message holds only a device's newest report (no history). The reader subscribes,
takes the retained messages the broker sends at once, and stops after a quiet `settle` period.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from compiler.bundle.boundedjson import clip
from compiler.bundle.deviceid import is_device_id
from compiler.bundle.report import MAX_ENVELOPE_BYTES, MQTT_TOPIC_PREFIX, Rejected
from compiler.fleet.gitread import FleetReadError
from compiler.fleet.reports import FleetReports, Ignored, verify_chain
from compiler.fleet.seen import Seen

MAX_MESSAGES = 100_000


async def _collect(url: str, timeout: float, settle: float) -> dict[str, bytes]:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise FleetReadError(f"broker must be mqtt://host[:port] or mqtts://…, got {url[:80]!r}")
    kwargs: dict[str, Any] = {}
    if parts.username:
        kwargs.update(username=unquote(parts.username), password=unquote(parts.password or ""))
    if parts.scheme == "mqtts":
        import ssl

        kwargs["tls_context"] = ssl.create_default_context()
    port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    got: dict[str, bytes] = {}
    async with aiomqtt.Client(parts.hostname, port, timeout=timeout, **kwargs) as client:
        await client.subscribe(f"{MQTT_TOPIC_PREFIX}+", qos=1)
        messages = aiter(client.messages)
        while len(got) < MAX_MESSAGES:
            try:
                msg = await asyncio.wait_for(anext(messages), settle)
            except TimeoutError:
                break
            payload = msg.payload if isinstance(msg.payload, bytes) else str(msg.payload).encode()
            got[str(msg.topic)] = payload[: MAX_ENVELOPE_BYTES + 1]
    return got


def read_mqtt_reports(
    url: str,
    keys: Mapping[str, Ed25519PublicKey | None],
    *,
    seen: Seen | None = None,
    timeout: float = 30.0,
    settle: float = 1.0,
) -> FleetReports:
    """The retained reports on `url`, verified against `keys`; FleetReadError when the broker cannot be read."""
    try:
        messages = asyncio.run(asyncio.wait_for(_collect(url, timeout, settle), timeout + settle * 10))
    except (aiomqtt.MqttError, OSError, TimeoutError) as exc:
        raise FleetReadError(f"cannot read reports from {url}: {exc}") from None
    seen = dict(seen or {})
    latest, ignored, sources, history = {}, [], {}, {}
    for topic, payload in sorted(messages.items()):
        name = topic.removeprefix(MQTT_TOPIC_PREFIX)
        source = f"mqtt:{topic}"
        if not is_device_id(name):
            ignored.append(Ignored(source, clip(name, 64), Rejected.MALFORMED, "the topic does not name a device id"))
            continue
        if name not in keys:
            ignored.append(Ignored(source, name, Rejected.UNKNOWN_DEVICE, f"no Device spec declares {name}"))
            continue
        if len(payload) > MAX_ENVELOPE_BYTES:
            ignored.append(Ignored(source, name, Rejected.MALFORMED, f"message over {MAX_ENVELOPE_BYTES:,} bytes"))
            continue
        report, believed, bad, kept = verify_chain(name, source, [("", payload, "")], keys, seen.get(name))
        ignored += bad
        if report is not None:
            latest[name], sources[name], history[name] = report, source, believed
        if kept is not None:
            seen[name] = kept
    return FleetReports(latest, history, tuple(ignored), seen, sources)
