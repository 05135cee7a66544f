"""sha256 of artifacts, streamed, and never recomputed while path, size and mtime are unchanged.

Like Git's index: the cache maps a path to (size, mtime_ns, ctime_ns, inode, digest); any change
means the file is read again. ctime and inode are set by the file system, never by a checkout,
so a cache committed to a repository (or copied from another machine) can never vouch for a
file: its entries simply miss. The cache is a plain JSON file written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.bundle.tree import open_file

VERSION = 2  # entries of version 1 (size and mtime only) are ignored


def sha256_file(path: Path) -> str:
    """Streamed; refuses links and anything but a regular file (a FIFO or /dev/zero would never end)."""
    with open_file(path) as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


@dataclass
class DigestCache:
    path: Path | None = None  # None: an in-memory cache only
    entries: dict[str, list[Any]] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0
    dirty: bool = False

    @classmethod
    def load(cls, path: Path | None) -> DigestCache:
        if path is not None and (path.is_symlink() or path.parent.is_symlink()):
            path = None  # a committed `.takt-cache` link: never read or written through, an in-memory cache instead
        cache = cls(path)
        if path is not None and path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                if isinstance(data, dict) and data.get("version") == VERSION and isinstance(data.get("entries"), dict):
                    cache.entries = data["entries"]
            except (OSError, ValueError):
                pass  # a damaged cache is only a slower run
        return cache

    def sha256(self, file: Path) -> str:
        st = file.stat()
        key = str(file.resolve())
        stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        entry = self.entries.get(key)
        if isinstance(entry, list) and len(entry) == 5 and entry[:4] == stamp and isinstance(entry[4], str):
            self.hits += 1
            return entry[4]
        self.misses += 1
        digest = sha256_file(file)
        self.entries[key] = [*stamp, digest]
        self.dirty = True
        return digest

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".digests.", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"version": VERSION, "entries": self.entries}, fh, sort_keys=True)
            os.replace(tmp, self.path)
            self.dirty = False
        except OSError:
            pass  # read-only checkout: the cache is an optimisation, never a failure
