"""agent/devicekey.py at the strength `make mutation` asks: each refusal and each mode is asserted, so a
weakened check (a mode mask, the size bound, an exception that no longer matches) fails a test."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.devicekey import DEVICE_KEY, DEVICE_PUB, MAX_KEY_BYTES, DeviceKeyError, keygen, load_device_key
from compiler.bundle.report import openssh_public_key


def _pem(key: object, encryption: serialization.KeySerializationEncryption | None = None) -> bytes:
    return key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption or serialization.NoEncryption()
    )


def _key_file(tmp_path: Path, data: bytes, mode: int = 0o600) -> Path:
    path = tmp_path / DEVICE_KEY
    path.write_bytes(data)
    path.chmod(mode)
    return path


def test_keygen_writes_a_private_0600_key_and_its_public_line(tmp_path: Path) -> None:
    state = tmp_path / "var" / "lib" / "takt"  # parents made as needed
    line = keygen(state)
    assert (state / DEVICE_KEY).stat().st_mode & 0o777 == 0o600
    assert (state / DEVICE_PUB).stat().st_mode & 0o777 == 0o644
    assert (state / DEVICE_PUB).read_text() == line + "\n"
    assert line.startswith("ssh-ed25519 ")
    assert openssh_public_key(load_device_key(state / DEVICE_KEY).public_key()) == line


def test_keygen_refuses_to_replace_a_key_unless_forced(tmp_path: Path) -> None:
    first = keygen(tmp_path)
    with pytest.raises(DeviceKeyError, match="exists; --force"):
        keygen(tmp_path)
    assert (tmp_path / DEVICE_PUB).read_text() == first + "\n"
    second = keygen(tmp_path, force=True)
    assert second != first
    assert openssh_public_key(load_device_key(tmp_path / DEVICE_KEY).public_key()) == second


@pytest.mark.parametrize("mode", [0o601, 0o602, 0o604, 0o610, 0o620, 0o640, 0o644])
def test_a_key_any_group_or_other_bit_set_is_refused(tmp_path: Path, mode: int) -> None:
    path = _key_file(tmp_path, _pem(Ed25519PrivateKey.generate()), mode)
    with pytest.raises(DeviceKeyError, match="readable by others"):
        load_device_key(path)


@pytest.mark.parametrize("mode", [0o400, 0o600, 0o700])
def test_owner_bits_alone_are_accepted(tmp_path: Path, mode: int) -> None:
    key = Ed25519PrivateKey.generate()
    path = _key_file(tmp_path, _pem(key), mode)
    assert load_device_key(path).public_key().public_bytes_raw() == key.public_key().public_bytes_raw()


def test_a_missing_key_says_keygen_makes_it(tmp_path: Path) -> None:
    with pytest.raises(DeviceKeyError, match=r"cannot read the device key .*takt agent keygen makes it"):
        load_device_key(tmp_path / DEVICE_KEY)


def test_the_size_bound_is_exact(tmp_path: Path) -> None:
    """A key padded with blank lines to exactly 4096 bytes loads; one byte more is refused by size. (Literal
    numbers: the bound is the contract, a test computing it from the constant would follow a moved one.)"""
    assert MAX_KEY_BYTES == 4096
    key = Ed25519PrivateKey.generate()
    pem = _pem(key)
    path = _key_file(tmp_path, pem + b"\n" * (4096 - len(pem)))
    assert load_device_key(path).public_key().public_bytes_raw() == key.public_key().public_bytes_raw()
    path.write_bytes(pem + b"\n" * (4097 - len(pem)))
    with pytest.raises(DeviceKeyError, match="larger than 4096 bytes"):
        load_device_key(path)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"not a key\n", "is not an unencrypted PEM private key"),  # ValueError from the loader
        (None, "is not an unencrypted PEM private key"),  # an encrypted key: TypeError (no password given)
        (b"", "is not an unencrypted PEM private key"),
    ],
)
def test_what_is_not_a_pem_private_key_is_refused(tmp_path: Path, data: bytes | None, why: str) -> None:
    if data is None:
        data = _pem(Ed25519PrivateKey.generate(), serialization.BestAvailableEncryption(b"pw"))
    with pytest.raises(DeviceKeyError, match=why):
        load_device_key(_key_file(tmp_path, data))


def test_a_key_of_another_kind_is_refused(tmp_path: Path) -> None:
    path = _key_file(tmp_path, _pem(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(DeviceKeyError, match="is not an ed25519 key"):
        load_device_key(path)
