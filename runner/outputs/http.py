"""HTTP POST/PUT of each prediction as JSON, retried with exponential backoff (5xx, 429, network)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from runner.outputs.base import Output

ATTEMPTS = 5


class HttpOutput(Output):
    def __init__(self, name: str, source: str, metrics: Any, url: str, method: str, token: str | None,
                 model: tuple[str, str], backoff: float = 0.1) -> None:  # fmt: skip
        super().__init__(name, source, metrics)
        self.url, self.method, self.model, self.backoff = url, method, model, backoff
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                item = await self.queue.get()
                self.busy = True
                try:
                    await self._deliver(session, json.dumps(item.payload(*self.model), allow_nan=False))
                except ValueError:
                    self.metrics.output_errors.labels(self.name).inc()
                finally:
                    self.busy = False

    async def _deliver(self, session: aiohttp.ClientSession, body: str) -> None:
        delay = self.backoff
        for attempt in range(ATTEMPTS):
            try:
                async with session.request(self.method, self.url, data=body, headers=self.headers) as resp:
                    if resp.status < 300:
                        self.metrics.output_sent.labels(self.name).inc()
                        return
                    retry = resp.status >= 500 or resp.status == 429
            except (TimeoutError, aiohttp.ClientError, OSError):
                retry = True
            self.metrics.output_errors.labels(self.name).inc()
            if not retry or attempt == ATTEMPTS - 1:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
