"""Write an OCI image layout (one layer) from a root filesystem, byte for byte the same every time.

Usage: oci.py ROOT OUT NAME:TAG — SOURCE_DATE_EPOCH (required) is every mtime and the `created` date.
The layer is a tar of ROOT in sorted order (directories before their contents) with numeric owners
kept, owner names empty and every mtime SOURCE_DATE_EPOCH, gzip'd with no name and mtime 0; the
JSON is the standard library's with sorted keys. Prints the manifest digest.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import stat
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

USER = "10001:10001"
ENTRYPOINT = ["/usr/local/bin/takt-runner"]
ENV = ["PATH=/usr/local/bin:/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1", "LANG=C.UTF-8"]


def walk(root: Path) -> Iterator[str]:
    """Relative paths under root, sorted by name, each directory before what it holds."""
    stack = [""]
    while stack:
        rel = stack.pop()
        if rel:
            yield rel
        full = root / rel if rel else root
        if rel and (full.is_symlink() or not full.is_dir()):
            continue
        stack.extend(sorted((f"{rel}/{n}" if rel else n for n in os.listdir(full)), reverse=True))


class Sink(Protocol):
    """Where a HashingWriter passes its bytes on: a file or a GzipFile."""

    def write(self, data: bytes, /) -> object: ...
    def flush(self) -> object: ...


class HashingWriter:
    def __init__(self, out: Sink) -> None:
        self.out, self.sha, self.size = out, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.out.write(data)
        self.sha.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self.out.flush()


def write_layer(root: Path, epoch: int, dest: Path) -> tuple[str, str, int]:
    """The gzip'd layer at dest; returns (diff_id, digest, size)."""
    links: dict[tuple[int, int], str] = {}
    with dest.open("wb") as raw:
        compressed = HashingWriter(raw)
        with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=6) as gz:
            plain = HashingWriter(gz)
            with tarfile.open(fileobj=plain, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]  # typeshed asks every mode's fileobj for read/seek/tell/close; a 'w|' stream only writes
                for rel in walk(root):
                    full = root / rel
                    st = full.lstat()
                    info = tarfile.TarInfo(rel)
                    info.mode = stat.S_IMODE(st.st_mode)
                    info.uid, info.gid, info.uname, info.gname = st.st_uid, st.st_gid, "", ""
                    info.mtime = epoch
                    key = (st.st_dev, st.st_ino)
                    if stat.S_ISDIR(st.st_mode):
                        info.type = tarfile.DIRTYPE
                    elif stat.S_ISLNK(st.st_mode):
                        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(full)
                    elif stat.S_ISREG(st.st_mode) and st.st_nlink > 1 and key in links:
                        info.type, info.linkname = tarfile.LNKTYPE, links[key]
                    elif stat.S_ISREG(st.st_mode):
                        links.setdefault(key, rel)
                        info.size = st.st_size
                        with full.open("rb") as f:
                            tar.addfile(info, f)
                        continue
                    else:
                        raise SystemExit(f"oci.py: {rel}: not a file, directory or symlink (clean the root first)")
                    tar.addfile(info)
    return f"sha256:{plain.sha.hexdigest()}", f"sha256:{compressed.sha.hexdigest()}", compressed.size


def blob(out: Path, data: bytes) -> tuple[str, int]:
    digest = hashlib.sha256(data).hexdigest()
    (out / "blobs" / "sha256" / digest).write_bytes(data)
    return f"sha256:{digest}", len(data)


def canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def build(root: Path, out: Path, ref: str, epoch: int) -> str:
    (out / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    tmp = out / "blobs" / "layer.tmp"
    diff_id, layer_digest, layer_size = write_layer(root, epoch, tmp)
    tmp.rename(out / "blobs" / "sha256" / layer_digest.removeprefix("sha256:"))
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {"User": USER, "Entrypoint": ENTRYPOINT, "Env": ENV, "WorkingDir": "/",
                   "ExposedPorts": {"8080/tcp": {}}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": "targets/it_server/image/build.sh"}],
    }
    config_digest, config_size = blob(out, canonical(config))
    tag = ref.rpartition(":")[2] if ":" in ref.rpartition("/")[2] else "latest"
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                   "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest,
                    "size": layer_size}],
        "annotations": {"org.opencontainers.image.created": created, "org.opencontainers.image.title": "takt-runner"},
    }
    manifest_digest, manifest_size = blob(out, canonical(manifest))
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
                       "size": manifest_size, "annotations": {"org.opencontainers.image.ref.name": tag}}],
    }  # fmt: skip
    (out / "index.json").write_bytes(canonical(index))
    (out / "oci-layout").write_bytes(canonical({"imageLayoutVersion": "1.0.0"}))
    return manifest_digest


def main(argv: list[str]) -> int:
    if len(argv) != 4 or "SOURCE_DATE_EPOCH" not in os.environ:
        print("usage: SOURCE_DATE_EPOCH=N oci.py ROOT OUT NAME:TAG", file=sys.stderr)
        return 2
    print(build(Path(argv[1]), Path(argv[2]), argv[3], int(os.environ["SOURCE_DATE_EPOCH"])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
