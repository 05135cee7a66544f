"""`takt publish`: the content-addressed deploy tree, committed in one commit and pushed.

Layout of the deploy branch:
    bundles/<digest>/…                 one copy per distinct bundle
    devices/<id>/desired.json          generation, expires, bundle names and digests
    devices/<id>/desired.json.sig      ed25519 signature of desired.json

The deploy repository is data written by people who may not hold the key, so nothing of it is
ever checked out: publish works in a bare clone, reads the previous desired states as Git blobs
(bounded in size, trusted only when their signature verifies with the publishing key), and
builds the new tree from the build alone through a private index. The branch then equals the
build byte for byte — a tampered bundle file, a bad signature, a symlink or a stray file is
repaired in the same one commit — and a tree equal to the branch's makes no commit at all.
Unchanged desired states are kept unless they would expire within half their validity.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import git
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from compiler.build import MODELS
from compiler.bundle import DESIRED, MANIFEST, SIGNATURE, Activation, BundleRef, DesiredState, sign, verify_bundle
from compiler.bundle.desired import verify_signature
from compiler.bundle.manifest import Manifest
from compiler.bundle.tree import TreeError, read_regular
from compiler.clusters import ClusterSource, cluster_files, public_url
from compiler.fleet.seen import SEEN_PATH
from compiler.oci import PushedModel, RegistryAccess, RegistryError, RegistryRef, push_models
from compiler.rollout.plan import plan, with_generations
from compiler.rollout.state import (
    ROLLOUTS,
    TERMINAL,
    RolloutSpec,
    RolloutState,
    sealed,
    signature_path,
    state_path,
    verified,
)
from compiler.signing import load_private_key
from compiler.spec.addresses import redact_url

MAX_STATE_BYTES = 1 << 20  # a desired state or its signature larger than this was not written by publish
MAX_RECORD_BYTES = 16 << 20  # a rollout record of ~60,000 devices
MAX_HISTORY = 500  # commits searched for a device's last verified state when the branch's copy is bad
_DEVICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_FILE_MODES = {0o644: "100644", 0o755: "100755"}


class PublishError(Exception):
    pass


@dataclass
class PublishResult:
    commit: str | None
    changed: list[str] = field(default_factory=list)  # devices whose desired state was (re)written
    added_bundles: list[str] = field(default_factory=list)
    removed_bundles: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)  # branch paths that differed from the build and were rewritten
    pushed_models: list[PushedModel] = field(default_factory=list)
    rollouts_started: list[str] = field(default_factory=list)  # deployments whose new bundles went to a first step
    rollouts: dict[str, str] = field(default_factory=dict)  # deployment → phase of its record after this publish


@dataclass(frozen=True)
class CommitSigning:
    """Sign the deploy commit through git, so Flux (or a person) can verify who published it.

    `ssh_key`: an SSH private (or public, with an agent) key file, used as `gpg.format=ssh`;
    None: git's own configuration (`gpg.format`, `user.signingKey`), e.g. OpenPGP.
    """

    ssh_key: Path | None = None

    def git_args(self) -> list[str]:
        if self.ssh_key is None:
            return []
        return ["-c", "gpg.format=ssh", "-c", f"user.signingKey={self.ssh_key}"]


@dataclass(frozen=True)
class _Blob:
    mode: str  # "100644", "100755", "120000" (link), "160000" (submodule), …
    sha: str


def _clone(url: str, branch: str, work: Path, create: bool) -> tuple[git.Repo, str | None]:
    """A bare, shallow clone of the branch (nothing is checked out), and the branch's commit."""
    try:
        heads = str(git.cmd.Git().ls_remote("--heads", url, f"refs/heads/{branch}"))
    except git.GitCommandError as exc:
        raise PublishError(f"deploy repo {redact_url(url)} is unreachable: {_git_error(exc)}") from exc
    if heads.strip():
        try:
            repo = git.Repo.clone_from(url, work, bare=True, branch=branch, depth=1, single_branch=True, no_tags=True)
        except git.GitCommandError as exc:
            raise PublishError(f"cannot clone {redact_url(url)}: {_git_error(exc)}") from exc
        return repo, repo.git.rev_parse(f"refs/heads/{branch}")
    if not create:
        raise PublishError(f"branch {branch!r} does not exist in {redact_url(url)} (use --create-branch to start it)")
    repo = git.Repo.init(work, bare=True)
    repo.create_remote("origin", url)
    return repo, None


def _git_error(exc: git.GitCommandError) -> str:
    text = (exc.stderr or str(exc)).strip().replace("stderr:", "").strip().strip("'")
    return text.splitlines()[-1] if text else "git failed"


def _tree(repo: git.Repo, commit: str | None, prefix: str = "") -> dict[str, _Blob]:
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
        out[path.decode("utf-8", "surrogateescape")] = _Blob(mode, sha)
    return out


def _blob(repo: git.Repo, blob: _Blob | None, limit: int) -> bytes | None:
    """A blob's bytes when it is a plain file within `limit`; None otherwise (never read past the limit)."""
    if blob is None or blob.mode not in _FILE_MODES.values():
        return None
    info = repo.odb.info(bytes.fromhex(blob.sha))
    if info.size > limit:
        return None
    data: bytes = repo.odb.stream(bytes.fromhex(blob.sha)).read()  # gitdb's stream is untyped
    return data


def _verified_state(repo: git.Repo, tree: dict[str, _Blob], device: str, key: Ed25519PrivateKey) -> DesiredState | None:
    """The device's state on this tree, if it is signed by the publishing key and names this device."""
    data = _blob(repo, tree.get(f"devices/{device}/{DESIRED}"), MAX_STATE_BYTES)
    sig = _blob(repo, tree.get(f"devices/{device}/{SIGNATURE}"), MAX_STATE_BYTES)
    if data is None or sig is None:
        return None
    try:
        verify_signature(data, sig, [key.public_key()])
        state = DesiredState.parse(data)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError):
        return None
    return state if state.device == device else None


MAX_PAIRS = 64  # distinct state and signature blobs of one device tried from the history


def _signed_history(
    repo: git.Repo, head: str, branch: str, old: dict[str, _Blob], key: Ed25519PrivateKey
) -> dict[str, DesiredState]:
    """Each device's state of the highest generation signed by the publishing key in the branch's history.

    Devices refuse any generation at or below one they accepted, so the next one must exceed every
    generation publish ever signed — not only the one at the branch head, which a writer without
    the key can replace by an older signed state or delete (a freeze of the fleet otherwise).
    """
    with contextlib.suppress(git.GitCommandError):  # a shallow clone: fetch the recent history (no-op when full)
        repo.git.fetch(f"--deepen={MAX_HISTORY}", "origin", f"refs/heads/{branch}")
    raw: bytes = repo.git.log(
        f"--max-count={MAX_HISTORY}",
        "--raw",
        "--no-abbrev",
        "--no-renames",
        "--format=",
        "-z",
        head,
        "--",
        "devices/",
        stdout_as_string=False,
    )
    seen: dict[str, tuple[list[str], list[str]]] = {}

    def note(path: str, sha: str) -> None:
        parts = path.split("/")
        if len(parts) == 3 and parts[0] == "devices" and _DEVICE.fullmatch(parts[1]) and set(sha) != {"0"}:
            states, sigs = seen.setdefault(parts[1], ([], []))
            bucket = states if parts[2] == DESIRED else sigs if parts[2] == SIGNATURE else None
            if bucket is not None and sha not in bucket and len(bucket) < MAX_PAIRS:
                bucket.append(sha)

    for path, blob in old.items():
        note(path, blob.sha)
    tokens = raw.split(b"\0")
    for n, token in enumerate(tokens[:-1]):
        meta = token.strip(b"\n")
        if meta.startswith(b":") and meta.count(b" ") >= 4:
            note(tokens[n + 1].decode("utf-8", "surrogateescape"), meta.decode("ascii", "replace").split(" ")[3])
    best: dict[str, DesiredState] = {}
    for device, (states, sigs) in seen.items():
        for st in states:
            for sg in sigs:
                tree = {
                    f"devices/{device}/{DESIRED}": _Blob("100644", st),
                    f"devices/{device}/{SIGNATURE}": _Blob("100644", sg),
                }
                state = _verified_state(repo, tree, device, key)
                if state is not None and (device not in best or state.generation > best[device].generation):
                    best[device] = state
    return best


def publish(
    build_dir: Path,
    url: str,
    branch: str,
    key_ref: str,
    *,
    validity: timedelta = timedelta(days=7),
    create_branch: bool = False,
    now: datetime | None = None,
    cluster_url: str | None = None,
    commit_signing: CommitSigning | None = None,
    model_registry: RegistryRef | None = None,
    registry_access: RegistryAccess | None = None,
) -> PublishResult:
    """Make the deploy branch equal to the build; see the module docstring.

    `cluster_url`: where clusters pull the branch from, for their Argo CD / Flux manifests
    (default: `url`). `commit_signing`: sign the deploy commit through git. `model_registry`:
    push the models that it-server bundles name by digest (before the branch moves, so the branch
    never names a model the registry lacks).
    """
    key = load_private_key(key_ref)
    try:
        index = json.loads(read_regular(build_dir / "index.json", 64 << 20).decode("utf-8"))
        devices = index["devices"]
        if not isinstance(devices, dict):
            raise ValueError("devices is not a mapping")
    except (OSError, ValueError, KeyError, TypeError, TreeError) as exc:
        raise PublishError(f"no usable build in {build_dir} (run takt build): {exc}") from exc
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    try:
        if model_registry is not None:
            result_models = _push_models(build_dir, model_registry, registry_access or RegistryAccess())
        else:
            result_models = []
        options = _Options(validity, create_branch, now, public_url(cluster_url or url), commit_signing)
        result = _publish(build_dir, index, url, branch, key, options)
        result.pushed_models = result_models
        return result
    except OSError as exc:  # e.g. the disk fills while objects are written: nothing was pushed
        raise PublishError(f"cannot write the deploy tree ({exc.strerror or exc}); nothing was published") from exc
    except git.GitCommandError as exc:  # a plumbing step failed (full disk, broken clone): nothing was pushed
        raise PublishError(f"cannot write the deploy tree ({_git_error(exc)}); nothing was published") from exc


def _push_models(build_dir: Path, ref: RegistryRef, access: RegistryAccess) -> list[PushedModel]:
    store = build_dir / MODELS
    models = {p.name: p for p in store.iterdir()} if store.is_dir() else {}
    try:
        return push_models(models, ref, access)
    except RegistryError as exc:
        raise PublishError(f"{exc}; nothing was published") from exc


def _wanted(index: dict[str, Any], old: dict[str, _Blob]) -> dict[str, tuple[BundleRef, ...]]:
    wanted: dict[str, tuple[BundleRef, ...]] = {}
    for dev, entries in index["devices"].items():
        refs = tuple(BundleRef(str(e["name"]), str(e["digest"])) for e in entries)
        if not _DEVICE.fullmatch(dev) or not all(_DIGEST.fullmatch(r.digest) for r in refs):
            raise PublishError(f"build index names an invalid device or digest ({dev!r})")
        wanted[dev] = refs
    leaving = {p.split("/")[1] for p in old if p.startswith("devices/") and p.count("/") >= 2} - set(wanted)
    for dev in sorted(d for d in leaving if _DEVICE.fullmatch(d)):
        wanted[dev] = ()  # a device left the fleet: an explicit, signed "run nothing"
    return wanted


@dataclass(frozen=True)
class _Options:
    validity: timedelta
    create_branch: bool
    now: datetime
    cluster_url: str
    commit_signing: CommitSigning | None


def _publish(
    build_dir: Path, index: dict[str, Any], url: str, branch: str, key: Ed25519PrivateKey, opts: _Options
) -> PublishResult:
    validity, now = opts.validity, opts.now
    with tempfile.TemporaryDirectory(prefix="takt-publish-") as tmp:
        repo, head = _clone(url, branch, Path(tmp) / "deploy.git", opts.create_branch)
        old = _tree(repo, head)
        result = PublishResult(None)
        new: dict[str, tuple[str, bytes | Path | _Blob]] = {}  # path → (mode, content, a build file or a branch blob)
        wanted = _wanted(index, old)
        # what devices last saw: the highest signed generation, not whatever the branch head holds now
        # (a writer without the key can replace it by an older signed state, damage or delete it)
        highest = _signed_history(repo, head, branch, old, key) if head is not None else {}
        # a device leaves the fleet only if publish itself had given it a state; a planted folder is stray data
        wanted = {d: refs for d, refs in wanted.items() if d in index["devices"] or d in highest}
        records = _rollout_records(repo, old, key.public_key())
        planned = plan(
            wanted,
            _rollout_specs(index),
            highest,
            {d: r[0] for d, r in records.items()},
            now,
            index.get("sourceCommit"),
        )
        wanted = planned.refs
        result.rollouts_started = planned.started
        states: dict[str, DesiredState] = {}
        for dev, refs in sorted(wanted.items()):
            previous = highest.get(dev)
            if previous and previous.bundles == refs and previous.expires - now > validity / 2:
                data = previous.to_bytes()  # unchanged: the same bytes, and (ed25519) the same signature
            else:
                generation = (previous.generation + 1) if previous else 1
                data = DesiredState(dev, generation, now + validity, refs, index.get("sourceCommit")).to_bytes()
                result.changed.append(dev)
            new[f"devices/{dev}/{DESIRED}"] = ("100644", data)
            new[f"devices/{dev}/{SIGNATURE}"] = ("100644", sign(data, key))
            states[dev] = DesiredState.parse(data)
        for deployment, record in sorted(planned.records.items()):
            record = with_generations(record, states)
            previous_record = records.get(deployment)
            data, sig = (
                (previous_record[1], previous_record[2])
                if previous_record is not None and previous_record[0] == record
                else sealed(record, key)
            )
            new[state_path(deployment)] = ("100644", data)
            new[signature_path(deployment)] = ("100644", sig)
            result.rollouts[deployment] = record.phase.value
        seen = old.get(SEEN_PATH)
        if seen is not None and seen.mode in _FILE_MODES.values():
            new[SEEN_PATH] = (seen.mode, seen)  # the fleet readers' memory (written by rollout decisions) stays
        referenced = sorted(
            {r.digest for refs in wanted.values() for r in refs}
            | {d for rec in planned.records.values() for d in _restorable(rec)}  # what an abort gives back
        )
        activations: dict[str, Activation] = {}
        for digest in referenced:
            src = build_dir / "bundles" / digest
            if not src.is_dir():  # a previous bundle that devices outside a rollout step keep: from the branch
                activations[digest] = _copy_from_branch(repo, old, digest, new)
                continue
            manifest, problems = verify_bundle(src, digest)
            if problems or manifest is None:
                raise PublishError(f"bundle {digest[:16]} in {build_dir} does not verify: {problems[0]}")
            activations[digest] = manifest.activation
            new[f"bundles/{digest}/{MANIFEST}"] = ("100644", src / MANIFEST)
            for entry in manifest.files:
                new[f"bundles/{digest}/{entry.path}"] = (_FILE_MODES[entry.mode], src / entry.path)
        cluster_source = ClusterSource(opts.cluster_url, branch, verify_commits=opts.commit_signing is not None)
        for dev, refs in sorted(wanted.items()):
            on_cluster = [r.digest for r in refs if activations[r.digest] is Activation.CLUSTER]
            if on_cluster:
                new.update((p, ("100644", data)) for p, data in cluster_files(dev, on_cluster, cluster_source).items())
        on_branch_bundles = {p.split("/")[1] for p in old if p.startswith("bundles/") and p.count("/") >= 2}
        result.added_bundles = [d for d in referenced if d not in on_branch_bundles]
        result.removed_bundles = sorted(on_branch_bundles - set(referenced))
        tree, blobs = _write_tree(repo, new, Path(tmp))
        kept = {p.split("/")[1] for p in old if p.count("/") >= 2 and p.split("/")[0] in ("bundles", "devices")}
        kept &= set(referenced) | set(wanted)
        result.repaired = sorted(
            p for p in old.keys() | blobs.keys() if _is_repair(p, old.get(p), blobs.get(p), result, kept, set(records))
        )
        if head is not None and tree == repo.git.rev_parse(f"{head}^{{tree}}"):
            return PublishResult(None)
        source = (index.get("sourceCommit") or "unknown")[:12]
        message = (
            f"takt publish {source}: {len(result.changed)} device(s), +{len(result.added_bundles)} "
            f"-{len(result.removed_bundles)} bundle(s)"
        )
        for deployment in result.rollouts_started:
            record = planned.records[deployment]
            step = ", ".join(record.step_devices()[:20]) or "no device"
            message += f"\n\nRollout of {deployment} started: {record.phase.value} step on {step}"
        if result.repaired:
            listed = "".join(f"\n  {p!r}" for p in result.repaired[:50])
            message += f"\n\nRepaired {len(result.repaired)} path(s) that differed from the build:{listed}"
        parents = ["-p", head] if head else []
        signing = opts.commit_signing
        sign_args = [*signing.git_args(), "commit-tree", "-S"] if signing is not None else ["commit-tree"]
        commit = _plumb(repo, [*sign_args, tree, *parents, "-F", "-"], message.encode(), _AUTHOR).decode().strip()
        try:
            repo.git.push("origin", f"{commit}:refs/heads/{branch}")
        except git.GitCommandError as exc:
            raise PublishError(
                f"push to {redact_url(url)} {branch} was refused (diverged or protected?): {_git_error(exc)}; "
                "nothing was published"
            ) from exc
        result.commit = commit
        return result


_AUTHOR = {
    "GIT_AUTHOR_NAME": "takt",
    "GIT_AUTHOR_EMAIL": "takt@localhost",
    "GIT_COMMITTER_NAME": "takt",
    "GIT_COMMITTER_EMAIL": "takt@localhost",
}


def _restorable(record: RolloutState) -> set[str]:
    """Bundles a running rollout may still hand out: both sides until it is promoted or aborted."""
    if record.phase in TERMINAL:
        return set()
    return {b.new.digest for b in record.devices.values()} | {
        b.old.digest for b in record.devices.values() if b.old is not None
    }


def _rollout_specs(index: dict[str, Any]) -> dict[str, RolloutSpec]:
    try:
        return {str(d): RolloutSpec.from_json(r) for d, r in (index.get("rollouts") or {}).items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PublishError(f"build index has an invalid rollouts section ({exc}); run takt build again") from exc


def _rollout_records(
    repo: git.Repo, tree: dict[str, _Blob], trusted: Ed25519PublicKey
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
        data = _blob(repo, tree.get(path), MAX_RECORD_BYTES)
        sig = _blob(repo, tree.get(signature_path(deployment)), MAX_STATE_BYTES)
        if data is None or sig is None:
            continue
        try:
            out[deployment] = (verified(data, sig, deployment, trusted), data, sig)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError):
            continue
    return out


def _copy_from_branch(repo: git.Repo, tree: dict[str, _Blob], digest: str, new: dict[str, Any]) -> Activation:
    """Keep a bundle the branch holds (and a device still runs) as the same blobs; how it is activated.

    Only entries its manifest names are kept, each with the manifest's mode; a missing file is an
    error (agents would refuse the bundle): nothing is published then.
    """
    manifest_blob = _blob(repo, tree.get(f"bundles/{digest}/{MANIFEST}"), 64 << 20)
    try:
        if manifest_blob is None:
            raise ValueError("no manifest")
        manifest = Manifest.parse(manifest_blob)
        if manifest.digest != digest:
            raise ValueError("its manifest does not match its digest")
    except (ValueError, KeyError, TypeError) as exc:
        raise PublishError(
            f"bundle {digest[:16]}, which devices outside a rollout step keep, is not intact on the branch ({exc}); "
            "nothing was published"
        ) from exc
    new[f"bundles/{digest}/{MANIFEST}"] = ("100644", manifest_blob)
    for entry in manifest.files:
        blob = tree.get(f"bundles/{digest}/{entry.path}")
        if blob is None or blob.mode not in _FILE_MODES.values():
            raise PublishError(f"bundle {digest[:16]} on the branch lacks {entry.path!r}; nothing was published")
        new[f"bundles/{digest}/{entry.path}"] = (_FILE_MODES[entry.mode], blob)
    return manifest.activation


def _is_repair(
    path: str, old: _Blob | None, new: _Blob | None, result: PublishResult, kept: set[str], own_records: set[str]
) -> bool:
    """Whether a branch entry differed from what publish itself last wrote (someone else changed it).

    Not repairs: the changes publish reports on their own — states re-signed for changed devices,
    removed and added bundles, and the cluster paths that follow a changed device. `kept`: the
    bundle digests and device ids that were on the branch and stay.
    """
    if old == new:
        return False
    if old is not None and old.mode not in _FILE_MODES.values():
        return True  # a link or submodule is never publish's own
    parts = path.split("/")
    if parts[0] == ROLLOUTS:  # publish's own change, unless the branch held a record publish did not sign
        return old is not None and parts[-1].removesuffix(".sig").removesuffix(".json") not in own_records
    second = parts[1] if len(parts) > 2 else None
    if old is None:  # missing on the branch: a repair only inside something that was there and stays
        return parts[0] in ("bundles", "devices") and second in kept and second not in result.changed
    if parts[0] == "devices" and second in result.changed and parts[-1] in (DESIRED, SIGNATURE):
        return False
    if parts[0] == "bundles" and second in result.removed_bundles:
        return False
    return not (parts[0] == "clusters" and second in result.changed)


def _plumb(repo: git.Repo, args: list[str], data: bytes = b"", env: dict[str, str] | None = None) -> bytes:
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


def _write_tree(
    repo: git.Repo, entries: dict[str, tuple[str, bytes | Path | _Blob]], scratch: Path
) -> tuple[str, dict[str, _Blob]]:
    """Blobs and a tree object from `entries` through a private index (the clone has no work tree).

    Content given as bytes goes into one pack through `git fast-import` (thousands of signed states
    are one process and one file, not a scratch file and a loose object each); build files go
    through one `git hash-object --stdin-paths`, read from disk by git itself.
    Returns the tree id and each path's (mode, blob id), to compare with the branch's tree.
    """
    kept = {p: e[1].sha for p, e in entries.items() if isinstance(e[1], _Blob)}  # blobs already in the clone
    inline = sorted((p, e[1]) for p, e in entries.items() if isinstance(e[1], bytes))
    files = sorted((p, e[1]) for p, e in entries.items() if isinstance(e[1], Path))
    shas = dict(kept)
    if inline:
        stream = bytearray()
        for n, (_, data) in enumerate(inline, 1):
            stream += b"blob\nmark :%d\ndata %d\n%s\n" % (n, len(data), data)
        marks = scratch / "marks"
        _plumb(repo, ["fast-import", "--quiet", f"--export-marks={marks}"], bytes(stream))
        by_mark = dict(line.split(" ", 1) for line in marks.read_text("ascii").split("\n") if line)
        shas.update((p, by_mark[f":{n}"].strip()) for n, (p, _) in enumerate(inline, 1))
    if files:
        listed = "".join(f"{path}\n" for _, path in files).encode()
        out = _plumb(repo, ["hash-object", "-w", "--no-filters", "--stdin-paths"], listed)
        shas.update(zip((p for p, _ in files), out.decode("ascii").split(), strict=True))
    paths = sorted(entries)
    env = {"GIT_INDEX_FILE": str(scratch / "index")}
    _plumb(repo, ["read-tree", "--empty"], env=env)
    lines = "".join(f"{entries[p][0]} {shas[p]}\t{p}\0" for p in paths)
    _plumb(repo, ["update-index", "-z", "--index-info"], lines.encode("utf-8", "surrogateescape"), env=env)
    tree = _plumb(repo, ["write-tree"], env=env).decode("ascii").strip()
    return tree, {p: _Blob(entries[p][0], shas[p]) for p in paths}
