"""A target class's profile as a typed model with defaults: the class declares it, a Target's
`spec.profile` overrides its fields, validate reports what does not fit it (TAKT4035) and the
renderer reads it as attributes (no string keys across files)."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, ValidationError

from compiler.spec.types import SpecModel


class TargetProfile(SpecModel):
    """Base of every class's profile: the spec objects' model config (camelCase keys, unknown keys
    refused, immutable, no inf or nan), since a profile is written in a Target spec."""


class OpenProfile(TargetProfile):
    """The profile of a class that declares none: any keys, read with `get` (a third-party class's
    own model is better: it is checked at validate time)."""

    model_config = ConfigDict(extra="allow")

    def get(self, key: str, default: Any = None) -> Any:
        return (self.model_extra or {}).get(key, default)


class ProfileError(ValueError):
    """A Target's profile does not fit its class's model; `problems` are (dotted path under `profile`, message)."""

    def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]) -> None:
        self.problems = problems
        super().__init__(
            "; ".join(f"profile.{'.'.join(str(p) for p in path)}: {message}" for path, message in problems)
        )


def parse_profile(model: type[TargetProfile], data: dict[str, Any]) -> TargetProfile:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(
            [(tuple(e["loc"]), e["msg"].replace("Input should be", "expected")) for e in exc.errors()]
        ) from exc
