"""The device's own ed25519 key, which signs its status reports (`takt agent keygen`).

The private key never leaves the state directory (mode 0600); the OpenSSH line of its public key
goes into the Device spec (`spec.publicKey`), where the fleet reader looks for it.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from compiler.bundle.atomic import write_atomic
from compiler.bundle.desired import load_private_key_pem
from compiler.bundle.report import openssh_public_key

DEVICE_KEY, DEVICE_PUB = "device-key.pem", "device-key.pub"
MAX_KEY_BYTES = 4096


class DeviceKeyError(Exception):
    pass


def keygen(state: Path, force: bool = False) -> str:
    """Make the pair in `state`; returns the OpenSSH public line. Refuses to replace a key unless `force`."""
    path = state / DEVICE_KEY
    if path.exists() and not force:
        raise DeviceKeyError(f"{path} exists; --force replaces it (the Device spec then needs the new publicKey)")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    state.mkdir(parents=True, exist_ok=True)
    write_atomic(path, pem)  # a mkstemp file: created 0600
    path.chmod(0o600)
    line = openssh_public_key(key.public_key())
    write_atomic(state / DEVICE_PUB, f"{line}\n".encode())
    (state / DEVICE_PUB).chmod(0o644)
    return line


def load_device_key(path: Path) -> Ed25519PrivateKey:
    """The report key; DeviceKeyError naming why it cannot be used (missing, readable by others, not ed25519)."""
    try:
        if path.stat().st_mode & 0o077:
            raise DeviceKeyError(f"{path} is readable by others (chmod 600 it)")
        with path.open("rb") as fh:  # bounded as it is read, not after: a key is a few hundred bytes
            data = fh.read(MAX_KEY_BYTES + 1)
    except OSError as exc:
        raise DeviceKeyError(
            f"cannot read the device key {path}: {exc.strerror} (takt agent keygen makes it)"
        ) from None
    if len(data) > MAX_KEY_BYTES:
        raise DeviceKeyError(f"{path} is larger than {MAX_KEY_BYTES} bytes: not a device key")
    try:
        return load_private_key_pem(data)
    except ValueError as exc:
        raise DeviceKeyError(f"{path} is {exc}") from None
