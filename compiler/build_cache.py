"""Which bundle the same render inputs gave last time, authenticated so a repository cannot forge it.

The build directory may sit inside a spec repository, where anyone with write access could
commit a cache that maps the reviewed inputs to a bundle of their own making. Each entry is
therefore sealed with an HMAC under a per-user secret kept outside every repository
(`$XDG_CACHE_HOME/takt/build-cache.key`, mode 0600): a committed or copied cache simply misses,
and a hit still requires the bundle directory to verify against the digest.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Self

from compiler.bundle import canonical_json
from compiler.bundle.atomic import write_atomic
from compiler.bundle.tree import TreeError, read_regular

VERSION = 3  # 3: entries carry the stamp of the bundle tree they were verified in
SEAL_BYTES = 32  # an HMAC-SHA256 tag
_HEX = re.compile(r"[0-9a-f]{64}")
SECRET_NAME = "build-cache.key"


def user_cache_dir() -> Path:
    """Takt's per-user cache directory (XDG), never inside a repository."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "takt"


def load_secret(directory: Path | None = None) -> bytes:
    """The per-user secret, created on first use with mode 0600."""
    path = (directory or user_cache_dir()) / SECRET_NAME
    try:
        data = read_regular(path, 4096)
        if len(data) >= 32:
            return data
    except (OSError, TreeError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return data


MAX_STAMPED_ENTRIES = 10_000  # a bundle tree larger than this is always verified byte by byte


def tree_stamp(directory: Path) -> str | None:
    """What the file system says about every entry of a bundle tree (lstat: type, mode, size, inode,
    mtime and ctime), hashed; None when it is unreadable, not a real directory, or too large.

    Like Git's index: any write, rename, link or added file changes a ctime the writer cannot set,
    so an equal stamp means the tree is as it was when the stamp was taken."""
    h = hashlib.sha256()
    count = 0
    pending = [("", os.fspath(directory))]  # plain strings: pathlib joins cost more than the lstat
    try:
        while pending:
            rel, path = pending.pop()
            st = os.lstat(path)
            count += 1
            if count > MAX_STAMPED_ENTRIES or not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
                return None  # a link, FIFO or device below a bundle: never stamped, always verified
            h.update(f"{rel}\0{st.st_mode}\0{st.st_size}\0{st.st_ino}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\n".encode())
            if stat.S_ISDIR(st.st_mode):
                for name in sorted(os.listdir(path), reverse=True):
                    pending.append((f"{rel}/{name}", f"{path}/{name}"))
    except (OSError, UnicodeEncodeError):
        return None
    return h.hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    digest: str  # the bundle the render key gave
    stamp: str = ""  # tree_stamp of its directory when it was written or last verified ("" : none)


@dataclass
class BuildCache:
    path: Path
    secret: bytes
    entries: dict[str, CacheEntry] = field(default_factory=dict)  # render key → bundle (authenticated)
    # reference key → the drift reference statistics it gave, as the runner contract's JSON text
    # (authenticated): an incremental render of an edge bundle then reads no dataset and imports no numpy
    references: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, secret: bytes) -> BuildCache:
        cache = cls(path, secret)
        try:
            doc = json.loads(read_regular(path, 64 << 20).decode("utf-8"))
        except (OSError, TreeError, ValueError, RecursionError):
            return cache  # missing, damaged or hostile: only a slower build
        if not isinstance(doc, dict) or doc.get("version") != VERSION or not isinstance(doc.get("entries"), dict):
            return cache
        for key, entry in doc["entries"].items():
            if not isinstance(entry, dict):
                continue
            digest, stamp, mac = entry.get("digest"), entry.get("stamp", ""), entry.get("mac")
            if not isinstance(key, str) or not isinstance(digest, str) or not isinstance(mac, str):
                continue
            if not all(_HEX.fullmatch(v) for v in (key, digest, mac)):
                continue  # not ours: hex only (a crafted entry must miss, never crash the build)
            if not isinstance(stamp, str) or not (stamp == "" or _HEX.fullmatch(stamp)):
                continue
            if hmac.compare_digest(mac, cache._mac(key, digest, stamp)):
                cache.entries[key] = CacheEntry(digest, stamp)
        references = doc.get("references")
        for key, entry in (references if isinstance(references, dict) else {}).items():
            if not isinstance(entry, dict):
                continue
            text, mac = entry.get("json"), entry.get("mac")
            if not isinstance(key, str) or not isinstance(text, str) or not isinstance(mac, str):
                continue
            sealed = _HEX.fullmatch(key) and _HEX.fullmatch(mac)
            if sealed and hmac.compare_digest(mac, cache._reference_mac(key, text)):
                cache.references[key] = text
        return cache

    def _mac(self, key: str, digest: str, stamp: str) -> str:
        return hmac.new(self.secret, f"{key}\0{digest}\0{stamp}".encode(), hashlib.sha256).hexdigest()

    def _reference_mac(self, key: str, text: str) -> str:
        return hmac.new(self.secret, f"reference\0{key}\0{text}".encode(), hashlib.sha256).hexdigest()

    def get(self, key: str) -> str | None:
        entry = self.entries.get(key)
        return entry.digest if entry else None

    def entry(self, key: str) -> CacheEntry | None:
        return self.entries.get(key)

    def save(self, entries: dict[str, CacheEntry], references: dict[str, str] | None = None) -> None:
        """Replace the cache with `entries` and `references` (what this build produced or still uses),
        each sealed."""
        self.entries, self.references = dict(entries), dict(references or {})
        body = {
            "version": VERSION,
            "entries": {
                k: {"digest": e.digest, "stamp": e.stamp, "mac": self._mac(k, e.digest, e.stamp)}
                for k, e in entries.items()
            },
            "references": {k: {"json": t, "mac": self._reference_mac(k, t)} for k, t in self.references.items()},
        }
        write_atomic(self.path, canonical_json(body))


def code_stamp(fmt: bytes, dist: str, sources: tuple[Path, ...]) -> bytes:
    """What a cache's entries depend on besides their input bytes: its format, Takt's and Python's
    versions, the version of the distribution `dist` that computes them (read without importing it)
    and the source of the code that does; any change makes every entry a miss."""
    from importlib.metadata import PackageNotFoundError, version

    from compiler import __version__

    try:
        dist_version = version(dist)
    except PackageNotFoundError:
        dist_version = "none"
    h = hashlib.sha256(b"\0".join([fmt, __version__.encode(), sys.version.encode(), dist_version.encode()]))
    for source in sources:
        h.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    return h.digest()


def seal(secret: bytes, fmt: bytes, body: bytes) -> bytes:
    """The HMAC every sealed cache file carries: over its format tag and body, under the per-user secret."""
    return hmac.new(secret, fmt + body, hashlib.sha256).digest()


def read_sealed(path: Path, secret: bytes, fmt: bytes, max_bytes: int) -> bytes | None:
    """The body of a file written by `write_sealed`, or None when it is missing, damaged, forged,
    another user's or of another format: callers unpickle only what this returns."""
    try:
        raw = read_regular(path, max_bytes)
    except (OSError, TreeError):
        return None
    head, mac, body = raw[: len(fmt)], raw[len(fmt) : len(fmt) + SEAL_BYTES], raw[len(fmt) + SEAL_BYTES :]
    if head != fmt or not hmac.compare_digest(mac, seal(secret, fmt, body)):
        return None
    return body


def read_sealed_entries(path: Path, secret: bytes, fmt: bytes, max_bytes: int, stamp: bytes) -> dict[str, bytes]:
    """The entries of a sealed `(stamp, entries)` cache written by `write_sealed_entries`; {} when the file is
    missing, damaged, forged, another user's, or from other code (another `stamp`)."""
    import pickle

    body = read_sealed(path, secret, fmt, max_bytes)
    if body is None:
        return {}
    try:
        got_stamp, entries = pickle.loads(body)  # authenticated above with the per-user secret
    except Exception:  # noqa: BLE001 - an unreadable (sealed) cache is rebuilt, whatever went wrong
        return {}
    return entries if got_stamp == stamp and isinstance(entries, dict) else {}


def write_sealed_entries(path: Path, secret: bytes, fmt: bytes, stamp: bytes, entries: dict[str, bytes]) -> None:
    import pickle

    write_sealed(path, secret, fmt, pickle.dumps((stamp, entries), protocol=pickle.HIGHEST_PROTOCOL))


@dataclass
class SealedValues:
    """A per-user cache file of pickled values by key (model inspections, dataset probes): read through
    `read_sealed_entries`, so nothing is unpickled before the seal verifies; the newest `MAX_ENTRIES`
    are kept. A subclass names its file format, bounds and code stamp, and decides which values it takes."""

    FORMAT: ClassVar[bytes]
    MAX_BYTES: ClassVar[int]
    MAX_ENTRIES: ClassVar[int]

    path: Path | None  # None: in memory only (nothing is written)
    secret: bytes = b""
    entries: dict[str, bytes] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0
    dirty: bool = False

    @staticmethod
    def stamp() -> bytes:
        raise NotImplementedError

    @classmethod
    def load(cls, path: Path, secret: bytes) -> Self:
        cache = cls(path, secret)  # missing, damaged, forged, another user's or older code: only a slower run
        cache.entries = read_sealed_entries(path, secret, cls.FORMAT, cls.MAX_BYTES, cls.stamp())
        return cache

    def cached(self, key: str) -> object | None:
        """The value kept under `key` (None when there is none or it does not unpickle); not yet a hit."""
        import pickle

        blob = self.entries.get(key)
        if blob is None:
            return None
        try:
            value: object = pickle.loads(blob)  # part of the authenticated body
        except Exception:  # noqa: BLE001
            return None
        return value

    def keep(self, key: str, value: object, replaces: str | None = None) -> None:
        """Keep `value` under `key` as the newest entry (dropping `replaces`, default `key`); a value that
        cannot be pickled is simply not kept."""
        import pickle

        with contextlib.suppress(Exception):
            self.entries.pop(key if replaces is None else replaces, None)
            self.entries[key] = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            self.dirty = True

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        kept = dict(list(self.entries.items())[-self.MAX_ENTRIES :])
        write_sealed_entries(self.path, self.secret, self.FORMAT, self.stamp(), kept)
        self.dirty = False


def write_sealed(path: Path, secret: bytes, fmt: bytes, body: bytes) -> None:
    """Write `fmt + seal + body` atomically; a read-only cache directory is only a slower next run."""
    with contextlib.suppress(OSError):
        write_atomic(path, fmt + seal(secret, fmt, body) + body)
