"""Parsed and validated spec files, keyed by content, so an unchanged file is neither parsed nor validated again.

What one file yields (its documents with their models and positions, the diagnostics of the
YAML, structure and secret stages, its inline ignores) depends only on its path and its text,
and on the code that reads it. An entry is keyed by the sha256 of all of these; references,
semantics and policies still run over the whole repo on every validation.

The cache lives in the per-user cache directory (never in the spec tree, so a repository cannot
commit one) and is sealed with an HMAC under the per-user secret of the build cache: entries are
unpickled only after the seal verifies. A cache that is missing, damaged, from another user, or
from another version of Takt, Python or pydantic is ignored and rebuilt: it can make a run faster,
never change its result.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import pickle
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from compiler import __version__
from compiler.build_cache import read_sealed_entries, write_sealed_entries
from compiler.diagnostics import Diagnostic
from compiler.loader.yamldoc import Path_, Span
from compiler.validate.document import SpecDocument

FORMAT = b"TAKTDOC1"
MAX_BYTES = 1 << 30
# The code whose behaviour an entry records: loading, the spec models, structure and secrets.
_CODE = ("loader", "spec", "validate", "codes.py", "diagnostics.py")


@dataclass
class FileOutcome:
    """Everything the per-file stages produced for one spec file, in the order they produced it."""

    documents: list[SpecDocument]
    diagnostics: list[Diagnostic]
    inline: dict[int, frozenset[str]]


class _Spans(dict[Path_, Any]):  # holds (line, column, end_line, end_column) tuples, hands out Spans
    """Node spans kept as tuples until a diagnostic asks for one: unpickling thousands of small
    objects per file costs as much as parsing it. Only `in` and `[]` are used on span tables."""

    def __getitem__(self, path: Any) -> Span:
        return Span(*dict.__getitem__(self, path))


def compact(outcome: FileOutcome) -> FileOutcome:
    """A copy whose span tables are tuples (the documents of this run are left as they are)."""
    docs = []
    for doc in outcome.documents:
        y = doc.yaml
        spans = [
            _Spans((p, (s.line, s.column, s.end_line, s.end_column)) for p, s in t.items()) for t in (y.values, y.keys)
        ]
        docs.append(replace(doc, yaml=replace(y, values=spans[0], keys=spans[1])))
    return FileOutcome(docs, outcome.diagnostics, outcome.inline)


@functools.cache
def code_stamp() -> bytes:
    """A digest of the compiler code and library versions an entry depends on."""
    import pydantic

    h = hashlib.sha256(b"\0".join([FORMAT, __version__.encode(), sys.version.encode(), pydantic.VERSION.encode()]))
    base = Path(__file__).resolve().parent.parent
    for part in _CODE:
        top = base / part
        for path in sorted(top.rglob("*.py")) if top.is_dir() else [top]:
            h.update(path.relative_to(base).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.digest()


def cache_path(cache_dir: Path, root: Path) -> Path:
    """One cache file per project root, under the per-user cache directory."""
    return cache_dir / "documents" / (hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:32] + ".bin")


@dataclass
class DocumentCache:
    path: Path
    secret: bytes
    entries: dict[str, bytes] = field(default_factory=dict)  # key → pickled FileOutcome (sealed as a whole)
    used: dict[str, bytes] = field(default_factory=dict)  # what this run read or wrote: the next file
    hits: int = 0
    misses: int = 0

    @classmethod
    def load(cls, path: Path, secret: bytes) -> DocumentCache:
        cache = cls(path, secret)  # missing, damaged, forged, another user's or older code: only a slower run
        cache.entries = read_sealed_entries(path, secret, FORMAT, MAX_BYTES, code_stamp())
        return cache

    @staticmethod
    def key(path: Path, display: str, text: str) -> str:
        h = hashlib.sha256(code_stamp())
        for part in (str(path), display, text):
            h.update(part.encode("utf-8", "surrogatepass") + b"\0")
        return h.hexdigest()

    def get(self, key: str) -> FileOutcome | None:
        blob = self.entries.get(key)
        if blob is None:
            self.misses += 1
            return None
        try:
            outcome = pickle.loads(blob)  # part of the authenticated body
        except Exception:  # noqa: BLE001
            outcome = None
        if not isinstance(outcome, FileOutcome):
            self.misses += 1
            return None
        self.hits += 1
        self.used[key] = blob
        return outcome

    def put(self, key: str, outcome: FileOutcome) -> None:
        """Record a file's outcome now, before later stages could touch its documents."""
        with contextlib.suppress(Exception):  # something unpicklable: that file is simply not cached
            self.used[key] = pickle.dumps(compact(outcome), protocol=pickle.HIGHEST_PROTOCOL)

    def put_blob(self, key: str, blob: bytes) -> None:
        """Record an outcome pickled (compacted) elsewhere, as `put` would have pickled it."""
        self.used[key] = blob

    def save(self) -> None:
        """Keep what this run used (the cache never grows past one repo's files)."""
        if self.used.keys() == self.entries.keys():
            return
        write_sealed_entries(self.path, self.secret, FORMAT, code_stamp(), self.used)  # read-only home: slower only
