"""Canary rollouts end to end: publish, device reports over a real `git daemon`, `takt rollout promote`.

The deploy repo is served by `git daemon` with receive-pack on (devices push their status refs
with the agent's own transport); promote runs as the real CLI in subprocesses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.report_git import commit_report, push_report
from compiler.build import build
from compiler.bundle import DesiredState
from compiler.bundle.report import Condition, RunnerHealth, StatusReport, openssh_public_key, seal
from compiler.publish import publish
from compiler.signing import keygen
from compiler.validate.pipeline import validate
from tests.agentkit import GitDaemon, git
from tests.conftest import copy_example

pytestmark = pytest.mark.slow  # git daemon, the CLI in subprocesses

DEP = "press-anomaly-muc"
CANARY, OTHERS = "ipc-press-2", ("ipc-press-1", "ipc-press-3")


class Fleet:
    def __init__(self, root: Path) -> None:
        self.root, self.spec = root, copy_example("press-line-anomaly", root / "spec")
        self.keys = {d: Ed25519PrivateKey.generate() for d in (CANARY, *OTHERS)}
        self.seq = dict.fromkeys(self.keys, 0)
        devices = self.spec / "specs" / "devices.yaml"
        text = devices.read_text()
        for d, k in self.keys.items():  # each device's declared key, as `takt agent keygen` prints it
            text = text.replace(f"  name: {d}\n", f"  name: {d}\n", 1)
            marker = f"  name: {d}\n"
            head, _, tail = text.partition(marker)
            spec_at = tail.index("spec:\n") + len("spec:\n")
            tail = tail[:spec_at] + f'  publicKey: "{openssh_public_key(k.public_key())}"\n' + tail[spec_at:]
            text = head + marker + tail
        devices.write_text(text)
        self.edit("specs/deployment.yaml", "window: 30m", "window: 1s")
        self.remote = root / "srv" / "deploy.git"
        self.remote.parent.mkdir(parents=True)
        git("init", "-q", "--bare", str(self.remote))
        self.private, _, _ = keygen(root / "keys")
        self.out = root / "out"
        self.daemon = GitDaemon(self.remote.parent, receive_pack=True).start()
        self.url = self.daemon.url

    def edit(self, rel: str, old: str, new: str) -> None:
        path = self.spec / rel
        assert old in path.read_text(), old
        path.write_text(path.read_text().replace(old, new))

    def publish(self, **kw):
        build(validate(self.spec), self.out, run_gates=False)
        return publish(self.out, self.url, "deploy", str(self.private), **kw)

    def state(self, device: str) -> DesiredState:
        return DesiredState.parse(self.show(f"devices/{device}/desired.json"))

    def show(self, path: str, rev: str = "deploy") -> bytes:
        return subprocess.run(
            ["git", "--git-dir", str(self.remote), "show", f"{rev}:{path}"], check=True, capture_output=True
        ).stdout

    def head(self) -> str:
        return git("--git-dir", str(self.remote), "rev-parse", "deploy").strip()

    def digest(self, device: str) -> str:
        return next(b.digest for b in self.state(device).bundles if b.name.startswith(DEP + "/"))

    def report(self, device: str, ready: bool, when: datetime, **runner) -> None:
        """The device's signed report of what it runs, pushed to refs/takt/status/<device>."""
        state = self.state(device)
        self.seq[device] += 1
        bundle = next(b for b in state.bundles if b.name.startswith(DEP + "/"))
        report = StatusReport(
            device=device,
            sequence=self.seq[device],
            time=when,
            desired_generation=state.generation,
            applied_generation=state.generation,
            bundles=state.bundles,
            conditions=(Condition("Ready", ready, "Applied" if ready else "RunnerNotReady"),),
            runners=(
                RunnerHealth(
                    deployment=DEP,
                    bundle=bundle.digest,
                    ready=ready,
                    reason="" if ready else "source press-vibration: not connected",
                    frames=runner.get("frames", 500),
                    inferences=runner.get("inferences", 500 if ready else 0),
                    errors=runner.get("errors", 0),
                    error_rate=runner.get("error_rate", 0.0 if ready else None),
                ),
            ),
        )
        statedir = self.root / "devices" / device
        statedir.mkdir(parents=True, exist_ok=True)
        commit_report(statedir, device, seal(report, self.keys[device]), self.seq[device], when)
        push_report(statedir, self.url, device, 60)

    def cli(self, command: str, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "compiler.cli.main", "rollout", command, str(self.spec), "--deploy-repo",
             self.url, "--key", str(self.private), *extra],
            capture_output=True, text=True, timeout=300, env={**os.environ, "NO_COLOR": "1"},
        )  # fmt: skip

    def promote(self, *extra: str) -> subprocess.CompletedProcess:
        return self.cli("promote", *extra)

    def stop(self) -> None:
        self.daemon.stop()


@pytest.fixture
def fleet(tmp_path: Path):
    f = Fleet(tmp_path)
    try:
        f.publish(create_branch=True)  # v1 everywhere: a Deployment no device ran goes out at once
        yield f
    finally:
        f.stop()


def _start_canary(fleet: Fleet) -> tuple[dict[str, str], dict[str, int]]:
    v1 = {d: fleet.digest(d) for d in (CANARY, *OTHERS)}
    gens = {d: fleet.state(d).generation for d in v1}
    fleet.edit("specs/deployment.yaml", "cpu: 500m", "cpu: 400m")  # a changed Deployment: new bundles
    res = fleet.publish()
    assert res.rollouts_started == [DEP] and res.changed == [CANARY]
    return v1, gens


def test_a_changed_deployment_goes_to_its_canary_only_and_a_second_publish_does_not_widen_it(fleet: Fleet):
    v1, gens = _start_canary(fleet)
    assert fleet.digest(CANARY) != v1[CANARY]
    assert all(fleet.digest(d) == v1[d] and fleet.state(d).generation == gens[d] for d in OTHERS)
    record = json.loads(fleet.show(f"rollouts/{DEP}.json"))
    assert record["phase"] == "canary" and record["spec"]["canary"]["devices"] == [CANARY]
    assert record["devices"][CANARY]["old"]["digest"] == v1[CANARY]
    assert record["generations"] == {CANARY: fleet.state(CANARY).generation}
    head = fleet.head()
    assert fleet.publish().commit is None and fleet.head() == head  # same specs: the rollout stays where it is
    status = fleet.cli("status", "--format", "json")
    assert status.returncode == 0, status.stderr
    rollout = json.loads(status.stdout)["rollouts"][0]
    assert (rollout["deployment"], rollout["phase"], rollout["action"]) == (DEP, "canary", "wait")
    assert rollout["devices"][0]["device"] == CANARY and rollout["devices"][0]["reason"] == "no report yet"
    md = fleet.cli("status", "--format", "markdown")
    assert md.returncode == 0 and f"### `{DEP}`: canary (wait)" in md.stdout and fleet.head() == head


def test_a_healthy_canary_is_promoted_to_all_in_one_commit_and_promote_is_idempotent(fleet: Fleet):
    v1, gens = _start_canary(fleet)
    v2 = fleet.digest(CANARY)
    time.sleep(1.2)
    fleet.report(CANARY, True, datetime.now(UTC))  # after the 1 s window
    before = fleet.head()
    done = fleet.promote()
    assert done.returncode == 0, done.stderr
    assert git("--git-dir", str(fleet.remote), "rev-list", "--count", f"{before}..deploy").strip() == "1"
    message = git("--git-dir", str(fleet.remote), "log", "-1", "--format=%B", "deploy")
    assert message.startswith(f"takt rollout promote {DEP}: promoted, 2 device(s)") and "canary gate held" in message
    assert fleet.digest(CANARY) == v2
    x86 = fleet.digest("ipc-press-1")
    assert x86 == v2 and fleet.state("ipc-press-1").generation == gens["ipc-press-1"] + 1
    assert fleet.digest("ipc-press-3") not in (v1["ipc-press-3"],)  # arm got its own new bundle
    assert json.loads(fleet.show(f"rollouts/{DEP}.json"))["phase"] == "promoted"
    head = fleet.head()
    again = fleet.promote()
    assert again.returncode == 0 and fleet.head() == head and "nothing to decide" in again.stderr
    after = fleet.publish()  # every device already runs the build: no state changes, the old bundles go
    assert after.changed == [] and set(after.removed_bundles) == set(v1.values())
    assert fleet.publish().commit is None


def test_a_canary_whose_runner_never_becomes_ready_is_aborted_and_others_never_see_the_bad_bundle(fleet: Fleet):
    v1, gens = _start_canary(fleet)
    bad = fleet.digest(CANARY)
    canary_gen = fleet.state(CANARY).generation
    time.sleep(1.2)
    fleet.report(CANARY, False, datetime.now(UTC))
    res = fleet.promote("--format", "json")
    assert res.returncode == 3, res.stderr  # aborted in this run
    out = json.loads(res.stdout)
    assert out["rollouts"][0]["action"] == "abort" and "runner not ready" in out["rollouts"][0]["reason"]
    assert fleet.digest(CANARY) == v1[CANARY] and fleet.state(CANARY).generation == canary_gen + 1
    message = git("--git-dir", str(fleet.remote), "log", "-1", "--format=%B", "deploy")
    assert message.startswith(f"takt rollout abort {DEP}: aborted, 1 device(s)")
    for d in OTHERS:  # in every commit of the branch, no other device's state ever named the bad bundle
        history = git("--git-dir", str(fleet.remote), "log", "-p", "deploy", "--", f"devices/{d}/desired.json")
        assert bad not in history and fleet.state(d).generation == gens[d]
    again = fleet.publish()  # the same specs again: the aborted rollout is not re-rolled, its bundles go
    assert again.changed == [] and bad in again.removed_bundles and fleet.digest(CANARY) == v1[CANARY]


def test_two_promotes_at_once_make_one_commit(fleet: Fleet):
    _start_canary(fleet)
    time.sleep(1.2)
    fleet.report(CANARY, True, datetime.now(UTC))
    before = fleet.head()
    cmd = [sys.executable, "-m", "compiler.cli.main", "rollout", "promote", str(fleet.spec), "--deploy-repo",
           fleet.url, "--key", str(fleet.private)]  # fmt: skip
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in procs]
    assert [code for code, _ in results] == [0, 0], results
    assert git("--git-dir", str(fleet.remote), "rev-list", "--count", f"{before}..deploy").strip() == "1"
    said = [err for _, err in results]
    winners = [err for err in said if "committed 1 decision" in err]
    assert winners, said
    # the other run lost the race (its push was refused: "changed nothing"), or started after the
    # winner's commit and found nothing left to decide; in the same second both make the same commit
    others = [err for err in said if err not in winners]
    assert len(winners) == 2 or all("changed nothing" in e or "nothing to decide: no commit" in e for e in others), said


def test_threat_a_planted_rollout_record_never_widens_a_rollout(fleet: Fleet, tmp_path: Path):
    v1, _ = _start_canary(fleet)
    work = tmp_path / "attacker"
    git("clone", "-q", "--branch", "deploy", str(fleet.remote), str(work))
    path = work / "rollouts" / f"{DEP}.json"
    doc = json.loads(path.read_text())
    doc["phase"] = "promoted"  # unsigned by the publishing key: must not hand the new bundles to everyone
    path.write_text(json.dumps(doc))
    git("commit", "-qam", "promote myself", cwd=work)
    git("push", "-q", "origin", "HEAD:deploy", cwd=work)
    res = fleet.promote()
    assert res.returncode == 0 and all(fleet.digest(d) == v1[d] for d in OTHERS)
    again = fleet.publish()
    assert all(fleet.digest(d) == v1[d] for d in OTHERS)
    assert f"rollouts/{DEP}.json" in again.repaired
    assert json.loads(fleet.show(f"rollouts/{DEP}.json"))["phase"] == "canary"
