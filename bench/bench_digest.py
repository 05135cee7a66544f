"""Artifact hashing: throughput against hashlib alone, and the cost of an unchanged file (a cache hit).

Run: `python bench/bench_digest.py [MiB]` (default 512 MiB; the file is written once to a temp dir).
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

from compiler.models.digest import DigestCache, sha256_file


def main() -> None:
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 512
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "model.bin"
        with f.open("wb") as fh:
            block = os.urandom(1 << 20)
            for _ in range(mib):
                fh.write(block)
        data = f.read_bytes()
        t = time.perf_counter()
        hashlib.sha256(data).hexdigest()
        raw = time.perf_counter() - t
        del data
        t = time.perf_counter()
        sha256_file(f)
        streamed = time.perf_counter() - t
        cache = DigestCache.load(Path(tmp) / "cache.json")
        t = time.perf_counter()
        cache.sha256(f)
        miss = time.perf_counter() - t
        cache.save()
        cache = DigestCache.load(Path(tmp) / "cache.json")
        t = time.perf_counter()
        cache.sha256(f)
        hit = time.perf_counter() - t
    print(f"{'sha256 of ' + str(mib) + ' MiB':<40}{'seconds':>10}{'MiB/s':>10}")
    print(f"{'hashlib on bytes in memory (ceiling)':<40}{raw:>10.3f}{mib / raw:>10.0f}")
    print(f"{'takt streamed from disk':<40}{streamed:>10.3f}{mib / streamed:>10.0f}")
    print(f"{'takt digest cache, first time (miss)':<40}{miss:>10.3f}{mib / miss:>10.0f}")
    print(f"{'takt digest cache, unchanged (hit)':<40}{hit:>10.6f}{'':>10}")


if __name__ == "__main__":
    main()
