"""agent/steps.py one step at a time, without a Git server: the fetches are replaced at agent.steps'
git boundary (remote_head, sync) and the health gate at run_health, everything else is real (signed
states, written bundles, staged releases, the hook as a real process). The agent tests reach each step
only through whole cycles against a Git daemon, too slow to run once per mutant; here each test names
the exact outcome, journal entry and memory a step leaves."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import agent.steps as steps
from agent.config import AgentConfig
from agent.cycle import Cycle, Outcome
from agent.gitsync import FetchError
from agent.reasons import Event, Reason, Result
from agent.releases import CURRENT, RELEASES, activate, current_release, stage
from agent.status import Memory
from agent.verify import listed_paths, manifest_paths, release_id, state_paths
from compiler.bundle import BundleRef, DesiredState, key_id, sign, write_bundle
from tests.statekit import journal_events

NOW = datetime(2030, 1, 1, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()
DEVICE = "dev-1"


# --- a world on disk: a signed state and its bundles in a checkout, a state directory -------------


def _world(tmp_path: Path, generation: int = 7, device: str = DEVICE) -> tuple[Path, DesiredState]:
    work = tmp_path / "work"
    files = {"runner.json": b'{"x": 1}\n', "model/model.onnx": b"\0" * 100}
    m1 = write_bundle(work / "bundles", "line/edge", "edge-pc", files, {"arch": "x86_64"})
    m2 = write_bundle(work / "bundles", "press/edge", "edge-pc", {"runner.json": b"{}\n"}, {})
    desired = DesiredState(
        device, generation, NOW + timedelta(days=1), (BundleRef(m1.name, m1.digest), BundleRef(m2.name, m2.digest))
    )
    ddir = work / "devices" / DEVICE
    ddir.mkdir(parents=True)
    data = desired.to_bytes()
    (ddir / "desired.json").write_bytes(data)
    (ddir / "desired.json.sig").write_bytes(sign(data, KEY))
    return work, desired


def _cfg(tmp_path: Path, **kw: Any) -> AgentConfig:
    key = tmp_path / "trusted.pem"
    key.write_bytes(KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    kw = {"arch": "x86_64", "memory": 1 << 40, "reserve_bytes": 0, **kw}
    return AgentConfig("file:///deploy", "deploy", DEVICE, tmp_path / "state", (key,), clock=lambda: NOW, **kw)


def _cycle(tmp_path: Path, mem: Memory | None = None, **kw: Any) -> Cycle:
    cfg = _cfg(tmp_path, **kw)
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    return Cycle(cfg, cfg.state_dir, NOW, mem or Memory(), current=current_release(cfg.state_dir))


def _verified(tmp_path: Path, mem: Memory | None = None, generation: int = 7, **kw: Any) -> Cycle:
    """A cycle after its state and bundles are verified (the steps before compare)."""
    work, _ = _world(tmp_path, generation)
    c = _cycle(tmp_path, mem, **kw)
    c.workdir, c.commit, c.head = work, "c" * 40, "c" * 40
    assert steps.verify_desired(c) is None
    assert steps.verify_bundles_step(c) is None
    return c


def _events(c: Cycle) -> list[tuple[str, dict[str, Any]]]:
    return [(e["event"], e["details"]) for e in journal_events(c.state)] if (c.state / "journal.log").exists() else []


class FakeGit:
    """agent.steps' git boundary: what was asked, and scripted answers."""

    def __init__(self, work: Path | None, head: str = "h" * 40, commit: str = "c" * 40) -> None:
        self.work, self.head, self.commit = work, head, commit
        self.heads: list[str] = []
        self.syncs: list[tuple[list[str], str]] = []
        self.fail_head: str | None = None
        self.fail_sync: int | None = None  # the index of the sync call that fails

    def remote_head(self, url: str, branch: str, timeout: float) -> str:
        self.heads.append(f"{url} {branch} {timeout}")
        if self.fail_head:
            raise FetchError(self.fail_head)
        return self.head

    def sync(self, url: str, branch: str, repo_dir: Path, head: str, paths: list[str], timeout: float):
        self.syncs.append((paths, head))
        if self.fail_sync == len(self.syncs) - 1:
            raise FetchError("connection reset")
        assert (url, branch, repo_dir.name, timeout) == ("file:///deploy", "deploy", "repo", 120.0)
        return self.work, self.commit


@pytest.fixture
def git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeGit:
    fake = FakeGit(tmp_path / "work")
    monkeypatch.setattr(steps, "remote_head", fake.remote_head)
    monkeypatch.setattr(steps, "sync", fake.sync)
    return fake


# --- fetch and verify ---------------------------------------------------------------------------------


def test_fetch_state_asks_the_tip_then_fetches_only_the_state_and_its_signature(tmp_path: Path, git: FakeGit) -> None:
    c = _cycle(tmp_path)
    assert steps.fetch_state(c) is None
    assert git.heads == ["file:///deploy deploy 120.0"]
    assert git.syncs == [(state_paths(DEVICE), git.head)]
    assert (c.head, c.workdir, c.commit, c.fields) == (git.head, git.work, git.commit, {"remoteCommit": git.commit})


@pytest.mark.parametrize("where", ["ls-remote", "fetch"])
def test_a_fetch_that_fails_keeps_the_current_release_and_is_journaled(
    tmp_path: Path, git: FakeGit, where: str
) -> None:
    c = _cycle(tmp_path)
    if where == "ls-remote":
        git.fail_head = "host unreachable"
    else:
        git.fail_sync = 0
    error = "host unreachable" if where == "ls-remote" else "connection reset"
    out = steps.fetch_state(c)
    assert out == Outcome(Result.FETCH_FAILED, Reason.FETCH_FAILED, f"{error}; keeping the current release")
    assert _events(c) == [(str(Event.FETCH_FAILED), {"error": error})]
    assert c.workdir is None and "remoteCommit" not in c.fields


def test_verify_desired_fills_in_the_state_its_key_and_release(tmp_path: Path) -> None:
    work, desired = _world(tmp_path)
    c = _cycle(tmp_path)
    c.workdir = work
    assert steps.verify_desired(c) is None
    assert (c.desired, c.key_id, c.release_id) == (desired, key_id(KEY.public_key()), release_id(desired))
    assert _events(c) == []


@pytest.mark.parametrize(
    "mem, now, reason",
    [
        (Memory(accepted_generation=8), NOW, Reason.ROLLBACK_REFUSED),
        (Memory(accepted_generation=7, accepted_release="f" * 64), NOW, Reason.GENERATION_REUSED),
        (Memory(), NOW + timedelta(days=2), Reason.EXPIRED),
    ],
)
def test_verify_desired_refuses_with_the_memory_and_clock_of_the_cycle(
    tmp_path: Path, mem: Memory, now: datetime, reason: Reason
) -> None:
    work, _ = _world(tmp_path)
    c = _cycle(tmp_path, mem)
    c.workdir, c.now = work, now
    out = steps.verify_desired(c)
    assert out is not None and (out.result, out.reason) == (Result.REFUSED, reason)
    assert _events(c) == [(str(Event.REFUSED), {"reason": str(reason), "message": out.message})]
    assert c.desired is None


def test_verify_desired_refuses_an_untrusted_key_file_as_a_refusal(tmp_path: Path) -> None:
    work, _ = _world(tmp_path)
    c = _cycle(tmp_path)
    c.workdir = work
    c.cfg.trusted_keys[0].write_bytes(b"not a key")
    out = steps.verify_desired(c)
    assert out is not None and (out.result, out.reason) == (Result.REFUSED, Reason.UNTRUSTED_KEY_FILE)


def test_a_state_for_another_device_is_refused_by_the_step(tmp_path: Path) -> None:
    work, _ = _world(tmp_path, device="dev-2")
    c = _cycle(tmp_path)
    c.workdir = work
    out = steps.verify_desired(c)
    assert out is not None and out.reason is Reason.WRONG_DEVICE


def test_fetch_bundles_fetches_the_manifests_then_exactly_the_files_they_list(tmp_path: Path, git: FakeGit) -> None:
    work, desired = _world(tmp_path)
    c = _cycle(tmp_path)
    c.desired, c.workdir, c.commit = desired, work, "d" * 40
    git.commit = "e" * 40  # the branch moved during the first fetch: the second fetches what the first got
    assert steps.fetch_bundles(c) is None
    device, manifests = state_paths(DEVICE), manifest_paths(desired)
    listed = listed_paths(work, desired)
    assert listed and manifests
    assert git.syncs == [([*device, *manifests], "d" * 40), ([*device, *manifests, *listed], "e" * 40)]
    assert c.commit == c.fields["remoteCommit"] == "e" * 40


def test_fetch_bundles_stops_at_a_failed_manifest_fetch(tmp_path: Path, git: FakeGit) -> None:
    work, desired = _world(tmp_path)
    c = _cycle(tmp_path)
    c.desired, c.workdir, c.commit = desired, work, "d" * 40
    git.fail_sync = 0
    out = steps.fetch_bundles(c)
    assert out is not None and out.result is Result.FETCH_FAILED
    assert len(git.syncs) == 1


def test_a_state_without_bundles_fetches_nothing_more(tmp_path: Path, git: FakeGit) -> None:
    c = _cycle(tmp_path)
    c.desired = DesiredState(DEVICE, 1, NOW + timedelta(days=1), ())
    assert steps.fetch_bundles(c) is None
    assert git.syncs == []


def test_verified_bundles_are_accepted_and_the_generation_remembered(tmp_path: Path) -> None:
    c = _verified(tmp_path, Memory(accepted_generation=6))
    desired, rid = c.desired, c.release_id
    assert desired is not None and rid is not None
    assert sorted(c.manifests) == sorted(b.digest for b in desired.bundles)
    assert c.fields == {
        "desiredGeneration": 7,
        "desiredRelease": rid,
        "signerKeyId": key_id(KEY.public_key()),
        "desiredBundles": [{"name": b.name, "digest": b.digest} for b in desired.bundles],
    }
    assert (c.mem.accepted_generation, c.mem.accepted_release) == (7, rid)
    assert _events(c) == [(str(Event.ACCEPTED), {"generation": 7, "release": rid, "key": c.key_id})]


def test_the_same_generation_again_is_not_accepted_twice(tmp_path: Path) -> None:
    rid = release_id(_world(tmp_path / "same")[1])
    c = _verified(tmp_path, Memory(accepted_generation=7, accepted_release=rid))
    assert (c.mem.accepted_generation, c.mem.accepted_release) == (7, rid)
    assert _events(c) == []


def test_a_tampered_bundle_is_refused_and_nothing_is_accepted(tmp_path: Path) -> None:
    work, desired = _world(tmp_path)
    (work / "bundles" / desired.bundles[1].digest / "runner.json").write_bytes(b"[]\n")
    c = _cycle(tmp_path)
    c.workdir = work
    assert steps.verify_desired(c) is None
    out = steps.verify_bundles_step(c)
    assert out is not None and (out.result, out.reason) == (Result.REFUSED, Reason.BUNDLE_INVALID)
    assert c.mem.accepted_generation == 0 and "desiredGeneration" not in c.fields


# --- compare and stage ------------------------------------------------------------------------------


def _live(c: Cycle) -> Path:
    """Stage and activate the cycle's own release: the device runs the desired state."""
    assert c.desired is not None and c.release_id is not None and c.workdir is not None
    release = stage(c.state, c.workdir, c.desired, c.manifests, c.release_id, 0)
    activate(c.state, release)
    c.current = current_release(c.state)
    return release


def test_the_running_release_is_up_to_date(tmp_path: Path) -> None:
    c = _verified(tmp_path)
    _live(c)
    assert steps.compare(c) == Outcome(Result.UNCHANGED, Reason.UP_TO_DATE, "generation 7 is running")


def test_a_release_killed_before_its_post_check_is_resumed(tmp_path: Path) -> None:
    c = _verified(tmp_path)
    release = _live(c)
    c.mem.pending_health = release.name
    assert steps.compare(c) is None
    assert (c.release, c.resumed) == (c.current, True)


def test_a_drifted_release_is_staged_again_and_the_drift_journaled(tmp_path: Path) -> None:
    c = _verified(tmp_path)
    release = _live(c)
    assert c.desired is not None
    (release / "bundles" / c.desired.bundles[1].digest / "runner.json").write_bytes(b"[]\n")
    assert steps.compare(c) is None
    assert (c.release, c.resumed) == (None, False)
    [(_, details)] = [e for e in _events(c) if e[0] == str(Event.DRIFT)]
    assert details["release"] == release.name and len(details["problems"]) == 1


def test_a_drift_journal_entry_names_the_first_five_problems(tmp_path: Path) -> None:
    c = _verified(tmp_path)
    release = _live(c)
    for i in range(7):
        (release / f"stray-{i}").write_bytes(b"x")
    assert steps.compare(c) is None
    [(_, details)] = [e for e in _events(c) if e[0] == str(Event.DRIFT)]
    assert details["problems"] == [f"stray-{i}: unexpected entry" for i in range(5)]


def test_another_running_release_is_no_drift_and_is_replaced(tmp_path: Path) -> None:
    c = _verified(tmp_path)
    other = c.state / RELEASES / f"{'cd' * 32}.1"
    other.mkdir(parents=True)
    activate(c.state, other)
    c.current = current_release(c.state)
    c.mem.pending_health = other.name
    assert steps.compare(c) is None
    assert (c.release, c.resumed) == (None, False)
    assert [e for e in _events(c) if e[0] == str(Event.DRIFT)] == []


def test_nothing_running_is_staged(tmp_path: Path) -> None:
    c = _verified(tmp_path)
    assert steps.compare(c) is None
    assert (c.release, c.resumed) == (None, False)


def test_a_quarantined_release_waits_for_a_new_state_but_only_at_the_generation_it_failed(tmp_path: Path) -> None:
    c = _verified(tmp_path)
    rid = c.release_id
    assert rid is not None
    c.mem.quarantine[rid] = 7
    out = steps.compare(c)
    assert out == Outcome(
        Result.REJECTED, Reason.QUARANTINED,
        f"release {rid[:12]} failed its health gate at generation 7; waiting for a new desired state",
    )
    c.mem.quarantine[rid] = 6
    assert steps.compare(c) is None


def test_a_quarantined_release_that_drifted_is_not_restaged(tmp_path: Path) -> None:
    c = _verified(tmp_path)
    release = _live(c)
    assert c.desired is not None and c.release_id is not None
    (release / "stray").write_bytes(b"x")
    c.mem.quarantine[c.release_id] = 7
    out = steps.compare(c)
    assert out is not None and out.reason is Reason.QUARANTINED


def test_stage_release_stages_the_verified_bundles(tmp_path: Path) -> None:
    c = _verified(tmp_path)
    assert steps.stage_release(c) is None
    assert c.release == c.state / RELEASES / f"{c.release_id}.1" and c.release.is_dir()


def test_a_resumed_cycle_stages_checks_and_switches_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = _verified(tmp_path)
    c.resumed = True
    monkeypatch.setattr(steps, "run_health", lambda *a, **kw: pytest.fail("the pre-check ran"))
    assert (steps.stage_release(c), steps.pre_check(c), steps.switch(c)) == (None, None, None)
    assert c.release is None and not (c.state / RELEASES).exists() and not (c.state / CURRENT).exists()


@pytest.mark.parametrize(
    "kw, reason",
    [
        ({"arch": "aarch64"}, Reason.WRONG_ARCHITECTURE),
        ({"memory": 299}, Reason.INSUFFICIENT_MEMORY),
        ({"reserve_bytes": 1 << 60}, Reason.INSUFFICIENT_DISK),
    ],
)
def test_a_release_this_machine_cannot_take_is_refused_keeping_the_current_one(
    tmp_path: Path, kw: dict[str, Any], reason: Reason
) -> None:
    c = _verified(tmp_path, **kw)
    out = steps.stage_release(c)
    assert out is not None and (out.result, out.reason) == (Result.REFUSED, reason)
    assert out.message.endswith("; keeping the current release")
    [(_, details)] = [e for e in _events(c) if e[0] == str(Event.STAGE_FAILED)]
    assert details["reason"] == str(reason) and out.message.startswith(details["message"])
    assert c.release is None


def test_without_a_configured_arch_or_memory_the_machine_s_own_are_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(steps, "machine_arch", lambda: "riscv64")
    c = _verified(tmp_path, arch=None)
    out = steps.stage_release(c)
    assert out is not None and out.reason is Reason.WRONG_ARCHITECTURE and "riscv64" in out.message
    monkeypatch.setattr(steps, "mem_available", lambda: 10)
    c = _verified(tmp_path / "2", memory=None)
    out = steps.stage_release(c)
    assert out is not None and out.reason is Reason.INSUFFICIENT_MEMORY
    monkeypatch.setattr(steps, "mem_available", lambda: None)  # unknown: not refused for memory
    c = _verified(tmp_path / "3", memory=None)
    assert steps.stage_release(c) is None


# --- the pre-check and the switch -------------------------------------------------------------------


def _staged(tmp_path: Path, **kw: Any) -> Cycle:
    c = _verified(tmp_path, **kw)
    assert steps.stage_release(c) is None
    return c


def _health(monkeypatch: pytest.MonkeyPatch, answer: Callable[..., tuple[bool, str]]) -> list[Path]:
    calls: list[Path] = []

    def run_health(release: Path, python: str | None, timeout: float, preempt=None, poll: float = 0.1):
        calls.append(release)
        return answer(preempt)

    monkeypatch.setattr(steps, "run_health", run_health)
    return calls


def test_a_healthy_pre_check_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = _staged(tmp_path)
    calls = _health(monkeypatch, lambda preempt: (True, ""))
    assert steps.pre_check(c) is None
    assert calls == [c.release]


def test_a_failed_pre_check_quarantines_the_release_at_its_generation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = _staged(tmp_path)
    _health(monkeypatch, lambda preempt: (False, "model does not load"))
    out = steps.pre_check(c)
    assert out == Outcome(Result.REJECTED, Reason.HEALTH_CHECK_FAILED, "new release not activated: model does not load")
    assert c.mem.quarantine == {c.release_id: 7}
    assert c.release is not None
    assert _events(c)[-1] == (str(Event.PRE_CHECK_FAILED), {"release": c.release.name, "reason": "model does not load"})


@pytest.mark.parametrize("tip, newer", [("n" * 40, True), ("c" * 40, False), (None, False)])
def test_a_pre_check_is_preempted_only_by_a_new_tip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, git: FakeGit, tip: str | None, newer: bool
) -> None:
    c = _staged(tmp_path)
    if tip is None:
        git.fail_head = "unreachable"  # cannot tell: the check goes on
    else:
        git.head = tip
    seen: list[bool] = []

    def answer(preempt):
        seen.append(preempt())
        return (False, "preempted by a newer desired state") if seen[-1] else (True, "")

    _health(monkeypatch, answer)
    out = steps.pre_check(c)
    assert seen == [newer]
    if newer:
        assert out == Outcome(Result.PREEMPTED, Reason.PREEMPTED, "a newer desired state arrived during the check")
        assert c.release is not None and _events(c)[-1] == (str(Event.PREEMPTED), {"release": c.release.name})
        assert c.mem.quarantine == {}
    else:
        assert out is None


def test_the_switch_remembers_the_release_as_pending_before_it_points_current_at_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = _staged(tmp_path)
    assert c.release is not None
    seen = []
    real = steps.activate

    def activate_(state: Path, release: Path) -> None:
        seen.append(Memory.load(state).pending_health)
        real(state, release)

    monkeypatch.setattr(steps, "activate", activate_)
    assert steps.switch(c) is None
    assert seen == [c.release.name] and c.mem.pending_health == c.release.name
    assert current_release(c.state) == c.release.resolve()
    assert _events(c)[-1] == (str(Event.ACTIVATED), {"release": c.release.name, "generation": 7})


# --- the hook, the post check, rollback --------------------------------------------------------------


def _script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def test_no_hook_is_a_pass(tmp_path: Path) -> None:
    assert steps.hook(_cfg(tmp_path), tmp_path) == (True, "")


def test_the_hook_sees_the_release_and_the_device_and_its_error_is_the_reason(tmp_path: Path) -> None:
    cmd = _script(tmp_path, "hook", 'echo "$TAKT_RELEASE_DIR $TAKT_DEVICE" >&2; exit 3')
    assert steps.hook(_cfg(tmp_path, activate_hook=f"{cmd} --flag"), tmp_path / "r") == (False, f"{tmp_path}/r dev-1")
    ok = _script(tmp_path, "ok", "echo done")
    assert steps.hook(_cfg(tmp_path, activate_hook=ok), tmp_path) == (True, "done")


def test_a_hook_s_reason_is_its_last_300_characters_or_its_exit_code(tmp_path: Path) -> None:
    long = _script(tmp_path, "long", "printf 'x%.0s' $(seq 1 400); printf 'END'; exit 1")
    ok, why = steps.hook(_cfg(tmp_path, activate_hook=long), tmp_path)
    assert (ok, len(why), why[-3:]) == (False, 300, "END")
    silent = _script(tmp_path, "silent", "exit 4")
    assert steps.hook(_cfg(tmp_path, activate_hook=silent), tmp_path) == (False, "exit 4")


def test_a_hook_that_cannot_start_or_hangs_fails_named(tmp_path: Path) -> None:
    ok, why = steps.hook(_cfg(tmp_path, activate_hook=str(tmp_path / "missing")), tmp_path)
    assert not ok and why.startswith("activate hook failed: ")
    hang = _script(tmp_path, "hang", "exec sleep 30")
    ok, why = steps.hook(_cfg(tmp_path, activate_hook=hang, hook_timeout=0.5), tmp_path)
    assert not ok and why.startswith("activate hook failed: ") and "timed out" in why


def test_the_post_check_runs_only_after_a_healthy_health_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mark = tmp_path / "ran"
    check = _script(tmp_path, "post", f'echo "$TAKT_RELEASE_DIR" > {mark}; echo "no traffic" >&2; exit 1')
    cfg = _cfg(tmp_path, post_check=check)
    _health(monkeypatch, lambda preempt: (False, "unhealthy"))
    assert steps._post_check(cfg, tmp_path / "r") == (False, "unhealthy")
    assert not mark.exists()
    _health(monkeypatch, lambda preempt: (True, ""))
    assert steps._post_check(cfg, tmp_path / "r") == (False, "no traffic")
    assert mark.read_text() == f"{tmp_path}/r\n"
    assert steps._post_check(_cfg(tmp_path), tmp_path / "r") == (True, "")


def _activated(tmp_path: Path, **kw: Any) -> tuple[Cycle, Path]:
    """A cycle whose new release was switched to over an older good one: (cycle, the older release)."""
    c = _staged(tmp_path, **kw)
    old = c.state / RELEASES / f"{'cd' * 32}.0"
    old.mkdir(parents=True)
    activate(c.state, old)
    c.current = current_release(c.state)
    c.mem.last_known_good, c.mem.good = old.name, [old.name]
    assert steps.switch(c) is None
    return c, old


def test_a_healthy_release_becomes_the_last_known_good_and_older_ones_are_pruned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c, old = _activated(tmp_path, keep_releases=2)
    _health(monkeypatch, lambda preempt: (True, ""))
    names = [f"{'0' * 63}{i}.{i}" for i in range(1, 5)]
    for n in names:
        (c.state / RELEASES / n).mkdir()
    c.mem.good = [names[0], old.name, names[1], names[2]]
    assert c.release is not None
    assert steps.post_activation(c) == Outcome(Result.APPLIED, Reason.APPLIED, "generation 7 is running")
    assert c.mem.pending_health is None and c.mem.last_known_good == c.release.name
    assert c.mem.good == [names[1], names[2], c.release.name]
    assert sorted(p.name for p in (c.state / RELEASES).iterdir()) == sorted([names[1], names[2], c.release.name])
    assert _events(c)[-1] == (str(Event.HEALTHY), {"release": c.release.name, "generation": 7})


def test_a_release_already_among_the_good_ones_is_moved_last_not_repeated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c, old = _activated(tmp_path)
    assert c.release is not None
    _health(monkeypatch, lambda preempt: (True, ""))
    c.mem.good = [c.release.name, old.name]
    steps.post_activation(c)
    assert c.mem.good == [old.name, c.release.name]


def test_a_release_failing_after_the_switch_is_quarantined_and_the_previous_one_restored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "hook.log"
    hook = _script(tmp_path, "hook", f'echo "$TAKT_RELEASE_DIR" >> {log}; case "$TAKT_RELEASE_DIR" in *.0) exit 0;; '
                                     "esac; echo 'device busy' >&2; exit 1")
    c, old = _activated(tmp_path, activate_hook=hook)
    _health(monkeypatch, lambda preempt: pytest.fail("no health check after a failed hook"))
    release = c.release
    assert release is not None
    out = steps.post_activation(c)
    assert out == Outcome(
        Result.ROLLED_BACK, Reason.ROLLED_BACK,
        f"{release.name} failed after activation (device busy); back on {old.name}",
    )
    assert current_release(c.state) == old.resolve()
    assert log.read_text().split() == [str(release), str(old)]  # the hook ran for the restored release too
    assert c.mem.quarantine == {c.release_id: 7} and c.mem.pending_health is None
    assert c.mem.last_known_good == old.name
    assert _events(c)[-1] == (
        str(Event.ROLLED_BACK), {"failed": release.name, "to": old.name, "reason": "device busy", "restored": ""}
    )


def test_a_restored_release_whose_runner_is_unhealthy_is_rejected_not_rolled_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c, old = _activated(tmp_path)
    _health(monkeypatch, lambda preempt: (False, "gate failed"))
    monkeypatch.setattr(steps, "restore_runners", lambda cycle, fallback: (False, "its runner is not healthy either"))
    out = steps.post_activation(c)
    assert c.release is not None
    assert out == Outcome(
        Result.REJECTED, Reason.RESTORE_UNHEALTHY,
        f"{c.release.name} failed after activation (gate failed); back on {old.name}: its runner is not healthy either",
    )


def test_a_resumed_release_falls_back_to_the_last_known_good_not_to_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c, old = _activated(tmp_path)
    release = c.release
    assert release is not None
    c.current, c.resumed = current_release(c.state), True  # as compare found it after a kill: current is new
    _health(monkeypatch, lambda preempt: (False, "gate failed"))
    out = steps.post_activation(c)
    assert out.result is Result.ROLLED_BACK and current_release(c.state) == old.resolve()


@pytest.mark.parametrize("fallback", ["none", "missing", "itself"])
def test_without_an_earlier_release_to_return_to_the_failure_is_rejected_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fallback: str
) -> None:
    c, _ = _activated(tmp_path)
    release = c.release
    assert release is not None
    c.current = None if fallback != "itself" else release
    c.mem.last_known_good = {"none": None, "missing": "gone.1", "itself": None}[fallback]
    _health(monkeypatch, lambda preempt: (False, "gate failed"))
    out = steps.post_activation(c)
    assert out == Outcome(Result.REJECTED, Reason.HEALTH_CHECK_FAILED, "gate failed; no earlier release to return to")
    assert current_release(c.state) == release.resolve()
    assert c.mem.quarantine == {c.release_id: 7}
    assert _events(c)[-1] == (str(Event.POST_CHECK_FAILED), {"release": release.name, "reason": "gate failed"})


def test_the_steps_run_in_the_documented_order_with_their_phase_timings() -> None:
    assert [(s.name, s.timing, s.after) for s in steps.STEPS] == [
        ("runners", "runnerSeconds", False),
        ("fetch-state", "fetchSeconds", False),
        ("verify-state", "verifySeconds", False),
        ("fetch-bundles", "fetchSeconds", False),
        ("verify-bundles", "verifySeconds", False),
        ("compare", None, False),
        ("stage", "stageSeconds", False),
        ("pre-check", "healthSeconds", False),
        ("runner-ports", None, False),
        ("switch", None, False),
        ("runner-gate", "runnerSeconds", False),
        ("post-check", "postCheckSeconds", False),
        ("report", "reportSeconds", True),
    ]
