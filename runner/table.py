"""The latest value of every bound field, with its time and quality, and each source's connection.

Sources write here; the engine reads a snapshot per frame. A field is fresh when its source is
connected, its last value was good, and (for polled sources) a good value came within `max_age`.
One asyncio loop owns it: no locks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any


class FieldState:
    __slots__ = ("good", "time", "value")

    def __init__(self) -> None:
        self.value: Any = None
        self.time = 0.0
        self.good = False


class SourceState:
    __slots__ = ("connected", "fields", "last_good", "max_age", "name", "refused")

    def __init__(self, name: str, fields: Iterable[str], max_age: float | None) -> None:
        self.name, self.max_age = name, max_age
        self.fields = {f: FieldState() for f in fields}
        self.connected = False
        self.last_good = 0.0
        self.refused: str | None = None  # what the server refused (node id, topic, register, credential)


class Table:
    """Sources call `update`/`bad`/`connected`; `commit` wakes the engine once per batch of updates."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.sources: dict[str, SourceState] = {}
        self.clock = clock
        self.changed = asyncio.Event()
        self.version = 0  # bumped by every commit
        self.processed = 0  # the version the engine last consumed
        self.on_reject: Callable[[str, str], None] = lambda source, reason: None
        self.on_connected: Callable[[str, bool], None] = lambda source, up: None

    def add_source(self, name: str, fields: Iterable[str], max_age: float | None) -> SourceState:
        state = SourceState(name, fields, max_age)
        self.sources[name] = state
        return state

    def update(self, source: str, field: str, value: Any, good: bool = True) -> None:
        st = self.sources[source]
        f = st.fields.get(field)
        if f is None:
            return
        now = self.clock()
        f.value, f.time, f.good = value, now, good
        if good:
            st.last_good = now

    def reject(self, source: str, field: str | None, reason: str) -> None:
        """A value from the wire that cannot be used: counted, and the field is bad until a good one comes."""
        self.on_reject(source, reason)
        if field is not None:
            f = self.sources[source].fields.get(field)
            if f is not None:
                f.good = False

    def set_connected(self, source: str, up: bool) -> None:
        st = self.sources[source]
        if st.connected != up:
            st.connected = up
            self.on_connected(source, up)
        self.commit()

    def refuse(self, source: str, why: str | None) -> None:
        """The server refused what the release asks for (not: is unreachable); None once it accepts it."""
        self.sources[source].refused = why

    def commit(self) -> None:
        self.version += 1
        self.changed.set()

    def fresh(self, source: str, field: str, now: float) -> bool:
        st = self.sources[source]
        f = st.fields[field]
        if not st.connected or not f.good or f.value is None:
            return False
        return st.max_age is None or now - f.time <= st.max_age

    def source_fresh(self, source: str, now: float) -> bool:
        st = self.sources[source]
        return all(self.fresh(source, name, now) for name in st.fields)

    async def wait_processed(self, version: int, timeout: float = 5.0) -> None:
        """For replaying sources: wait until the engine has consumed `version` (or timeout)."""
        deadline = self.clock() + timeout
        while self.processed < version and self.clock() < deadline:
            await asyncio.sleep(0)
            if self.processed < version:
                await asyncio.sleep(0.0005)
