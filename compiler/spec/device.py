"""`Device`: one machine of the fleet; Deployments select devices by labels."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from compiler.spec.types import Metadata, Name, SpecModel

DEVICE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


class DeviceSpec(SpecModel):
    target: Name
    id: Annotated[str, Field(pattern=DEVICE_ID_PATTERN)] | None = None
    """Device id used on the deploy branch (devices/<id>/); defaults to metadata.name."""
    hostname: str | None = None


class Device(SpecModel):
    api_version: Literal["takt/v1"]
    kind: Literal["Device"]
    metadata: Metadata
    spec: DeviceSpec

    @property
    def device_id(self) -> str:
        return self.spec.id or self.metadata.name
