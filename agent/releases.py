"""Releases on disk. Every step leaves the device on a whole release, whatever instant it is killed:

releases/.staging-*        being written; deleted at the next start
releases/<release>.<seq>/  complete and verified (bundles/<digest>/…, release.json)
current -> releases/…      switched by renaming a new symlink over the old one
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from compiler.bundle import DesiredState, canonical_json, verify_bundle
from compiler.bundle.atomic import fsync_dir

RELEASES, CURRENT, STAGING = "releases", "current", ".staging-"
_DIR = re.compile(r"^([0-9a-f]{64})\.(\d+)$")


class StageError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


def clean_staging(state: Path) -> None:
    for d in (state / RELEASES).glob(f"{STAGING}*") if (state / RELEASES).is_dir() else []:
        shutil.rmtree(d, ignore_errors=True)
    for tmp in state.glob(f".{CURRENT}.tmp-*"):
        tmp.unlink(missing_ok=True)


def current_release(state: Path) -> Path | None:
    link = state / CURRENT
    if not link.is_symlink():
        return None
    target = (state / os.readlink(link)).resolve()
    return target if target.is_dir() else None


def release_id_of(release: Path | None) -> str | None:
    m = _DIR.match(release.name) if release else None
    return m.group(1) if m else None


def _bundle_bytes(workdir: Path, state: DesiredState) -> int:
    total = 0
    for ref in state.bundles:
        manifest = json.loads((workdir / "bundles" / ref.digest / "MANIFEST.json").read_text())
        total += sum(f["size"] for f in manifest["files"]) + 4096
    return total


_ARCH_ALIASES = {"amd64": "x86_64", "arm64": "aarch64", "armv7l": "armv7"}


def machine_arch() -> str:
    import platform

    m = platform.machine().lower()
    return _ARCH_ALIASES.get(m, m)


def mem_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def preflight(workdir: Path, desired: DesiredState, arch: str, memory: int | None) -> None:
    """Refuse a release this machine cannot run: another architecture, or models beyond free memory."""
    model_bytes = 0
    for ref in desired.bundles:
        manifest = json.loads((workdir / "bundles" / ref.digest / "MANIFEST.json").read_text())
        wanted = manifest.get("provenance", {}).get("arch")
        if wanted and manifest.get("targetClass") != "embedded" and wanted != arch:
            raise StageError("WrongArchitecture", f"bundle {ref.name} is built for {wanted}; this machine is {arch}")
        model_bytes += sum(f["size"] for f in manifest["files"] if f["path"].startswith("model/"))
    if memory is not None and model_bytes * 3 > memory:  # weights, the session's copy and activations
        raise StageError(
            "InsufficientMemory",
            f"models of {model_bytes:,} bytes need about {model_bytes * 3:,} bytes of memory; {memory:,} are available",
        )


def stage(state_dir: Path, workdir: Path, desired: DesiredState, rid: str, reserve: int) -> Path:
    """Copy the verified bundles into a new release directory, fsync, verify again, rename into place."""
    releases = state_dir / RELEASES
    releases.mkdir(parents=True, exist_ok=True)
    need = _bundle_bytes(workdir, desired)
    free = shutil.disk_usage(releases).free
    if free < need + reserve:
        raise StageError(
            "InsufficientDisk", f"staging needs {need:,} bytes plus a reserve of {reserve:,}; {free:,} are free"
        )
    seqs = [int(m.group(2)) for d in releases.iterdir() if (m := _DIR.match(d.name))]
    final = releases / f"{rid}.{max(seqs, default=0) + 1}"
    staging = releases / f"{STAGING}{rid}.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        (staging / "bundles").mkdir(parents=True)
        for ref in desired.bundles:
            src, dst = workdir / "bundles" / ref.digest, staging / "bundles" / ref.digest
            for path in sorted(src.rglob("*")):
                target = dst / path.relative_to(src)
                if path.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with path.open("rb") as fin, target.open("wb") as fout:
                    shutil.copyfileobj(fin, fout, 1 << 20)
                    fout.flush()
                    os.fsync(fout.fileno())
                os.chmod(target, path.stat().st_mode & 0o755)
            for d in sorted((p for p in dst.rglob("*") if p.is_dir()), reverse=True):
                fsync_dir(d)
            _, problems = verify_bundle(dst, ref.digest)
            if problems:
                raise StageError("StagingCorrupt", f"bundle {ref.name} differs after copying: {problems[0]}")
        (staging / "release.json").write_bytes(
            canonical_json(
                {
                    "releaseId": rid,
                    "device": desired.device,
                    "generation": desired.generation,
                    "bundles": [{"name": b.name, "digest": b.digest} for b in desired.bundles],
                }
            )
        )
        fsync_dir(staging / "bundles")
        fsync_dir(staging)
        os.rename(staging, final)
        fsync_dir(releases)
        return final
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise StageError("StagingFailed", f"cannot stage the release: {exc.strerror or exc}") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def activate(state_dir: Path, release: Path) -> None:
    """Point `current` at `release` in one rename: never a moment without a whole release."""
    link = state_dir / CURRENT
    tmp = state_dir / f".{CURRENT}.tmp-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    os.symlink(os.path.relpath(release, state_dir), tmp)
    os.replace(tmp, link)
    fsync_dir(state_dir)


def verify_release(release: Path) -> list[str]:
    """Every bundle of a release against its manifest (drift detection)."""
    try:
        meta = json.loads((release / "release.json").read_text())
    except (OSError, ValueError) as exc:
        return [f"release.json unreadable: {exc}"]
    problems = []
    for b in meta.get("bundles", []):
        _, p = verify_bundle(release / "bundles" / b["digest"], b["digest"])
        problems += [f"{b['name']}: {x}" for x in p]
    return problems


def prune(state_dir: Path, keep: list[str]) -> None:
    """Delete release directories that are neither current nor among the kept good ones."""
    current = current_release(state_dir)
    for d in (state_dir / RELEASES).iterdir() if (state_dir / RELEASES).is_dir() else []:
        if _DIR.match(d.name) and d.name not in keep and (current is None or d.resolve() != current):
            shutil.rmtree(d, ignore_errors=True)
