"""Fault injection: kill -9 the agent at random instants of an apply, 80 times.

After every kill the device must run a whole, verified release — the old one or the new one,
never a mix — and the next start must converge on the new one with an intact journal.

The instants are stratified: the 80 kills fall one in each of 80 equal slices of the apply (4 chunks
of 20, interleaved, each spread over the whole apply), so they cover it evenly where 120 uniform
draws left gaps and clumps. The switch itself (activate()) is crashed deterministically before each
of its filesystem calls in tests/test_agent_steps.py; these kills cover the rest of the apply
(fetch, stage, journal, status, memory) under a real SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import time
from pathlib import Path

import pytest

from agent.reconcile import Reconciler
from agent.releases import current_release, release_id_of, verify_release
from agent.status import verify_journal
from tests.agentkit import make_world
from tests.procs import running_in_group

pytestmark = pytest.mark.slow  # fault injection: minutes of kill -9

CHUNKS = 4  # test cases (xdist spreads them over workers)
TRIALS = 20  # per chunk


def _wait_group_gone(pgid: int, timeout: float = 10.0) -> None:
    """Like systemd before a restart: wait until no process of the killed group runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not running_in_group(pgid):
            return
        time.sleep(0.01)
    raise AssertionError(f"processes of group {pgid} survive SIGKILL: {running_in_group(pgid)}")


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("faults")
    world = make_world(root)
    template = root / "template"
    assert Reconciler(world.config(template, fast=True)).run_once().result == "applied"
    old = release_id_of(current_release(template))
    world.republish(("specs/deployment.yaml", "cpu: 500m", "cpu: 750m"))
    probe = root / "probe"
    shutil.copytree(template, probe, symlinks=True)
    assert Reconciler(world.config(probe, fast=True)).run_once().result == "applied"
    new = release_id_of(current_release(probe))
    assert old != new
    return world, template, old, new


def _start_agent(world, template: Path, state: Path) -> int:
    """A copy of the template's state and, forked, the agent applying the new release to it in its own
    process group (killed with its children, as systemd does)."""
    shutil.copytree(template, state, symlinks=True)
    pid = os.fork()
    if pid == 0:
        try:
            os.setpgid(0, 0)
            Reconciler(world.config(state, fast=True)).run_once()
        finally:
            os._exit(0)
    return pid


def _apply_seconds(world, template: Path, state: Path) -> float:
    """How long a whole forked apply takes now (the load of the moment, fork included): the time scale
    of the kills that follow, measured per chunk rather than once at setup."""
    t = time.perf_counter()
    pid = _start_agent(world, template, state)
    os.waitpid(pid, 0)
    seconds = time.perf_counter() - t
    shutil.rmtree(state)
    return seconds


def kill_delay(chunk: int, trial: int, duration: float, rng: random.Random) -> float:
    """A random instant within slice `trial * CHUNKS + chunk` of CHUNKS * TRIALS equal slices of
    [0, 1.2 × duration] (past the end too: a kill after the apply finished)."""
    slices = CHUNKS * TRIALS
    return (trial * CHUNKS + chunk + rng.random()) / slices * duration * 1.2


def test_the_kill_instants_fall_one_in_each_slice_of_the_apply():
    rng = random.Random(0)
    delays = sorted(kill_delay(c, i, 1.0, rng) for c in range(CHUNKS) for i in range(TRIALS))
    width = 1.2 / (CHUNKS * TRIALS)
    assert [int(d // width) for d in delays] == list(range(CHUNKS * TRIALS))


def _kill_trial(world, template: Path, state: Path, delay: float, old: str, new: str, i: int) -> str:
    """kill -9 the apply `delay` seconds in; the device runs a whole old or new release, and a restart
    converges on the new one with an intact journal. Returns the release the kill left."""
    pid = _start_agent(world, template, state)
    time.sleep(delay)
    with contextlib.suppress(ProcessLookupError):  # it may have finished first
        os.killpg(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    _wait_group_gone(pid)
    current = current_release(state)
    assert current is not None, f"trial {i}: no current release"
    assert verify_release(current) == [], f"trial {i}: current release is not whole"
    rid = release_id_of(current)
    assert rid in (old, new), f"trial {i}: unknown release {current.name}"
    out = Reconciler(world.config(state, fast=True)).run_once()  # restart converges
    assert out.ready, f"trial {i}: {out}"
    assert release_id_of(current_release(state)) == new
    assert verify_journal(state / "journal.log")[0], f"trial {i}: journal chain broken"
    shutil.rmtree(state)
    return rid


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_kill_minus_nine_at_random_points(scene, tmp_path: Path, chunk: int):
    world, template, old, new = scene
    rng = random.Random(chunk)
    duration = _apply_seconds(world, template, tmp_path / "calibrate")
    seen = {old: 0, new: 0}
    for i in range(TRIALS):
        seen[_kill_trial(world, template, tmp_path / f"t{i}", kill_delay(chunk, i, duration, rng), old, new, i)] += 1
    # Load that changed within the chunk can shift every instant to one side of the switch: then a few
    # more kills, later (or earlier) each time, until both sides are seen, with every check as above.
    for k in range(8):
        if seen[old] and seen[new]:
            break
        delay = duration * 1.5**k if not seen[new] else rng.uniform(0, duration / 4) / 2**k
        seen[_kill_trial(world, template, tmp_path / f"extra{k}", delay, old, new, TRIALS + k)] += 1
    assert seen[old] and seen[new], f"kills should land both before and after the switch: {seen}"
