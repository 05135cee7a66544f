"""Getting the device's part of the deploy branch: a cheap remote check, then a shallow, sparse,
blob-filtered clone of only devices/<id>/ and the bundles it names. A clone Git cannot use is
deleted and made again; network faults are errors the loop retries with backoff."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import git

from compiler.bundle.gitcred import git_remote
from compiler.bundle.gitmessage import redact_url, summary


class FetchError(Exception):
    """A transient fault (network, server, Git): keep the last known good and retry."""


def _msg(exc: Exception) -> str:
    if isinstance(exc, git.InvalidGitRepositoryError | git.NoSuchPathError):
        return f"not a usable Git repository ({exc})"
    return summary(getattr(exc, "stderr", "") or str(exc))


def remote_head(url: str, branch: str, timeout: float) -> str:
    """The commit the branch points at, without fetching anything."""
    remote = git_remote(url)
    try:
        out = str(
            git.cmd.Git().ls_remote(
                "--heads", remote.url, f"refs/heads/{branch}", kill_after_timeout=timeout, env=dict(remote.env)
            )
        )
    except git.GitCommandError as exc:
        raise FetchError(f"cannot reach {redact_url(url)}: {_msg(exc)}") from exc
    if not out.strip():
        raise FetchError(f"branch {branch!r} does not exist in {redact_url(url)}")
    return out.split()[0]


def _fresh_clone(url: str, branch: str, repo_dir: Path, timeout: float, filtered: bool) -> git.Repo:
    """A shallow, sparse clone; `filtered` leaves blobs on the server until a checkout needs them."""
    shutil.rmtree(repo_dir, ignore_errors=True)
    repo_dir.parent.mkdir(parents=True, exist_ok=True)
    extra: dict[str, Any] = {"filter": "blob:none"} if filtered else {}
    remote = git_remote(url)
    try:
        repo = git.Repo.clone_from(
            remote.url,
            repo_dir,
            branch=branch,
            depth=1,  # implies --single-branch
            no_checkout=True,
            sparse=True,
            kill_after_timeout=timeout,
            env=dict(remote.env),
            **extra,  # git options (--filter), which GitPython's signature types as its own keywords
        )
    except git.GitCommandError as exc:
        shutil.rmtree(repo_dir, ignore_errors=True)
        raise FetchError(f"cannot clone {redact_url(url)}: {_msg(exc)}") from exc
    repo.git.update_environment(**remote.env)  # lazy blob fetches of the checkout ask for it too
    return repo


def _reopen(url: str, repo_dir: Path) -> git.Repo:
    """The existing clone, its origin set to the URL without a password (an older agent stored it)."""
    remote = git_remote(url)
    repo = git.Repo(repo_dir)
    repo.git.update_environment(**remote.env)
    if repo.git.config("--get", "remote.origin.url") != remote.url:
        repo.git.config("remote.origin.url", remote.url)
    return repo


def _partial(repo: git.Repo) -> bool:
    try:
        return bool(repo.git.config("--get", "remote.origin.promisor") == "true")
    except git.GitCommandError:
        return False


def sync(url: str, branch: str, repo_dir: Path, head: str, paths: list[str], timeout: float) -> tuple[Path, str]:
    """Check out `paths` of the branch tip (at least `head`); returns the work tree and its commit.

    The commit is what was fetched, which may be newer than `head` if the branch moved meanwhile.
    Attempts: the existing clone; a fresh blob-filtered clone (only the blobs of `paths` travel);
    a fresh plain shallow clone, for servers that cannot serve the filtered clone's lazy fetches
    (protocol v0, e.g. SSH without GIT_PROTOCOL passed through).
    """
    remote_ref = f"refs/remotes/origin/{branch}"
    attempts = ([None] if (repo_dir / ".git").is_dir() else []) + [True, False]
    last: Exception | None = None
    for filtered in attempts:
        try:
            if filtered is None:
                repo = _reopen(url, repo_dir)
            else:
                repo = _fresh_clone(url, branch, repo_dir, timeout, filtered)
            if filtered is None and repo.git.rev_parse(remote_ref, kill_after_timeout=timeout) != head:
                args = [
                    "--depth",
                    "1",
                    *(["--filter=blob:none"] if _partial(repo) else []),
                    "origin",
                    f"+refs/heads/{branch}:{remote_ref}",
                ]
                repo.git.fetch(*args, kill_after_timeout=timeout)
            repo.git.sparse_checkout("set", "--no-cone", *paths, kill_after_timeout=timeout)
            repo.git.checkout("--force", "--detach", remote_ref, kill_after_timeout=timeout)
            repo.git.clean("-ffdx", kill_after_timeout=timeout)
            return repo_dir, repo.git.rev_parse("HEAD", kill_after_timeout=timeout)
        except FetchError as exc:  # the server itself refused a fresh clone: no point in another attempt
            raise exc
        except (git.GitCommandError, git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError) as exc:
            last = exc
            shutil.rmtree(repo_dir, ignore_errors=True)  # corrupted, confused or unservable: clone afresh
    raise FetchError(f"cannot update the local clone: {_msg(last) if last else 'no attempt'}")
