"""The bundle format: the contract between the compiler (writes) and the agent (verifies).

Standard library and `cryptography` only, on purpose: a device imports this module without
pydantic, jinja2 or onnx.
A bundle is a directory holding files and MANIFEST.json (every file's path, size, sha256 and
mode, and provenance). The bundle digest is the sha256 of the canonical manifest without its
own digest field, so it binds every byte and every name.
"""

from compiler.bundle.activation import Activation
from compiler.bundle.desired import (
    DESIRED,
    SIGNATURE,
    BundleRef,
    DesiredState,
    ShadowOf,
    key_id,
    load_public_key,
    sign,
    verify_signature,
)
from compiler.bundle.manifest import (
    MANIFEST,
    FileEntry,
    Manifest,
    canonical_json,
    verify_bundle,
    write_bundle,
)

__all__ = [
    "DESIRED",
    "MANIFEST",
    "SIGNATURE",
    "Activation",
    "BundleRef",
    "DesiredState",
    "FileEntry",
    "Manifest",
    "ShadowOf",
    "canonical_json",
    "key_id",
    "load_public_key",
    "sign",
    "verify_bundle",
    "verify_signature",
    "write_bundle",
]
