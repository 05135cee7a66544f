"""`Device`: one machine of the fleet; Deployments select devices by labels."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, JsonValue

from compiler.bundle.deviceid import DEVICE_ID_MAX, DEVICE_ID_PATTERN, device_id_problem
from compiler.spec.types import Metadata, Name, SpecModel, _err, _not_allowed

MAX_PUBLIC_KEY_CHARS = 4096  # a PEM ed25519 key is 113 characters, the OpenSSH line ~100


_ID_SCHEMA: dict[str, JsonValue] = {"pattern": DEVICE_ID_PATTERN, "maxLength": DEVICE_ID_MAX}


def _device_id(value: str) -> str:
    """One check, one message in words (the schema shows the pattern); a ref component also refuses `..`, `.lock`."""
    problem = device_id_problem(value)
    if problem is not None:
        raise _not_allowed("id {value!r}: {problem}", value=value, problem=problem)
    return value


def _public_key(value: str) -> str:
    """The device's report key must load now, in the pull request, not when its first report is refused."""
    if len(value) > MAX_PUBLIC_KEY_CHARS:
        raise _err("TAKT1013", "publicKey is {n:,} characters; an ed25519 public key is about 100", n=len(value))
    # here, not at import: only a Device with a key loads cryptography (a validation from the cache, none)
    from compiler.bundle.report import load_device_public_key

    try:
        load_device_public_key(value)
    except ValueError as exc:
        raise _err("TAKT1013", "publicKey is {why}", why=str(exc)) from None
    return value


class DeviceSpec(SpecModel):
    target: Name
    id: Annotated[str, Field(json_schema_extra=_ID_SCHEMA), AfterValidator(_device_id)] | None = None
    """Device id used on the deploy branch (devices/<id>/); defaults to metadata.name."""
    hostname: str | None = None
    public_key: Annotated[str, AfterValidator(_public_key)] | None = None
    """The device's ed25519 report key: the OpenSSH line `takt agent keygen` prints, or PEM.
    Status reports from this device are believed only when this key signed them."""


class Device(SpecModel):
    api_version: Literal["takt/v1"]
    kind: Literal["Device"]
    metadata: Metadata
    spec: DeviceSpec

    @property
    def device_id(self) -> str:
        return self.spec.id or self.metadata.name
