"""MQTT subscriptions: topic + JSONPath per field; oversized or malformed payloads are counted and skipped."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from dataclasses import dataclass
from typing import Any

import aiomqtt

from compiler.bundle import runner as contract
from runner import decode, sparkplug
from runner.connect import MqttParams
from runner.errors import StartError
from runner.table import Table

log = logging.getLogger("takt.runner")
MAX_PAYLOAD = 1 << 20  # no sensor reading is a megabyte; a larger payload is hostile or a mistake


@dataclass(frozen=True)
class _Route:
    field: str
    steps: tuple[str | int, ...]
    dtype: str
    shape: tuple[int, ...] | None
    metric: str = ""  # Sparkplug B metric name


class MqttSourceRunner:
    def __init__(self, name: str, spec: contract.MqttSource, params: MqttParams, table: Table) -> None:
        self.name, self.spec, self.params, self.table = name, spec, params, table
        self.decoder = sparkplug.Decoder() if spec.sparkplug else None
        self.routes: dict[str, list[_Route]] = {}
        for i, f in enumerate(spec.fields):
            try:
                steps = decode.compile_path(f.address.json_path)
            except ValueError as exc:
                raise StartError(f"sources.{name}.fields[{i}].address.jsonPath", str(exc)) from None
            if spec.sparkplug and not f.address.metric:
                raise StartError(f"sources.{name}.fields[{i}].address.metric", "a Sparkplug B field names its metric")
            self.routes.setdefault(f.address.topic, []).append(
                _Route(f.name, steps, f.dtype, f.shape, f.address.metric or "")
            )
        self.subscriptions = list(self.routes)
        if spec.sparkplug:  # births carry the aliases and first values, deaths make the node's values bad
            extra = (t for sub in self.routes for t in sparkplug.companion_topics(sub))
            self.subscriptions += sorted(set(extra) - set(self.routes))
        self.last_error: str | None = None
        max_age = 3 * spec.sampling_interval if spec.sampling_interval else None
        table.add_source(name, [f.name for f in spec.fields], max_age)

    async def run(self) -> None:
        delay = 0.2
        while True:
            try:
                async with aiomqtt.Client(self.params.hostname, self.params.port, **self.params.kwargs) as client:
                    for topic in self.subscriptions:
                        await client.subscribe(topic, qos=self.spec.qos)
                    self.table.set_connected(self.name, True)
                    self.last_error = None
                    delay = 0.2
                    async for message in client.messages:
                        self.handle(message.topic, message.payload)
            except aiomqtt.MqttError as exc:
                why = str(exc)[:200]
                if why != self.last_error:
                    log.warning("source %s: %s (retrying)", self.name, why)
                    self.last_error = why
                self.table.set_connected(self.name, False)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def handle(self, topic: Any, payload: Any) -> None:
        """One message: every field routed from its topic gets a value or a counted rejection."""
        if self.decoder is not None:
            self._sparkplug(str(topic), payload)
            return
        matched = [r for sub, routes in self.routes.items() if _matches(topic, sub) for r in routes]
        if not matched:
            return
        if not isinstance(payload, bytes | bytearray):
            payload = str(payload).encode() if payload is not None else b""
        if len(payload) > MAX_PAYLOAD:
            for r in matched:
                self.table.reject(self.name, r.field, "too-large")
            self.table.commit()
            return
        doc: Any = None
        needs_json = any(r.steps or r.shape for r in matched)
        if needs_json:
            try:
                doc = json.loads(payload)
            except (ValueError, RecursionError):
                for r in matched:
                    self.table.reject(self.name, r.field, "malformed-json")
                self.table.commit()
                return
        for r in matched:
            try:
                if r.steps or r.shape:
                    value = decode.select(doc, r.steps)
                    value = decode.tensor(value, r.shape) if r.shape else decode.number(value, r.dtype)
                else:
                    value = decode.parse_plain(bytes(payload))
            except decode.Rejected as exc:
                self.table.reject(self.name, r.field, exc.reason)
                continue
            self.table.update(self.name, r.field, value)
        self.table.commit()

    def _sparkplug(self, topic: str, payload: Any) -> None:
        """A Sparkplug B message: births and data give values by metric name or alias, deaths make them bad."""
        assert self.decoder is not None
        parsed = sparkplug.Topic.parse(topic)
        if parsed is None:
            return
        as_data = topic.replace(f"/{parsed.kind}/", f"/{parsed.kind[0]}DATA/", 1)
        if parsed.kind in sparkplug.DEATH:
            self.decoder.forget(parsed)
            for sub, routes in self.routes.items():
                node = sparkplug.Topic.parse(sub)
                if node is None or node.node_key != parsed.node_key:
                    continue
                if parsed.kind == "DDEATH" and node.device != parsed.device:
                    continue
                for r in routes:
                    self.table.update(self.name, r.field, math.nan, good=False)
            self.table.commit()
            return
        if parsed.kind not in sparkplug.DATA + sparkplug.BIRTH:
            return
        matched = [r for sub, routes in self.routes.items() if _matches(as_data, sub) for r in routes]
        if not matched:
            return
        data = bytes(payload) if isinstance(payload, bytes | bytearray) else b""
        if len(data) > MAX_PAYLOAD:
            for r in matched:
                self.table.reject(self.name, r.field, "too-large")
            self.table.commit()
            return
        try:
            values = self.decoder.decode(parsed, data)
        except sparkplug.SparkplugError as exc:
            for r in matched:
                self.table.reject(self.name, r.field, exc.reason)
            self.table.commit()
            return
        for r in matched:
            if r.metric not in values:
                continue  # a DATA message carries only the metrics that changed
            value = values[r.metric]
            try:
                if isinstance(value, sparkplug.SparkplugError):
                    raise decode.Rejected(value.reason)
                self.table.update(self.name, r.field, decode.number(value, r.dtype))
            except decode.Rejected as exc:
                self.table.reject(self.name, r.field, exc.reason)
        self.table.commit()


def _matches(topic: Any, sub: str) -> bool:
    return (topic if isinstance(topic, aiomqtt.Topic) else aiomqtt.Topic(str(topic))).matches(sub)
