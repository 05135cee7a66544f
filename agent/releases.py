"""Releases on disk. Every step leaves the device on a whole release, whatever instant it is killed:

releases/.staging-*        being written; deleted at the next start
releases/<release>.<seq>/  complete and verified: bundles/<digest>/… (modes as the manifest says),
                           deployments/<deployment> -> ../bundles/<digest>, release.json
current -> releases/…      switched by renaming a new symlink over the old one
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

from agent.layout import DEPLOYMENTS, SHADOW, check_links, write_links
from agent.reasons import Reason
from agent.status import read_state_json
from compiler.bundle import MANIFEST, BundleRef, DesiredState, Manifest, ShadowOf, canonical_json, verify_bundle
from compiler.bundle.atomic import fsync_dir
from compiler.bundle.tree import TreeError, open_regular

RELEASES, CURRENT, STAGING = "releases", "current", ".staging-"
_DIR = re.compile(r"^([0-9a-f]{64})\.(\d+)$")


class StageError(Exception):
    def __init__(self, reason: Reason, message: str) -> None:
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


def _bundle_bytes(manifests: list[Manifest]) -> int:
    return sum(sum(f.size for f in m.files) + 4096 for m in manifests)


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


def preflight(manifests: list[Manifest], arch: str, memory: int | None) -> None:
    """Refuse a release this machine cannot run: another architecture, or models beyond free memory."""
    model_bytes = 0
    for manifest in manifests:
        wanted = manifest.provenance.get("arch")
        if wanted and manifest.activation.runs_here and wanted != arch:  # flashed elsewhere: not this arch
            raise StageError(
                Reason.WRONG_ARCHITECTURE, f"bundle {manifest.name} is built for {wanted}; this machine is {arch}"
            )
        model_bytes += sum(f.size for f in manifest.files if f.path.startswith("model/"))
    if memory is not None and model_bytes * 3 > memory:  # weights, the session's copy and activations
        raise StageError(
            Reason.INSUFFICIENT_MEMORY,
            f"models of {model_bytes:,} bytes need about {model_bytes * 3:,} bytes of memory; {memory:,} are available",
        )


def _copy(src: Path, dst: Path, mode: int) -> None:
    """One file, opened without following a link, written and fsynced with the manifest's mode."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(open_regular(src), "rb") as fin, dst.open("wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)
        fout.flush()
        os.fchmod(fout.fileno(), mode)
        os.fsync(fout.fileno())


def _copy_bundle(src: Path, dst: Path, manifest: Manifest) -> None:
    """Only what the manifest lists (and the manifest), never a file beside it."""
    _copy(src / MANIFEST, dst / MANIFEST, 0o644)
    for entry in manifest.files:
        _copy(src / entry.path, dst / entry.path, entry.mode)
    for d in sorted((p for p in dst.rglob("*") if p.is_dir()), reverse=True):
        os.chmod(d, 0o755)
        fsync_dir(d)
    os.chmod(dst, 0o755)


def stage(
    state_dir: Path, workdir: Path, desired: DesiredState, manifests: dict[str, Manifest], rid: str, reserve: int
) -> Path:
    """Copy the verified bundles into a new release directory, link the deployments, fsync,
    verify the whole release again (modes exactly), rename into place."""
    releases = state_dir / RELEASES
    releases.mkdir(parents=True, exist_ok=True)
    need = _bundle_bytes(list(manifests.values()))
    free = shutil.disk_usage(releases).free
    if free < need + reserve:
        raise StageError(
            Reason.INSUFFICIENT_DISK,
            f"staging needs {need:,} bytes plus a reserve of {reserve:,}; {free:,} are free",
        )
    seqs = [int(m.group(2)) for d in releases.iterdir() if (m := _DIR.match(d.name))]
    final = releases / f"{rid}.{max(seqs, default=0) + 1}"
    staging = releases / f"{STAGING}{rid}.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        (staging / "bundles").mkdir(parents=True)
        for ref in desired.bundles:
            _copy_bundle(workdir / "bundles" / ref.digest, staging / "bundles" / ref.digest, manifests[ref.digest])
        write_links(staging, desired.bundles)
        (staging / "release.json").write_bytes(
            canonical_json(
                {
                    "releaseId": rid,
                    "device": desired.device,
                    "generation": desired.generation,
                    "bundles": [b.to_json() for b in desired.bundles],
                }
            )
        )
        problems = verify_release(staging)
        if problems:
            raise StageError(Reason.STAGING_CORRUPT, f"the release differs after copying: {problems[0]}")
        shadow_dir = [staging / SHADOW] if desired.challengers else []
        for d in (staging / "bundles", staging / DEPLOYMENTS, *shadow_dir, staging):
            os.chmod(d, 0o755)
            fsync_dir(d)
        os.rename(staging, final)
        fsync_dir(releases)
        return final
    except (OSError, TreeError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise StageError(Reason.STAGING_FAILED, f"cannot stage the release: {detail}") from exc
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


_RELEASE_ENTRIES = {"release.json": "file", "bundles": "dir", DEPLOYMENTS: "dir", SHADOW: "dir"}


def _kind(entry: os.DirEntry[str]) -> str:
    if entry.is_symlink():
        return "link"
    return "dir" if entry.is_dir() else "file" if entry.is_file() else "other"


def _shadow_of(entry: Any) -> ShadowOf | None:
    """A challenger's terms as release.json holds them (BundleRef.to_json): its tolerance, and its window if signed."""
    if not entry:
        return None
    window = entry.get("window")
    return ShadowOf(float(entry["tolerance"]), None if window is None else float(window))


def verify_release(release: Path) -> list[str]:
    """The whole release against what was staged (drift detection): every bundle byte and mode,
    the deployment links and nothing else (no other entry, no other link)."""
    try:
        meta = read_state_json(release / "release.json")
        bundles = [BundleRef(b["name"], b["digest"], _shadow_of(b.get("shadow"))) for b in meta.get("bundles", [])]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return [f"release.json unreadable: {exc}"]
    problems = []
    with os.scandir(release) as it:
        for entry in sorted(it, key=lambda e: e.name):
            if _RELEASE_ENTRIES.get(entry.name) != _kind(entry):
                problems.append(f"{entry.name}: unexpected entry")
    digests = {b.digest for b in bundles}
    if (release / "bundles").is_dir() and not (release / "bundles").is_symlink():
        with os.scandir(release / "bundles") as it:
            problems += [f"bundles/{e.name}: unexpected entry" for e in it if e.name not in digests]
    for b in bundles:
        _, p = verify_bundle(release / "bundles" / b.digest, b.digest, exact_modes=True)
        problems += [f"{b.name}: {x}" for x in p]
    return problems + check_links(release, bundles)


def prune(state_dir: Path, keep: list[str]) -> None:
    """Delete release directories that are neither current nor among the kept good ones."""
    current = current_release(state_dir)
    for d in (state_dir / RELEASES).iterdir() if (state_dir / RELEASES).is_dir() else []:
        if _DIR.match(d.name) and d.name not in keep and (current is None or d.resolve() != current):
            shutil.rmtree(d, ignore_errors=True)


def release_meta(release: Path | None) -> dict[str, Any]:
    """The release's own record (generation, bundles); empty when there is none or it is unreadable."""
    try:
        meta = read_state_json(release / "release.json") if release else {}
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}
