"""A `map` over forked worker processes, for the build side's CPU-bound stages (loading spec files,
rendering bundles): they are pure Python, so threads would take turns under the GIL."""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from compiler.gcpause import frozen_for_fork

Map = Callable[[Callable[[Any], Any], list[Any]], Iterator[Any]]
"""Results in the order of the items, as they come: consume them inside the `with` block."""


def default_jobs() -> int:
    """One worker per core this process may run on (a container's cpuset, not the host's count): what
    `--jobs` means when it is not given."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 2


@contextlib.contextmanager
def worker_map(jobs: int, enough: bool) -> Iterator[Map]:
    """A `map` over `jobs` processes (forked: they inherit what this process loaded), in order; the
    plain built-in when one process is asked for or the work (`enough` False) is smaller than starting
    the pool (forking a process that holds a validated repo costs ~0.1 s)."""
    if jobs <= 1 or not enough:
        yield lambda fn, items: map(fn, items)
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    # forked from a heap of the whole validated repo: frozen, so the workers' collectors (enabled again
    # in each) never walk it, and the parent's pause of the collector is not inherited
    with frozen_for_fork(), ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=gc.enable) as pool:

        def pmap(fn: Callable[[Any], Any], items: list[Any]) -> Iterator[Any]:
            if len(items) <= 1:
                return map(fn, items)
            chunk = max(1, min(64, len(items) // (jobs * 4)))  # shared inputs are pickled once per chunk
            try:
                return _surviving(pool.map(fn, items, chunksize=chunk), fn, items)
            except BrokenProcessPool:  # broken by an earlier map
                return map(fn, items)

        yield pmap


def _surviving(results: Iterator[Any], fn: Callable[[Any], Any], items: list[Any]) -> Iterator[Any]:
    """The pool's results; when a worker dies (out of memory, killed), which breaks the pool, the items
    it had not answered are run in this process: slower, never a different or a missing result."""
    done = 0
    try:
        for result in results:
            yield result
            done += 1
    except BrokenProcessPool:
        yield from map(fn, items[done:])
