"""The agent's report step (agent/report.py): when it sends, what the sequence does, transports failing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.devicekey import DEVICE_KEY, keygen
from agent.reconcile import Reconciler
from agent.report import REPORT_STATE
from compiler.bundle.report import load_device_public_key
from compiler.fleet.reports import read_reports
from tests.agentkit import make_world, read_status

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_reports_after_a_transition_and_the_interval_and_the_sequence_survives_restarts(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    state = tmp_path / "dev"
    key = load_device_public_key(keygen(state))
    assert (state / DEVICE_KEY).stat().st_mode & 0o777 == 0o600

    def cycle(when: datetime, **kw) -> dict:
        Reconciler(world.config(state, fast=True, clock=lambda: when, **kw)).run_once()
        return read_status(state)["report"]

    assert cycle(T0)["sequence"] == 1  # the first apply
    assert cycle(T0 + timedelta(minutes=1))["sent"] is False  # nothing changed, interval not passed
    assert cycle(T0 + timedelta(minutes=6))["sequence"] == 2  # the interval passed
    world.republish(("specs/deployment.yaml", "cpu: 500m", "cpu: 750m"))
    assert cycle(T0 + timedelta(minutes=7))["sequence"] == 3  # a transition
    fleet = read_reports(str(world.remote), {"ipc-press-1": key})
    assert [r.sequence for r in fleet.history["ipc-press-1"]] == [1, 2, 3]
    assert fleet.latest["ipc-press-1"].applied_generation == 2


def test_a_push_that_fails_never_fails_the_cycle_and_goes_with_the_next(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    state = tmp_path / "dev"
    key = load_device_public_key(keygen(state))
    good = Reconciler(world.config(state, fast=True, clock=lambda: T0)).run_once()
    assert good.ready
    # the deploy repo refuses pushes (a read-only mirror): the cycle still reports Ready
    hook = world.remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\nexit 1\n")
    hook.chmod(0o755)
    later = T0 + timedelta(minutes=10)
    out = Reconciler(world.config(state, fast=True, clock=lambda: later)).run_once()
    assert out.ready and "not pushed" in read_status(state)["report"]["git"]
    assert json.loads((state / REPORT_STATE).read_text())["owed"] == ["git"]
    hook.unlink()
    Reconciler(world.config(state, fast=True, clock=lambda: later + timedelta(minutes=1))).run_once()
    fleet = read_reports(str(world.remote), {"ipc-press-1": key})
    assert [r.sequence for r in fleet.history["ipc-press-1"]] == [1, 2, 3]  # the unpushed one went too


def test_without_a_device_key_the_agent_says_so_and_does_not_report(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    state = tmp_path / "dev"
    assert Reconciler(world.config(state, fast=True)).run_once().ready
    report = read_status(state)["report"]
    assert report["enabled"] is False and "keygen" in report["reason"]
