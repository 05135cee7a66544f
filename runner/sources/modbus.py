"""Modbus TCP polling: each field read at the sampling interval; register types, the four byte/word
orders, scale, offset and unit id. Exception responses and timeouts are counted; a field with no
good read for three intervals is stale."""

from __future__ import annotations

import asyncio
from typing import Any

from compiler.bundle import runner as contract
from runner import decode
from runner.connect import split_host_port
from runner.errors import StartError
from runner.table import Table

STALE_INTERVALS = 3


class ModbusSourceRunner:
    def __init__(self, name: str, spec: contract.ModbusSource, table: Table) -> None:
        if spec.transport != "tcp":
            raise StartError(f"sources.{name}.transport", "Modbus RTU (serial) is not supported by this runner yet")
        self.name, self.spec, self.table = name, spec, table
        self.host, self.port = split_host_port(spec.endpoint, 502)
        self.shift = 1 if spec.addressing == "one-based" else 0
        table.add_source(name, [f.name for f in spec.fields], STALE_INTERVALS * spec.sampling_interval)

    async def run(self) -> None:
        from pymodbus.client import AsyncModbusTcpClient

        client = AsyncModbusTcpClient(
            self.host, port=self.port, timeout=max(0.2, self.spec.sampling_interval * 2), retries=0,
            reconnect_delay=0.2, reconnect_delay_max=5.0,
        )  # fmt: skip
        loop = asyncio.get_running_loop()
        try:
            while True:
                started = loop.time()
                if not client.connected:
                    await client.connect()
                up = bool(client.connected)
                if up:
                    for f in self.spec.fields:
                        await self._read(client, f)
                self.table.set_connected(self.name, up)  # commits: the engine looks at the new values
                await asyncio.sleep(max(0.0, self.spec.sampling_interval - (loop.time() - started)))
        finally:
            client.close()

    async def _read(self, client: Any, f: contract.ModbusField) -> None:
        a = f.address
        address = a.address - self.shift
        unit = self.spec.unit_id
        try:
            if a.register_type in ("coil", "discrete-input"):
                call = client.read_coils if a.register_type == "coil" else client.read_discrete_inputs
                resp = await call(address, count=1, device_id=unit)
            else:
                holding = a.register_type == "holding-register"
                call = client.read_holding_registers if holding else client.read_input_registers
                resp = await call(address, count=decode.register_count(a.data_type), device_id=unit)
        except Exception:  # noqa: BLE001 - timeouts, lost connection, malformed frames: a failed read
            self.table.reject(self.name, f.name, "read-failed")
            return
        if resp.isError():
            self.table.reject(self.name, f.name, "modbus-exception")
            return
        try:
            if a.register_type in ("coil", "discrete-input"):
                raw = float(bool(resp.bits[0]))
            else:
                raw = decode.field_value(list(resp.registers), a)
        except (decode.Rejected, IndexError, AttributeError):
            self.table.reject(self.name, f.name, "bad-registers")
            return
        self.table.update(self.name, f.name, raw)
