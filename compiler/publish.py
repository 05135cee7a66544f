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

import json
import re
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import git
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from compiler.build import MODELS
from compiler.bundle import DESIRED, MANIFEST, SIGNATURE, Activation, BundleRef, DesiredState, sign, verify_bundle
from compiler.bundle.deviceid import is_device_id
from compiler.bundle.tree import TreeError, read_regular
from compiler.clusters import ClusterSource, public_url
from compiler.deployrepo import (
    AUTHOR,
    FILE_MODES,
    Blob,
    Entries,
    branch_manifest,
    clone,
    cluster_entries,
    git_error,
    plumb,
    rollout_records,
    signed_history,
    tree_of,
    write_tree,
)
from compiler.deployrepo import (
    PublishError as PublishError,  # re-exported: callers catch it from here
)
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
)
from compiler.signing import load_private_key
from compiler.spec.addresses import redact_url

_DIGEST = re.compile(r"[0-9a-f]{64}")


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
        raise PublishError(f"cannot write the deploy tree ({git_error(exc)}); nothing was published") from exc


def _push_models(build_dir: Path, ref: RegistryRef, access: RegistryAccess) -> list[PushedModel]:
    store = build_dir / MODELS
    models = {p.name: p for p in store.iterdir()} if store.is_dir() else {}
    try:
        return push_models(models, ref, access)
    except RegistryError as exc:
        raise PublishError(f"{exc}; nothing was published") from exc


def _wanted(index: dict[str, Any], highest: dict[str, DesiredState]) -> dict[str, tuple[BundleRef, ...]]:
    """Each device's bundles: the build's, and an explicit, signed "run nothing" for a device that left it.

    A device leaves only if publish once signed it a state (`highest`, from the branch's history):
    a folder planted by a writer without the key is stray data, and one such a writer deleted does
    not keep its device running its last bundle until that state expires."""
    wanted: dict[str, tuple[BundleRef, ...]] = {}
    for dev, entries in index["devices"].items():
        refs = tuple(BundleRef(str(e["name"]), str(e["digest"])) for e in entries)
        if not is_device_id(dev) or not all(_DIGEST.fullmatch(r.digest) for r in refs):
            raise PublishError(f"build index names an invalid device or digest ({dev!r})")
        wanted[dev] = refs
    for dev in sorted(set(highest) - set(wanted)):
        wanted[dev] = ()
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
        repo, head = clone(url, branch, Path(tmp) / "deploy.git", opts.create_branch)
        old = tree_of(repo, head)
        result = PublishResult(None)
        new: Entries = {}  # path → (mode, content, a build file or a branch blob)
        # what devices last saw: the highest signed generation, not whatever the branch head holds now
        # (a writer without the key can replace it by an older signed state, damage or delete it)
        highest = signed_history(repo, head, branch, old, key) if head is not None else {}
        wanted = _wanted(index, highest)
        records = rollout_records(repo, old, key.public_key())
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
        if seen is not None and seen.mode in FILE_MODES.values():
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
                new[f"bundles/{digest}/{entry.path}"] = (FILE_MODES[entry.mode], src / entry.path)
        cluster_source = ClusterSource(opts.cluster_url, branch, verify_commits=opts.commit_signing is not None)
        for dev, refs in sorted(wanted.items()):
            files = cluster_entries(dev, refs, activations, cluster_source)
            new.update((p, ("100644", data)) for p, data in files.items())
        on_branch_bundles = {p.split("/")[1] for p in old if p.startswith("bundles/") and p.count("/") >= 2}
        result.added_bundles = [d for d in referenced if d not in on_branch_bundles]
        result.removed_bundles = sorted(on_branch_bundles - set(referenced))
        tree, blobs = write_tree(repo, new, Path(tmp))
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
        commit = plumb(repo, [*sign_args, tree, *parents, "-F", "-"], message.encode(), AUTHOR).decode().strip()
        try:
            repo.git.push("origin", f"{commit}:refs/heads/{branch}")
        except git.GitCommandError as exc:
            raise PublishError(
                f"push to {redact_url(url)} {branch} was refused (diverged or protected?): {git_error(exc)}; "
                "nothing was published"
            ) from exc
        result.commit = commit
        return result


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


def _copy_from_branch(repo: git.Repo, tree: dict[str, Blob], digest: str, new: Entries) -> Activation:
    """Keep a bundle the branch holds (and a device still runs) as the same blobs; how it is activated.

    Only entries its manifest names are kept, each with the manifest's mode; a missing file is an
    error (agents would refuse the bundle): nothing is published then.
    """
    try:
        manifest, manifest_blob = branch_manifest(repo, tree, digest)
    except PublishError as exc:
        raise PublishError(f"{exc} (devices outside a rollout step keep it)") from None
    new[f"bundles/{digest}/{MANIFEST}"] = ("100644", manifest_blob)
    for entry in manifest.files:
        blob = tree.get(f"bundles/{digest}/{entry.path}")
        if blob is None or blob.mode not in FILE_MODES.values():
            raise PublishError(f"bundle {digest[:16]} on the branch lacks {entry.path!r}; nothing was published")
        new[f"bundles/{digest}/{entry.path}"] = (FILE_MODES[entry.mode], blob)
    return manifest.activation


def _is_repair(
    path: str, old: Blob | None, new: Blob | None, result: PublishResult, kept: set[str], own_records: set[str]
) -> bool:
    """Whether a branch entry differed from what publish itself last wrote (someone else changed it).

    Not repairs: the changes publish reports on their own — states re-signed for changed devices,
    removed and added bundles, and the cluster paths that follow a changed device. `kept`: the
    bundle digests and device ids that were on the branch and stay.
    """
    if old == new:
        return False
    if old is not None and old.mode not in FILE_MODES.values():
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
