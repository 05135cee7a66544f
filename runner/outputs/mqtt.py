"""MQTT publish (QoS, retain), reconnecting with backoff; one JSON object per prediction."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiomqtt

from runner.connect import MqttParams
from runner.outputs.base import Output


class MqttOutput(Output):
    def __init__(self, name: str, source: str, metrics: Any, params: MqttParams, topic: str, qos: int, retain: bool,
                 model: tuple[str, str]) -> None:  # fmt: skip
        super().__init__(name, source, metrics)
        self.params, self.topic, self.qos, self.retain, self.model = params, topic, qos, retain, model

    async def run(self) -> None:
        delay = 0.2
        while True:
            try:
                async with aiomqtt.Client(self.params.hostname, self.params.port, **self.params.kwargs) as client:
                    delay = 0.2
                    while True:
                        item = await self.queue.get()
                        self.busy = True
                        try:
                            body = json.dumps(item.payload(*self.model), allow_nan=False)
                        except ValueError:
                            self.metrics.output_errors.labels(self.name).inc()
                            self.busy = False
                            continue
                        try:
                            await client.publish(self.topic, body, qos=self.qos, retain=self.retain)
                        except aiomqtt.MqttError:
                            self.queue.put(item)  # back at the tail; reconnect below
                            raise
                        finally:
                            self.busy = False
                        self.metrics.output_sent.labels(self.name).inc()
            except aiomqtt.MqttError:
                self.metrics.output_errors.labels(self.name).inc()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
