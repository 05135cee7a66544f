"""The bounded queue in front of every output: a slow consumer costs dropped (counted) old values,
never memory or the inference loop's time."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DEFAULT_QUEUE = 256


@dataclass(frozen=True)
class Delivery:
    value: Any  # JSON-able: a number, a bool, or nested lists
    uncertain: bool
    timestamp: float  # wall-clock seconds of the frame

    def payload(self, model: str, version: str) -> dict[str, Any]:
        return {
            "value": self.value,
            "quality": "uncertain" if self.uncertain else "good",
            "timestamp": self.timestamp,
            "model": model,
            "version": version,
        }


class DropOldestQueue:
    def __init__(self, maxsize: int, on_drop: Callable[[], None]) -> None:
        self._items: deque[Delivery] = deque()
        self._maxsize, self._on_drop = maxsize, on_drop
        self._ready = asyncio.Event()

    def put(self, item: Delivery) -> None:
        if len(self._items) >= self._maxsize:
            self._items.popleft()
            self._on_drop()
        self._items.append(item)
        self._ready.set()

    async def get(self) -> Delivery:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def __len__(self) -> int:
        return len(self._items)


class Output:
    """One configured output: `submit` never blocks; `run` delivers until cancelled; `drain` waits for the queue."""

    def __init__(self, name: str, source: str, metrics: Any, maxsize: int = DEFAULT_QUEUE) -> None:
        self.name, self.source = name, source  # source: the model output it carries
        self.metrics = metrics
        self.queue = DropOldestQueue(maxsize, metrics.output_dropped.labels(name).inc)
        self.busy = False

    def submit(self, item: Delivery) -> None:
        self.queue.put(item)

    async def run(self) -> None:
        raise NotImplementedError

    async def drain(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while (len(self.queue) or self.busy) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
