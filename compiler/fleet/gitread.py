"""Reading a deploy repository with the git CLI, bounded, without ever trusting what it holds.

Two private bare repositories in a scratch directory: one for the devices' status refs (each
ref's commit chain, at most `depth` deep) and a blob-filtered clone of the deploy branch from
which only the small files the fleet view needs are fetched (never the bundles); nothing is
checked out. A handful of git
processes serve any fleet size: one listing, one fetch, one commit walk, and two `cat-file`
batches (sizes first, then only the objects within the limit are read).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from compiler.bundle.gitcred import git_remote
from compiler.bundle.gitmessage import redact_url, summary


class FleetReadError(Exception):
    """The deploy repository cannot be read (unreachable, not a repository, over a bound)."""


def _env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """git's environment; `extra` carries a URL's password (compiler.bundle.gitcred), never argv."""
    return {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_PROTOCOL": "version=2", "LC_ALL": "C", **(extra or {})}


def _cause(stderr: bytes, fallback: str) -> str:
    return summary(stderr.decode(errors="replace")) or fallback


def git(
    *args: str,
    cwd: Path | None = None,
    stdin: bytes | None = None,
    timeout: float = 300.0,
    check: bool = True,
    env: Mapping[str, str] | None = None,
) -> bytes:
    cmd = ["git", "-c", "protocol.version=2", "-c", "gc.auto=0", "-c", "core.quotePath=false", *args]
    try:
        proc = subprocess.run(cmd, cwd=cwd, input=stdin, capture_output=True, timeout=timeout, env=_env(env))
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FleetReadError(redact_url(f"git {args[0]} failed: {exc}")) from None
    if check and proc.returncode != 0:
        raise FleetReadError(f"git {args[0]}: {_cause(proc.stderr, 'git failed')}")
    return proc.stdout


def list_refs(url: str, prefix: str, limit: int, timeout: float) -> list[tuple[str, str]]:
    """(refname, oid) of the remote's refs under `prefix` (protocol v2 sends the prefix, so the
    server lists only those); more than `limit` is refused unread past the limit."""
    remote = git_remote(url)
    cmd = ["git", "-c", "protocol.version=2", "ls-remote", "--refs", remote.url, f"{prefix}*"]
    refs: list[tuple[str, str]] = []
    try:
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(remote.env)) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                oid, _, name = line.decode(errors="replace").rstrip("\n").partition("\t")
                if not name.startswith(prefix):
                    continue
                if len(refs) >= limit:
                    proc.kill()
                    raise FleetReadError(f"the deploy repository holds more than {limit:,} refs under {prefix}")
                refs.append((name, oid))
            _, err = proc.communicate(timeout=timeout)
            if proc.returncode != 0:
                raise FleetReadError(f"cannot list {redact_url(url)}: {_cause(err, 'git ls-remote failed')}")
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FleetReadError(f"cannot list {redact_url(url)}: {redact_url(str(exc))}") from None
    return refs


@dataclass(frozen=True)
class Commit:
    oid: str
    parent: str | None  # the first parent present here (None at the root or the shallow boundary)


class RefStore:
    """A private bare repository holding fetched refs, read in batches."""

    def __init__(self, path: Path, timeout: float = 300.0) -> None:
        self.path, self.timeout = path, timeout
        git("init", "-q", "--bare", str(path), timeout=timeout)

    @classmethod
    def open(cls, path: Path, timeout: float = 300.0) -> RefStore:
        """An existing repository (e.g. a clone), read through the same batches."""
        store = cls.__new__(cls)
        store.path, store.timeout = path, timeout
        return store

    def fetch(self, url: str, oids: Sequence[str], depth: int) -> None:
        """The commits `oids` (listed ref tips) and their history, at most `depth` commits deep, in
        one fetch by object id: no local ref is written (5,000 loose refs cost more than the
        objects), and no refspec is matched against the advertisement (pairwise: 85 s at 5,000).
        Protocol v2 serves any object id it holds, so a ref a device moved since the listing
        still yields the listed report."""
        if not oids:
            return
        remote = git_remote(url)
        git(
            "fetch", "-q", "--no-tags", "--no-write-fetch-head", f"--depth={depth}", "--stdin", remote.url,
            cwd=self.path, stdin="".join(f"{o}\n" for o in oids).encode(), timeout=self.timeout, env=remote.env,
        )  # fmt: skip

    def commits(self, tips: Iterable[str]) -> dict[str, Commit]:
        """Every commit reachable from `tips` here (bounded by the fetch depth), with its first parent."""
        data = "".join(f"{t}\n" for t in tips).encode()
        if not data:
            return {}
        out = git("rev-list", "--parents", "--stdin", cwd=self.path, stdin=data, timeout=self.timeout)
        commits = {}
        for line in out.decode().splitlines():
            oid, *parents = line.split()
            commits[oid] = Commit(oid, parents[0] if parents else None)
        return commits

    def sizes(self, names: Sequence[str]) -> dict[str, tuple[str, str, int] | None]:
        """name → (oid, type, size), None when missing; nothing is read into memory."""
        if not names:
            return {}
        data = "".join(f"{n}\n" for n in names).encode()
        out = git("cat-file", "--batch-check", cwd=self.path, stdin=data, timeout=self.timeout)
        result: dict[str, tuple[str, str, int] | None] = {}
        for name, line in zip(names, out.decode(errors="replace").splitlines(), strict=True):
            parts = line.split()
            result[name] = (parts[0], parts[1], int(parts[2])) if len(parts) == 3 and parts[1] != "missing" else None
        return result

    def read(self, oids: Sequence[str]) -> dict[str, bytes]:
        """The contents of objects already checked by `sizes` (so their total is bounded)."""
        if not oids:
            return {}
        data = "".join(f"{o}\n" for o in oids).encode()
        out = git("cat-file", "--batch", cwd=self.path, stdin=data, timeout=self.timeout)
        contents, pos = {}, 0
        for oid in oids:
            nl = out.index(b"\n", pos)
            header = out[pos:nl].split()
            size = int(header[2])
            contents[oid] = out[nl + 1 : nl + 1 + size]
            pos = nl + 1 + size + 1
        return contents


def branch_files(
    url: str, branch: str, dest: Path, wanted: Callable[[str], bool], limit: int, timeout: float = 300.0
) -> dict[str, bytes] | None:
    """The files of `branch` whose paths `wanted` accepts, as {path: bytes}; None when the branch
    does not exist. Nothing is checked out: a shallow, blob-filtered bare clone brings the trees,
    the wanted blobs come in one batched fetch by id (the bundles never travel), and only regular
    files within `limit` bytes are read (their sizes are checked first). A server without filters
    gets a plain shallow clone."""
    if not any(name == f"refs/heads/{branch}" for name, _ in list_refs(url, f"refs/heads/{branch}", 2, timeout)):
        return None
    filtered = True
    remote = git_remote(url)
    try:
        git("clone", "-q", "--bare", "--depth=1", "--single-branch", f"--branch={branch}", "--filter=blob:none",
            remote.url, str(dest), timeout=timeout, env=remote.env)  # fmt: skip
    except FleetReadError:
        shutil.rmtree(dest, ignore_errors=True)
        filtered = False
        git("clone", "-q", "--bare", "--depth=1", "--single-branch", f"--branch={branch}", remote.url, str(dest),
            timeout=timeout, env=remote.env)  # fmt: skip
    listing = git("ls-tree", "-r", "-z", f"refs/heads/{branch}", cwd=dest, timeout=timeout)
    blobs: dict[str, str] = {}
    for entry in listing.split(b"\0"):
        meta, _, raw = entry.partition(b"\t")
        parts = meta.split()
        path = raw.decode(errors="replace")
        if len(parts) == 3 and parts[0] in (b"100644", b"100755") and parts[1] == b"blob" and wanted(path):
            blobs[path] = parts[2].decode()
    if not blobs:
        return {}
    oids = sorted(set(blobs.values()))
    if filtered:
        git("-c", "fetch.negotiationAlgorithm=noop", "fetch", "-q", "origin", "--no-tags", "--no-write-fetch-head",
            "--recurse-submodules=no", "--filter=blob:none", "--stdin", cwd=dest,
            stdin="".join(f"{o}\n" for o in oids).encode(), timeout=timeout, env=remote.env)  # fmt: skip
    store = RefStore.open(dest, timeout)
    sizes = store.sizes(oids)
    readable = [o for o in oids if (info := sizes.get(o)) and info[1] == "blob" and info[2] <= limit]
    contents = store.read(readable)
    return {path: contents[oid] for path, oid in blobs.items() if oid in contents}
