"""The agent against a real git daemon: from publish to an activated release, and every refusal."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.loop import next_delay
from agent.reconcile import Reconciler
from agent.releases import current_release, release_id_of, verify_release
from agent.status import verify_journal
from compiler.bundle import DesiredState, canonical_json
from compiler.signing import keygen
from tests.agentkit import GitDaemon, World, in_days, make_world

pytestmark = pytest.mark.slow  # servers: git daemon, https, sshd; the health gate in a subprocess


@pytest.fixture
def world(tmp_path: Path):
    daemon = None
    try:
        w = make_world(tmp_path)
        daemon = GitDaemon(w.remote.parent).start()
        w.url = daemon.url
        yield w
    finally:
        if daemon:
            daemon.stop()


def status(state: Path) -> dict:
    return json.loads((state / "status.json").read_text())


def cond(state: Path, kind: str) -> dict:
    return next(c for c in status(state)["conditions"] if c["type"] == kind)


def test_from_publish_to_activated_release_over_git_daemon(world: World, tmp_path: Path):
    state = tmp_path / "state"
    out = Reconciler(world.config(state)).run_once()  # the real health check: onnxruntime in a subprocess
    assert out.result == "applied", out
    current = current_release(state)
    assert current is not None and verify_release(current) == []
    s = status(state)
    assert s["appliedGeneration"] == s["desiredGeneration"] == 1 and s["signerKeyId"]
    assert cond(state, "Ready")["status"] == "True"
    assert Reconciler(world.config(state)).run_once().result == "unchanged"
    # only this device's files were checked out
    assert sorted(p.name for p in (state / "repo/devices").iterdir()) == ["ipc-press-1"]
    assert len(list((state / "repo/bundles").iterdir())) == 1
    world.republish(("specs/deployment.yaml", "cpu: 500m", "cpu: 750m"))
    out = Reconciler(world.config(state)).run_once()
    assert out.result == "applied" and status(state)["appliedGeneration"] == 2
    assert current_release(state) != current and current.is_dir()  # the previous good release is kept
    ok, entries = verify_journal(state / "journal.log")
    assert ok and entries >= 5


def test_the_agent_process_never_imports_onnxruntime():
    code = (
        "import sys, agent.cli, agent.reconcile, agent.loop; "
        "print([m for m in ('onnxruntime', 'onnx', 'pydantic', 'jinja2', 'numpy') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _applied(world: World, state: Path) -> Path:
    assert Reconciler(world.config(state, fast=True)).run_once().result == "applied"
    return current_release(state)


def _refused(world: World, state: Path, reason: str) -> None:
    before = current_release(state)
    out = Reconciler(world.config(state, fast=True)).run_once()
    assert (out.result, out.reason) in (("refused", reason), ("rejected", reason)), out
    assert current_release(state) == before and verify_release(before) == []
    assert cond(state, "Stalled")["status"] == "True" and cond(state, "Stalled")["reason"] == reason
    assert status(state)["lastError"]


def _bundle_dir(work: Path, device: str = "ipc-press-1") -> Path:
    state = DesiredState.parse((work / "devices" / device / "desired.json").read_bytes())
    return work / "bundles" / state.bundles[0].digest


def hostile_flip_byte(world: World, work: Path) -> str:
    f = _bundle_dir(work) / "runner.json"
    data = bytearray(f.read_bytes())
    data[10] ^= 1
    f.write_bytes(bytes(data))
    return "BundleInvalid"


def hostile_bad_signature(world: World, work: Path) -> str:
    sig = work / "devices/ipc-press-1/desired.json.sig"
    doc = json.loads(sig.read_text())
    doc["signature"] = doc["signature"][:-4] + ("AAAA" if not doc["signature"].endswith("AAAA") else "BBBB")
    sig.write_text(json.dumps(doc))
    return "SignatureInvalid"


def hostile_missing_signature(world: World, work: Path) -> str:
    (work / "devices/ipc-press-1/desired.json.sig").unlink()
    return "SignatureMissing"


def hostile_untrusted_key(world: World, work: Path) -> str:
    other, _, _ = keygen(world.root / "other-keys")
    old = DesiredState.parse((work / "devices/ipc-press-1/desired.json").read_bytes())
    world.signed_state(
        work, "ipc-press-1", DesiredState(old.device, old.generation + 1, old.expires, old.bundles), key_path=other
    )
    return "UntrustedKey"


def hostile_expired(world: World, work: Path) -> str:
    old = DesiredState.parse((work / "devices/ipc-press-1/desired.json").read_bytes())
    world.signed_state(work, "ipc-press-1", DesiredState(old.device, old.generation + 1, in_days(-1), old.bundles))
    return "Expired"


def hostile_other_manifest(world: World, work: Path) -> str:
    bundles = sorted((work / "bundles").iterdir())
    mine = _bundle_dir(work)
    other = next(b for b in bundles if b != mine)
    (mine / "MANIFEST.json").write_bytes((other / "MANIFEST.json").read_bytes())
    return "BundleInvalid"


def _hostile_bundle(world: World, work: Path, path: str, content: bytes = b"x", size: int | None = None) -> str:
    """A bundle whose manifest is self-consistent and signed for, but lists a hostile path."""
    import hashlib

    body = {
        "version": 1,
        "name": "evil/ipc-x86",
        "targetClass": "edge-pc",
        "provenance": {},
        "files": [
            {
                "path": path,
                "size": size if size is not None else len(content),
                "sha256": hashlib.sha256(content).hexdigest(),
                "mode": "0644",
            }
        ],
    }
    digest = hashlib.sha256(canonical_json(body)).hexdigest()
    d = work / "bundles" / digest
    d.mkdir(parents=True)
    (d / "MANIFEST.json").write_bytes(canonical_json({**body, "digest": digest}))
    old = DesiredState.parse((work / "devices/ipc-press-1/desired.json").read_bytes())
    from compiler.bundle import BundleRef

    world.signed_state(
        work,
        "ipc-press-1",
        DesiredState(old.device, old.generation + 1, in_days(7), (BundleRef("evil/ipc-x86", digest),)),
    )
    return d


def hostile_dotdot_path(world: World, work: Path) -> str:
    _hostile_bundle(world, work, "../../../etc/cron.d/evil")
    return "BundleInvalid"


def hostile_absolute_path(world: World, work: Path) -> str:
    _hostile_bundle(world, work, "/etc/passwd")
    return "BundleInvalid"


def hostile_symlink(world: World, work: Path) -> str:
    f = _bundle_dir(work) / "runner.json"
    f.unlink()
    os.symlink("/etc/passwd", f)
    return "BundleInvalid"


def hostile_oversize_file(world: World, work: Path) -> str:
    d = _hostile_bundle(world, work, "big.bin", content=b"x" * 10)
    (d / "big.bin").write_bytes(b"x" * 10 + b"y" * 10_000)
    return "BundleInvalid"


@pytest.mark.parametrize(
    "attack",
    [
        hostile_flip_byte,
        hostile_bad_signature,
        hostile_missing_signature,
        hostile_untrusted_key,
        hostile_expired,
        hostile_other_manifest,
        hostile_dotdot_path,
        hostile_absolute_path,
        hostile_symlink,
        hostile_oversize_file,
    ],
    ids=lambda f: f.__name__.removeprefix("hostile_"),
)
def test_hostile_deploy_states_are_refused_with_nothing_applied(world: World, tmp_path: Path, attack):
    state = tmp_path / "state"
    _applied(world, state)
    work = world.checkout()
    reason = attack(world, work)
    world.push(work)
    _refused(world, state, reason)


def test_a_replayed_older_desired_state_is_refused(world: World, tmp_path: Path):
    state = tmp_path / "state"
    _applied(world, state)
    work = world.checkout()
    old_state = (work / "devices/ipc-press-1/desired.json").read_bytes()
    old_sig = (work / "devices/ipc-press-1/desired.json.sig").read_bytes()
    world.republish(("specs/deployment.yaml", "cpu: 500m", "cpu: 750m"))
    assert Reconciler(world.config(state, fast=True)).run_once().result == "applied"
    work = world.checkout()
    (work / "devices/ipc-press-1/desired.json").write_bytes(old_state)  # a valid, signed, older state
    (work / "devices/ipc-press-1/desired.json.sig").write_bytes(old_sig)
    world.push(work)
    _refused(world, state, "RollbackRefused")


def test_unhealthy_release_is_never_activated_and_is_quarantined(world: World, tmp_path: Path):
    import numpy as np

    state = tmp_path / "state"
    first = _applied(world, state)
    g = dict(np.load(world.spec / "data/golden.npz"))
    g["expected/score"] = g["expected/score"] + 1.0  # the health samples now disagree with the model
    np.savez(world.spec / "data/golden.npz", **g)
    world.republish()
    out = Reconciler(world.config(state)).run_once()
    assert (out.result, out.reason) == ("rejected", "HealthCheckFailed") and "differ" in out.message
    assert current_release(state) == first
    again = Reconciler(world.config(state)).run_once()
    assert again.reason == "Quarantined" and current_release(state) == first


def test_failing_post_check_rolls_back_to_the_last_known_good(world: World, tmp_path: Path):
    state = tmp_path / "state"
    first = _applied(world, state)
    world.republish(("specs/deployment.yaml", "cpu: 500m", "cpu: 750m"))
    hook_log = tmp_path / "hook.log"
    hook = tmp_path / "hook.sh"
    hook.write_text(f'#!/bin/sh\necho "$TAKT_RELEASE_DIR" >> {hook_log}\n')
    hook.chmod(0o755)
    out = Reconciler(world.config(state, fast=True, post_check="false", activate_hook=str(hook))).run_once()
    assert (out.result, out.reason) == ("rolled-back", "RolledBack")
    assert current_release(state) == first and verify_release(first) == []
    assert cond(state, "Degraded")["status"] == "True"
    calls = hook_log.read_text().split()
    assert len(calls) == 2 and Path(calls[1]).resolve() == first  # activated, then back


def test_server_down_keeps_the_last_known_good_and_backs_off(world: World, tmp_path: Path):
    state = tmp_path / "state"
    first = _applied(world, state)
    from tests.agentkit import free_port

    out = Reconciler(world.config(state, fast=True, repo=f"git://127.0.0.1:{free_port()}/deploy.git")).run_once()
    assert out.result == "fetch-failed" and current_release(state) == first
    assert cond(state, "Degraded")["reason"] == "FetchFailed"
    import random

    cfg = world.config(state, interval=10, jitter=0.1, max_backoff=300)
    delays = [next_delay(cfg, n, random.Random(1)) for n in range(8)]
    assert 9 <= delays[0] <= 11 and delays[1] > delays[0] and max(delays) <= 330 and delays[-1] >= 270


def test_disk_full_while_staging_applies_nothing(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    state = tmp_path / "state"
    first = _applied(world, state)
    world.republish(("specs/deployment.yaml", "cpu: 500m", "cpu: 750m"))
    out = Reconciler(world.config(state, fast=True, reserve_bytes=1 << 60)).run_once()
    assert (out.result, out.reason) == ("refused", "InsufficientDisk") and current_release(state) == first
    import errno

    import agent.releases as rel

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(rel.shutil, "copyfileobj", full)
    out = Reconciler(world.config(state, fast=True)).run_once()
    assert (out.result, out.reason) == ("refused", "StagingFailed") and current_release(state) == first
    assert not [d for d in (state / "releases").iterdir() if d.name.startswith(".staging")]
    monkeypatch.undo()
    assert Reconciler(world.config(state, fast=True)).run_once().result == "applied"


def test_clock_far_in_the_future_or_past(world: World, tmp_path: Path):
    future = tmp_path / "future"
    out = Reconciler(world.config(future, fast=True, clock=lambda: datetime(2099, 1, 1, tzinfo=UTC))).run_once()
    assert (out.result, out.reason) == ("refused", "Expired") and current_release(future) is None
    past = tmp_path / "past"
    out = Reconciler(world.config(past, fast=True, clock=lambda: datetime(2001, 1, 1, tzinfo=UTC))).run_once()
    assert out.result == "applied"  # expiry is an upper bound; generations still refuse replays


def test_drift_is_detected_and_repaired(world: World, tmp_path: Path):
    state = tmp_path / "state"
    first = _applied(world, state)
    bundle = next((first / "bundles").iterdir())
    (bundle / "runner.json").write_text("{}")
    out = Reconciler(world.config(state, fast=True)).run_once()
    assert out.result == "applied"
    now = current_release(state)
    assert now != first and verify_release(now) == [] and release_id_of(now) == release_id_of(first)
    assert any('"drift"' in line for line in (state / "journal.log").read_text().splitlines())


def test_a_corrupted_local_clone_is_cloned_again(world: World, tmp_path: Path):
    state = tmp_path / "state"
    _applied(world, state)
    world.republish(("specs/deployment.yaml", "cpu: 500m", "cpu: 750m"))
    (state / "repo/.git/HEAD").write_text("garbage\n")
    shutil.rmtree(state / "repo/.git/objects", ignore_errors=True)
    assert Reconciler(world.config(state, fast=True)).run_once().result == "applied"


def test_a_newer_state_preempts_a_running_check(tmp_path: Path):
    from agent.health import run_health

    slow = tmp_path / "slow-python"
    slow.write_text("#!/bin/sh\nsleep 30\n")
    slow.chmod(0o755)
    ok, why = run_health(tmp_path, str(slow), timeout=60, preempt=lambda: True, preempt_every=0.1)
    assert not ok and why.startswith("preempted")
    ok, why = run_health(tmp_path, str(slow), timeout=0.3)
    assert not ok and "timed out" in why


def test_the_health_check_is_read_when_it_exits_not_a_poll_interval_later(tmp_path: Path):
    """Every apply runs the check twice (pre and post): waiting out the poll interval after it exited
    made each apply slower by up to two intervals."""
    import time

    from agent.health import run_health

    fast = tmp_path / "fast-python"
    fast.write_text('#!/bin/sh\necho \'{"ok": true, "checks": [{"bundle": "b", "ok": true, "detail": "d"}]}\'\n')
    fast.chmod(0o755)
    t = time.monotonic()
    assert run_health(tmp_path, str(fast), timeout=600, poll=300) == (True, "b: d")
    assert time.monotonic() - t < 60  # the check exits in milliseconds; the old loop slept the whole 300 s


def test_status_cli_and_tampered_journal(world: World, tmp_path: Path, cli_run):
    state = tmp_path / "state"
    _applied(world, state)
    code, out = cli_run("agent", "status", "--state-dir", str(state), "--format", "json")
    assert code == 0 and json.loads(out)["journal"]["intact"] is True
    lines = (state / "journal.log").read_text().splitlines()
    lines[0] = lines[0].replace('"accepted"', '"tampered"')
    (state / "journal.log").write_text("\n".join(lines) + "\n")
    code, out = cli_run("agent", "status", "--state-dir", str(state))
    assert code == 0 and "BROKEN CHAIN" in out
    assert "generation 1 applied, 1 desired" in out and "Ready        yes  Applied: " in out
    assert "Applied: \n" not in out and ": \n" not in out  # a condition without a message shows no dangling colon
    assert re.search(r"bundle +press-anomaly-muc/ipc-x86 +[0-9a-f]{16}…", out)
    assert cli_run("agent", "status", "--state-dir", str(tmp_path / "none"))[0] == 2


def test_agent_run_cli_once(world: World, tmp_path: Path):
    r = subprocess.run(
        world.agent_cmd("ipc-press-2", str(tmp_path / "s"), "--once"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "applied" in r.stderr
    assert json.loads((tmp_path / "s/status.json").read_text())["device"] == "ipc-press-2"
    # ipc-press-3 runs the aarch64 target: this x86_64 machine refuses its bundle before staging
    r = subprocess.run(
        world.agent_cmd("ipc-press-3", str(tmp_path / "s3"), "--once"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1 and "WrongArchitecture" in r.stderr


def test_devices_leaving_the_fleet_stop_cleanly(world: World, tmp_path: Path):
    state = tmp_path / "state"
    _applied(world, state)
    work = world.checkout()
    old = DesiredState.parse((work / "devices/ipc-press-1/desired.json").read_bytes())
    world.signed_state(work, "ipc-press-1", DesiredState(old.device, old.generation + 1, in_days(7), ()))
    world.push(work)
    out = Reconciler(world.config(state, fast=True)).run_once()
    assert out.result == "applied"
    assert json.loads((current_release(state) / "release.json").read_text())["bundles"] == []


def test_two_agents_never_work_on_one_state_dir(world: World, tmp_path: Path):
    import fcntl

    state = tmp_path / "state"
    state.mkdir()
    with (state / "agent.lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        out = Reconciler(world.config(state, fast=True)).run_once()
    assert (out.result, out.reason) == ("refused", "Locked") and current_release(state) is None
    assert Reconciler(world.config(state, fast=True)).run_once().result == "applied"


def test_preflight_refuses_other_architectures_and_too_little_memory(world: World, tmp_path: Path):
    state = tmp_path / "state"
    out = Reconciler(world.config(state, fast=True, arch="riscv64")).run_once()
    assert (out.result, out.reason) == ("refused", "WrongArchitecture") and "built for x86_64" in out.message
    out = Reconciler(world.config(state, fast=True, memory=100)).run_once()
    assert (out.result, out.reason) == ("refused", "InsufficientMemory") and current_release(state) is None
    assert Reconciler(world.config(state, fast=True, arch="x86_64")).run_once().result == "applied"


def test_metrics_file_and_endpoint(world: World, tmp_path: Path):
    import time
    import urllib.request

    from tests.agentkit import free_port

    port = free_port()
    metrics_file = tmp_path / "textfile" / "takt.prom"
    proc = subprocess.Popen(
        world.agent_cmd(
            "ipc-press-1",
            str(tmp_path / "s"),
            "--interval",
            "3600",
            "--metrics-file",
            str(metrics_file),
            "--metrics-port",
            str(port),
        ),
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not metrics_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert "takt_agent_ready 1" in body and "takt_agent_applied_generation 1" in body
    assert metrics_file.read_text() == body


def test_agent_over_https(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from tests.agentkit import HttpsGitServer

    w = make_world(tmp_path / "w")
    server = HttpsGitServer(w.remote.parent, tmp_path / "tls").start()
    try:
        w.url = server.url
        state = tmp_path / "state"
        out = Reconciler(w.config(state, fast=True)).run_once()  # without trusting the certificate
        assert out.result == "fetch-failed" and "certificate" in out.message.lower()
        monkeypatch.setenv("GIT_SSL_CAINFO", str(server.ca))  # the device trusts the server's CA
        out = Reconciler(w.config(state, fast=True)).run_once()
        assert out.result == "applied", out
        assert verify_release(current_release(state)) == []
    finally:
        server.stop()


def _sshd_usable() -> str | None:
    from tests.agentkit import SSHD

    if SSHD is None:
        return "sshd (openssh-server) is not installed on this machine"
    if os.geteuid() != 0 and not Path("/run/sshd").is_dir():
        return "sshd needs /run/sshd, which only root can create"
    return None


@pytest.mark.skipif(_sshd_usable() is not None, reason=str(_sshd_usable()))
def test_agent_over_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from tests.agentkit import SshServer

    w = make_world(tmp_path / "w")
    server = SshServer(tmp_path / "ssh").start()
    try:
        w.url = server.url(w.remote)
        monkeypatch.setenv("GIT_SSH_COMMAND", server.git_ssh_command)
        state = tmp_path / "state"
        out = Reconciler(w.config(state, fast=True)).run_once()
        assert out.result == "applied", out
        assert verify_release(current_release(state)) == []
        assert Reconciler(w.config(state, fast=True)).run_once().result == "unchanged"
    finally:
        server.stop()


def test_the_rendered_unit_names_paths_that_exist_after_a_real_apply(world: World, tmp_path: Path):
    """The golden unit pins paths under installDir; they must exist in an applied release, not only in the golden."""
    state = tmp_path / "state"
    release = _applied(world, state)
    units = list(release.glob("bundles/*/takt-runner.service"))
    assert units
    for unit in units:
        text = unit.read_text()
        workdir = re.search(r"^WorkingDirectory=(\S+)$", text, re.M).group(1)
        config = shlex.split(re.search(r"^ExecStart=(.*)$", text, re.M).group(1))  # systemd quotes like a shell here
        config = config[config.index("--config") + 1]
        install = "/var/lib/takt/current"  # the edge-pc profile's installDir: the agent's `current` on a device
        assert workdir.startswith(install + "/") and config.startswith(install + "/")
        live_dir = state / "current" / workdir.removeprefix(install + "/")
        live_config = state / "current" / config.removeprefix(install + "/")
        assert live_dir.is_dir() and live_config.is_file(), (workdir, config)
        assert live_config.resolve().parent == unit.parent.resolve()  # the unit's own bundle, via the deployment link


def test_status_after_a_rollback_shows_the_running_bundle_and_the_refused_one_apart(tmp_path: Path, cli_run):
    state = tmp_path / "state"
    state.mkdir()
    running, refused = "a" * 64, "b" * 64
    doc = {
        "device": "ipc-press-1", "appliedGeneration": 1, "desiredGeneration": 2,
        "conditions": [{"type": "Ready", "status": "True", "reason": "RolledBack", "message": "gate failed"}],
        "appliedBundles": [{"name": "press/ipc", "digest": running}],
        "desiredBundles": [{"name": "press/ipc", "digest": refused}],
    }  # fmt: skip
    (state / "status.json").write_text(json.dumps(doc))
    code, out = cli_run("agent", "status", "--state-dir", str(state))
    assert code == 0
    assert re.search(rf"bundle +press/ipc +{running[:16]}… +\(running\)", out)
    assert re.search(rf"desired +press/ipc +{refused[:16]}… +\(not applied\)", out)
    doc["desiredBundles"] = doc["appliedBundles"]
    (state / "status.json").write_text(json.dumps(doc))
    code, out = cli_run("agent", "status", "--state-dir", str(state))
    assert "desired " not in out and "(running)" in out
