"""`takt diff BASE HEAD`: what a change to the specs does to every device — the review view of a PR.

Both revisions are exported from Git into temporary directories, validated and built (gating
tests are not run: this is a review of rendering, the test job judges the gates), and their
bundles compared per device: bundles added, removed or changed, and within a changed bundle each
file (a unified diff for text, the digest change for binaries).
"""

from __future__ import annotations

import difflib
import io
import json
import os
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import git

from compiler.build import build
from compiler.commands.errors import CommandError, ExitCode
from compiler.diagnostics import Severity
from compiler.validate.pipeline import validate

TEXT_SUFFIXES = {".json", ".yaml", ".yml", ".service", ".h", ".c", ".cmake", ".config", ".txt", ".md"}
MAX_DIFF_LINES = 400


class DiffError(CommandError):
    """The diff cannot be computed (unknown revision, not a Git repository): a usage error."""

    exit_code = ExitCode.USAGE


class RevisionHasErrors(DiffError):
    """A revision's specs do not validate: findings, not a usage error."""

    exit_code = ExitCode.FINDINGS


@dataclass
class FileChange:
    path: str
    change: str  # added | removed | changed
    diff: str = ""  # unified diff for text files
    digests: tuple[str, str] = ("", "")


@dataclass
class BundleChange:
    name: str
    change: str  # added | removed | changed
    before: str | None
    after: str | None
    files: list[FileChange] = field(default_factory=list)


@dataclass
class DiffResult:
    base: str
    head: str
    devices: dict[str, list[BundleChange]]

    def as_json(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "head": self.head,
            "devices": {
                dev: [
                    {
                        "name": b.name,
                        "change": b.change,
                        "before": b.before,
                        "after": b.after,
                        "files": [
                            {
                                "path": f.path,
                                "change": f.change,
                                "diff": f.diff,
                                "before": f.digests[0] or None,
                                "after": f.digests[1] or None,
                            }
                            for f in b.files
                        ],
                    }
                    for b in changes
                ]
                for dev, changes in self.devices.items()
            },
        }


def _export(repo: git.Repo, rev: str, dest: Path) -> str:
    try:
        commit = repo.commit(rev)
    except (git.BadName, ValueError) as exc:
        raise DiffError(f"unknown revision {rev!r}") from exc
    buf = io.BytesIO()
    repo.archive(buf, treeish=commit.hexsha, format="tar")
    buf.seek(0)
    _extract(buf, dest)
    return commit.hexsha


def _extract(buf: io.BytesIO, dest: Path) -> None:
    """Files and directories through tarfile's data filter; symlinks recreated last, as links.

    A revision may hold links that leave the repository (validation refuses to read them with a
    located diagnostic, as it does in a checkout): they are made as links, never followed, and
    only once every file is written, so nothing is ever written through one.
    """
    top = dest.resolve()
    with tarfile.open(fileobj=buf) as tar:
        links = []
        for member in tar:
            if member.issym():
                links.append(member)
            elif member.isfile() or member.isdir():
                tar.extract(member, dest, filter="data")
        for member in links:
            name = PurePosixPath(member.name)
            if name.is_absolute() or ".." in name.parts:
                continue
            where = dest / name
            if Path(os.path.realpath(where.parent)) != top and not Path(os.path.realpath(where.parent)).is_relative_to(
                top
            ):
                continue
            where.parent.mkdir(parents=True, exist_ok=True)
            if not os.path.lexists(where):
                os.symlink(member.linkname, where)


def _build_rev(root: Path, out: Path) -> dict[str, Any]:
    result = validate(root)
    errors = [d for d in result.diagnostics if d.severity == Severity.ERROR]
    if errors:
        raise RevisionHasErrors(f"{len(errors)} spec error(s), first: {errors[0].location}: {errors[0].message}")
    build(result, out, run_gates=False)
    return json.loads((out / "index.json").read_text())


def _files(bundle: Path) -> dict[str, dict[str, Any]]:
    manifest = json.loads((bundle / "MANIFEST.json").read_text())
    return {f["path"]: f for f in manifest["files"]}


def _compare_bundle(name: str, a: Path, b: Path) -> list[FileChange]:
    fa, fb = _files(a), _files(b)
    out = []
    for path in sorted(fa.keys() | fb.keys()):
        if path not in fb:
            out.append(FileChange(path, "removed", digests=(fa[path]["sha256"], "")))
        elif path not in fa:
            out.append(FileChange(path, "added", digests=("", fb[path]["sha256"])))
        elif fa[path]["sha256"] != fb[path]["sha256"]:
            change = FileChange(path, "changed", digests=(fa[path]["sha256"], fb[path]["sha256"]))
            if Path(path).suffix in TEXT_SUFFIXES:
                lines = list(
                    difflib.unified_diff(
                        (a / path).read_text(errors="replace").splitlines(),
                        (b / path).read_text(errors="replace").splitlines(),
                        f"a/{name}/{path}",
                        f"b/{name}/{path}",
                        lineterm="",
                    )
                )
                if len(lines) > MAX_DIFF_LINES:
                    lines = [*lines[:MAX_DIFF_LINES], f"… {len(lines) - MAX_DIFF_LINES} more lines"]
                change.diff = "\n".join(lines)
            out.append(change)
    return out


def diff(spec_path: Path, base: str, head: str) -> DiffResult:
    try:
        repo = git.Repo(spec_path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise DiffError(f"{spec_path} is not inside a Git repository") from exc
    top = Path(repo.working_tree_dir or ".").resolve()
    rel = spec_path.resolve().relative_to(top)
    with tempfile.TemporaryDirectory(prefix="takt-diff-") as tmp:
        sides = {}
        for label, rev in (("base", base), ("head", head)):
            tree = Path(tmp) / label
            sha = _export(repo, rev, tree)
            try:
                index = _build_rev(tree / rel, Path(tmp) / f"{label}-out")
            except DiffError as exc:
                raise type(exc)(f"{label} {rev} ({sha[:12]}): {exc}") from exc
            sides[label] = (sha, index)
        (base_sha, a), (head_sha, b) = sides["base"], sides["head"]
        devices: dict[str, list[BundleChange]] = {}
        for dev in sorted(a["devices"].keys() | b["devices"].keys()):
            before = {e["name"]: e["digest"] for e in a["devices"].get(dev, [])}
            after = {e["name"]: e["digest"] for e in b["devices"].get(dev, [])}
            changes = []
            for name in sorted(before.keys() | after.keys()):
                da, db = before.get(name), after.get(name)
                if da == db:
                    continue
                if da is None:
                    changes.append(BundleChange(name, "added", None, db))
                elif db is None:
                    changes.append(BundleChange(name, "removed", da, None))
                else:
                    files = _compare_bundle(
                        name, Path(tmp) / "base-out/bundles" / da, Path(tmp) / "head-out/bundles" / db
                    )
                    changes.append(BundleChange(name, "changed", da, db, files))
            if changes:
                devices[dev] = changes
        return DiffResult(base_sha, head_sha, devices)
