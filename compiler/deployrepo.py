"""The deploy repository's Git plumbing, shared by `takt publish` and `takt rollout promote|abort`.

Both work the same way: a bare, shallow clone (nothing is ever checked out: the branch is data
written by people who may not hold the key), blobs read bounded and in batches, the previous
desired states believed only when the publishing key signed them, a new tree written through a
private index, one commit, one push. The files a cluster device follows (`clusters/<device>/`)
are derived here from a device's bundles, so a rollout decision rewrites them exactly as publish
does.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import git
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from compiler.bundle import DESIRED, MANIFEST, SIGNATURE, Activation, BundleRef, DesiredState
from compiler.bundle.desired import verify_signature
from compiler.bundle.deviceid import is_device_id
from compiler.bundle.gitcred import git_remote
from compiler.bundle.gitmessage import summary
from compiler.bundle.manifest import Manifest
from compiler.clusters import ClusterSource, cluster_files
from compiler.fleet.gitread import FleetReadError, RefStore
from compiler.rollout.state import ROLLOUTS, RolloutState, signature_path, verified
from compiler.spec.addresses import redact_url

MAX_STATE_BYTES = 1 << 20  # a desired state or its signature larger than this was not written by publish
MAX_RECORD_BYTES = 16 << 20  # a rollout record of ~60,000 devices
MAX_MANIFEST_BYTES = 64 << 20
MAX_HISTORY = 500  # commits searched for a device's last verified state when the branch's copy is bad
MAX_PAIRS = 64  # distinct state and signature blobs of one device tried from the history
CLUSTERS = "clusters"
# One change of `git log --raw -z --no-renames`: ":old-mode new-mode old-sha new-sha status\0path\0"; the new sha
# and the path are taken.
_RAW_CHANGE = re.compile(rb":[0-7]+ [0-7]+ [0-9a-f]+ ([0-9a-f]+) [A-Z][0-9]*\0([^\0]*)\0")
FILE_MODES = {0o644: "100644", 0o755: "100755"}
AUTHOR = {
    "GIT_AUTHOR_NAME": "takt",
    "GIT_AUTHOR_EMAIL": "takt@localhost",
    "GIT_COMMITTER_NAME": "takt",
    "GIT_COMMITTER_EMAIL": "takt@localhost",
}


class PublishError(Exception):
    """The deploy branch cannot be read or written; nothing was pushed."""


@dataclass(frozen=True)
class Blob:
    mode: str  # "100644", "100755", "120000" (link), "160000" (submodule), …
    sha: str


Entries = dict[str, tuple[str, bytes | Path | Blob]]
"""path → (mode, content): bytes, a build file read by git, or a blob already in the clone."""


def clone(url: str, branch: str, work: Path, create: bool) -> tuple[git.Repo, str | None]:
    """A bare, shallow clone of the branch (nothing is checked out), and the branch's commit."""
    remote = git_remote(url)  # the clone's git runs get its password by their environment only
    try:
        heads = git.cmd.Git().ls_remote("--heads", remote.url, f"refs/heads/{branch}", env=dict(remote.env))
    except git.GitCommandError as exc:
        raise PublishError(f"deploy repo {redact_url(url)} is unreachable: {git_error(exc)}") from exc
    if str(heads).strip():
        try:
            # --depth implies --single-branch: the branch's head commit alone, and no tags
            repo = git.Repo.clone_from(remote.url, work, bare=True, branch=branch, depth=1, no_tags=True,
                                       env=dict(remote.env))  # fmt: skip
        except git.GitCommandError as exc:
            raise PublishError(f"cannot clone {redact_url(url)}: {git_error(exc)}") from exc
        repo.git.update_environment(**remote.env)  # the fetches and the push that follow
        return repo, repo.git.rev_parse(f"refs/heads/{branch}")
    if not create:
        raise PublishError(f"branch {branch!r} does not exist in {redact_url(url)} (use --create-branch to start it)")
    repo = git.Repo.init(work, bare=True)
    repo.create_remote("origin", remote.url)
    repo.git.update_environment(**remote.env)
    return repo, None


def git_error(exc: git.GitCommandError) -> str:
    return summary(exc.stderr or str(exc))


def tree_of(repo: git.Repo, commit: str | None, prefix: str = "") -> dict[str, Blob]:
    """Every entry of a commit's tree below `prefix`, by path (links and submodules included, as data)."""
    if commit is None:
        return {}
    raw: bytes = repo.git.ls_tree(
        "-r", "-z", "--full-tree", commit, *(["--", prefix] if prefix else []), stdout_as_string=False
    )
    out = {}
    for record in filter(None, raw.split(b"\0")):
        meta, _, path = record.partition(b"\t")
        mode, _kind, sha = meta.decode("ascii").split(" ")
        out[path.decode("utf-8", "surrogateescape")] = Blob(mode, sha)
    return out


def read_blob(repo: git.Repo, blob: Blob | None, limit: int) -> bytes | None:
    """A blob's bytes when it is a plain file within `limit`; None otherwise (never read past the limit)."""
    if blob is None or blob.mode not in FILE_MODES.values():
        return None
    return read_blobs(repo, [blob.sha], limit).get(blob.sha)


def read_blobs(repo: git.Repo, shas: Iterable[str], limit: int) -> dict[str, bytes]:
    """The blobs among `shas` within `limit` bytes each, in two batched `cat-file` calls (sizes are
    checked before anything is read). A missing or oversized object is simply absent."""
    wanted = sorted(set(shas))
    if not wanted:
        return {}
    store = RefStore.open(Path(repo.git_dir))
    try:
        sizes = store.sizes(wanted)
        return store.read([s for s in wanted if (i := sizes.get(s)) and i[1] == "blob" and i[2] <= limit])
    except FleetReadError as exc:
        raise git.GitCommandError(["git", "cat-file"], 128, str(exc).encode()) from None


def plumb(repo: git.Repo, args: list[str], data: bytes = b"", env: dict[str, str] | None = None) -> bytes:
    """One git plumbing command with `data` on stdin (gitpython has no stdin for these)."""
    proc = subprocess.run(
        ["git", "--git-dir", str(repo.git_dir), *args],
        input=data,
        capture_output=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if proc.returncode != 0:
        raise git.GitCommandError(["git", *args], proc.returncode, proc.stderr)
    return proc.stdout


def write_tree(repo: git.Repo, entries: Entries, scratch: Path) -> tuple[str, dict[str, Blob]]:
    """Blobs and a tree object from `entries` through a private index (the clone has no work tree).

    Content given as bytes goes into one pack through `git fast-import` (thousands of signed states
    are one process and one file, not a scratch file and a loose object each); build files go
    through one `git hash-object --stdin-paths`, read from disk by git itself.
    Returns the tree id and each path's (mode, blob id), to compare with the branch's tree.
    """
    kept = {p: e[1].sha for p, e in entries.items() if isinstance(e[1], Blob)}  # blobs already in the clone
    inline = sorted((p, e[1]) for p, e in entries.items() if isinstance(e[1], bytes))
    on_disk = {p: e[1] for p, e in sorted(entries.items()) if isinstance(e[1], Path)}
    files = list(on_disk)
    shas = dict(kept)
    if inline:
        stream = bytearray()
        for n, (_, data) in enumerate(inline, 1):
            stream += b"blob\nmark :%d\ndata %d\n%s\n" % (n, len(data), data)
        marks = scratch / "marks"
        plumb(repo, ["fast-import", "--quiet", f"--export-marks={marks}"], bytes(stream))
        by_mark = dict(line.split() for line in marks.read_text("ascii").splitlines())  # ":<mark> <sha>"
        shas.update((p, by_mark[f":{n}"]) for n, (p, _) in enumerate(inline, 1))
    if files:
        listed = "".join(f"{source}\n" for source in on_disk.values()).encode()
        out = plumb(repo, ["hash-object", "-w", "--no-filters", "--stdin-paths"], listed)
        shas.update(zip(files, out.decode("ascii").split(), strict=True))
    paths = sorted(entries)
    env = {"GIT_INDEX_FILE": str(scratch / "index")}
    plumb(repo, ["read-tree", "--empty"], env=env)
    lines = "".join(f"{entries[p][0]} {shas[p]}\t{p}\0" for p in paths)
    plumb(repo, ["update-index", "-z", "--index-info"], lines.encode("utf-8", "surrogateescape"), env=env)
    tree = plumb(repo, ["write-tree"], env=env).decode("ascii").strip()
    return tree, {p: Blob(entries[p][0], shas[p]) for p in paths}


def _verified_state(data: bytes | None, sig: bytes | None, device: str, key: Ed25519PublicKey) -> DesiredState | None:
    """The state, if it is signed by the publishing key and names this device."""
    if data is None or sig is None:
        return None
    try:
        verify_signature(data, sig, [key])
        state = DesiredState.parse(data)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError):
        return None
    return state if state.device == device else None


def signed_history(
    repo: git.Repo, head: str, branch: str, old: Mapping[str, Blob], key: Ed25519PrivateKey
) -> dict[str, DesiredState]:
    """Each device's state of the highest generation signed by the publishing key in the branch's history.

    Devices refuse any generation at or below one they accepted, so the next one must exceed every
    generation publish ever signed — not only the one at the branch head, which a writer without
    the key can replace by an older signed state or delete (a freeze of the fleet otherwise).
    Every candidate blob is read in one batch; each (state, signature) pair is then verified.
    """
    with contextlib.suppress(git.GitCommandError):  # a shallow clone: fetch the recent history (no-op when full)
        repo.git.fetch(f"--deepen={MAX_HISTORY}", "origin", f"refs/heads/{branch}")
    raw: bytes = repo.git.log(
        f"--max-count={MAX_HISTORY}", "--raw", "--no-abbrev", "--no-renames", "--format=", "-z", head, "--",
        "devices/", stdout_as_string=False,
    )  # fmt: skip
    seen: dict[str, tuple[list[str], list[str]]] = {}

    def note(path: str, sha: str) -> None:
        parts = path.split("/")
        if len(parts) == 3 and parts[0] == "devices" and is_device_id(parts[1]) and set(sha) != {"0"}:
            states, sigs = seen.setdefault(parts[1], ([], []))
            bucket = states if parts[2] == DESIRED else sigs if parts[2] == SIGNATURE else None
            if bucket is not None and sha not in bucket and len(bucket) < MAX_PAIRS:
                bucket.append(sha)

    for path, blob in old.items():
        note(path, blob.sha)
    for sha, path in _RAW_CHANGE.findall(raw):
        note(path.decode("utf-8", "surrogateescape"), sha.decode("ascii"))
    contents = read_blobs(repo, (s for states, sigs in seen.values() for s in (*states, *sigs)), MAX_STATE_BYTES)
    public = key.public_key()
    best: dict[str, DesiredState] = {}
    for device, (states, sigs) in seen.items():
        for st in states:
            for sg in sigs:
                state = _verified_state(contents.get(st), contents.get(sg), device, public)
                if state is not None and (device not in best or state.generation > best[device].generation):
                    best[device] = state
    return best


def rollout_records(
    repo: git.Repo, tree: Mapping[str, Blob], trusted: Ed25519PublicKey
) -> dict[str, tuple[RolloutState, bytes, bytes]]:
    """The branch's rollout records that the publishing key signed (with their bytes, reused unchanged).

    A record that does not verify is left out: its deployment then rolls out again from what the
    devices' signed states say, never from what an unsigned file claims.
    """
    out: dict[str, tuple[RolloutState, bytes, bytes]] = {}
    for path in tree:
        parts = path.split("/")
        if len(parts) != 2 or parts[0] != ROLLOUTS or not parts[1].endswith(".json"):
            continue
        deployment = parts[1].removesuffix(".json")
        data = read_blob(repo, tree.get(path), MAX_RECORD_BYTES)
        sig = read_blob(repo, tree.get(signature_path(deployment)), MAX_STATE_BYTES)
        if data is None or sig is None:
            continue
        try:
            out[deployment] = (verified(data, sig, deployment, trusted), data, sig)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError):
            continue
    return out


def branch_manifest(repo: git.Repo, tree: Mapping[str, Blob], digest: str) -> tuple[Manifest, bytes]:
    """The manifest of a bundle the branch holds, checked against its digest; PublishError when it is
    missing or does not match (agents and clusters would refuse the bundle)."""
    data = read_blob(repo, tree.get(f"bundles/{digest}/{MANIFEST}"), MAX_MANIFEST_BYTES)
    try:
        if data is None:
            raise ValueError("no manifest")
        manifest = Manifest.parse(data)
        if manifest.digest != digest:
            raise ValueError("its manifest does not match its digest")
    except (ValueError, KeyError, TypeError) as exc:
        raise PublishError(f"bundle {digest[:16]} is not intact on the branch ({exc}); nothing was published") from exc
    return manifest, data


def cluster_paths(device: str) -> str:
    return f"{CLUSTERS}/{device}/"


def cluster_entries(
    device: str, refs: Iterable[BundleRef], activations: Mapping[str, Activation], source: ClusterSource
) -> dict[str, bytes]:
    """The `clusters/<device>/` files for a device's bundles: none when no bundle of it is of cluster
    activation (the it-server class), else its kustomization and bootstrap manifests."""
    on_cluster = [r.digest for r in refs if activations[r.digest] is Activation.CLUSTER]
    return cluster_files(device, on_cluster, source) if on_cluster else {}
