"""Reading files of a repository tree that may be hostile: never through a link out of it, never a device.

A spec repository and a deploy clone are written by people who may not hold the signing key.
Every file either side reads from such a tree goes through here: the path is resolved and must
stay inside the tree (a symlink that stays inside is followed, one that leaves is refused), and
the file is opened with O_NOFOLLOW | O_NONBLOCK and checked with fstat to be a regular file, so
`/proc/self/environ`, `/dev/zero` or a FIFO can never be read, whatever the tree points at.
Standard library only: the agent imports it too.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from io import BufferedReader
from pathlib import Path, PurePosixPath


class TreeError(Exception):
    """A path a tree names cannot be read safely; `reason` says why in the user's terms."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


class TooLarge(TreeError):
    """A regular file over the reader's size limit."""


def _check_relative(rel: str) -> None:
    if "\0" in rel:
        raise TreeError(rel.replace("\0", "\\0"), "contains a NUL character")
    pure = PurePosixPath(rel)
    if pure.is_absolute() or rel.startswith("\\") or (len(rel) > 1 and rel[1] == ":"):
        raise TreeError(rel, "is an absolute path; paths are relative to the project root")
    if ".." in pure.parts:
        raise TreeError(rel, "leaves the project with '..'")


def resolve_inside(root: Path, rel: str | Path) -> Path:
    """`root/rel` with every link resolved, refused unless it is still inside `root`.

    Raises TreeError; a missing file is FileNotFoundError (the caller says what was expected).
    """
    if isinstance(rel, Path):
        if rel.is_absolute():
            if not rel.is_relative_to(root):
                raise TreeError(str(rel), "is outside the project")
            rel = rel.relative_to(root)
        text = rel.as_posix()
    else:
        text = rel
    _check_relative(text)
    top = root.resolve()
    real = Path(os.path.realpath(top / text))
    if real != top and not real.is_relative_to(top):
        raise TreeError(text, f"is a link that leaves the project (to {real})")
    if not os.path.lexists(real):
        raise FileNotFoundError(text)
    return real


def open_regular(path: Path, display: str | None = None) -> int:
    """An fd of `path` opened read-only without following a final link or blocking on a FIFO.

    Refuses anything but a regular file (devices, FIFOs, sockets, directories, links).
    """
    shown = display or str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        if exc.errno in (40, 20):  # ELOOP: a link where a file must be; ENOTDIR
            raise TreeError(shown, "is a symbolic link, not a regular file") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise TreeError(shown, f"is not a regular file ({_kind(st.st_mode)})")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a plain file"


def read_regular(path: Path, max_bytes: int, display: str | None = None) -> bytes:
    """The bytes of a regular file, refused past `max_bytes` (checked before and while reading)."""
    shown = display or str(path)
    fd = open_regular(path, shown)
    with os.fdopen(fd, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > max_bytes:
            raise TooLarge(shown, f"is {size:,} bytes, over the limit of {max_bytes:,} bytes")
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise TooLarge(shown, f"grew past the limit of {max_bytes:,} bytes while it was read")
    return data


def read_inside(root: Path, rel: str | Path, max_bytes: int) -> bytes:
    """`rel` of the tree at `root`, resolved inside it and read as a regular file."""
    return read_regular(resolve_inside(root, rel), max_bytes, str(rel))


_ENTRY_KINDS = {stat.S_IFLNK: "link", stat.S_IFDIR: "dir", stat.S_IFREG: "file"}


@dataclass(frozen=True)
class Entry:
    rel: str  # '/'-separated, relative to the tree's root
    kind: str  # "file", "dir", "link" or "other"


def walk(root: Path, skip: frozenset[str] = frozenset()) -> Iterator[Entry]:
    """Every entry below `root` by lstat, sorted; links are reported, never followed."""
    stack = [""]
    while stack:
        prefix = stack.pop()
        try:
            with os.scandir(root / prefix if prefix else root) as it:
                entries = sorted(it, key=lambda e: e.name)
        except NotADirectoryError:
            continue
        subdirs = []
        for e in entries:
            rel = f"{prefix}{e.name}"
            if e.name in skip:
                continue
            mode = e.stat(follow_symlinks=False).st_mode
            kind = _ENTRY_KINDS.get(stat.S_IFMT(mode), "other")
            yield Entry(rel, kind)
            if kind == "dir":
                subdirs.append(f"{rel}/")
        stack.extend(reversed(subdirs))


def first_link(path: Path, top: Path | None = None) -> Path | None:
    """The first symbolic link among `path` and its parents below `top` (all of them when top is None)."""
    stop = top.resolve() if top is not None else None
    p = Path(os.path.abspath(path))
    while p != p.parent and (stop is None or (p != stop and p.is_relative_to(stop))):
        if p.is_symlink():
            return p
        p = p.parent
    return None


def regular_inside(root: Path, rel: str | Path) -> Path:
    """The real path of a regular file that `rel` names inside `root` (links inside are resolved).

    Raises TreeError for a path that leaves the tree or is not a regular file, FileNotFoundError
    for a missing one. Open the result with open_regular/read_regular, never by the name `rel`.
    """
    real = resolve_inside(root, rel)
    mode = os.stat(real, follow_symlinks=False).st_mode
    if not stat.S_ISREG(mode):
        raise TreeError(str(rel), f"is not a regular file ({_kind(mode)})")
    return real


def open_file(path: Path, display: str | None = None) -> BufferedReader:
    """A binary file object over open_regular, for readers that stream (numpy, onnx, hashlib)."""
    return os.fdopen(open_regular(path, display), "rb")


def open_inside(root: Path, rel: str | Path) -> BufferedReader:
    """A binary file object of `rel` inside `root` (see regular_inside)."""
    return open_file(regular_inside(root, rel), str(rel))
