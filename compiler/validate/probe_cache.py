"""Dataset probes keyed by the file's sha256, so validating unchanged datasets imports neither numpy nor pyarrow.

A probe (format, columns with kinds and types, row count from metadata) or the reason a file cannot
be probed depends only on the file's bytes, the format it is read as, and the code and pyarrow release
that read them. An entry is keyed by the sha256 of the bytes (the digest cache gives it without reading
an unchanged file) and the format; the file holds the entries of one code stamp. Failures to open or
locate a file are about the tree, not the bytes: they are never cached.

The cache lives in the per-user cache directory and is sealed like the document cache (the per-user
secret; nothing is unpickled before the seal verifies). A cache that is missing, damaged, forged, or
from another version is ignored and rebuilt: it makes a run faster, never changes its result.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from compiler import build_cache
from compiler.testing.dataset_types import DatasetError, Probe

FORMAT = b"TAKTPRB1"
FILE_NAME = "probes.bin"
MAX_BYTES = 64 << 20
MAX_ENTRIES = 4096  # shared by every repo of the user: the oldest entries go first
_CODE = ("formats.py", "dataset_types.py", "datasets.py")  # in compiler/testing: what a probe runs


@functools.cache
def code_stamp() -> bytes:
    """pyarrow's version and the probing code an entry depends on."""
    base = Path(__file__).resolve().parent.parent / "testing"
    return build_cache.code_stamp(FORMAT, "pyarrow", tuple(base / name for name in _CODE))


class ProbeCache(build_cache.SealedValues):
    """sha256 + format → the pickled Probe, or the reason (str) the bytes cannot be probed."""

    FORMAT = FORMAT
    MAX_BYTES = MAX_BYTES
    MAX_ENTRIES = MAX_ENTRIES

    @staticmethod
    def stamp() -> bytes:
        return code_stamp()

    def probe(
        self, sha256: str, fmt: str, run: Callable[[], Probe], unchanged: Callable[[], bool]
    ) -> Probe | DatasetError:
        """What `run()` gives for a file of these bytes read as `fmt`: the probe, or its DatasetError; kept
        only when `unchanged()` says the file is still the one digested."""
        key = f"{sha256}:{fmt}"
        got = self.cached(key)
        if isinstance(got, Probe):
            self.hits += 1
            return got
        if isinstance(got, str):
            self.hits += 1
            return DatasetError(got)
        self.misses += 1
        try:
            result: Probe | DatasetError = run()
        except DatasetError as exc:
            result = exc
        if unchanged():
            self.keep(key, result.reason if isinstance(result, DatasetError) else result)
        return result
