"""Verify before touching anything: signature, generation, expiry, device, and every bundle byte."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from compiler.bundle import DESIRED, SIGNATURE, DesiredState, load_public_key, verify_bundle, verify_signature


class Refused(Exception):
    """The desired state must not be applied; `reason` is a stable CamelCase word for status."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


@dataclass(frozen=True)
class Verified:
    state: DesiredState
    key_id: str
    release_id: str


def release_id(state: DesiredState) -> str:
    """A release is the set of bundles a device runs; its id binds every name and digest."""
    lines = "".join(f"{b.name}\0{b.digest}\n" for b in sorted(state.bundles, key=lambda b: b.name))
    return hashlib.sha256(lines.encode()).hexdigest()


def load_trusted(paths: tuple[Path, ...]):
    keys = []
    for p in paths:
        try:
            keys.append(load_public_key(p.read_bytes()))
        except (OSError, ValueError) as exc:
            raise Refused("UntrustedKeyFile", f"cannot use trusted key {p}: {exc}") from exc
    return keys


def verify_desired(
    workdir: Path, device: str, trusted, accepted_generation: int, accepted_release: str | None, now: datetime
) -> Verified:
    ddir = workdir / "devices" / device
    try:
        data = (ddir / DESIRED).read_bytes()
    except OSError as exc:
        raise Refused("NoDesiredState", f"devices/{device}/{DESIRED} is missing") from exc
    try:
        sig = (ddir / SIGNATURE).read_bytes()
    except OSError as exc:
        raise Refused("SignatureMissing", f"devices/{device}/{SIGNATURE} is missing") from exc
    try:
        kid = verify_signature(data, sig, trusted)
    except ValueError as exc:
        reason = "UntrustedKey" if "untrusted" in str(exc) else "SignatureInvalid"
        raise Refused(reason, f"desired state refused: {exc}") from exc
    try:
        state = DesiredState.parse(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise Refused("DesiredStateInvalid", f"desired state is malformed: {exc}") from exc
    if state.device != device:
        raise Refused("WrongDevice", f"desired state is for device {state.device!r}, not {device!r}")
    rid = release_id(state)
    if state.generation < accepted_generation:
        raise Refused(
            "RollbackRefused",
            f"generation {state.generation} is older than the accepted {accepted_generation} (replayed desired state)",
        )
    if state.generation == accepted_generation and accepted_release not in (None, rid):
        raise Refused("GenerationReused", f"generation {state.generation} was already accepted with other bundles")
    if state.expires <= now:
        raise Refused(
            "Expired",
            f"desired state expired at {state.expires.isoformat()} (clock says "
            f"{now.isoformat()}); waiting for a fresh publish",
        )
    for ref in state.bundles:
        _, problems = verify_bundle(workdir / "bundles" / ref.digest, ref.digest)
        if problems:
            raise Refused("BundleInvalid", f"bundle {ref.name} ({ref.digest[:12]}): {problems[0]}")
    return Verified(state, kid, rid)
