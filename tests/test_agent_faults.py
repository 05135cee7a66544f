"""Fault injection: kill -9 the agent at random instants of an apply, hundreds of times.

After every kill the device must run a whole, verified release — the old one or the new one,
never a mix — and the next start must converge on the new one with an intact journal.
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

# per chunk; 4 chunks run in the suite (activate() itself is also tested deterministically, step by step)
TRIALS = int(os.environ.get("TAKT_KILL_TRIALS", "30"))


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


@pytest.mark.parametrize("chunk", range(4))
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
        time.sleep(rng.uniform(0, duration * 1.2))
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
