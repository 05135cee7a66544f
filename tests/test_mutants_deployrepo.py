"""compiler/deployrepo.py, fast and direct: a real `git` on repositories in tmp_path, no build and no publish.
What the deploy branch holds is data written by people who may not hold the key, so each reader is tested
at its bound and against the lie it must not believe (`make mutation`: every mutant of deployrepo.py)."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import git
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from compiler import deployrepo as dr
from compiler.bundle import DESIRED, MANIFEST, SIGNATURE, Activation, BundleRef, DesiredState, write_bundle
from compiler.bundle.desired import MAX_DESIRED_BYTES, sign
from compiler.clusters import ClusterSource
from compiler.rollout.state import CanaryStep, DeviceBundles, Phase, RolloutSpec, RolloutState, sealed, signature_path

BRANCH = "deploy"
EXPIRES = datetime(2027, 1, 1, tzinfo=UTC)
DIGEST = "a" * 64


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


class Writer:
    """A work tree that commits files to the branch of a bare `remote`, as anyone with push rights may."""

    def __init__(self, tmp: Path) -> None:
        self.remote = tmp / "remote.git"
        _git("init", "-q", "--bare", str(self.remote), cwd=tmp)
        self.work = tmp / "writer"
        _git("init", "-q", "-b", BRANCH, str(self.work), cwd=tmp)
        _git("remote", "add", "origin", str(self.remote), cwd=self.work)

    def commit(self, files: dict[str, bytes | None], message: str = "m") -> str:
        for path, data in files.items():
            target = self.work / path
            if data is None:
                target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        _git("add", "-A", cwd=self.work)
        _git("-c", "user.email=w@x.invalid", "-c", "user.name=w", "commit", "-q", "--allow-empty", "-m", message,
             cwd=self.work)  # fmt: skip
        _git("push", "-q", "origin", f"HEAD:{BRANCH}", cwd=self.work)
        return _git("rev-parse", "HEAD", cwd=self.work).strip()


@pytest.fixture
def writer(tmp_path: Path) -> Writer:
    return Writer(tmp_path)


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _state(device: str, generation: int) -> bytes:
    return DesiredState(device, generation, EXPIRES, (BundleRef("line", DIGEST),)).to_bytes()


def _signed(device: str, generation: int, key: Ed25519PrivateKey, *, on: str | None = None) -> dict[str, bytes]:
    """The state and its signature, placed under `on`'s folder (the device's own unless told)."""
    data = _state(device, generation)
    folder = f"devices/{on or device}"
    return {f"{folder}/{DESIRED}": data, f"{folder}/{SIGNATURE}": sign(data, key)}


def _clone(writer: Writer, tmp: Path, name: str = "clone") -> tuple[git.Repo, str | None]:
    return dr.clone(str(writer.remote), BRANCH, tmp / name, create=False)


# --- clone -------------------------------------------------------------------------------------------------------


def test_a_clone_is_bare_at_the_branch_head(writer: Writer, tmp_path: Path) -> None:
    head = writer.commit({"a.txt": b"a"})
    repo, got = _clone(writer, tmp_path)
    assert got == head and repo.bare and not (tmp_path / "clone" / "a.txt").exists()
    assert repo.git.rev_parse("HEAD") == head


def test_a_missing_branch_is_refused_unless_asked_to_start_it(writer: Writer, tmp_path: Path) -> None:
    with pytest.raises(dr.PublishError) as info:
        _clone(writer, tmp_path)
    assert str(info.value) == (f"branch {BRANCH!r} does not exist in {writer.remote} (use --create-branch to start it)")
    repo, head = dr.clone(str(writer.remote), BRANCH, tmp_path / "new", create=True)
    assert head is None and repo.bare and [r.name for r in repo.remotes] == ["origin"]
    assert repo.remotes.origin.url == str(writer.remote)


def test_an_unreachable_repo_says_so_without_its_password(tmp_path: Path) -> None:
    url = f"file://user:s3cret@localhost{tmp_path}/none.git"
    with pytest.raises(dr.PublishError) as info:
        dr.clone(url, BRANCH, tmp_path / "c", create=True)
    text = str(info.value)
    assert text.startswith("deploy repo ") and " is unreachable: " in text and "s3cret" not in text


# --- reading the tree and its blobs -----------------------------------------------------------------------------


def test_the_tree_lists_every_entry_with_its_mode_and_a_prefix_narrows_it(writer: Writer, tmp_path: Path) -> None:
    head = writer.commit({"devices/d1/x": b"1", "bundles/b/y": b"22", "top": b"3"})
    (writer.work / "run.sh").write_bytes(b"#!/bin/sh\n")
    (writer.work / "run.sh").chmod(0o755)
    (writer.work / "link").symlink_to("top")
    head = writer.commit({})
    repo, _ = _clone(writer, tmp_path)
    tree = dr.tree_of(repo, head)
    assert {p: b.mode for p, b in tree.items()} == {
        "devices/d1/x": "100644",
        "bundles/b/y": "100644",
        "top": "100644",
        "run.sh": "100755",
        "link": "120000",
    }
    assert tree["top"].sha == repo.git.rev_parse(f"{head}:top")
    assert set(dr.tree_of(repo, head, "devices/")) == {"devices/d1/x"}
    assert dr.tree_of(repo, None) == {}


def test_the_read_bounds_are_the_documented_figures() -> None:
    """The tests below set these bounds small to reach them, so the figures are pinned here: a state as large
    as desired.py accepts, a rollout record of ~60,000 devices, and how far a search for a verified state goes."""
    assert dr.MAX_STATE_BYTES == 1 << 20 == MAX_DESIRED_BYTES
    assert dr.MAX_RECORD_BYTES == 16 << 20
    assert dr.MAX_MANIFEST_BYTES == 64 << 20
    assert dr.MAX_HISTORY == 500
    assert dr.MAX_PAIRS == 64


def test_a_blob_is_read_up_to_its_limit_and_a_link_never(writer: Writer, tmp_path: Path) -> None:
    (writer.work / "link").symlink_to("/etc/hostname")
    head = writer.commit({"f": b"12345", "g": b"x"})
    repo, _ = _clone(writer, tmp_path)
    tree = dr.tree_of(repo, head)
    assert dr.read_blob(repo, tree["f"], 5) == b"12345"
    assert dr.read_blob(repo, tree["f"], 4) is None
    assert dr.read_blob(repo, tree["link"], 1 << 20) is None  # a link is data, not a file to follow
    assert dr.read_blob(repo, None, 10) is None
    exe = dr.Blob("100755", tree["f"].sha)
    assert dr.read_blob(repo, exe, 5) == b"12345"
    assert dr.read_blobs(repo, [tree["f"].sha, tree["g"].sha, "0" * 40], 5) == {tree["f"].sha: b"12345",
                                                                                tree["g"].sha: b"x"}  # fmt: skip
    assert dr.read_blobs(repo, [], 5) == {}


def test_a_tree_object_is_not_read_as_a_blob(writer: Writer, tmp_path: Path) -> None:
    head = writer.commit({"dir/f": b"1"})
    repo, _ = _clone(writer, tmp_path)
    tree_sha = repo.git.rev_parse(f"{head}:dir")
    assert dr.read_blobs(repo, [tree_sha], 1 << 20) == {}


# --- writing a tree ---------------------------------------------------------------------------------------------


def test_a_tree_is_written_from_bytes_files_and_kept_blobs(writer: Writer, tmp_path: Path) -> None:
    head = writer.commit({"old": b"kept"})
    repo, _ = _clone(writer, tmp_path)
    kept = dr.tree_of(repo, head)["old"]
    disk = tmp_path / "build.txt"
    disk.write_bytes(b"from disk")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    entries: dr.Entries = {
        "b/inline": ("100644", b"inline bytes"),
        "a/second": ("100755", b"two"),
        "c/disk": ("100644", disk),
        "old": ("100644", kept),
    }
    tree, blobs = dr.write_tree(repo, entries, scratch)
    listed = {line.split("\t")[1]: line.split()[0] for line in repo.git.ls_tree("-r", tree).splitlines()}
    assert listed == {"a/second": "100755", "b/inline": "100644", "c/disk": "100644", "old": "100644"}
    for path, want in (("b/inline", b"inline bytes"), ("a/second", b"two"), ("c/disk", b"from disk"),
                       ("old", b"kept")):  # fmt: skip
        assert repo.git.cat_file("blob", blobs[path].sha, stdout_as_string=False) == want
        assert blobs[path].sha == repo.git.rev_parse(f"{tree}:{path}") and blobs[path].mode == listed[path]
    assert blobs["old"] == kept


def test_a_failing_plumbing_command_raises_with_git_s_words(writer: Writer, tmp_path: Path) -> None:
    writer.commit({"f": b"1"})
    repo, _ = _clone(writer, tmp_path)
    with pytest.raises(git.GitCommandError) as info:
        dr.plumb(repo, ["cat-file", "blob", "0" * 40])
    assert info.value.status == 128 and "0000000000" in str(info.value.stderr)
    sha = dr.plumb(repo, ["hash-object", "-w", "--stdin"], b"some data").decode().strip()  # stdin reaches git
    assert repo.git.cat_file("blob", sha, stdout_as_string=False) == b"some data"
    env_seen = dr.plumb(repo, ["var", "GIT_AUTHOR_IDENT"], env={"GIT_AUTHOR_NAME": "plumbed"}).decode()
    assert env_seen.startswith("plumbed ")  # the extra environment reaches git, the rest of ours too


def test_git_error_keeps_git_s_cause() -> None:
    exc = git.GitCommandError(["git", "push"], 1, b"hint: do this\nfatal: the cause\n")
    assert dr.git_error(exc) == "the cause"  # advice dropped, the cause kept (gitmessage.summary)
    bare = git.GitCommandError(["git", "push"], 1)
    assert dr.git_error(bare) and "git" in dr.git_error(bare)  # no stderr: the command's own words


# --- the signed history -----------------------------------------------------------------------------------------


def test_the_highest_signed_generation_in_history_wins_over_the_head_s_older_copy(
    writer: Writer, tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    writer.commit(_signed("d1", 1, key) | _signed("d2", 4, key))
    writer.commit(_signed("d1", 7, key))
    writer.commit(_signed("d1", 3, key), "a writer put an older signed state back")
    head = writer.commit({f"devices/d2/{DESIRED}": None, f"devices/d2/{SIGNATURE}": None}, "and deleted d2's")
    repo, _ = _clone(writer, tmp_path)
    old = dr.tree_of(repo, head)
    best = dr.signed_history(repo, head, BRANCH, old, key)
    assert {d: s.generation for d, s in best.items()} == {"d1": 7, "d2": 4}
    assert best["d1"] == DesiredState.parse(_state("d1", 7))


def test_unsigned_foreign_and_misplaced_states_are_never_believed(
    writer: Writer, tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    other = Ed25519PrivateKey.generate()
    writer.commit(_signed("d1", 2, key))
    writer.commit(_signed("d1", 50, other), "signed by another key")
    writer.commit(_signed("d9", 60, key, on="d1"), "d9's state placed under d1")
    writer.commit({f"devices/d1/{DESIRED}": _state("d1", 70)}, "unsigned")
    writer.commit({f"devices/d1/extra/{DESIRED}": _state("d1", 80),
                   f"devices/d1/extra/{SIGNATURE}": sign(_state("d1", 80), key)})  # fmt: skip
    writer.commit({f"devices/..x/{DESIRED}": _state("..x", 90),
                   f"devices/..x/{SIGNATURE}": sign(_state("..x", 90), key)})  # fmt: skip
    head = writer.commit({f"other/d1/{DESIRED}": _state("d1", 99),
                          f"other/d1/{SIGNATURE}": sign(_state("d1", 99), key)})  # fmt: skip
    repo, _ = _clone(writer, tmp_path)
    best = dr.signed_history(repo, head, BRANCH, dr.tree_of(repo, head), key)
    assert {d: s.generation for d, s in best.items()} == {"d1": 2}


def test_a_state_and_signature_from_different_commits_pair_up(
    writer: Writer, tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    data = _state("d1", 5)
    writer.commit({f"devices/d1/{DESIRED}": data, f"devices/d1/{SIGNATURE}": b"not a signature"})
    head = writer.commit({f"devices/d1/{SIGNATURE}": sign(data, key)})
    repo, _ = _clone(writer, tmp_path)
    best = dr.signed_history(repo, head, BRANCH, {}, key)
    assert best["d1"].generation == 5


def test_only_the_branch_s_current_files_count_when_history_is_empty(
    writer: Writer, tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    head = writer.commit(_signed("d1", 4, key))
    repo, _ = _clone(writer, tmp_path)
    old = dr.tree_of(repo, head)
    best = dr.signed_history(repo, head, BRANCH, old, key)
    assert best["d1"].generation == 4


def test_history_is_searched_as_far_as_its_bound(writer: Writer, tmp_path: Path, key: Ed25519PrivateKey,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """The bound counts commits that touch devices/ (others are not searched at all)."""
    writer.commit(_signed("d1", 9, key))
    writer.commit(_signed("d2", 1, key))
    writer.commit({"x": b"1"})
    head = writer.commit(_signed("d2", 2, key))
    repo, _ = _clone(writer, tmp_path)
    monkeypatch.setattr(dr, "MAX_HISTORY", 3)
    assert {d: s.generation for d, s in dr.signed_history(repo, head, BRANCH, {}, key).items()} == {"d1": 9, "d2": 2}
    monkeypatch.setattr(dr, "MAX_HISTORY", 2)
    assert {d: s.generation for d, s in dr.signed_history(repo, head, BRANCH, {}, key).items()} == {"d2": 2}


def test_a_device_s_candidates_stop_at_max_pairs(writer: Writer, tmp_path: Path, key: Ed25519PrivateKey,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """The newest MAX_PAIRS distinct states are tried: two newer unsigned ones push the signed one out at 2."""
    writer.commit(_signed("d1", 5, key))
    writer.commit({f"devices/d1/{DESIRED}": _state("d1", 6)})
    head = writer.commit({f"devices/d1/{DESIRED}": _state("d1", 7)})
    repo, _ = _clone(writer, tmp_path)
    old = dr.tree_of(repo, head)
    monkeypatch.setattr(dr, "MAX_PAIRS", 3)
    assert dr.signed_history(repo, head, BRANCH, old, key)["d1"].generation == 5
    monkeypatch.setattr(dr, "MAX_PAIRS", 2)
    assert dr.signed_history(repo, head, BRANCH, old, key) == {}


def test_a_verified_state_is_this_device_s_signed_one_and_nothing_else(key: Ed25519PrivateKey) -> None:
    public = key.public_key()
    data = _state("d1", 3)
    assert dr._verified_state(data, sign(data, key), "d1", public) == DesiredState.parse(data)
    assert dr._verified_state(data, sign(data, key), "d2", public) is None
    assert dr._verified_state(data, None, "d1", public) is None
    assert dr._verified_state(None, sign(data, key), "d1", public) is None
    assert dr._verified_state(data, sign(data, Ed25519PrivateKey.generate()), "d1", public) is None
    junk = b'{"version": 1}'
    assert dr._verified_state(junk, sign(junk, key), "d1", public) is None
    deep = b"[" * 5000 + b"]" * 5000
    assert dr._verified_state(deep, sign(deep, key), "d1", public) is None
    bad = b"\xff\xfe"
    assert dr._verified_state(bad, sign(bad, key), "d1", public) is None


# --- rollout records and manifests ------------------------------------------------------------------------------


def _record(deployment: str) -> RolloutState:
    new = BundleRef("line", DIGEST)
    spec = RolloutSpec("canary", canary=CanaryStep(("d1",), 600.0, 0.01))
    return RolloutState(deployment, Phase.CANARY, spec, {"d1": DeviceBundles(None, new)}, EXPIRES)


def test_only_signed_records_of_their_own_deployment_are_read(writer: Writer, tmp_path: Path,
                                                             key: Ed25519PrivateKey) -> None:  # fmt: skip
    good = _record("line")
    data, sig = sealed(good, key)
    other_data, other_sig = sealed(_record("press"), key)
    head = writer.commit({
        "rollouts/line.json": data, signature_path("line"): sig,
        "rollouts/oven.json": other_data, signature_path("oven"): other_sig,  # press's record under oven
        "rollouts/unsigned.json": data,
        "rollouts/deep/line.json": data,
        "rollouts/line.txt": data,
    })  # fmt: skip
    repo, _ = _clone(writer, tmp_path)
    records = dr.rollout_records(repo, dr.tree_of(repo, head), key.public_key())
    assert set(records) == {"line"} and records["line"] == (good, data, sig)


def test_a_branch_manifest_must_be_there_and_match_its_digest(writer: Writer, tmp_path: Path) -> None:
    ref = write_bundle(tmp_path / "bundles", "line", "edge-pc", {"a.txt": b"a"}, {"by": "test"},
                       activation=Activation.RUN)  # fmt: skip
    manifest = ref.to_bytes()
    head = writer.commit({f"bundles/{ref.digest}/{MANIFEST}": manifest,
                          f"bundles/{'b' * 64}/{MANIFEST}": manifest})  # fmt: skip
    repo, _ = _clone(writer, tmp_path)
    tree = dr.tree_of(repo, head)
    got, data = dr.branch_manifest(repo, tree, ref.digest)
    assert got.digest == ref.digest and data == manifest
    with pytest.raises(dr.PublishError) as info:
        dr.branch_manifest(repo, tree, "b" * 64)
    assert str(info.value) == ("bundle bbbbbbbbbbbbbbbb is not intact on the branch (its manifest does not match its "
                               "digest); nothing was published")  # fmt: skip
    with pytest.raises(dr.PublishError) as info:
        dr.branch_manifest(repo, tree, "c" * 64)
    assert "(no manifest)" in str(info.value)


def test_a_device_without_a_cluster_bundle_has_no_cluster_files() -> None:
    refs = [BundleRef("line", DIGEST)]
    source = ClusterSource("https://example.invalid/deploy.git", BRANCH)
    assert dr.cluster_entries("d1", refs, {DIGEST: Activation.RUN}, source) == {}
    files = dr.cluster_entries("d1", refs, {DIGEST: Activation.CLUSTER}, source)
    assert files and all(p.startswith(dr.cluster_paths("d1")) for p in files)


# --- survivors of the 2026-12-02 run ------------------------------------------------------------------------------


def test_a_clone_holds_the_branch_head_alone_without_tags_or_history(writer: Writer, tmp_path: Path) -> None:
    """Nothing but the one commit publish builds on: no older commits (depth 1), no tags, no other branch."""
    writer.commit({"a.txt": b"1"})
    head = writer.commit({"a.txt": b"2"})
    _git("tag", "v1", cwd=writer.work)
    _git("push", "-q", "origin", "v1", "HEAD:refs/heads/other", cwd=writer.work)
    # file://: git's transport, as for a remote (a plain path is a local clone, which ignores --depth)
    repo, got = dr.clone(f"file://{writer.remote}", BRANCH, tmp_path / "clone", create=False)
    assert got == head
    assert repo.git.rev_list("--all").split() == [head]
    assert repo.git.for_each_ref("--format=%(refname)").split() == [f"refs/heads/{BRANCH}"]


def test_a_branch_listed_but_not_clonable_is_refused_as_such(tmp_path: Path) -> None:
    """The listing names a head whose commit the repository does not hold: the clone fails after it."""
    remote = tmp_path / "broken.git"
    _git("init", "-q", "--bare", str(remote), cwd=tmp_path)
    (remote / "refs" / "heads" / BRANCH).write_text("1" * 40 + "\n")
    with pytest.raises(dr.PublishError) as info:
        dr.clone(f"file://{remote}", BRANCH, tmp_path / "c", create=False)
    assert str(info.value).startswith(f"cannot clone file://{remote}: ")


def test_a_blob_store_that_cannot_be_read_fails_as_git_does(writer: Writer, tmp_path: Path) -> None:
    """A broken clone raises the GitCommandError publish reports (status 128, git's fatal exit), with git's words."""
    head = writer.commit({"f": b"1"})
    repo, _ = _clone(writer, tmp_path)
    sha = dr.tree_of(repo, head)["f"].sha
    (Path(repo.git_dir) / "HEAD").write_text("not a ref\n")
    (Path(repo.git_dir) / "objects").rename(Path(repo.git_dir) / "gone")
    with pytest.raises(git.GitCommandError) as info:
        dr.read_blobs(repo, [sha], 10)
    assert info.value.status == 128 and "cat-file" in str(info.value) and "git" in str(info.value.stderr)


def test_a_blob_is_a_frozen_hashable_value() -> None:
    import dataclasses

    blob = dr.Blob("100644", "a" * 40)
    with pytest.raises(dataclasses.FrozenInstanceError):
        blob.sha = "b" * 40  # type: ignore[misc]
    assert len({blob, dr.Blob("100644", "a" * 40), dr.Blob("100755", "a" * 40)}) == 2


def test_a_file_name_git_would_read_as_two_paths_never_gets_another_file_s_blob(
    writer: Writer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`hash-object --stdin-paths` reads a line per path: a name with a line break is two paths to git. The
    tree is then refused, never written with the blob of the file the first line names."""
    writer.commit({"f": b"1"})
    repo, _ = _clone(writer, tmp_path)
    files = tmp_path / "files"
    files.mkdir()
    (files / "x").write_bytes(b"another file")
    (files / "y").write_bytes(b"and another")
    odd = files / "x\ny"
    odd.write_bytes(b"the file itself")
    monkeypatch.chdir(files)  # git resolves the second line, "y", here
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    try:
        _, blobs = dr.write_tree(repo, {"odd": ("100644", odd)}, scratch)
    except (ValueError, git.GitCommandError):
        return
    assert repo.git.cat_file("blob", blobs["odd"].sha, stdout_as_string=False) == b"the file itself"


def test_the_branch_s_current_files_count_beyond_the_history_searched(
    writer: Writer, tmp_path: Path, key: Ed25519PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """d1's state was committed before the last MAX_HISTORY commits: the branch's own copy still counts."""
    writer.commit(_signed("d1", 4, key))
    head = writer.commit(_signed("d2", 1, key))
    repo, _ = _clone(writer, tmp_path)
    monkeypatch.setattr(dr, "MAX_HISTORY", 1)
    best = dr.signed_history(repo, head, BRANCH, dr.tree_of(repo, head), key)
    assert {d: s.generation for d, s in best.items()} == {"d1": 4, "d2": 1}
    assert {d: s.generation for d, s in dr.signed_history(repo, head, BRANCH, {}, key).items()} == {"d2": 1}


def test_of_two_signed_states_of_one_generation_the_newest_is_kept(
    writer: Writer, tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    """The branch's copy is looked at first, then the history newest first: a tie keeps the first seen."""
    older = DesiredState("d1", 5, EXPIRES, (BundleRef("line", "b" * 64),)).to_bytes()
    writer.commit({f"devices/d1/{DESIRED}": older, f"devices/d1/{SIGNATURE}": sign(older, key)})
    head = writer.commit(_signed("d1", 5, key))
    repo, _ = _clone(writer, tmp_path)
    for old in (dr.tree_of(repo, head), {}):
        assert dr.signed_history(repo, head, BRANCH, old, key)["d1"] == DesiredState.parse(_state("d1", 5))


def test_a_record_that_is_unsigned_or_does_not_verify_does_not_hide_the_records_after_it(
    writer: Writer, tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    good = _record("line")
    data, sig = sealed(good, key)
    press, press_sig = sealed(_record("press"), key)
    head = writer.commit({
        "rollouts/a-unsigned.json": data,  # no signature file: read as absent
        "rollouts/b-other.json": press, signature_path("b-other"): press_sig,  # press's record, signed, misplaced
        "rollouts/line.json": data, signature_path("line"): sig,
    })  # fmt: skip
    repo, _ = _clone(writer, tmp_path)
    records = dr.rollout_records(repo, dr.tree_of(repo, head), key.public_key())
    assert records == {"line": (good, data, sig)}


def test_a_signed_record_outside_the_rollouts_folder_or_below_it_is_not_read(
    writer: Writer, tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    """Only rollouts/<deployment>.json is a record, even when a valid signature for one sits where it belongs."""
    press, press_sig = sealed(_record("press"), key)
    deep, deep_sig = sealed(_record("deep"), key)
    head = writer.commit({
        "other/press.json": press, signature_path("press"): press_sig,
        "rollouts/deep/oven.json": deep, signature_path("deep"): deep_sig,
    })  # fmt: skip
    repo, _ = _clone(writer, tmp_path)
    assert dr.rollout_records(repo, dr.tree_of(repo, head), key.public_key()) == {}
