"""A content-addressed store of fetched artifacts: `<cache>/objects/sha256/<hex>`, written whole or not at all.

A fetch streams into a temporary file beside its final name, hashing as it goes, and renames it only
once every byte is on disk and the digest is known. The free space is checked before the first byte
(when the size is known) and a full disk mid-way (ENOSPC) removes the temporary file, so an
interrupted fetch never leaves an entry a later run could take for the artifact. Both checks go
through `Disk`, the seam tests use to make a disk full without root.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from compiler.bundle.atomic import fsync_dir
from compiler.bundle.tree import TreeError, open_file

CHUNK = 1 << 20
HEADROOM = 64 << 20  # never fill a disk to its last byte: the build writes after the fetch
_HEX = re.compile(r"^[0-9a-f]{64}$")


class StoreError(Exception):
    """An artifact that could not be stored; `reason` says why (nothing partial was kept)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Disk:
    """The file system calls a fetch makes that a full disk can fail; tests substitute a full one."""

    def free_bytes(self, directory: Path) -> int:
        return shutil.disk_usage(directory).free

    def write(self, fh: BinaryIO, data: bytes) -> None:
        fh.write(data)


@dataclass(frozen=True)
class ObjectStore:
    root: Path  # <cache>/objects
    disk: Disk = field(default_factory=Disk)

    def path_of(self, sha256: str) -> Path:
        if not _HEX.match(sha256):
            raise StoreError(f"{sha256[:80]!r} is not a sha256")
        return self.root / "sha256" / sha256

    def get(self, sha256: str) -> Path | None:
        """The stored object when it is present and still has its digest (a damaged one is removed)."""
        path = self.path_of(sha256)
        try:
            with open_file(path) as fh:
                ok = hashlib.file_digest(fh, "sha256").hexdigest() == sha256
        except (FileNotFoundError, TreeError):
            return None
        if not ok:
            path.unlink(missing_ok=True)
            return None
        return path

    def put(self, chunks: Iterable[bytes], size: int | None = None) -> tuple[Path, str]:
        """Store a stream of bytes; (path, sha256). StoreError when it does not fit or cannot be written."""
        directory = self.root / "sha256"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            if size is not None and self.disk.free_bytes(directory) < size + HEADROOM:
                free = self.disk.free_bytes(directory)
                raise StoreError(f"needs {size} bytes but {directory} has {free} free (and {HEADROOM} kept spare)")
            fd, tmp = tempfile.mkstemp(prefix=".fetch.", dir=directory)
        except OSError as exc:
            raise StoreError(f"cannot write the cache {directory}: {exc.strerror or exc}") from None
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as fh:
                for chunk in chunks:
                    digest.update(chunk)
                    self.disk.write(fh, chunk)
                fh.flush()
                os.fsync(fh.fileno())
            sha = digest.hexdigest()
            final = self.path_of(sha)
            os.chmod(tmp, 0o444)
            os.replace(tmp, final)
            fsync_dir(directory)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            if exc.errno == errno.ENOSPC:
                raise StoreError(f"the disk of {directory} is full (nothing partial was kept)") from None
            raise StoreError(f"cannot write the cache {directory}: {exc.strerror or exc}") from None
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return final, sha

    def put_file(self, source: Path) -> tuple[Path, str]:
        """Store a copy of a regular file (never through a link), read in chunks."""
        try:
            fh = open_file(source)
        except TreeError as exc:
            raise StoreError(f"{source.name} {exc.reason}") from None
        with fh:
            size = os.fstat(fh.fileno()).st_size
            return self.put(iter(lambda: fh.read(CHUNK), b""), size)
