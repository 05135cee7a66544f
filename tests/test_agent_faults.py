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

pytestmark = pytest.mark.slow  # fault injection: minutes of kill -9

CHUNKS = 4  # test cases (xdist spreads them over workers)
TRIALS = 20  # per chunk


def _wait_group_gone(pgid: int, timeout: float = 10.0) -> None:
    """Like systemd before a restart: wait until no process of the killed group is left."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.01)
    raise AssertionError(f"processes of group {pgid} survive SIGKILL")


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
    t = time.perf_counter()
    assert Reconciler(world.config(probe, fast=True)).run_once().result == "applied"
    duration = time.perf_counter() - t
    new = release_id_of(current_release(probe))
    assert old != new
    return world, template, old, new, duration


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


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_kill_minus_nine_at_random_points(scene, tmp_path: Path, chunk: int):
    world, template, old, new, duration = scene
    rng = random.Random(chunk)
    seen = {old: 0, new: 0}
    for i in range(TRIALS):
        state = tmp_path / f"t{i}"
        shutil.copytree(template, state, symlinks=True)
        pid = os.fork()
        if pid == 0:  # the agent, killed at some instant of its apply, with its children (as systemd does)
            try:
                os.setpgid(0, 0)
                Reconciler(world.config(state, fast=True)).run_once()
            finally:
                os._exit(0)
        time.sleep(kill_delay(chunk, i, duration, rng))
        with contextlib.suppress(ProcessLookupError):  # it may have finished first
            os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        _wait_group_gone(pid)
        current = current_release(state)
        assert current is not None, f"trial {i}: no current release"
        assert verify_release(current) == [], f"trial {i}: current release is not whole"
        rid = release_id_of(current)
        assert rid in (old, new), f"trial {i}: unknown release {current.name}"
        seen[rid] += 1
        out = Reconciler(world.config(state, fast=True)).run_once()  # restart converges
        assert out.ready, f"trial {i}: {out}"
        assert release_id_of(current_release(state)) == new
        assert verify_journal(state / "journal.log")[0], f"trial {i}: journal chain broken"
        shutil.rmtree(state)
    assert seen[old] and seen[new], f"kills should land both before and after the switch: {seen}"
