"""`takt publish`: the content-addressed deploy tree, committed in one commit and pushed.

Layout of the deploy branch:
    bundles/<digest>/…                 one copy per distinct bundle
    devices/<id>/desired.json          generation, expires, bundle names and digests
    devices/<id>/desired.json.sig      ed25519 signature of desired.json

Everything happens in a fresh shallow clone in a temporary directory; the branch moves by one
push of one commit or not at all. Unchanged desired states are not rewritten (so publishing the
same build twice makes no commit) unless they would expire within half their validity.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import git

from compiler.bundle import DESIRED, SIGNATURE, BundleRef, DesiredState, sign, verify_bundle
from compiler.signing import load_private_key


class PublishError(Exception):
    pass


@dataclass
class PublishResult:
    commit: str | None
    changed: list[str] = field(default_factory=list)  # devices whose desired state was (re)written
    added_bundles: list[str] = field(default_factory=list)
    removed_bundles: list[str] = field(default_factory=list)


def _clone(url: str, branch: str, work: Path, create: bool) -> git.Repo:
    try:
        heads = git.cmd.Git().ls_remote("--heads", url, f"refs/heads/{branch}")
    except git.GitCommandError as exc:
        raise PublishError(f"deploy repo {url} is unreachable: {_git_error(exc)}") from exc
    if heads.strip():
        try:
            return git.Repo.clone_from(url, work, branch=branch, depth=1, single_branch=True)
        except git.GitCommandError as exc:
            raise PublishError(f"cannot clone {url}: {_git_error(exc)}") from exc
    if not create:
        raise PublishError(f"branch {branch!r} does not exist in {url} (use --create-branch to start it)")
    repo = git.Repo.init(work)
    repo.create_remote("origin", url)
    repo.git.checkout("--orphan", branch)
    return repo


def _git_error(exc: git.GitCommandError) -> str:
    text = (exc.stderr or str(exc)).strip().replace("stderr:", "").strip().strip("'")
    return text.splitlines()[-1] if text else "git failed"


def publish(
    build_dir: Path,
    url: str,
    branch: str,
    key_ref: str,
    *,
    validity: timedelta = timedelta(days=7),
    create_branch: bool = False,
    now: datetime | None = None,
) -> PublishResult:
    key = load_private_key(key_ref)
    try:
        index = json.loads((build_dir / "index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PublishError(f"no usable build in {build_dir} (run takt build): {exc}") from exc
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    try:
        return _publish(build_dir, index, url, branch, key, validity, create_branch, now)
    except OSError as exc:  # e.g. the disk fills while the tree is written: nothing was pushed
        raise PublishError(f"cannot write the deploy tree ({exc.strerror or exc}); nothing was published") from exc


def _publish(
    build_dir: Path, index: dict, url: str, branch: str, key, validity: timedelta, create_branch: bool, now: datetime
) -> PublishResult:
    with tempfile.TemporaryDirectory(prefix="takt-publish-") as tmp:
        work = Path(tmp) / "deploy"
        repo = _clone(url, branch, work, create_branch)
        result = PublishResult(None)
        wanted: dict[str, list[BundleRef]] = {
            dev: [BundleRef(e["name"], e["digest"]) for e in entries] for dev, entries in index["devices"].items()
        }
        existing_devices = {p.name for p in (work / "devices").iterdir()} if (work / "devices").is_dir() else set()
        for dev in sorted(existing_devices - set(wanted)):
            wanted[dev] = []  # a device left the fleet: an explicit, signed "run nothing"
        referenced: set[str] = set()
        for dev, refs in sorted(wanted.items()):
            referenced |= {r.digest for r in refs}
            ddir = work / "devices" / dev
            previous = None
            if (ddir / DESIRED).is_file():
                try:
                    previous = DesiredState.parse((ddir / DESIRED).read_bytes())
                except (ValueError, KeyError, TypeError):
                    previous = None
            if previous and previous.bundles == tuple(refs) and previous.expires - now > validity / 2:
                continue
            state = DesiredState(
                dev,
                (previous.generation + 1) if previous else 1,
                now + validity,
                tuple(refs),
                index.get("sourceCommit"),
            )
            data = state.to_bytes()
            ddir.mkdir(parents=True, exist_ok=True)
            (ddir / DESIRED).write_bytes(data)
            (ddir / SIGNATURE).write_bytes(sign(data, key))
            result.changed.append(dev)
        for digest in sorted(referenced):
            dst = work / "bundles" / digest
            if dst.is_dir():
                continue
            src = build_dir / "bundles" / digest
            _, problems = verify_bundle(src, digest)
            if problems:
                raise PublishError(f"bundle {digest[:16]} in {build_dir} does not verify: {problems[0]}")
            shutil.copytree(src, dst)
            result.added_bundles.append(digest)
        for d in sorted((work / "bundles").iterdir()) if (work / "bundles").is_dir() else []:
            if d.name not in referenced:
                shutil.rmtree(d)
                result.removed_bundles.append(d.name)
        repo.git.add("-A")
        if not repo.git.status("--porcelain").strip():
            return result
        source = (index.get("sourceCommit") or "unknown")[:12]
        author = git.Actor("takt", "takt@localhost")
        commit = repo.index.commit(
            f"takt publish {source}: {len(result.changed)} device(s), +{len(result.added_bundles)} "
            f"-{len(result.removed_bundles)} bundle(s)",
            author=author,
            committer=author,
        )
        try:
            repo.git.push("origin", f"HEAD:refs/heads/{branch}")
        except git.GitCommandError as exc:
            raise PublishError(
                f"push to {url} {branch} was refused (diverged or protected?): {_git_error(exc)}; nothing was published"
            ) from exc
        result.commit = commit.hexsha
        return result
