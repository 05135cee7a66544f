"""A target class's profile as a typed model with defaults: the class declares it, a Target's
`spec.profile` overrides its fields, validate reports what does not fit it (TAKT4035) and the
renderer reads it as attributes (no string keys across files)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel


class TargetProfile(BaseModel):
    """Base of every class's profile: camelCase keys like the specs, unknown keys refused, immutable."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
        frozen=True,
        use_attribute_docstrings=True,
    )


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
