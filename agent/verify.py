"""Verify before touching anything: signature, generation, expiry, device, and every bundle byte.

Everything is read through compiler.bundle.tree (inside the clone, regular files, bounded), and
every refusal is a `Refused` with a `Reason`: repository content never raises past here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.layout import deployment_links
from agent.reasons import Reason
from compiler.bundle import (
    DESIRED,
    MANIFEST,
    SIGNATURE,
    DesiredState,
    Manifest,
    load_public_key,
    verify_bundle,
    verify_signature,
)
from compiler.bundle.desired import MAX_DESIRED_BYTES, MAX_SIGNATURE_BYTES, ShadowOf
from compiler.bundle.manifest import MAX_MANIFEST_BYTES, safe_relative
from compiler.bundle.tree import TreeError, read_inside


class Refused(Exception):
    """The desired state must not be applied; `reason` says why in one stable word."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


@dataclass(frozen=True)
class Verified:
    state: DesiredState
    key_id: str
    release_id: str


def _shadow_terms(shadow: ShadowOf) -> str:
    return f"{shadow.tolerance!r}" if shadow.window is None else f"{shadow.tolerance!r}\0window\0{shadow.window!r}"


def release_id(state: DesiredState) -> str:
    """A release is the set of bundles a device runs; its id binds every name and digest.

    The id is persisted (the quarantine in agent.json, releases/<id>.<n>), so its format is kept across
    agent versions: sha256 of one line per bundle, sorted by name with a current bundle before its
    challenger: `name\0digest\n`, and for a challenger `name\0digest\0shadow\0<tolerance>[\0window\0<window>]\n`."""
    # a challenger's line is marked (and its tolerance and window bound); states without one keep their old ids
    lines = "".join(
        f"{b.name}\0{b.digest}\n" if b.shadow is None else f"{b.name}\0{b.digest}\0shadow\0{_shadow_terms(b.shadow)}\n"
        for b in sorted(state.bundles, key=lambda b: (b.name, b.shadow is not None))
    )
    return hashlib.sha256(lines.encode()).hexdigest()


def load_trusted(paths: tuple[Path, ...]) -> list[Ed25519PublicKey]:
    keys = []
    for p in paths:
        try:
            keys.append(load_public_key(p.read_bytes()))
        except (OSError, ValueError) as exc:
            raise Refused(Reason.UNTRUSTED_KEY_FILE, f"cannot use trusted key {p}: {exc}") from exc
    return keys


def state_paths(device: str) -> list[str]:
    """The only files of the device's directory that are fetched: nothing beside them is checked out."""
    return [f"/devices/{device}/{DESIRED}", f"/devices/{device}/{SIGNATURE}"]


def manifest_paths(state: DesiredState) -> list[str]:
    return [f"/bundles/{b.digest}/{MANIFEST}" for b in state.bundles]


def listed_paths(workdir: Path, state: DesiredState) -> list[str]:
    """The files the manifests of a verified state list (manifests that do not match are skipped:
    verification refuses them), so that nothing the signed state does not name is checked out."""
    paths = []
    for ref in state.bundles:
        try:
            manifest = Manifest.parse(read_inside(workdir, f"bundles/{ref.digest}/{MANIFEST}", MAX_MANIFEST_BYTES))
        except (OSError, ValueError, TreeError):
            continue
        if manifest.digest == ref.digest:
            paths += [f"/bundles/{ref.digest}/{e.path}" for e in manifest.files if safe_relative(e.path)]
    return paths


def _read(workdir: Path, rel: str, limit: int, missing: Reason, invalid: Reason) -> bytes:
    try:
        return read_inside(workdir, rel, limit)
    except FileNotFoundError as exc:
        raise Refused(missing, f"{rel} is missing") from exc
    except (TreeError, OSError) as exc:
        raise Refused(invalid, f"{rel} cannot be read: {exc}") from exc


def verify_state(
    workdir: Path,
    device: str,
    trusted: list[Ed25519PublicKey],
    accepted_generation: int,
    accepted_release: str | None,
    now: datetime,
) -> Verified:
    """The signed state of this device: signature, parse, device, generation, expiry, layout."""
    ddir = f"devices/{device}"
    data = _read(workdir, f"{ddir}/{DESIRED}", MAX_DESIRED_BYTES, Reason.NO_DESIRED_STATE, Reason.DESIRED_STATE_INVALID)
    sig = _read(workdir, f"{ddir}/{SIGNATURE}", MAX_SIGNATURE_BYTES, Reason.SIGNATURE_MISSING, Reason.SIGNATURE_INVALID)
    try:
        kid = verify_signature(data, sig, trusted)
    except ValueError as exc:
        reason = Reason.UNTRUSTED_KEY if str(exc).startswith("signed by untrusted") else Reason.SIGNATURE_INVALID
        raise Refused(reason, f"desired state refused: {exc}") from exc
    try:
        state = DesiredState.parse(data)
        deployment_links(state.bundles)
    except ValueError as exc:
        raise Refused(Reason.DESIRED_STATE_INVALID, f"desired state is malformed: {exc}") from exc
    if state.device != device:
        raise Refused(Reason.WRONG_DEVICE, f"desired state is for device {state.device[:80]!r}, not {device!r}")
    rid = release_id(state)
    if state.generation < accepted_generation:
        raise Refused(
            Reason.ROLLBACK_REFUSED,
            f"generation {state.generation} is older than the accepted {accepted_generation} (replayed desired state)",
        )
    if state.generation == accepted_generation and accepted_release not in (None, rid):
        raise Refused(
            Reason.GENERATION_REUSED, f"generation {state.generation} was already accepted with other bundles"
        )
    if state.expires <= now:
        raise Refused(
            Reason.EXPIRED,
            f"desired state expired at {state.expires.isoformat()} (clock says "
            f"{now.isoformat()}); waiting for a fresh publish",
        )
    return Verified(state, kid, rid)


def verify_bundles(workdir: Path, state: DesiredState) -> dict[str, Manifest]:
    """Every bundle of a verified state against its manifest and the digest the state names."""
    manifests = {}
    for ref in state.bundles:
        manifest, problems = verify_bundle(workdir / "bundles" / ref.digest, ref.digest)
        if problems or manifest is None:
            raise Refused(Reason.BUNDLE_INVALID, f"bundle {ref.name} ({ref.digest[:12]}): {problems[0]}")
        manifests[ref.digest] = manifest
    return manifests
