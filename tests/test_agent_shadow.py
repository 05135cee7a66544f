"""The agent in a shadow rollout: it verifies and stages the current bundle and the challenger side by side."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.reconcile import Reconciler
from agent.releases import current_release, verify_release
from agent.runners import Supervisor, runner_specs
from compiler.bundle.runner import ShadowEntry
from tests.agentkit import GitDaemon, make_world

pytestmark = pytest.mark.slow  # git daemon, build and publish

SHADOW = (
    "  rollout:\n    strategy: shadow\n"
    "    shadow: {selector: {matchLabels: {ring: canary}}, minAgreement: 0.98, window: 1h, tolerance: 0.05}\n"
    "    then: all-at-once\n"
)


def test_a_shadow_device_stages_both_bundles_and_the_others_only_the_current_one(tmp_path: Path):
    world = make_world(tmp_path)
    daemon = GitDaemon(world.remote.parent).start()
    world.url = daemon.url
    try:
        deployment = world.spec / "specs" / "deployment.yaml"
        deployment.write_text(deployment.read_text().replace("  rollout: {strategy: all-at-once}\n", SHADOW))
        states = {d: tmp_path / f"state-{d}" for d in ("ipc-press-1", "ipc-press-2")}
        for d, state in states.items():
            assert Reconciler(world.config(state, device=d, fast=True)).run_once().result == "applied"
        before = {d: os.readlink(current_release(s) / "deployments" / "press-anomaly-muc") for d, s in states.items()}
        world.republish(("specs/deployment.yaml", "cpu: 500m", "cpu: 750m"))
        for d, state in states.items():
            Reconciler(world.config(state, device=d, fast=True)).run_once()
        study = current_release(states["ipc-press-2"])
        assert verify_release(study) == []
        assert os.readlink(study / "deployments" / "press-anomaly-muc") == before["ipc-press-2"]  # still serving
        challenger = os.readlink(study / "shadow" / "press-anomaly-muc")
        assert challenger != before["ipc-press-2"]
        assert (study / "shadow" / "press-anomaly-muc" / "runner.json").is_file()
        entry = ShadowEntry.parse((study / "shadow" / "press-anomaly-muc.json").read_bytes())
        assert (entry.deployment, entry.tolerance) == ("press-anomaly-muc", 0.05)
        assert challenger == f"../bundles/{entry.challenger}"
        assert (study / "shadow" / entry.config).resolve() == (
            study / "shadow" / "press-anomaly-muc" / "runner.json"
        ).resolve()
        # the deployment's one runner is started with the challenger beside it, never the challenger alone
        (spec,) = runner_specs(states["ipc-press-2"], study)
        assert spec.shadow == states["ipc-press-2"] / "current" / "shadow" / "press-anomaly-muc.json"
        argv = Supervisor(("takt-runner",), tmp_path / "logs").argv(spec)
        assert argv[-2:] == ["--shadow", str(spec.shadow)] and argv.count("--config") == 1
        (plain,) = runner_specs(states["ipc-press-1"], current_release(states["ipc-press-1"]))
        assert plain.shadow is None and "--shadow" not in Supervisor(("takt-runner",), tmp_path / "l").argv(plain)
        (study / "shadow" / "press-anomaly-muc.json").write_bytes(entry.to_json().replace(b"0.05", b"0.5"))
        assert verify_release(study) == ["shadow/press-anomaly-muc.json: differs from the signed state"]
        other = current_release(states["ipc-press-1"])
        assert not (other / "shadow").exists()
        assert os.readlink(other / "deployments" / "press-anomaly-muc") == before["ipc-press-1"]
    finally:
        daemon.stop()


def test_a_systemd_unit_on_a_shadow_device_runs_the_challenger_beside_the_model(tmp_path: Path):
    from agent.runners import RunnerError, unit_paths, with_shadow

    unit = (
        b"[Service]\nWorkingDirectory=/var/lib/takt/current/deployments/press\n"
        b"ExecStart=/usr/bin/env takt-runner --config /var/lib/takt/current/deployments/press/runner.json"
        b" --http-port 8080\n"
    )
    assert with_shadow(unit, None) == unit
    shadow = Path("/var/lib/takt/current/shadow/press.json")
    installed = with_shadow(unit, shadow)
    assert installed.splitlines()[2].endswith(b" --http-port 8080 --shadow /var/lib/takt/current/shadow/press.json")
    assert unit_paths(installed) == unit_paths(unit)  # still the agent's layout
    for hostile in ("/var/lib/ta%kt/s.json", "/var/lib/$X/s.json", "/a\nExecStartPre=/bin/sh"):
        with pytest.raises(RunnerError):
            with_shadow(unit, Path(hostile))
