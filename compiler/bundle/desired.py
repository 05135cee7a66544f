"""A device's desired state and its detached ed25519 signature (written by publish, verified by the agent).

desired.json names the bundles a device must run; `generation` only grows (rollback protection),
`expires` bounds how long a stale state is accepted (freeze protection), and the signature binds
the exact bytes. The signature file is canonical JSON: {"keyId": …, "signature": base64}.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from compiler.bundle.manifest import canonical_json

DESIRED = "desired.json"
SIGNATURE = "desired.json.sig"


@dataclass(frozen=True)
class BundleRef:
    name: str
    digest: str


@dataclass(frozen=True)
class DesiredState:
    device: str
    generation: int
    expires: datetime
    bundles: tuple[BundleRef, ...]
    source_commit: str | None = None

    def to_bytes(self) -> bytes:
        return canonical_json(
            {
                "version": 1,
                "device": self.device,
                "generation": self.generation,
                "expires": self.expires.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "bundles": [{"name": b.name, "digest": b.digest} for b in self.bundles],
                "sourceCommit": self.source_commit,
            }
        )

    @classmethod
    def parse(cls, data: bytes) -> DesiredState:
        doc = json.loads(data.decode("utf-8"))
        if not isinstance(doc, dict) or doc.get("version") != 1:
            raise ValueError("unsupported desired state version")
        gen = doc["generation"]
        if not isinstance(gen, int) or isinstance(gen, bool) or gen < 0:
            raise ValueError("generation must be a non-negative integer")
        bundles = []
        for b in doc["bundles"]:
            if not re.fullmatch(r"[0-9a-f]{64}", str(b["digest"])):
                raise ValueError(f"bundle {b.get('name')!r} has no valid digest")
            bundles.append(BundleRef(str(b["name"]), str(b["digest"])))
        expires = datetime.strptime(str(doc["expires"]), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        return cls(str(doc["device"]), gen, expires, tuple(bundles), doc.get("sourceCommit"))


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign(data: bytes, private: Ed25519PrivateKey) -> bytes:
    return canonical_json(
        {"keyId": key_id(private.public_key()), "signature": base64.b64encode(private.sign(data)).decode()}
    )


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an ed25519 public key")
    return key


def verify_signature(data: bytes, signature_file: bytes, trusted: list[Ed25519PublicKey]) -> str:
    """The key id that signed `data`; raises ValueError naming why the signature is refused."""
    try:
        doc: dict[str, Any] = json.loads(signature_file.decode("utf-8"))
        kid, sig = str(doc["keyId"]), base64.b64decode(doc["signature"], validate=True)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise ValueError(f"malformed signature file ({exc})") from exc
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
