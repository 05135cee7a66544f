"""A device's desired state and its detached ed25519 signature (written by publish, verified by the agent).

desired.json names the bundles a device must run; `generation` only grows (rollback protection),
`expires` bounds how long a stale state is accepted (freeze protection), and the signature binds
the exact bytes. The signature file is canonical JSON: {"keyId": …, "signature": base64}.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from compiler.bundle.boundedjson import clip as _clip
from compiler.bundle.boundedjson import loads_bounded
from compiler.bundle.manifest import canonical_json

DESIRED = "desired.json"
SIGNATURE = "desired.json.sig"
# Read before they are verified: a device refuses anything larger or deeper, whatever it claims.
MAX_DESIRED_BYTES = 1 << 20  # about 5,000 bundle references
MAX_SIGNATURE_BYTES = 4096  # a key id and 88 characters of base64
_MAX_DEPTH = 8  # desired.json nests 3 levels; the signature file 1
_KEY_ID = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class ShadowOf:
    """Marks a bundle as a shadow challenger: the agent verifies and stages it like any bundle, the
    runner of its deployment feeds it the same frames as the current bundle and never writes its
    outputs. `tolerance`: regressors agree within this absolute difference, in the output's unit.
    `window`: seconds over which the runner counts agreement (the rollout's shadow window; None in
    states written before it was carried: the runner's default)."""

    tolerance: float = 0.0
    window: float | None = None


@dataclass(frozen=True)
class BundleRef:
    name: str
    digest: str
    shadow: ShadowOf | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "digest": self.digest}
        if self.shadow is not None:  # additive: a state without challengers keeps its exact bytes
            out["shadow"] = {"tolerance": self.shadow.tolerance}
            if self.shadow.window is not None:  # additive too: older challengers keep their bytes
                out["shadow"]["window"] = self.shadow.window
        return out


@dataclass(frozen=True)
class DesiredState:
    device: str
    generation: int
    expires: datetime
    bundles: tuple[BundleRef, ...]
    source_commit: str | None = None

    @property
    def serving(self) -> tuple[BundleRef, ...]:
        """The bundles whose runners write outputs (challengers excluded)."""
        return tuple(b for b in self.bundles if b.shadow is None)

    @property
    def challengers(self) -> tuple[BundleRef, ...]:
        return tuple(b for b in self.bundles if b.shadow is not None)

    def to_bytes(self) -> bytes:
        return canonical_json(
            {
                "version": 1,
                "device": self.device,
                "generation": self.generation,
                "expires": self.expires.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "bundles": [b.to_json() for b in self.bundles],
                "sourceCommit": self.source_commit,
            }
        )

    @classmethod
    def parse(cls, data: bytes) -> DesiredState:
        """Parse and check a desired state; raises ValueError (only) with the reason."""
        doc = loads_bounded(data, max_bytes=MAX_DESIRED_BYTES, max_depth=_MAX_DEPTH, what=DESIRED)
        if not isinstance(doc, dict) or doc.get("version") != 1:
            raise ValueError("unsupported desired state version")
        try:
            return cls._from_doc(doc)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"missing or mistyped field ({_clip(exc)})") from None

    @classmethod
    def _from_doc(cls, doc: dict[str, Any]) -> DesiredState:
        gen = doc["generation"]
        if not isinstance(gen, int) or isinstance(gen, bool) or gen < 0:
            raise ValueError("generation must be a non-negative integer")
        if not isinstance(doc["device"], str) or not isinstance(doc["bundles"], list):
            raise ValueError("device must be a string and bundles a list")
        bundles = []
        for b in doc["bundles"]:
            if not isinstance(b["name"], str) or not re.fullmatch(r"[0-9a-f]{64}", str(b["digest"])):
                raise ValueError(f"bundle {_clip(b.get('name'))} has no valid name or digest")
            bundles.append(BundleRef(b["name"], b["digest"], _shadow(b.get("shadow"))))
        expires = datetime.strptime(str(doc["expires"])[:32], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        source = doc.get("sourceCommit")
        return cls(doc["device"], gen, expires, tuple(bundles), source if isinstance(source, str) else None)


def _shadow(value: Any) -> ShadowOf | None:
    if value is None:
        return None
    tol = value["tolerance"]
    if not isinstance(tol, int | float) or isinstance(tol, bool) or not 0 <= tol < float("inf"):
        raise ValueError("a shadow tolerance must be a finite non-negative number")
    window = value.get("window")
    if window is not None and (
        not isinstance(window, int | float) or isinstance(window, bool) or not 0 < window < float("inf")
    ):
        raise ValueError("a shadow window must be a finite positive number of seconds")
    return ShadowOf(float(tol), None if window is None else float(window))


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign(data: bytes, private: Ed25519PrivateKey) -> bytes:
    return canonical_json(
        {"keyId": key_id(private.public_key()), "signature": base64.b64encode(private.sign(data)).decode()}
    )


def load_private_key_pem(pem: bytes) -> Ed25519PrivateKey:
    """An unencrypted PEM ed25519 private key; ValueError saying why not (never echoing the bytes).

    One parser for the publisher's signing key and the device's report key."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise ValueError("not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an ed25519 key")
    return key


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an ed25519 public key")
    return key


def verify_signature(data: bytes, signature_file: bytes, trusted: list[Ed25519PublicKey]) -> str:
    """The key id that signed `data`; raises ValueError naming why the signature is refused.

    The signature file is unsigned input: bounded before parsing, and the key id must look like
    one (16 hex digits) before any message repeats it.
    """
    try:
        doc = loads_bounded(signature_file, max_bytes=MAX_SIGNATURE_BYTES, max_depth=_MAX_DEPTH, what=SIGNATURE)
        if not isinstance(doc, dict) or not all(isinstance(doc.get(k), str) for k in ("keyId", "signature")):
            raise ValueError("keyId and signature must be strings")
        kid: str = doc["keyId"]
        if not _KEY_ID.fullmatch(kid):
            raise ValueError(f"keyId {_clip(kid, 24)} is not a key id")
        sig = base64.b64decode(doc["signature"], validate=True)
    except ValueError as exc:  # binascii.Error, b64decode's, is a ValueError
        raise ValueError(f"malformed signature file ({exc})") from None
    keys = [k for k in trusted if key_id(k) == kid]
    if not keys:
        raise ValueError(f"signed by untrusted key {kid}")
    for k in keys:
        try:
            k.verify(sig, data)
            return kid
        except InvalidSignature:
            continue
    raise ValueError(f"bad signature by key {kid}")
