"""Cyclic garbage collection paused while a build or validation allocates its spec graph.

Loading a fleet's specs allocates hundreds of thousands of long-lived objects (documents, spans,
pydantic models) and almost no cyclic garbage; each collection the allocations trigger walks the
growing heap again, which cost a 1,000-deployment validation about a third of its CPU. Reference
counting still frees everything that is not in a cycle; cycles made meanwhile are collected when
the collector is enabled again, on leaving the outermost pause.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collections_paused() -> Iterator[None]:
    """Pause the cyclic collector for the block; nested pauses and callers that disabled it stay as they were."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextlib.contextmanager
def frozen_for_fork() -> Iterator[None]:
    """Move every object to the collector's permanent generation while worker processes are forked
    from this one: their collectors then never walk (and copy on write) the inherited heap."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
