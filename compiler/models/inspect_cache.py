"""Model inspections keyed by the model file's sha256, so `takt validate` on unchanged models never imports onnx.

What `inspect_bytes` finds (IR and opsets, the signature with dtypes and shapes, every operator
with its types and schema type parameters, sizes, the checker's verdict) depends only on the
model's bytes and on the code and onnx release that read them. An entry is keyed by the sha256
of the bytes (the digest cache gives it without reading an unchanged file); the file holds the
entries of one code stamp (Takt, Python, onnx, and this package's inspection code). onnx is
imported only on a miss.

The cache lives in the per-user cache directory and is sealed like the document cache
(`compiler.build_cache.write_sealed`, the per-user secret): nothing is unpickled before the seal
verifies. A cache that is missing, damaged, forged, or from another version is ignored and
rebuilt: it makes a run faster, never changes its result.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import replace
from pathlib import Path

from compiler import build_cache
from compiler.bundle.tree import TreeError
from compiler.models.digest import DigestCache
from compiler.models.inspect import ModelInfo, Unreadable, inspect_bytes, inspect_model, read_model

FORMAT = b"TAKTMDL1"
FILE_NAME = "models.bin"
MAX_BYTES = 256 << 20
MAX_ENTRIES = 4096  # shared by every repo of the user: the oldest entries go first


@functools.cache
def code_stamp() -> bytes:
    """onnx's version and the inspecting code (inspect.py, and onnx_core.py, which it calls) an entry depends on."""
    here = Path(__file__).resolve().parent
    return build_cache.code_stamp(FORMAT, "onnx", (here / "inspect.py", here / "onnx_core.py"))


class InspectCache(build_cache.SealedValues):
    """sha256 → the pickled ModelInfo or Unreadable of those bytes."""

    FORMAT = FORMAT
    MAX_BYTES = MAX_BYTES
    MAX_ENTRIES = MAX_ENTRIES

    @staticmethod
    def stamp() -> bytes:
        return code_stamp()

    def inspect(self, path: Path, digests: DigestCache) -> ModelInfo | Unreadable:
        """What `inspect_model(path)` says, from the cache when a file of the same bytes was inspected."""
        try:
            sha = digests.sha256(path)
        except (TreeError, OSError):
            return inspect_model(path)  # it reports why the file cannot be read, as a value
        got = self.cached(sha)
        if isinstance(got, ModelInfo | Unreadable):
            self.hits += 1
            return replace(got, path=str(path)) if isinstance(got, ModelInfo) else got
        self.misses += 1
        data = read_model(path)
        if isinstance(data, Unreadable):
            return data  # about the file, not its bytes: never cached
        info = inspect_bytes(data, str(path))
        self.keep(hashlib.sha256(data).hexdigest(), info, replaces=sha)  # the bytes read, if they changed since
        return info
