"""ed25519 keys for desired states: generated here, held by CI (file or environment), never in a repo."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from compiler.bundle.atomic import write_atomic
from compiler.bundle.desired import key_id, load_private_key_pem
from compiler.commands.errors import CommandError, ExitCode

PRIVATE_NAME, PUBLIC_NAME = "takt-signing.key", "takt-signing.pub"
MAX_KEY_BYTES = 4096  # a PEM ed25519 key is about 120 bytes


class KeyError_(CommandError):
    """A key that cannot be used; the message never contains key material."""

    exit_code = ExitCode.USAGE


def keygen(out: Path, *, force: bool = False) -> tuple[Path, Path, str]:
    out.mkdir(parents=True, exist_ok=True)
    private_path, public_path = out / PRIVATE_NAME, out / PUBLIC_NAME
    if not force and (private_path.exists() or public_path.exists()):
        raise KeyError_(f"{private_path} or {public_path} exists (use --force to replace)")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    # new files renamed over the old ones: mkstemp makes them 0600 from their first byte, so an
    # existing key file's mode (or a link at its name) never decides who can read the new key
    write_atomic(private_path, pem)
    write_atomic(
        public_path,
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
    )
    os.chmod(public_path, 0o644)
    return private_path, public_path, key_id(key.public_key())


def load_private_key(ref: str) -> Ed25519PrivateKey:
    """From a file path, `file:PATH` or `env:VAR` (the PEM text in an environment variable)."""
    if ref.startswith("env:"):
        value = os.environ.get(ref[4:])
        if not value:
            raise KeyError_(f"environment variable {ref[4:]} is not set")
        data, where = value.encode(), f"${ref[4:]}"
    elif "\n" in ref or "-----BEGIN" in ref:  # the key itself where its reference belongs: never echo it
        raise KeyError_("the signing key reference holds key material; give env:VAR or a file path")
    else:
        path = Path(ref.removeprefix("file:"))
        try:
            with path.open("rb") as fh:  # a key is a few hundred bytes: bounded as it is read
                data, where = fh.read(MAX_KEY_BYTES + 1), str(path)
        except OSError as exc:
            raise KeyError_(f"cannot read signing key {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_KEY_BYTES:
        raise KeyError_(f"{where} is larger than {MAX_KEY_BYTES} bytes: not a signing key")
    try:
        return load_private_key_pem(data)
    except ValueError as exc:
        raise KeyError_(f"{where} is {exc}") from None
