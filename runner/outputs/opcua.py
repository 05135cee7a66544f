"""OPC UA write: the value in the node's own data type, status Good or Uncertain; reconnects on loss."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from runner.connect import resolve_node_id
from runner.outputs.base import Output


def _scalar(value: Any) -> Any:
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


class OpcUaOutput(Output):
    def __init__(self, name: str, source: str, metrics: Any, make_client: Callable[[], Awaitable[Any]],
                 node_id: str) -> None:  # fmt: skip
        super().__init__(name, source, metrics)
        self.make_client, self.node_id = make_client, node_id

    async def run(self) -> None:
        from asyncua import ua
        from asyncua.ua.status_codes import StatusCodes

        delay = 0.2
        while True:
            client = await self.make_client()
            try:
                async with client:
                    node = client.get_node(await resolve_node_id(client, self.node_id))
                    vtype = await node.read_data_type_as_variant_type()
                    delay = 0.2
                    while True:
                        item = await self.queue.get()
                        self.busy = True
                        status = StatusCodes.Uncertain if item.uncertain else StatusCodes.Good
                        value = _scalar(item.value)
                        if vtype == ua.VariantType.Boolean:
                            value = bool(value)
                        elif vtype in (ua.VariantType.Float, ua.VariantType.Double):
                            value = float(value)
                        elif isinstance(value, bool | float | int):
                            value = int(value)
                        try:
                            code = ua.StatusCode(ua.UInt32(status))
                            await node.write_value(ua.DataValue(ua.Variant(value, vtype), code))
                        except Exception:
                            self.queue.put(item)
                            raise
                        finally:
                            self.busy = False
                        self.metrics.output_sent.labels(self.name).inc()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - lost server, refused write, unknown node: count, back off, retry
                self.metrics.output_errors.labels(self.name).inc()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
