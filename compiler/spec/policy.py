"""`Policy`: an organisation's own rule, as a cerberus schema over matching documents."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from compiler.spec.types import LabelSelector, Metadata, SpecModel

KIND_NAMES = ("DataSource", "Model", "TestSuite", "Target", "Device", "Deployment", "Policy")


class AppliesTo(SpecModel):
    kinds: list[Literal["DataSource", "Model", "TestSuite", "Target", "Device", "Deployment", "Policy"]] = Field(
        min_length=1
    )
    selector: LabelSelector | None = None


class PolicySpec(SpecModel):
    rule_id: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_-]{1,31}$")]
    """The id users see and silence, e.g. ACME001 (TAKT… is reserved)."""
    severity: Literal["error", "warning", "info"] = "error"
    message: str = Field(min_length=1)
    applies_to: AppliesTo
    rules: dict[str, Any] = Field(alias="schema", min_length=1)
    """A cerberus schema over the whole document (apiVersion, kind, metadata, spec); unknown keys pass."""


class Policy(SpecModel):
    api_version: Literal["takt/v1"]
    kind: Literal["Policy"]
    metadata: Metadata
    spec: PolicySpec
