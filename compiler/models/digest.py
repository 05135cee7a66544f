"""sha256 of artifacts, streamed, and never recomputed while path, size and mtime are unchanged.

Like Git's index: the cache maps a path to (size, mtime_ns, digest); a changed size or mtime
means the file is read again. The cache is a plain JSON file written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path


def sha256_file(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


@dataclass
class DigestCache:
    path: Path | None = None  # None: an in-memory cache only
    entries: dict[str, list] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0
    dirty: bool = False

    @classmethod
    def load(cls, path: Path | None) -> DigestCache:
        cache = cls(path)
        if path is not None and path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                if isinstance(data, dict) and data.get("version") == 1 and isinstance(data.get("entries"), dict):
                    cache.entries = data["entries"]
            except (OSError, ValueError):
                pass  # a damaged cache is only a slower run
        return cache

    def sha256(self, file: Path) -> str:
        st = file.stat()
        key = str(file.resolve())
        entry = self.entries.get(key)
        if entry and entry[0] == st.st_size and entry[1] == st.st_mtime_ns:
            self.hits += 1
            return entry[2]
        self.misses += 1
        digest = sha256_file(file)
        self.entries[key] = [st.st_size, st.st_mtime_ns, digest]
        self.dirty = True
        return digest

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".digests.", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"version": 1, "entries": self.entries}, fh, sort_keys=True)
            os.replace(tmp, self.path)
            self.dirty = False
        except OSError:
            pass  # read-only checkout: the cache is an optimisation, never a failure
