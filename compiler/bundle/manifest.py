"""MANIFEST.json: writing a bundle deterministically and verifying one without trusting it."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from compiler.bundle.activation import Activation
from compiler.bundle.boundedjson import clip as _clip
from compiler.bundle.boundedjson import loads_bounded
from compiler.bundle.tree import TreeError, open_regular, read_regular, resolve_inside, walk

MANIFEST = "MANIFEST.json"
FORMAT_VERSION = 1
MAX_FILE_BYTES = 4 << 30  # no single bundle file may exceed 4 GiB, whatever a manifest claims
MAX_MANIFEST_BYTES = 16 << 20  # read before it is verified: about 50,000 files
MAX_MANIFEST_DEPTH = 32  # a manifest nests 3 levels plus its provenance
_SAFE_PATH = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no insignificant white space, UTF-8, one trailing newline: byte-stable."""
    return (json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False) + "\n").encode(
        "utf-8"
    )


def safe_relative(path: str) -> bool:
    """A bundle path: relative, '/'-separated, no '..', '.', empty or exotic segments."""
    if not _SAFE_PATH.fullmatch(path) or len(path) > 512:  # fullmatch: `$` would allow a trailing newline
        return False
    return all(part not in (".", "..") for part in path.split("/"))  # split, not PurePath: it drops "."


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    sha256: str
    mode: int = 0o644  # 0o644 or 0o755; nothing else is written or accepted

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256, "mode": f"{self.mode:04o}"}


@dataclass(frozen=True)
class Manifest:
    name: str
    target_class: str
    files: tuple[FileEntry, ...]
    provenance: dict[str, Any] = field(default_factory=dict)
    version: int = FORMAT_VERSION
    activation: Activation = Activation.RUN

    def body(self) -> dict[str, Any]:
        activation = {} if self.activation is Activation.RUN else {"activation": self.activation.value}
        return {  # no "activation" means RUN: manifests written before the field verify unchanged
            **activation,
            "version": self.version,
            "name": self.name,
            "targetClass": self.target_class,
            "files": [f.as_json() for f in sorted(self.files, key=lambda f: f.path)],
            "provenance": self.provenance,
        }

    @property
    def digest(self) -> str:
        return hashlib.sha256(canonical_json(self.body())).hexdigest()

    def to_bytes(self) -> bytes:
        return canonical_json({**self.body(), "digest": self.digest})

    @classmethod
    def parse(cls, data: bytes) -> Manifest:
        """Parse and check a manifest's structure; raises ValueError (only) with the reason."""
        doc = loads_bounded(data, max_bytes=MAX_MANIFEST_BYTES, max_depth=MAX_MANIFEST_DEPTH, what=MANIFEST)
        if not isinstance(doc, dict) or doc.get("version") != FORMAT_VERSION:
            version = doc.get("version") if isinstance(doc, dict) else "?"
            raise ValueError(f"unsupported manifest version {_clip(version)}")
        try:
            manifest = cls._from_doc(doc)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"missing or mistyped field ({_clip(exc)})") from None
        if doc.get("digest") != manifest.digest:
            raise ValueError("manifest digest does not match its content")
        return manifest

    @classmethod
    def _from_doc(cls, doc: dict[str, Any]) -> Manifest:
        files = []
        for entry in doc.get("files", []):
            path = entry["path"]
            if not isinstance(path, str):
                raise ValueError("a file path is not a string")
            mode = int(str(entry["mode"])[:8], 8)
            if mode not in (0o644, 0o755):
                raise ValueError(f"file {_clip(path)} has mode {_clip(entry['mode'])}")
            if not isinstance(entry["size"], int) or not 0 <= entry["size"] <= MAX_FILE_BYTES:
                raise ValueError(f"file {_clip(path)} has an impossible size")
            if not re.fullmatch(r"[0-9a-f]{64}", str(entry["sha256"])):
                raise ValueError(f"file {_clip(path)} has no valid sha256")
            files.append(FileEntry(path, entry["size"], str(entry["sha256"]), mode))
        provenance = doc.get("provenance", {})
        if not isinstance(provenance, dict):
            raise ValueError("provenance is not an object")
        activation = Activation.parse(doc.get("activation", Activation.RUN.value))
        return cls(str(doc["name"]), str(doc["targetClass"]), tuple(files), provenance, activation=activation)


def write_bundle(
    parent: Path,
    name: str,
    target_class: str,
    files: dict[str, bytes],
    provenance: dict[str, Any],
    executable: frozenset[str] = frozenset(),
    activation: Activation = Activation.RUN,
) -> Manifest:
    """Write `parent/<digest>/` atomically (staged in a temp dir, then renamed) and return its manifest.

    A directory already named for the digest is kept only when it verifies against it: a name
    proves nothing, and a tampered copy is replaced (the old one is moved aside, then removed).
    """
    for path in files:
        if not safe_relative(path) or path == MANIFEST:
            raise ValueError(f"unsafe bundle path {path!r}")
    entries = tuple(
        FileEntry(p, len(b), hashlib.sha256(b).hexdigest(), 0o755 if p in executable else 0o644)
        for p, b in sorted(files.items())
    )
    manifest = Manifest(name, target_class, entries, provenance, activation=activation)
    final = parent / manifest.digest
    if final.is_dir() and not final.is_symlink() and not verify_bundle(final, manifest.digest)[1]:
        return manifest
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=parent))
    top = str(staging)
    try:  # the directories are known from the paths: made once each, files written through one descriptor
        for d in _directories(files):
            os.mkdir(f"{top}/{d}", 0o755)
            os.chmod(f"{top}/{d}", 0o755)  # the umask may have taken bits
        for entry in entries:
            _write_new(f"{top}/{entry.path}", files[entry.path], entry.mode)
        _write_new(f"{top}/{MANIFEST}", manifest.to_bytes(), 0o644)
        os.chmod(top, 0o755)
        if os.path.lexists(final):  # a damaged copy (or a link) under the right name: set it aside first
            stale = Path(tempfile.mkdtemp(prefix=".stale-", dir=parent))
            os.replace(final, stale / "old")
            os.replace(staging, final)
            shutil.rmtree(stale, ignore_errors=True)  # rmtree never follows a link inside
        else:
            os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _directories(paths: dict[str, bytes]) -> list[str]:
    """Every directory the bundle paths need (`a/b/c` needs `a` and `a/b`), each parent before its children."""
    out: set[str] = set()
    for path in paths:
        parts = path.split("/")
        out.update("/".join(parts[:i]) for i in range(1, len(parts)))
    return sorted(out)


def _write_new(path: str, data: bytes, mode: int) -> None:
    """Create `path` (never an existing file or a link) with exactly `mode`, whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def verify_bundle(
    directory: Path, expected_digest: str | None = None, *, exact_modes: bool = False
) -> tuple[Manifest | None, list[str]]:
    """Check a bundle without trusting it: the manifest, then every file, and nothing else.

    Refused: paths that escape or are not plain, symlinks anywhere below `directory` (even to
    identical bytes), device files, FIFOs, files the manifest does not list, sizes beyond the
    declared length, any byte that differs, and a mode that differs. A Git work tree records only
    the executable bit (the rest is the umask), so by default only that bit is compared;
    `exact_modes` compares all permission bits, for trees written with the manifest's modes.
    """
    problems: list[str] = []
    try:
        if directory.is_symlink():
            return None, ["the bundle directory is a symbolic link"]
        manifest = Manifest.parse(read_regular(directory / MANIFEST, MAX_MANIFEST_BYTES, MANIFEST))
    except FileNotFoundError:
        return None, [f"{MANIFEST} is missing"]
    except TreeError as exc:
        return None, [str(exc)]
    except (OSError, ValueError) as exc:
        return None, [f"{MANIFEST} is invalid: {exc}"]
    if expected_digest is not None and manifest.digest != expected_digest:
        return manifest, [f"bundle digest is {manifest.digest}, expected {expected_digest}"]
    listed = {e.path: e for e in manifest.files}
    top = directory.resolve()
    for entry in manifest.files:
        if not safe_relative(entry.path) or entry.path == MANIFEST:
            problems.append(f"unsafe path {_clip(entry.path)}")
            continue
        try:
            if resolve_inside(directory, entry.path) != top / entry.path:
                problems.append(f"{entry.path}: reached through a symbolic link")
                continue
            fd = open_regular(top / entry.path, entry.path)
        except (FileNotFoundError, NotADirectoryError):
            problems.append(f"{entry.path}: missing")
            continue
        except (TreeError, OSError):
            problems.append(f"{entry.path}: not a regular file (symlink, device or directory)")
            continue
        with os.fdopen(fd, "rb") as fh:
            problems += _check_file(fh, entry, exact_modes)
    for item in walk(directory):
        if item.kind == "link" and item.rel not in listed:
            problems.append(f"{item.rel}: unexpected symlink")
        elif item.kind == "other" and item.rel not in listed:
            problems.append(f"{item.rel}: not a regular file (device, FIFO or socket)")
        elif item.kind == "file" and item.rel != MANIFEST and item.rel not in listed:
            problems.append(f"{item.rel}: not listed in the manifest")
    return manifest, problems


def _check_file(fh: BinaryIO, entry: FileEntry, exact_modes: bool) -> list[str]:
    """One opened bundle file against its entry: size, mode, then every byte (never past the size)."""
    st = os.fstat(fh.fileno())
    if st.st_size != entry.size:
        return [f"{entry.path}: {st.st_size} bytes, manifest says {entry.size}"]
    mode = stat.S_IMODE(st.st_mode)
    if exact_modes and mode != entry.mode:
        return [f"{entry.path}: mode {mode:04o}, manifest says {entry.mode:04o}"]
    if not exact_modes and bool(mode & 0o100) != bool(entry.mode & 0o100):
        return [f"{entry.path}: mode {mode:04o}, manifest says {entry.mode:04o} (executable bit differs)"]
    h = hashlib.sha256()
    remaining = entry.size + 1
    while chunk := fh.read(min(1 << 20, remaining)):
        remaining -= len(chunk)
        h.update(chunk)
        if remaining <= 0:
            break
    if remaining <= 0 or h.hexdigest() != entry.sha256:
        return [f"{entry.path}: content differs from the manifest"]
    return []
