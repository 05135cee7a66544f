"""Modbus TCP write: each prediction into a holding register (or a coil), encoded by the same codec
the Modbus source decodes with, so a PLC reading the register with that address spec sees the value.

Modbus carries no quality flag: an uncertain prediction is written like a good one (the HTTP and
MQTT payloads and OPC UA status carry the quality). A value the register type cannot hold is
counted as an error and not written; a lost device is reconnected with backoff.
"""

from __future__ import annotations

import asyncio
from typing import Any

from compiler.bundle import runner as contract
from runner import decode
from runner.outputs.base import Output


def scalar(value: Any) -> float:
    """The one number of a single-element prediction (`[[0.7]]` → 0.7)."""
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool | int | float):
        return float(value)
    raise decode.Rejected("wrong-shape")


class ModbusOutput(Output):
    def __init__(self, name: str, source: str, metrics: Any, host: str, port: int, unit: int,
                 address: contract.ModbusAddress, shift: int) -> None:  # fmt: skip
        super().__init__(name, source, metrics)
        self.host, self.port, self.unit, self.address = host, port, unit, address
        self.register = address.address - shift  # the protocol's own zero-based number

    async def run(self) -> None:
        from pymodbus.client import AsyncModbusTcpClient

        client = AsyncModbusTcpClient(self.host, port=self.port, timeout=1.0, retries=0)
        delay = 0.2
        try:
            while True:
                item = await self.queue.get()
                try:
                    value = scalar(item.value)
                    registers = decode.field_registers(value, self.address)
                except decode.Rejected:
                    self.metrics.output_errors.labels(self.name).inc()
                    continue
                self.busy = True
                try:
                    if await self._write(client, value, registers):
                        self.metrics.output_sent.labels(self.name).inc()
                        delay = 0.2
                        continue
                    self.queue.put(item)  # retried after the backoff, unless newer values pushed it out
                finally:
                    self.busy = False
                self.metrics.output_errors.labels(self.name).inc()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        finally:
            client.close()

    async def _write(self, client: Any, value: float, registers: list[int]) -> bool:
        try:
            if not client.connected:
                await client.connect()
            if not client.connected:
                return False
            if self.address.register_type == "coil":
                resp = await client.write_coil(self.register, bool(value), device_id=self.unit)
            else:
                resp = await client.write_registers(self.register, registers, device_id=self.unit)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - timeouts, lost connection, malformed frames: a failed write
            return False
        return not resp.isError()
