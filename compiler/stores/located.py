"""What resolving a DVC- or MLflow-held file gives: the local file and its lineage, or a typed refusal."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_ENTRIES = 200  # params or metrics carried into a bundle: a hostile server cannot flood the lineage
MAX_TEXT = 500
STORE_CODES = ("TAKT5024", "TAKT5025", "TAKT5026", "TAKT5027", "TAKT5028")
"""The codes a `Refused` carries; the model stage has one check per code (compiler/validate/models.py)."""


@dataclass(frozen=True)
class Located:
    """A file read where it lives; `lineage` goes into the bundle's provenance as is (JSON values)."""

    path: Path
    lineage: dict[str, Any] = field(default_factory=dict)


class Refused(Exception):
    """Why a DVC- or MLflow-held file cannot be used: the diagnostic code, its message, and which key of
    the spec entry it is located at (`path`, `uri` or `sha256`)."""

    def __init__(self, code: str, message: str, at: str) -> None:
        super().__init__(message)
        self.code, self.message, self.at = code, message, at


def missing_extra(what: str, extra: str, at: str) -> Refused:
    return Refused("TAKT5024", f"{what} needs the optional extra {extra!r}: pip install 'takt[{extra}]'", at)


def bounded(mapping: Any) -> dict[str, Any]:
    """At most MAX_ENTRIES string keys with short string or number values, sorted."""
    out: dict[str, Any] = {}
    if not isinstance(mapping, dict):
        return out
    for key in sorted(mapping, key=str)[:MAX_ENTRIES]:
        value = mapping[key]
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            value = str(value)[:MAX_TEXT]
        out[str(key)[:MAX_TEXT]] = value
    return out
