"""The worker pool of the build side: results in order, and never lost when a worker dies."""

from __future__ import annotations

import os
from pathlib import Path

from compiler.workers import worker_map

_TEST_PROCESS = os.getpid()


def _square(n: int) -> int:
    return n * n


def _square_or_die(task: tuple[int, str]) -> int:
    """Dies (as the out-of-memory killer would) on item 5 in a worker, leaving a mark; squares elsewhere."""
    n, marks = task
    if n == 5 and os.getpid() != _TEST_PROCESS:
        Path(marks, f"died-{os.getpid()}").touch()
        os._exit(137)
    return n * n


def test_results_come_in_the_order_of_the_items(worker_pools: list[int]):
    with worker_map(2, True) as pmap:
        assert list(pmap(_square, list(range(40)))) == [n * n for n in range(40)]
    assert worker_pools == [2]


def test_one_process_or_too_little_work_starts_no_pool(worker_pools: list[int]):
    for jobs, enough in ((1, True), (2, False)):
        with worker_map(jobs, enough) as pmap:
            assert list(pmap(_square, [1, 2, 3])) == [1, 4, 9]
    assert worker_pools == []


def test_items_a_dead_worker_did_not_answer_run_here_and_later_maps_too(tmp_path: Path, worker_pools: list[int]):
    items = [(n, str(tmp_path)) for n in range(24)]
    with worker_map(2, True) as pmap:
        assert list(pmap(_square_or_die, items)) == [n * n for n in range(24)]
        assert list(tmp_path.glob("died-*"))  # a worker really died
        assert list(pmap(_square, list(range(10)))) == [n * n for n in range(10)]  # the broken pool is not used
    assert worker_pools == [2]


def test_the_default_is_the_cores_this_process_may_run_on():
    import subprocess
    import sys

    code = "from compiler.workers import default_jobs; print(default_jobs())"
    pinned = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code], capture_output=True, text=True)
    assert pinned.returncode == 0, pinned.stderr
    assert pinned.stdout.strip() == "1"  # a container's cpuset of one core: no pool, whatever the host has
