"""Value types shared by every kind, each with its own error code and JSON Schema.

Validators raise `PydanticCustomError` whose type is the diagnostic code, so the
structure stage reports them with a stable id and no string matching.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from compiler.bundle.dtypes import DType as DType  # the spec models name it from here


class SpecModel(BaseModel):
    """Base of every spec object: camelCase keys, unknown keys refused, immutable."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
        frozen=True,
        # the docstrings under fields are their descriptions, put in only for schemas (compiler/spec/docs.py)
        use_attribute_docstrings=False,
        # a model's validator and serializer are built when it is first used, not at import: a validation
        # from the document cache unpickles the kinds' models and validates only a few (the project file)
        defer_build=True,
        allow_inf_nan=False,  # .inf or .nan in a spec is always a mistake, and breaks every renderer
    )


def _err(code: str, message: str, **ctx: Any) -> PydanticCustomError:
    """An error whose type is the diagnostic code; the message is formatted here, without context,
    so braces in user values are never read as placeholders."""
    return PydanticCustomError(code, message.format(**ctx), None)


YAML_TYPE_ERROR = "yaml_type"
"""The error type of a value YAML read as another type than the field's (a boolean or text for a number)."""


def _wrong_type(message: str, **ctx: Any) -> PydanticCustomError:
    """A type error whose message already says what YAML read: the structure stage's one TAKT1005 check
    (compiler/validate/structure.py `wrong_type`) reports it as is."""
    return PydanticCustomError(YAML_TYPE_ERROR, message.format(**ctx), None)


NOT_ALLOWED_ERROR = "not_allowed"
"""The error type of a value of the right type that the field does not allow, said in the validator's words."""


def _not_allowed(message: str, **ctx: Any) -> PydanticCustomError:
    """What the structure stage's one TAKT1007 check (`value_not_allowed`) reports as is."""
    return PydanticCustomError(NOT_ALLOWED_ERROR, message.format(**ctx), None)


def _invalid(message: str, **ctx: Any) -> PydanticCustomError:
    """A value a validator refuses without a code of its own: a value error, which the structure stage's
    one TAKT1012 check (compiler/validate/structure.py `invalid_value`) reports at the value."""
    return PydanticCustomError("value_error", message.format(**ctx), None)


# --- names -------------------------------------------------------------------------------

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_NAME_RE = re.compile(NAME_PATTERN)


def _check_name(value: str) -> str:
    if len(value) > 63 or not _NAME_RE.match(value):
        raise _err(
            "TAKT1006",
            "invalid name {value!r}: use lower-case letters, digits and '-', start and end "
            "with a letter or digit, at most 63 characters",
            value=value[:80],
        )
    return value


Name = Annotated[
    str,
    AfterValidator(_check_name),
    WithJsonSchema({"type": "string", "pattern": NAME_PATTERN, "maxLength": 63}),
]

IDENT_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.:/-]{0,127}$"
_IDENT_RE = re.compile(IDENT_PATTERN)


def _check_ident(value: str) -> str:
    if not _IDENT_RE.match(value):
        raise _invalid(
            "invalid identifier {value!r}: start with a letter or '_', then letters, digits, "
            "'_', '.', ':', '/' or '-' (at most 128 characters)",
            value=value[:80],
        )
    return value


Identifier = Annotated[str, AfterValidator(_check_ident), WithJsonSchema({"type": "string", "pattern": IDENT_PATTERN})]
"""Names of fields, tensors, tests and datasets: also used in generated code, so kept plain."""

_LABEL_KEY_RE = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def _check_labels(value: dict[str, str]) -> dict[str, str]:
    for key, val in value.items():
        if not _LABEL_KEY_RE.match(key) or len(key) > 253:
            raise _invalid(
                "invalid label key {key!r}: use [prefix/]name with letters, digits, '-', '_', '.'",
                key=key[:80],
            )
        if not _LABEL_VALUE_RE.match(val):
            raise _invalid(
                "invalid label value {val!r} for {key!r}: at most 63 letters, digits, '-', '_', '.'",
                key=key[:80],
                val=val[:80],
            )
    return value


Labels = Annotated[dict[str, str], AfterValidator(_check_labels)]

# --- versions ------------------------------------------------------------------------------

VERSION_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$"
_VERSION_RE = re.compile(VERSION_PATTERN)


def _check_version(value: Any) -> Any:
    if isinstance(value, float):
        raise _err(
            "TAKT1009",
            "version {value!r} was read as a number by YAML (1.20 becomes 1.2): quote it",
            value=value,
        )
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and not _VERSION_RE.match(value):
        raise _err("TAKT1009", 'invalid version {value!r}: use e.g. "1.20" or "2.3.0"', value=value[:80])
    return value


Version = Annotated[
    str, BeforeValidator(_check_version), WithJsonSchema({"type": "string", "pattern": VERSION_PATTERN})
]


def version_tuple(version: str) -> tuple[int, ...]:
    """Leading numeric components: '1.20.1' → (1, 20, 1); used to compare runtime versions."""
    parts: list[int] = []
    for piece in re.split(r"[.+_-]", version):
        if not piece.isdigit():
            break
        parts.append(int(piece))
    return tuple(parts)


# --- numbers ---------------------------------------------------------------------------------
# A number in a spec is a YAML 1.2 number: 100, -3, 0x10 (hex, as register maps print them), 0o17,
# 1.5, 1e3. `true` is a boolean and '100' is text: pydantic would convert both silently, the JSON
# Schema of the editors refuses them, and so does takt. A whole-number field takes 10.0 as 10 (JSON
# Schema counts it an integer too) but not 10.5.


def yaml_number(value: Any) -> Any:
    """Refuse booleans and text where a number belongs, naming what YAML read."""
    if isinstance(value, bool):
        raise _wrong_type(
            "expected a number, got the boolean {value}: YAML reads true/false as booleans, not 1/0",
            value=str(value).lower(),
        )
    if isinstance(value, str):
        raise _wrong_type("expected a number, got the text {value!r}: write numbers unquoted", value=value[:40])
    return value


def _whole_number(value: Any) -> Any:
    value = yaml_number(value)
    if isinstance(value, float) and not value.is_integer():
        raise _wrong_type("expected a whole number, got {value}", value=repr(value))
    return value


Integer = Annotated[int, BeforeValidator(_whole_number)]
"""A whole YAML number (10.0 is 10); never a boolean or quoted text."""
Number = Annotated[float, BeforeValidator(yaml_number)]
"""A YAML number; never a boolean or quoted text."""

# --- quantities and durations -----------------------------------------------------------------

_BYTES_UNITS = {
    "": 1,
    "k": 10**3,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
MAX_BYTES = 2**60  # 1 EiB: no device, model or dataset comes near
BYTES_PATTERN = r"^[0-9]+(\.[0-9]+)?(k|K|M|G|T|Ki|Mi|Gi|Ti)?$"
_BYTES_RE = re.compile(BYTES_PATTERN)


def _parse_bytes(value: Any) -> Any:
    if isinstance(value, bool):
        return value  # let the int check fail with a type error
    if isinstance(value, int):
        return value
    if isinstance(value, float) and not (math.isfinite(value) and 0 <= value <= MAX_BYTES):
        raise _err("TAKT1009", "byte quantity {value!r} is out of range (0 to 1Ei)", value=str(value)[:40])
    if isinstance(value, str):
        m = _BYTES_RE.match(value.strip())
        if not m:
            raise _err("TAKT1009", "invalid byte quantity {value!r}: use e.g. 512Mi, 4Gi or 1048576", value=value[:80])
        number = value.strip()[: m.start(2)] if m.group(2) else value.strip()
        return int(float(number) * _BYTES_UNITS[m.group(2) or ""])
    return value


Bytes = Annotated[
    int,
    BeforeValidator(_parse_bytes),
    Field(ge=0, le=MAX_BYTES),
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": BYTES_PATTERN}]}),
]
"""A byte size as an integer or a Kubernetes-style quantity (512Mi, 4Gi, 1G)."""

CPU_PATTERN = r"^[0-9]+(\.[0-9]+)?m?$"
_CPU_RE = re.compile(CPU_PATTERN)


def _parse_cpu(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if not _CPU_RE.match(text):
            raise _err(
                "TAKT1009", "invalid CPU quantity {value!r}: use cores (0.5, 2) or millicores (500m)", value=value[:80]
            )
        return float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    return value


Cpu = Annotated[
    float,
    BeforeValidator(_parse_cpu),
    Field(gt=0, le=4096, allow_inf_nan=False),
    WithJsonSchema({"anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string", "pattern": CPU_PATTERN}]}),
]

_DURATION_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
DURATION_PATTERN = r"^[0-9]+(\.[0-9]+)?(us|µs|ms|s|m|h)$"
_DURATION_RE = re.compile(DURATION_PATTERN)


def _parse_duration(value: Any) -> Any:
    if isinstance(value, str):
        m = _DURATION_RE.match(value.strip())
        if not m:
            raise _err(
                "TAKT1009",
                "invalid duration {value!r}: use a number with a unit: 250us, 100ms, 5s, 2m, 1h",
                value=value[:80],
            )
        return float(value.strip()[: m.start(2)]) * _DURATION_UNITS[m.group(2)]
    return value


Duration = Annotated[
    float,
    BeforeValidator(_parse_duration),
    Field(gt=0, le=366 * 86400, allow_inf_nan=False),
    WithJsonSchema(
        {"anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string", "pattern": DURATION_PATTERN}]}
    ),
]
"""Seconds, as a number or with a unit (100ms, 5s)."""

# --- digests, secrets ------------------------------------------------------------------------

SHA256_PATTERN = r"^[0-9a-f]{64}$"
_SHA_RE = re.compile(SHA256_PATTERN)


def _check_sha256(value: str) -> str:
    if not _SHA_RE.match(value):
        raise _invalid("invalid sha256 {value!r}: 64 lower-case hex digits", value=value[:80])
    return value


Sha256 = Annotated[str, AfterValidator(_check_sha256), WithJsonSchema({"type": "string", "pattern": SHA256_PATTERN})]

SECRET_SCHEMES = ("env", "file", "vault", "k8s", "aws-sm", "azure-kv", "gcp-sm")
SECRET_REF_PATTERN = r"^(" + "|".join(SECRET_SCHEMES) + r"):[^\s]+$"
_SECRET_REF_RE = re.compile(SECRET_REF_PATTERN)


def _check_secret_ref(value: str) -> str:
    if not _SECRET_REF_RE.match(value):
        raise _err(  # the value is never echoed: a literal where a reference belongs is most likely the secret
            "TAKT1011",
            "invalid secret reference (value not shown): use <scheme>:<path> with scheme " + ", ".join(SECRET_SCHEMES),
        )
    return value


SecretRef = Annotated[
    str, AfterValidator(_check_secret_ref), WithJsonSchema({"type": "string", "pattern": SECRET_REF_PATTERN})
]
"""Where a secret lives (`vault:plant/press3#password`, `env:OPCUA_PASSWORD`), never the secret."""

# DType, the tensor and field dtypes, is the device contract's list (compiler/bundle/dtypes.py).


def relative_path_check(value: str) -> str:
    """Paths in specs are relative to the project root and stay inside it: no `..`, no NUL."""
    if not value or "\x00" in value or value.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", value):
        raise _invalid("path {value!r} must be relative to the project root", value=value[:80])
    if ".." in re.split(r"[/\\]", value):
        raise _invalid("path {value!r} must not leave the spec repo ('..')", value=value[:80])
    return value


RelativePath = Annotated[str, AfterValidator(relative_path_check)]


class LabelRequirement(SpecModel):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = []


class LabelSelector(SpecModel):
    """Kubernetes label-selector semantics: every condition must hold."""

    match_labels: dict[str, str] = {}
    match_expressions: list[LabelRequirement] = []

    def matches(self, labels: dict[str, str]) -> bool:
        if any(labels.get(k) != v for k, v in self.match_labels.items()):
            return False
        for req in self.match_expressions:
            present = req.key in labels
            if req.operator == "Exists" and not present:
                return False
            if req.operator == "DoesNotExist" and present:
                return False
            if req.operator == "In" and labels.get(req.key) not in req.values:
                return False
            if req.operator == "NotIn" and present and labels[req.key] in req.values:
                return False
        return True


class Metadata(SpecModel):
    name: Name
    labels: Labels = {}
    annotations: dict[str, str] = {}
    description: str | None = None
