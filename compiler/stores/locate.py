"""One answer to "which local file holds this spec path?": the file in the tree, or DVC's cached copy."""

from __future__ import annotations

from pathlib import Path

from compiler.bundle.tree import regular_inside
from compiler.stores import dvc_files
from compiler.stores.located import Located


def locate(root: Path, rel: str, *, verify: bool = False) -> Located:
    """The file for `rel`. Tracked by DVC: its copy in DVC's cache — fetched and md5-checked when `verify`
    (validation does this once), else only looked up. Otherwise the file inside the tree. Raises
    FileNotFoundError, TreeError (a link, a device, leaving the tree) or Refused (DVC)."""
    ptr = dvc_files.pointer(root, rel)
    if ptr is None:
        return Located(regular_inside(root, rel))
    if verify:
        return dvc_files.materialize(root, ptr)
    return Located(dvc_files.cached_path(root, ptr))


def locate_path(root: Path, rel: str) -> Path:
    return locate(root, rel).path
