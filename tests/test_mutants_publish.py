"""compiler/publish.py, fast: builds are made directly with `write_bundle` (no `takt build`), each test
publishes to its own bare repository in tmp_path and asserts exactly what lands on the branch — the
tree, the bytes, the signatures, the commit message, what is reported as changed or repaired — and
that a refused publish leaves the branch where it was (`make mutation`: every mutant of publish.py)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import git
import pytest

from compiler import publish as publish_module
from compiler.bundle import DESIRED, MANIFEST, SIGNATURE, Activation, DesiredState, load_public_key, write_bundle
from compiler.bundle.desired import sign, verify_signature
from compiler.deployrepo import Blob
from compiler.oci import PushedModel, RegistryAccess, RegistryError, RegistryRef
from compiler.publish import CommitSigning, PublishError, PublishResult, _is_repair, publish
from compiler.rollout.state import Phase, RolloutState, sealed
from compiler.signing import keygen, load_private_key

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
SOURCE = "0123456789abcdef0123"
BRANCH = "deploy"


def _git(*args: str, cwd: Path | None = None, check: bool = True) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=check, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    private, public, _ = keygen(tmp_path_factory.mktemp("keys") / "k")
    return private, public


class Deploy:
    """A build directory made by hand, a bare deploy repository, and a writer's view of it."""

    def __init__(self, tmp: Path, keys: tuple[Path, Path]) -> None:
        self.tmp = tmp
        self.out = tmp / "out"
        self.private, self.public = keys
        self.remote = tmp / "deploy.git"
        _git("init", "-q", "--bare", str(self.remote))
        self.url = str(self.remote)

    def bundle(self, name: str, files: dict[str, bytes], activation: Activation = Activation.RUN, **kw: Any) -> str:
        return write_bundle(
            self.out / "bundles", name, "edge-pc", files, {"by": "test"}, activation=activation, **kw
        ).digest

    def index(self, devices: dict[str, list[tuple[str, str]]], **extra: Any) -> None:
        doc = {"devices": {d: [{"name": n, "digest": g} for n, g in refs] for d, refs in devices.items()}, **extra}
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "index.json").write_text(json.dumps(doc))

    def publish(self, **kw: Any) -> PublishResult:
        kw.setdefault("now", NOW)
        return publish(build_dir=self.out, url=self.url, branch=BRANCH, key_ref=str(self.private), **kw)

    def head(self) -> str:
        return _git("--git-dir", str(self.remote), "rev-parse", BRANCH).strip()

    def tree(self) -> dict[str, str]:
        """path → mode of every entry on the branch."""
        lines = _git("--git-dir", str(self.remote), "ls-tree", "-r", BRANCH).splitlines()
        return {line.split("\t", 1)[1]: line.split()[0] for line in lines}

    def show(self, path: str) -> bytes:
        return subprocess.run(
            ["git", "--git-dir", str(self.remote), "show", f"{BRANCH}:{path}"], check=True, capture_output=True
        ).stdout

    def state(self, device: str) -> DesiredState:
        data = self.show(f"devices/{device}/{DESIRED}")
        assert verify_signature(data, self.show(f"devices/{device}/{SIGNATURE}"), [self.trusted()])
        return DesiredState.parse(data)

    def key(self):  # type: ignore[no-untyped-def]
        return load_private_key(str(self.private))

    def trusted(self):  # type: ignore[no-untyped-def]
        return load_public_key(self.public.read_bytes())

    def message(self) -> str:
        return _git("--git-dir", str(self.remote), "log", "-1", "--format=%B", BRANCH).strip("\n")

    def attack(self, change) -> None:  # type: ignore[no-untyped-def]
        """A writer without the key: clone, change the files, commit and push."""
        co = self.tmp / f"attacker-{len(list(self.tmp.glob('attacker-*')))}"
        _git("clone", "-q", "--branch", BRANCH, self.url, str(co))
        change(co)
        _git("add", "-A", cwd=co)
        _git("-c", "user.email=m@x.invalid", "-c", "user.name=m", "commit", "-q", "-m", "m", cwd=co)
        _git("push", "-q", "origin", f"HEAD:{BRANCH}", cwd=co)


@pytest.fixture
def d(tmp_path: Path, keys: tuple[Path, Path]) -> Deploy:
    return Deploy(tmp_path, keys)


def test_the_options_crossing_into_publish_are_frozen_values() -> None:
    signing = CommitSigning(Path("/k"))
    assert signing == CommitSigning(Path("/k")) and hash(signing) == hash(CommitSigning(Path("/k")))
    with pytest.raises(dataclasses.FrozenInstanceError):
        signing.ssh_key = None  # type: ignore[misc]
    options = publish_module._Options(timedelta(days=1), False, NOW, "u", None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.now = NOW  # type: ignore[misc]


def test_is_repair_separates_publishes_own_changes_from_a_writers() -> None:
    a, b = Blob("100644", "1" * 40), Blob("100644", "2" * 40)
    link = Blob("120000", "3" * 40)
    res = PublishResult(None, changed=["dev-a"], removed_bundles=["gone"])
    kept = {"keep", "dev-a", "dev-b"}

    def rep(path: str, old: Blob | None, new: Blob | None, records: frozenset[str] = frozenset({"dep"})) -> bool:
        return _is_repair(path, old, new, res, kept, set(records))

    assert not rep("bundles/keep/f", a, a)
    assert rep("bundles/keep/f", link, None) and rep("x", link, a)
    assert rep("rollouts/other.json", a, b) and rep("rollouts/other.json.sig", a, None)
    assert not rep("rollouts/dep.json", a, b) and not rep("rollouts/dep.json.sig", a, b)
    assert not rep("rollouts/dep.json", None, b) and not rep("rollouts/new.json", None, b)
    assert rep("bundles/keep/f", None, a) and rep(f"devices/dev-b/{DESIRED}", None, a)
    assert not rep(f"devices/dev-a/{DESIRED}", None, a)  # a changed device
    assert not rep("bundles/new/f", None, a) and not rep("clusters/keep/f", None, a) and not rep("keep", None, a)
    assert not rep(f"devices/dev-a/{DESIRED}", a, b) and not rep(f"devices/dev-a/{SIGNATURE}", a, b)
    assert rep("devices/dev-a/other", a, b) and rep(f"devices/dev-b/{SIGNATURE}", a, b)
    assert not rep("bundles/gone/f", a, None) and rep("bundles/keep/f", a, None)
    assert not rep("clusters/dev-a/k.yaml", a, b) and rep("clusters/dev-b/k.yaml", a, b)
    assert rep("devices", a, None) and rep("clusters", a, None)
    assert not rep("devices/keep", None, a) and not rep("bundles/keep", None, a)  # a top-level name: never kept
    assert rep("rollouts/dep/x.json", a, None)  # a record is a file of rollouts/, named for its deployment


def _two_devices(d: Deploy) -> tuple[str, str]:
    x = d.bundle("line/a", {"model.onnx": b"model-x", "bin/run": b"#!/bin/sh\n"}, executable=frozenset({"bin/run"}))
    y = d.bundle("cell/b", {"model.onnx": b"model-y"})
    d.index({"dev-a": [("line/a", x), ("cell/b", y)], "dev-b": [("cell/b", y)]}, sourceCommit=SOURCE)
    return x, y


def test_a_first_publish_writes_exactly_the_build_signed_in_one_commit(d: Deploy) -> None:
    x, y = _two_devices(d)
    with pytest.raises(PublishError, match="does not exist"):
        d.publish()
    res = d.publish(create_branch=True, now=NOW.replace(microsecond=654321), validity=timedelta(days=3))
    assert res.commit == d.head() and res.changed == ["dev-a", "dev-b"]
    assert res.added_bundles == sorted([x, y]) and res.removed_bundles == [] and res.repaired == []
    assert res.pushed_models == [] and res.rollouts_started == [] and res.rollouts == {}
    assert d.tree() == {
        f"bundles/{x}/{MANIFEST}": "100644",
        f"bundles/{x}/bin/run": "100755",
        f"bundles/{x}/model.onnx": "100644",
        f"bundles/{y}/{MANIFEST}": "100644",
        f"bundles/{y}/model.onnx": "100644",
        f"devices/dev-a/{DESIRED}": "100644",
        f"devices/dev-a/{SIGNATURE}": "100644",
        f"devices/dev-b/{DESIRED}": "100644",
        f"devices/dev-b/{SIGNATURE}": "100644",
    }
    assert d.show(f"bundles/{x}/model.onnx") == b"model-x" and d.show(f"bundles/{x}/bin/run") == b"#!/bin/sh\n"
    assert d.show(f"bundles/{y}/{MANIFEST}") == (d.out / "bundles" / y / MANIFEST).read_bytes()
    a = d.state("dev-a")
    assert (a.device, a.generation, a.expires, a.source_commit) == ("dev-a", 1, NOW + timedelta(days=3), SOURCE)
    assert [(r.name, r.digest) for r in a.bundles] == [("line/a", x), ("cell/b", y)]
    assert [r.digest for r in d.state("dev-b").bundles] == [y]
    assert d.message() == "takt publish 0123456789ab: 2 device(s), +2 -0 bundle(s)"
    assert _git("--git-dir", str(d.remote), "log", "-1", "--format=%an <%ae> %cn <%ce> %P", BRANCH).strip() == (
        "takt <takt@localhost> takt <takt@localhost>"
    )


def test_the_same_build_again_makes_no_commit_until_states_near_their_expiry(d: Deploy) -> None:
    _two_devices(d)
    validity = timedelta(days=2)
    first = d.publish(create_branch=True, validity=validity)
    again = d.publish(now=NOW + timedelta(days=1) - timedelta(seconds=1), validity=validity)
    assert again == PublishResult(None) and d.head() == first.commit
    refreshed = d.publish(now=NOW + timedelta(days=1), validity=validity)  # exactly half the validity left
    assert refreshed.commit == d.head() and refreshed.changed == ["dev-a", "dev-b"]
    assert refreshed.added_bundles == [] and refreshed.removed_bundles == [] and refreshed.repaired == []
    state = d.state("dev-a")
    assert state.generation == 2 and state.expires == NOW + timedelta(days=3)
    assert _git("--git-dir", str(d.remote), "rev-parse", f"{BRANCH}^").strip() == first.commit
    assert d.message() == "takt publish 0123456789ab: 2 device(s), +0 -0 bundle(s)"


def test_times_are_whole_seconds_before_they_are_compared(d: Deploy) -> None:
    _two_devices(d)
    validity = timedelta(seconds=2) - timedelta(microseconds=2)  # half of it: 999,999 µs
    first = d.publish(create_branch=True, now=NOW.replace(microsecond=999_999), validity=validity)
    assert d.state("dev-a").expires == NOW + timedelta(seconds=1)  # NOW + 1.999998 s, whole seconds
    # 1 s left is more than half: kept (had `now` kept its microseconds, 0.999999 s would not be)
    assert d.publish(now=NOW.replace(microsecond=1), validity=validity).commit is None
    assert d.head() == first.commit


def test_a_file_where_publish_keeps_a_bundle_folder_is_repaired(d: Deploy) -> None:
    _, y = _two_devices(d)
    d.publish(create_branch=True)

    def flatten(co: Path) -> None:
        for p in sorted((co / "bundles" / y).rglob("*"), reverse=True):
            p.unlink()
        (co / "bundles" / y).rmdir()
        (co / "bundles" / y).write_text("not a folder")

    d.attack(flatten)
    res = d.publish()
    assert res.repaired == [f"bundles/{y}"] and res.added_bundles == [y] and res.removed_bundles == []
    assert d.show(f"bundles/{y}/model.onnx") == b"model-y"


def test_a_changed_device_gets_the_next_generation_and_its_old_bundle_is_pruned(d: Deploy) -> None:
    x, y = _two_devices(d)
    d.publish(create_branch=True)
    z = d.bundle("line/a", {"model.onnx": b"model-z"})
    d.index({"dev-a": [("line/a", z), ("cell/b", y)], "dev-b": [("cell/b", y)]})  # no source commit
    res = d.publish(now=NOW + timedelta(hours=1))
    assert res.changed == ["dev-a"] and res.added_bundles == [z] and res.removed_bundles == [x]
    assert res.repaired == []
    assert not any(p.startswith(f"bundles/{x}/") for p in d.tree()) and f"bundles/{z}/model.onnx" in d.tree()
    assert d.state("dev-a").generation == 2 and d.state("dev-b").generation == 1
    assert d.state("dev-a").source_commit is None
    assert d.state("dev-a").expires == NOW + timedelta(days=7, hours=1)  # the default validity: 7 days
    assert d.message() == "takt publish unknown: 1 device(s), +1 -1 bundle(s)"


def test_a_device_leaving_the_fleet_gets_a_signed_empty_state_and_planted_folders_none(d: Deploy) -> None:
    x, y = _two_devices(d)
    d.publish(create_branch=True)

    def plant(co: Path) -> None:
        for dev in ("dev-planted", "Bad..id"):
            (co / "devices" / dev).mkdir()
            (co / "devices" / dev / DESIRED).write_text("{}")
        (co / "devices" / "loose").write_text("a file, not a folder")

    d.attack(plant)
    d.index({"dev-a": [("line/a", x), ("cell/b", y)]}, sourceCommit=SOURCE)
    res = d.publish()
    assert res.changed == ["dev-b"] and res.removed_bundles == [] and res.added_bundles == []
    gone = d.state("dev-b")
    assert gone.bundles == () and gone.generation == 2
    assert sorted(p for p in d.tree() if p.startswith("devices/")) == [
        *(f"devices/{dev}/{name}" for dev in ("dev-a", "dev-b") for name in (DESIRED, SIGNATURE)),
    ]
    assert res.repaired == [f"devices/Bad..id/{DESIRED}", f"devices/dev-planted/{DESIRED}", "devices/loose"]
    # once gone, it stays signed-empty; a later publish leaves it as it is
    assert d.publish(now=NOW + timedelta(hours=1)).commit is None


def test_threat_a_leaving_device_whose_folder_a_writer_deleted_still_gets_its_signed_empty_state(d: Deploy) -> None:
    """Without it the device would run its last bundle until that state expired (the 7-day validity)."""
    x, y = _two_devices(d)
    d.publish(create_branch=True)
    d.attack(lambda co: shutil.rmtree(co / "devices" / "dev-b"))  # a writer without the key
    d.index({"dev-a": [("line/a", x), ("cell/b", y)]}, sourceCommit=SOURCE)  # dev-b leaves the build
    res = d.publish()
    gone = d.state("dev-b")
    assert gone.bundles == () and gone.generation == 2 and "dev-b" in res.changed
    assert d.publish(now=NOW + timedelta(hours=1)).commit is None  # and it stays signed-empty


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "no usable build in .*out \\(run takt build\\): "),
        ("{not json", "no usable build"),
        ('{"devices": []}', "no usable build in .*: devices is not a mapping"),
        ("[]", "no usable build in .*list indices"),
        ("dir", "no usable build in .*is not a regular file"),
        ('{"nodevices": {}}', "no usable build in .*'devices'"),
        ('{"devices": {"Bad Id": []}}', "build index names an invalid device or digest \\('Bad Id'\\)"),
        ('{"devices": {"dev-a": [{"name": "a/b", "digest": "ABC"}]}}', "invalid device or digest \\('dev-a'\\)"),
        ('{"devices": {}, "rollouts": {"dep": {"strategy": "blue"}}}', "invalid rollouts section \\(unknown strat"),
        ('{"devices": {}, "rollouts": {"dep": 1}}', "build index has an invalid rollouts section .*; run takt build"),
        ('{"devices": {}, "rollouts": {"dep": {}}}', "invalid rollouts section \\('strategy'\\)"),
        ('{"devices": {}, "rollouts": ["dep"]}', "invalid rollouts section \\(.*has no attribute 'items'"),
    ],
)
def test_an_unusable_build_index_is_refused_and_nothing_is_pushed(d: Deploy, content: str | None, reason: str) -> None:
    _two_devices(d)
    if content is None:
        (d.out / "index.json").unlink()
    elif content == "dir":
        (d.out / "index.json").unlink()
        (d.out / "index.json").mkdir()
    else:
        (d.out / "index.json").write_text(content)
    with pytest.raises(PublishError, match=reason):
        d.publish(create_branch=True)
    assert _git("--git-dir", str(d.remote), "branch", "--list").strip() == ""


def test_the_index_is_read_up_to_64_mib_and_not_a_byte_more(d: Deploy) -> None:
    d.out.mkdir(parents=True)
    big = d.out / "index.json"
    with big.open("wb") as fh:
        fh.truncate(64 << 20)
    with pytest.raises(PublishError, match="no usable build") as at_limit:
        d.publish(create_branch=True)
    assert "over the limit" not in str(at_limit.value)  # read, and refused as JSON
    with big.open("r+b") as fh:
        fh.truncate((64 << 20) + 1)
    with pytest.raises(PublishError, match="over the limit of 67,108,864 bytes"):
        d.publish(create_branch=True)


def test_an_index_link_is_refused(d: Deploy) -> None:
    _two_devices(d)
    os.replace(d.out / "index.json", d.tmp / "elsewhere.json")
    (d.out / "index.json").symlink_to(d.tmp / "elsewhere.json")
    with pytest.raises(PublishError, match="no usable build"):
        d.publish(create_branch=True)


def test_a_build_bundle_that_does_not_verify_publishes_nothing(d: Deploy) -> None:
    x, _ = _two_devices(d)
    first = d.publish(create_branch=True)
    (d.out / "bundles" / x / "model.onnx").write_bytes(b"tampered")
    (d.out / "bundles" / x / "zz-stray.txt").write_bytes(b"a second problem")
    with pytest.raises(
        PublishError, match=f"^bundle {x[:16]} in {d.out} does not verify: model.onnx: 8 bytes, manifest says 7$"
    ):
        d.publish(now=NOW + timedelta(days=6))  # states would be refreshed: still nothing is pushed
    assert d.head() == first.commit
    (d.out / "bundles" / x / MANIFEST).write_text("{}")
    with pytest.raises(PublishError, match="does not verify"):
        d.publish()


def test_a_writers_changes_are_repaired_and_listed_in_the_commit(d: Deploy) -> None:
    x, y = _two_devices(d)
    first = d.publish(create_branch=True)
    before = d.tree()

    def tamper(co: Path) -> None:
        (co / "bundles" / x / "model.onnx").write_bytes(b"evil")
        (co / "bundles" / y / "model.onnx").unlink()
        (co / "bundles" / x / "bin" / "run").chmod(0o644)
        (co / "bundles" / y / "stray.txt").write_text("stray")
        (co / "bundles" / y / "link").symlink_to("/etc/passwd")
        (co / "devices" / "dev-b" / SIGNATURE).write_bytes(b"not a signature")
        (co / "README").write_text("hello")

    d.attack(tamper)
    res = d.publish()
    repaired = sorted(
        [
            "README",
            f"bundles/{x}/bin/run",
            f"bundles/{x}/model.onnx",
            f"bundles/{y}/link",
            f"bundles/{y}/model.onnx",
            f"bundles/{y}/stray.txt",
            f"devices/dev-b/{SIGNATURE}",
        ]
    )
    assert res.repaired == repaired and res.changed == [] and res.added_bundles == [] and res.removed_bundles == []
    assert d.tree() == before and d.show(f"bundles/{x}/model.onnx") == b"model-x"
    assert d.state("dev-b").generation == 1  # the same state, signed again: no new generation
    assert _git("--git-dir", str(d.remote), "rev-parse", f"{BRANCH}^^").strip() == first.commit
    listed = "".join(f"\n  {p!r}" for p in repaired)
    assert d.message() == (
        "takt publish 0123456789ab: 0 device(s), +0 -0 bundle(s)\n\n"
        f"Repaired 7 path(s) that differed from the build:{listed}"
    )


def test_a_deleted_device_folder_is_restored_and_only_a_writers_own_paths_are_repairs(d: Deploy) -> None:
    _two_devices(d)
    d.publish(create_branch=True)
    before = d.tree()

    def delete(co: Path) -> None:
        for name in (DESIRED, SIGNATURE):
            (co / "devices" / "dev-b" / name).unlink()
        (co / "stray" / "dev-b").mkdir(parents=True)
        (co / "stray" / "dev-b" / "file").write_text("x")

    d.attack(delete)
    res = d.publish()
    assert res.repaired == ["stray/dev-b/file"] and res.changed == [] and d.tree() == before
    assert d.state("dev-b").generation == 1


def test_at_most_50_repaired_paths_are_listed(d: Deploy) -> None:
    _two_devices(d)
    d.publish(create_branch=True)
    d.attack(lambda co: [(co / f"stray{n:02}").write_text("x") for n in range(51)])
    res = d.publish()
    assert len(res.repaired) == 51
    message = d.message()
    assert "Repaired 51 path(s) that differed from the build:" in message
    assert "'stray49'" in message and "'stray50'" not in message


def test_the_fleet_memory_file_stays_unless_it_is_a_link(d: Deploy) -> None:
    _two_devices(d)
    d.publish(create_branch=True)

    def seen(co: Path) -> None:
        (co / "fleet").mkdir()
        (co / "fleet" / "seen.json").write_text('{"seen": 1}')

    d.attack(seen)
    assert d.publish().commit is None  # kept as it is: nothing to repair
    assert d.show("fleet/seen.json") == b'{"seen": 1}'

    def link(co: Path) -> None:
        (co / "fleet" / "seen.json").unlink()
        (co / "fleet" / "seen.json").symlink_to("/etc/passwd")

    d.attack(link)
    res = d.publish()
    assert res.repaired == ["fleet/seen.json"] and "fleet/seen.json" not in d.tree()


def test_a_cluster_bundle_gets_its_cluster_files_with_the_public_url(d: Deploy) -> None:
    c = d.bundle("srv/it", {"deploy.yaml": b"kind: Deployment\n"}, activation=Activation.CLUSTER)
    r = d.bundle("line/a", {"model.onnx": b"m"})
    d.index({"it-1": [("srv/it", c)], "dev-a": [("line/a", r)]}, sourceCommit=SOURCE)
    res = d.publish(create_branch=True, cluster_url="https://user:token@git.example/deploy.git")
    clusters = sorted(p for p in d.tree() if p.startswith("clusters/"))
    assert clusters and all(p.startswith("clusters/it-1/") for p in clusters)
    text = b"".join(d.show(p) for p in clusters).decode()
    assert "https://git.example/deploy.git" in text and "token" not in text and "verify" not in text
    assert f"../../bundles/{c}" in text and res.repaired == []
    # the default cluster URL is the push URL
    d2 = Deploy(d.tmp / "second", (d.private, d.public))
    d2.out = d.out
    d2.publish(create_branch=True)
    text2 = b"".join(d2.show(p) for p in d2.tree() if p.startswith("clusters/")).decode()
    assert str(d2.remote) in text2


def test_a_signed_commit_and_clusters_told_to_verify(d: Deploy) -> None:
    assert CommitSigning().git_args() == []
    key = d.tmp / "id_ed25519"
    assert CommitSigning(key).git_args() == ["-c", "gpg.format=ssh", "-c", f"user.signingKey={key}"]
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    c = d.bundle("srv/it", {"deploy.yaml": b"kind: Deployment\n"}, activation=Activation.CLUSTER)
    d.index({"it-1": [("srv/it", c)]})
    d.publish(create_branch=True, commit_signing=CommitSigning(key))
    assert "-----BEGIN SSH SIGNATURE-----" in _git("--git-dir", str(d.remote), "cat-file", "commit", BRANCH)
    text = b"".join(d.show(p) for p in d.tree() if p.startswith("clusters/")).decode()
    assert "verify" in text


def _rollout(d: Deploy, first: str, *, devices: tuple[str, ...] = ("dev-a",)) -> dict[str, Any]:
    spec = {"strategy": "canary", "canary": {"devices": list(devices), "window": 60, "maxErrorRate": 0.1}}
    d.index(
        {"dev-a": [("dep/edge", first)], "dev-b": [("dep/edge", first)]}, sourceCommit=SOURCE, rollouts={"dep": spec}
    )
    return spec


def test_a_changed_deployment_starts_a_rollout_and_keeps_the_old_bundle_from_the_branch(d: Deploy) -> None:
    new = d.bundle("dep/edge", {"model.onnx": b"v2"})
    # the kept bundle sorts first, so the build's bundle is still copied after it
    old = next(g for n in range(64) if (g := d.bundle("dep/edge", {"model.onnx": b"v1", "n": b"%d" % n})) < new)
    _rollout(d, old)
    first = d.publish(create_branch=True)  # a new deployment: out at once, no rollout
    assert (
        first.rollouts_started == [] and first.rollouts == {} and not any(p.startswith("rollouts/") for p in d.tree())
    )
    _rollout(d, new)
    os.rename(d.out / "bundles" / old, d.tmp / "old-bundle")  # the build no longer has it; the branch does
    res = d.publish(now=NOW + timedelta(minutes=1))
    assert res.rollouts_started == ["dep"] and res.rollouts == {"dep": "canary"}
    assert res.changed == ["dev-a"] and res.added_bundles == [new] and res.removed_bundles == [] and res.repaired == []
    assert [r.digest for r in d.state("dev-a").bundles] == [new]
    assert [r.digest for r in d.state("dev-b").bundles] == [old]
    assert d.show(f"bundles/{old}/model.onnx") == b"v1"
    assert {p for p in d.tree() if p.startswith(f"bundles/{old}/")} == {
        f"bundles/{old}/{MANIFEST}", f"bundles/{old}/model.onnx", f"bundles/{old}/n",
    }  # fmt: skip
    assert d.show(f"bundles/{new}/model.onnx") == b"v2"
    record = RolloutState.parse(d.show("rollouts/dep.json"))
    assert verify_signature(d.show("rollouts/dep.json"), d.show("rollouts/dep.json.sig"), [d.trusted()])
    assert record.phase.value == "canary" and record.generations == {"dev-a": 2}
    assert d.message() == (
        "takt publish 0123456789ab: 1 device(s), +1 -0 bundle(s)\n\nRollout of dep started: canary step on dev-a"
    )
    # the same build again: the record's bytes and signature are kept, nothing to commit
    again = d.publish(now=NOW + timedelta(minutes=2))
    assert again.commit is None
    # a signed record that equals what publish would write is kept byte for byte, even laid out otherwise
    spaced = json.dumps(json.loads(d.show("rollouts/dep.json")), indent=2).encode()
    signed = sign(spaced, d.key())
    d.attack(lambda co: [(co / "rollouts" / "dep.json").write_bytes(spaced),
                         (co / "rollouts" / "dep.json.sig").write_bytes(signed)])  # fmt: skip
    assert d.publish(now=NOW + timedelta(minutes=2)).commit is None and d.show("rollouts/dep.json") == spaced
    # a record whose signature does not verify is not believed: the rollout begins again, both files repaired
    d.attack(lambda co: (co / "rollouts" / "dep.json.sig").write_bytes(b"forged"))
    res = d.publish(now=NOW + timedelta(minutes=3))
    assert res.repaired == ["rollouts/dep.json", "rollouts/dep.json.sig"] and res.rollouts_started == ["dep"]


def test_a_step_of_more_than_20_devices_is_named_by_its_first_20(d: Deploy) -> None:
    devices = [f"dev-{n:02}" for n in range(22)]
    spec = {"strategy": "canary", "canary": {"devices": devices[:21], "window": 60, "maxErrorRate": 0.1}}

    def index(digest: str) -> None:
        d.index({dev: [("dep/edge", digest)] for dev in devices}, sourceCommit=SOURCE, rollouts={"dep": spec})

    index(d.bundle("dep/edge", {"model.onnx": b"v1"}))
    d.publish(create_branch=True)
    index(d.bundle("dep/edge", {"model.onnx": b"v2"}))
    res = d.publish()
    assert res.rollouts_started == ["dep"] and res.changed == devices[:21]
    assert d.message().endswith(f"\n\nRollout of dep started: canary step on {', '.join(devices[:20])}")


def test_a_running_rollout_keeps_both_bundles_and_a_finished_one_only_the_new(d: Deploy) -> None:
    both = ("dev-a", "dev-b")
    v1 = d.bundle("dep/edge", {"model.onnx": b"v1"})
    _rollout(d, v1, devices=both)
    d.publish(create_branch=True)
    v2 = d.bundle("dep/edge", {"model.onnx": b"v2"})
    _rollout(d, v2, devices=both)
    os.rename(d.out / "bundles" / v1, d.tmp / "v1")
    res = d.publish()
    assert res.changed == ["dev-a", "dev-b"] and res.removed_bundles == [] and res.added_bundles == [v2]
    assert f"bundles/{v1}/model.onnx" in d.tree()  # no device runs it: an abort would give it back
    # a new build while the canary runs: the rollout begins again from v2, its record replaced
    v3 = d.bundle("dep/edge", {"model.onnx": b"v3"})
    _rollout(d, v3, devices=both)
    res = d.publish(now=NOW + timedelta(minutes=1))
    assert res.rollouts_started == ["dep"] and res.removed_bundles == [v1] and res.added_bundles == [v3]
    record = RolloutState.parse(d.show("rollouts/dep.json"))
    assert {dev: (b.old.digest if b.old else None, b.new.digest) for dev, b in record.devices.items()} == {
        "dev-a": (v2, v3), "dev-b": (v2, v3),
    }  # fmt: skip
    assert record.started == NOW + timedelta(minutes=1) and record.generations == {"dev-a": 3, "dev-b": 3}
    # `takt rollout promote` (who holds the key) promotes it: the old side is pruned, not a repair
    promoted = sealed(record.advanced(Phase.PROMOTED, NOW + timedelta(minutes=2), "judged"), d.key())
    d.attack(lambda co: [(co / "rollouts" / "dep.json").write_bytes(promoted[0]),
                         (co / "rollouts" / "dep.json.sig").write_bytes(promoted[1])])  # fmt: skip
    res = d.publish(now=NOW + timedelta(minutes=3))
    assert res.rollouts == {"dep": "promoted"} and res.removed_bundles == [v2] and res.repaired == []
    assert res.rollouts_started == [] and d.show("rollouts/dep.json") == promoted[0]


def test_a_kept_bundle_damaged_on_the_branch_publishes_nothing(d: Deploy) -> None:
    old = d.bundle("dep/edge", {"model.onnx": b"v1", "extra.txt": b"e"})
    _rollout(d, old)
    first = d.publish(create_branch=True)
    d.attack(lambda co: (co / "bundles" / old / "extra.txt").unlink())
    _rollout(d, d.bundle("dep/edge", {"model.onnx": b"v2"}))
    os.rename(d.out / "bundles" / old, d.tmp / "old-bundle")
    with pytest.raises(PublishError, match=f"bundle {old[:16]} on the branch lacks 'extra.txt'; nothing was published"):
        d.publish()
    d.attack(lambda co: (co / "bundles" / old / MANIFEST).write_text("{}"))
    with pytest.raises(
        PublishError, match=f"bundle {old[:16]} is not intact.*\\(devices outside a rollout step keep it\\)$"
    ):
        d.publish()
    assert _git("--git-dir", str(d.remote), "rev-parse", f"{BRANCH}~2").strip() == first.commit


def test_a_kept_file_that_became_a_link_on_the_branch_publishes_nothing(d: Deploy) -> None:
    old = d.bundle("dep/edge", {"model.onnx": b"v1", "extra.txt": b"e"})
    _rollout(d, old)
    d.publish(create_branch=True)

    def link(co: Path) -> None:
        (co / "bundles" / old / "extra.txt").unlink()
        (co / "bundles" / old / "extra.txt").symlink_to("/etc/passwd")

    d.attack(link)
    _rollout(d, d.bundle("dep/edge", {"model.onnx": b"v2"}))
    os.rename(d.out / "bundles" / old, d.tmp / "old-bundle")
    with pytest.raises(PublishError, match=r"lacks 'extra\.txt'"):
        d.publish()


def test_a_refused_push_publishes_nothing_and_says_why(d: Deploy) -> None:
    _two_devices(d)
    first = d.publish(create_branch=True)
    hook = d.remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho protected branch >&2\nexit 1\n")
    hook.chmod(0o755)
    with pytest.raises(
        PublishError, match=f"push to {d.url} deploy was refused \\(diverged or protected\\?\\): .*protected"
    ):
        d.publish(now=NOW + timedelta(days=6))
    assert d.head() == first.commit


def test_write_failures_become_publish_errors(d: Deploy, monkeypatch: pytest.MonkeyPatch) -> None:
    _two_devices(d)

    def full(*_a: object) -> object:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(publish_module, "write_tree", full)
    with pytest.raises(
        PublishError, match=r"^cannot write the deploy tree \(No space left on device\); nothing was published$"
    ):
        d.publish(create_branch=True)

    def bare(*_a: object) -> object:
        raise OSError("disk gone")

    monkeypatch.setattr(publish_module, "write_tree", bare)
    with pytest.raises(PublishError, match=r"^cannot write the deploy tree \(disk gone\); nothing"):
        d.publish(create_branch=True)

    def broken(*_a: object) -> object:
        raise git.GitCommandError(["git", "mktree"], 128, stderr="fatal: object store broken")

    monkeypatch.setattr(publish_module, "write_tree", broken)
    with pytest.raises(
        PublishError, match=r"^cannot write the deploy tree \(.*object store broken.*\); nothing was published$"
    ):
        d.publish(create_branch=True)
    assert _git("--git-dir", str(d.remote), "branch", "--list").strip() == ""


def test_models_are_pushed_before_the_branch_moves(d: Deploy, monkeypatch: pytest.MonkeyPatch) -> None:
    _two_devices(d)
    calls: list[tuple[dict[str, Path], RegistryRef, RegistryAccess]] = []
    pushed = [PushedModel("a" * 64, "reg/x@sha256:" + "a" * 64, True)]

    def fake(models: dict[str, Path], ref: RegistryRef, access: RegistryAccess) -> list[PushedModel]:
        calls.append((models, ref, access))
        return pushed

    monkeypatch.setattr(publish_module, "push_models", fake)
    ref = RegistryRef("reg.local:5000", "takt/models")
    res = d.publish(create_branch=True, model_registry=ref)
    assert res.pushed_models == pushed and calls == [({}, ref, RegistryAccess())]  # no models folder: none
    (d.out / "models").mkdir()
    (d.out / "models" / ("b" * 64)).write_bytes(b"weights")
    access = RegistryAccess(insecure_http=True)
    res = d.publish(model_registry=ref, registry_access=access)
    assert res.commit is None and res.pushed_models == pushed  # pushed even when the branch is unchanged
    assert calls[1] == ({"b" * 64: d.out / "models" / ("b" * 64)}, ref, access)

    def refuse(*_a: object) -> list[PushedModel]:
        raise RegistryError("reg.local:5000 refused the upload")

    monkeypatch.setattr(publish_module, "push_models", refuse)
    with pytest.raises(PublishError, match=r"^reg.local:5000 refused the upload; nothing was published$"):
        d.publish(model_registry=ref, now=NOW + timedelta(days=6))
    assert len(_git("--git-dir", str(d.remote), "log", "--format=%H", BRANCH).split()) == 1
