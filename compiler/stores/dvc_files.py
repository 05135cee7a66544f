"""Files tracked by DVC: a `<path>.dvc` file, or an output of a stage in the `dvc.lock` beside the path.

The pointer (md5, size) is read by takt from the tracked repository (YAML, bounded, never through a
link); the bytes are taken from DVC's cache through DVC's own library (the optional extra `dvc`),
fetched from the repository's remote when the cache lacks them, and their md5 is checked with
dvc-data's hasher before a single row is used. The workspace copy is never read: DVC often makes it a
link into the cache, and a link is never followed out of a spec tree.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from compiler.bundle.tree import TreeError, open_file, read_inside
from compiler.stores.located import Located, Refused, missing_extra

MAX_POINTER_BYTES = 1 << 20
_MD5 = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Pointer:
    rel: str  # the tracked path, relative to the spec root
    md5: str
    size: int | None
    legacy: bool  # DVC 2 cache layout and md5 of text with CRLF as LF (no `hash: md5` in the pointer)
    tracked_by: str  # `data/x.csv.dvc`, or `data/dvc.lock` stage `prepare`


def _yaml(root: Path, rel: str) -> Any:
    if not os.path.lexists(root / rel):
        # most paths have no pointer beside them: one lstat, not read_inside's realpath of the whole
        # path (read_inside would say FileNotFoundError too: a name that does not exist resolves to
        # nothing, and no '..' can reach past it; checked again below for every name that exists)
        return None
    try:
        text = read_inside(root, rel, MAX_POINTER_BYTES)
    except FileNotFoundError:
        return None
    try:
        return YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        raise Refused("TAKT5025", f"{rel} is not valid YAML ({str(exc).splitlines()[0][:160]})", "path") from None


def _out(entry: Any, rel: str, tracked_by: str) -> Pointer:
    md5 = entry.get("md5") if isinstance(entry, dict) else None
    if not isinstance(md5, str) or not _MD5.match(md5):
        raise Refused("TAKT5025", f"{tracked_by} records no md5 for {rel}", "path")
    if md5.endswith(".dir") or entry.get("nfiles") is not None:
        raise Refused("TAKT5025", f"{tracked_by} tracks a directory; name one file", "path")
    size = entry.get("size")
    return Pointer(rel, md5, size if isinstance(size, int) else None, entry.get("hash") != "md5", tracked_by)


def pointer(root: Path, rel: str) -> Pointer | None:
    """How DVC tracks `rel`, or None when it does not (no `.dvc` file, no stage output beside it)."""
    try:
        doc = _yaml(root, f"{rel}.dvc")
        if doc is not None:
            outs = doc.get("outs") if isinstance(doc, dict) else None
            name = PurePosixPath(rel).name
            found = [o for o in outs or [] if isinstance(o, dict) and o.get("path") == name]
            if len(found) != 1:
                raise Refused("TAKT5025", f"{rel}.dvc has no single output {name!r}", "path")
            return _out(found[0], rel, f"{rel}.dvc")
        folder = posixpath.dirname(rel)
        lock_rel = posixpath.join(folder, "dvc.lock") if folder else "dvc.lock"
        lock = _yaml(root, lock_rel)
    except TreeError as exc:
        raise TreeError(rel, f"has a DVC pointer that {exc.reason}") from None  # TAKT5019, as for the file
    stages = lock.get("stages") if isinstance(lock, dict) else None
    for stage, body in (stages or {}).items() if isinstance(stages, dict) else ():
        for out in (body.get("outs") or []) if isinstance(body, dict) else ():
            if isinstance(out, dict) and posixpath.normpath(posixpath.join(folder, str(out.get("path", "")))) == rel:
                return _out(out, rel, f"{lock_rel} stage {stage!r}")
    return None


def _dvc_root(root: Path, rel: str) -> Path:
    """The DVC repository holding `rel`: the nearest `.dvc` directory at or above it, inside the spec root."""
    here = (root / rel).parent
    while True:
        if (here / ".dvc").is_dir() and not (here / ".dvc").is_symlink():
            return here
        if here == root or root not in here.parents:
            raise Refused("TAKT5025", f"{rel} is tracked by DVC but no .dvc directory is above it", "path")
        here = here.parent


def materialize(root: Path, ptr: Pointer) -> Located:
    """The tracked bytes in DVC's cache (fetched from the remote when missing), md5 checked."""
    try:
        from dvc.exceptions import DvcException
        from dvc.repo import Repo
        from dvc_data.hashfile.hash import fobj_md5
    except ImportError:
        raise missing_extra(f"{ptr.rel} (tracked by {ptr.tracked_by})", "dvc", "path") from None
    top = _dvc_root(root, ptr.rel)
    try:
        with Repo(str(top)) as repo:
            odb = repo.cache.legacy if ptr.legacy else repo.cache.local
            cached = Path(odb.oid_to_path(ptr.md5))
            if not cached.exists():
                repo.fetch(targets=[str(root / ptr.rel)])
            rev = _rev(repo)
    except DvcException as exc:
        said = " ".join(str(exc).split())[:300]
        why = f"{ptr.rel} (tracked by {ptr.tracked_by}) cannot be fetched: {said}"
        raise Refused("TAKT5025", why, "path") from None
    try:
        with open_file(cached, ptr.rel) as fh:
            md5 = fobj_md5(fh, name="md5-dos2unix" if ptr.legacy else "md5")
    except FileNotFoundError:
        raise Refused(
            "TAKT5025", f"{ptr.rel} (md5 {ptr.md5}) is neither in the DVC cache nor on its remote", "path"
        ) from None
    except TreeError as exc:
        raise Refused("TAKT5025", f"{ptr.rel} in the DVC cache {exc.reason}", "path") from None
    if md5 != ptr.md5:
        raise Refused("TAKT5025", f"{ptr.rel} in the DVC cache has md5 {md5}, not {ptr.md5} ({ptr.tracked_by})", "path")
    lineage = {"path": ptr.rel, "md5": ptr.md5, "trackedBy": ptr.tracked_by, "rev": rev}
    return Located(cached, {"dvc": lineage})


def cached_path(root: Path, ptr: Pointer) -> Path:
    """Where DVC's cache holds the bytes (no fetch, no md5: `materialize` did both during validation)."""
    try:
        from dvc.repo import Repo
    except ImportError:
        raise missing_extra(f"{ptr.rel} (tracked by {ptr.tracked_by})", "dvc", "path") from None
    with Repo(str(_dvc_root(root, ptr.rel))) as repo:
        return Path((repo.cache.legacy if ptr.legacy else repo.cache.local).oid_to_path(ptr.md5))


def _rev(repo: Any) -> str | None:
    try:
        rev = repo.scm.get_rev()
    except Exception:  # noqa: BLE001 - a DVC repository without Git (dvc init --no-scm) has no revision
        return None
    return rev if isinstance(rev, str) else None
