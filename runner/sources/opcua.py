"""OPC UA subscriptions at the source's sampling interval; `nsu=` ids resolved on every (re)connect.

A field is fresh while the session lives and its last notification had a Good status; a lost
session marks the whole source stale until the reconnect has subscribed again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from compiler.bundle import runner as contract
from runner import decode
from runner.connect import resolve_node_id
from runner.table import Table

log = logging.getLogger("takt.runner")


class _Handler:
    def __init__(self, owner: OpcUaSourceRunner, fields: dict[Any, contract.OpcUaField]) -> None:
        self.owner, self.fields = owner, fields

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        f = self.fields.get(node.nodeid)
        if f is None:
            return
        table, name = self.owner.table, self.owner.name
        try:
            status = data.monitored_item.Value.StatusCode
            good = status is None or status.is_good()
        except AttributeError:
            good = True
        try:
            value = decode.tensor(val, f.shape) if f.shape else decode.number(val, f.dtype)
        except decode.Rejected as exc:
            table.reject(name, f.name, exc.reason)
            table.commit()
            return
        if not good:
            table.reject(name, f.name, "bad-status")
        table.update(name, f.name, value, good=good)
        table.commit()

    def status_change_notification(self, status: Any) -> None:
        self.owner.lost.set()


# Status codes by which a server refuses the session the release asks for (its user or certificate),
# as opposed to not answering at all: the gate rolls those back, and waits out these.
_REFUSALS = (
    "BadUserAccessDenied",
    "BadIdentityTokenInvalid",
    "BadIdentityTokenRejected",
    "BadCertificate",
    "BadSecurityChecksFailed",
    "BadSecurityPolicyRejected",
    "BadNodeIdUnknown",
    "BadNodeIdInvalid",
)


def refusal(exc: BaseException) -> str | None:
    """What the server refused, or None when the failure says only that it is unreachable or lost."""
    name = type(exc).__name__
    if any(name.startswith(r) for r in _REFUSALS):
        return f"{name}: {str(exc).split('(')[0][:160]}"
    if isinstance(exc, ValueError) and "namespace" in str(exc).lower():
        return f"namespace: {str(exc)[:160]}"  # an `nsu=` URI this server does not have
    return None


class OpcUaSourceRunner:
    def __init__(self, name: str, spec: contract.OpcUaSource, make_client: Callable[[], Awaitable[Any]],
                 table: Table) -> None:  # fmt: skip
        self.name, self.spec, self.make_client, self.table = name, spec, make_client, table
        self.lost = asyncio.Event()
        self.last_error: str | None = None
        table.add_source(name, [f.name for f in spec.fields], None)

    async def run(self) -> None:
        delay = 0.2
        interval_ms = self.spec.sampling_interval * 1000
        while True:
            self.lost.clear()
            try:
                client = await self.make_client()
                async with client:
                    nodes = {await resolve_node_id(client, f.address.node_id): f for f in self.spec.fields}
                    handler = _Handler(self, nodes)
                    sub = await client.create_subscription(interval_ms, handler)
                    results = await sub.subscribe_data_change(
                        [client.get_node(n) for n in nodes], sampling_interval=interval_ms
                    )
                    refused = []
                    for r, f in zip(results if isinstance(results, list) else [results], nodes.values(), strict=False):
                        if not isinstance(r, int):
                            self.table.reject(self.name, f.name, "unknown-node")
                            refused.append(f"node id {f.address.node_id}: {getattr(r, 'name', r)}")
                    self.table.refuse(self.name, "; ".join(refused) or None)
                    self.table.set_connected(self.name, True)
                    self.last_error = None
                    delay = 0.2
                    await self._watch(client)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - refused, lost, unknown namespace: the source is down; retry
                why = f"{type(exc).__name__}: {str(exc)[:200]}"
                self.table.refuse(self.name, refusal(exc))
                if why != self.last_error:
                    log.warning("source %s: %s (retrying)", self.name, why)
                    self.last_error = why
            self.table.set_connected(self.name, False)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _watch(self, client: Any) -> None:
        """Return when the session is lost: a failed check, or the subscription reporting a status change."""
        period = max(0.2, min(1.0, self.spec.sampling_interval * 3))
        while not self.lost.is_set():
            try:
                await asyncio.wait_for(self.lost.wait(), timeout=period)
            except TimeoutError:
                await client.check_connection()
        return
