"""agent/gitsync.py on real Git: a bare deploy repository in tmp_path served over file:// (filters allowed),
cloned shallow, sparse and blob-filtered; what a clone holds, how an existing clone follows the branch, how a
broken one is replaced, and that no message carries a URL's password. The agent tests reach these only
through whole cycles, too slow to run once per mutant."""

from __future__ import annotations

import subprocess
from pathlib import Path

import git
import pytest

from agent.gitsync import FetchError, _fresh_clone, _msg, _partial, remote_head, sync

PATHS = ["devices/dev-1/", "bundles/m/"]


def run(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=True, text=True).stdout.strip()


class Remote:
    def __init__(self, root: Path) -> None:
        self.bare, self.work = root / "deploy.git", root / "work"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "deploy", str(self.bare)], check=True)
        run(self.bare, "config", "uploadpack.allowFilter", "true")
        run(self.bare, "config", "uploadpack.allowAnySHA1InWant", "true")
        subprocess.run(["git", "init", "-q", "-b", "deploy", str(self.work)], check=True)
        run(self.work, "config", "user.email", "t@example.invalid")
        run(self.work, "config", "user.name", "t")
        self.url = f"file://{self.bare}"

    def commit(self, files: dict[str, str], message: str) -> str:
        for name, text in files.items():
            (self.work / name).parent.mkdir(parents=True, exist_ok=True)
            (self.work / name).write_text(text)
        run(self.work, "add", "-A")
        run(self.work, "commit", "-q", "-m", message)
        run(self.work, "push", "-q", "-f", str(self.bare), "HEAD:deploy")
        return run(self.work, "rev-parse", "HEAD")


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    r = Remote(tmp_path)
    r.commit({"devices/dev-1/desired.json": "one", "devices/dev-2/desired.json": "other",
              "bundles/m/model.onnx": "weights", "README": "top"}, "first")  # fmt: skip
    r.commit({"devices/dev-1/desired.json": "two"}, "second")
    run(r.work, "branch", "side")
    run(r.work, "push", "-q", str(r.bare), "side")
    return r


def files(tree: Path) -> set[str]:
    return {str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_file() and ".git" not in p.parts}


def missing(clone: Path) -> int:
    """Objects of HEAD's tree the clone does not hold (a partial clone leaves other paths' blobs on the server)."""
    out = run(clone, "-c", "fetch.negotiationAlgorithm=noop", "rev-list", "--objects", "--missing=print", "HEAD")
    return sum(1 for line in out.splitlines() if line.startswith("?"))


def test_remote_head_is_the_branch_tip(remote: Remote) -> None:
    assert remote_head(remote.url, "deploy", 30) == run(remote.bare, "rev-parse", "deploy")
    assert remote_head(remote.url, "side", 30) == run(remote.bare, "rev-parse", "side")


def test_a_missing_branch_is_a_fetch_error_naming_it(remote: Remote) -> None:
    with pytest.raises(FetchError, match=rf"^branch 'nope' does not exist in {remote.url}$"):
        remote_head(remote.url, "nope", 30)


def test_an_unreachable_server_is_a_fetch_error_without_the_password(tmp_path: Path) -> None:
    url = f"file://alice:s3cret@localhost{tmp_path}/none.git"
    with pytest.raises(FetchError) as err:
        remote_head(url, "deploy", 30)
    text = str(err.value)
    assert text.startswith(f"cannot reach file://alice:***@localhost{tmp_path}/none.git: ") and "s3cret" not in text
    with pytest.raises(FetchError) as err:
        _fresh_clone(url, "deploy", tmp_path / "clone", 30, True)
    text = str(err.value)
    assert text.startswith(f"cannot clone file://alice:***@localhost{tmp_path}/none.git: ") and "s3cret" not in text
    assert not (tmp_path / "clone").exists()


def test_a_fresh_clone_is_shallow_sparse_single_branch_and_checks_nothing_out(remote: Remote, tmp_path: Path) -> None:
    target = tmp_path / "state" / "deep" / "clone"  # its parents are made
    repo = _fresh_clone(remote.url, "deploy", target, 30, True)
    assert Path(repo.working_tree_dir or "") == target
    assert run(target, "rev-list", "--count", "HEAD") == "1"
    assert "refs/remotes/origin/deploy" in run(target, "for-each-ref", "--format=%(refname)").split()
    assert "side" not in run(target, "for-each-ref", "--format=%(refname)")
    assert run(target, "config", "core.sparseCheckout") == "true"
    assert files(target) == set()
    assert _partial(repo) is True


def test_an_unfiltered_clone_holds_its_blobs_and_replaces_what_was_there(remote: Remote, tmp_path: Path) -> None:
    target = tmp_path / "clone"
    target.mkdir()
    (target / "stale").write_text("left from before")
    repo = _fresh_clone(remote.url, "deploy", target, 30, False)
    assert not (target / "stale").exists()
    assert _partial(repo) is False and missing(target) == 0


def test_sync_checks_out_only_the_paths_at_the_tip(remote: Remote, tmp_path: Path) -> None:
    tip = run(remote.bare, "rev-parse", "deploy")
    clone = tmp_path / "clone"
    assert sync(remote.url, "deploy", clone, tip, PATHS, 30) == (clone, tip)
    assert files(clone) == {"devices/dev-1/desired.json", "bundles/m/model.onnx"}
    assert (clone / "devices/dev-1/desired.json").read_text() == "two"
    assert missing(clone) > 0  # the other device's blob stayed on the server


def test_an_existing_clone_follows_the_branch_and_is_made_clean(remote: Remote, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    sync(remote.url, "deploy", clone, run(remote.bare, "rev-parse", "deploy"), PATHS, 30)
    (clone / "devices/dev-1/desired.json").write_text("tampered")
    (clone / "devices/dev-1/extra").write_text("untracked")
    (clone / ".git" / "marker").write_text("same clone")
    new = remote.commit({"devices/dev-1/desired.json": "three", "devices/dev-2/desired.json": "changed"}, "third")
    assert sync(remote.url, "deploy", clone, new, PATHS, 30) == (clone, new)
    assert (clone / ".git" / "marker").exists()  # fetched into, not cloned afresh
    assert files(clone) == {"devices/dev-1/desired.json", "bundles/m/model.onnx"}
    assert (clone / "devices/dev-1/desired.json").read_text() == "three"
    assert missing(clone) > 0  # the fetch was filtered too
    assert run(clone, "rev-list", "--count", "HEAD") == "1"  # and shallow


def test_an_unfiltered_clone_fetches_unfiltered(remote: Remote, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    _fresh_clone(remote.url, "deploy", clone, 30, False)
    new = remote.commit({"devices/dev-2/desired.json": "changed again"}, "third")
    assert sync(remote.url, "deploy", clone, new, PATHS, 30) == (clone, new)
    assert missing(clone) == 0


def test_a_clone_already_at_the_head_is_not_fetched(remote: Remote, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    old = run(remote.bare, "rev-parse", "deploy")
    sync(remote.url, "deploy", clone, old, PATHS, 30)
    remote.commit({"devices/dev-1/desired.json": "moved"}, "third")
    assert sync(remote.url, "deploy", clone, old, PATHS, 30) == (clone, old)  # the head ls-remote saw: no fetch
    assert (clone / "devices/dev-1/desired.json").read_text() == "two"


def test_a_broken_clone_is_replaced(remote: Remote, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    (clone / ".git").mkdir(parents=True)
    (clone / "junk").write_text("x")
    tip = run(remote.bare, "rev-parse", "deploy")
    assert sync(remote.url, "deploy", clone, tip, PATHS, 30) == (clone, tip)
    assert files(clone) == {"devices/dev-1/desired.json", "bundles/m/model.onnx"}


def test_a_clone_whose_remote_ref_is_gone_is_replaced(remote: Remote, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    tip = run(remote.bare, "rev-parse", "deploy")
    sync(remote.url, "deploy", clone, tip, PATHS, 30)
    run(clone, "update-ref", "-d", "refs/remotes/origin/deploy")
    (clone / ".git" / "marker").write_text("old clone")
    assert sync(remote.url, "deploy", clone, tip, PATHS, 30) == (clone, tip)
    assert not (clone / ".git" / "marker").exists()


def test_a_server_that_refuses_the_clone_is_not_asked_again(remote: Remote, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    with pytest.raises(FetchError, match=r"^cannot clone file://"):
        sync(f"{remote.url}-missing", "deploy", clone, "0" * 40, PATHS, 30)
    assert not clone.exists()


def test_when_every_attempt_fails_the_last_cause_is_named(remote: Remote, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    with pytest.raises(FetchError, match=r"^cannot update the local clone: .*null"):
        sync(remote.url, "deploy", clone, "0" * 40, ["devices/\0/"], 30)
    assert not clone.exists()


def test_messages_name_an_unusable_repository_or_git_s_cause(tmp_path: Path) -> None:
    assert _msg(git.InvalidGitRepositoryError(str(tmp_path))) == f"not a usable Git repository ({tmp_path})"
    assert _msg(git.NoSuchPathError(str(tmp_path))) == f"not a usable Git repository ({tmp_path})"
    exc = git.GitCommandError(["git", "fetch"], 128, b"fatal: unable to access 'https://u:pw@h/r.git/': refused")
    assert _msg(exc) == "unable to access 'https://u:***@h/r.git/': refused"
    assert _msg(ValueError("plain words")) == "plain words"


def test_an_existing_clone_gets_its_origin_url_back_and_is_kept(remote: Remote, tmp_path: Path) -> None:
    """An older agent stored the URL as given (a password too): the clone's origin is rewritten to what
    gitsync would clone from now, and the clone itself is reused, not made again."""
    dest = tmp_path / "clone"
    sync(remote.url, "deploy", dest, remote_head(remote.url, "deploy", 30.0), PATHS, 30.0)
    run(dest, "config", "remote.origin.url", str(tmp_path / "elsewhere.git"))  # a stale URL git cannot use
    (dest / ".git" / "kept-marker").write_text("the same clone")
    head = remote.commit({"devices/dev-1/desired.json": "three"}, "third")
    _, commit = sync(remote.url, "deploy", dest, head, PATHS, 30.0)
    assert commit == head and (dest / ".git" / "kept-marker").is_file()  # fetched in place, not re-cloned
    assert run(dest, "config", "--get", "remote.origin.url") == remote.url


def test_a_server_that_cannot_serve_a_filtered_clones_blobs_gets_a_plain_clone(
    remote: Remote, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Protocol v0 (SSH without GIT_PROTOCOL passed through) fetches a blob by id only where the server
    allows any SHA-1 in want: the filtered clone's checkout fails, and the plain shallow clone serves."""
    run(remote.bare, "config", "uploadpack.allowAnySHA1InWant", "false")
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "protocol.version")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "0")
    dest = tmp_path / "clone"
    head = remote_head(remote.url, "deploy", 30.0)
    tree, commit = sync(remote.url, "deploy", dest, head, PATHS, 30.0)
    assert commit == head and (tree / "devices/dev-1/desired.json").read_text() == "two"
    assert not _partial(git.Repo(dest))  # the plain clone: every blob travelled


def test_a_clone_that_vanishes_while_it_is_opened_is_cloned_afresh(
    remote: Remote, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Removing a broken clone never fails on what is already gone (a disk cleaner, an operator's rm)."""
    import shutil

    from agent import gitsync

    dest = tmp_path / "clone"
    head = remote_head(remote.url, "deploy", 30.0)
    sync(remote.url, "deploy", dest, head, PATHS, 30.0)

    def vanished(url: str, repo_dir: Path) -> git.Repo:
        shutil.rmtree(repo_dir)
        raise git.NoSuchPathError(str(repo_dir))

    monkeypatch.setattr(gitsync, "_reopen", vanished)
    tree, commit = sync(remote.url, "deploy", dest, head, PATHS, 30.0)
    assert commit == head and (tree / "devices/dev-1/desired.json").read_text() == "two"
