"""`takt.yaml`: the project file at the spec repo's root."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from compiler.loader.source import DEFAULT_MAX_FILE_BYTES
from compiler.spec.types import Metadata, SecretRef, SpecModel

PROJECT_FILE = "takt.yaml"
DEFAULT_SPECS = ("**/*.yaml", "**/*.yml")


class DeployRepo(SpecModel):
    repo: str
    """URL or path of the deploy repository."""
    branch: str = "deploy"


class Signing(SpecModel):
    key_ref: SecretRef
    """Where CI finds the ed25519 private key (env: or file:)."""
    public_keys: list[str] = []


class Limits(SpecModel):
    max_file_bytes: int = Field(default=DEFAULT_MAX_FILE_BYTES, ge=1024, le=64 << 20)


class ProjectSpec(SpecModel):
    specs: list[str] = Field(default=list(DEFAULT_SPECS), min_length=1)
    """Globs, relative to the project root, of the spec files."""
    exclude: list[str] = []
    ignore: list[str] = []
    """Diagnostic codes silenced for the whole project."""
    deploy: DeployRepo | None = None
    signing: Signing | None = None
    limits: Limits = Limits()


class Project(SpecModel):
    api_version: Literal["takt/v1"]
    kind: Literal["Project"]
    metadata: Metadata
    spec: ProjectSpec = ProjectSpec()
