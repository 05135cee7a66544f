"""Diagnostics: the product a pull-request author reads.

Every stage returns diagnostics as values; only the CLI turns them into output and exit codes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace


class Severity(enum.IntEnum):
    """Ordered so that `max()` over diagnostics gives the worst one."""

    INFO = 1
    WARNING = 2
    ERROR = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        return cls[text.upper()]


@dataclass(frozen=True, order=True)
class Location:
    """1-based line and column of the node at fault; end is exclusive and may equal start."""

    file: str
    line: int = 0
    column: int = 0
    end_line: int = 0
    end_column: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Diagnostic:
    code: str
    severity: Severity
    message: str
    location: Location
    hint: str = ""
    path: str = ""  # dotted path inside the document, e.g. spec.fields[2].address
    related: tuple[Location, ...] = field(default=())

    def sort_key(self) -> tuple[str, int, int, str, str]:
        loc = self.location
        return (loc.file, loc.line, loc.column, self.code, self.message)

    def with_severity(self, severity: Severity) -> Diagnostic:
        return replace(self, severity=severity)


def sort_diagnostics(diags: list[Diagnostic]) -> list[Diagnostic]:
    """Reading errors first (one mistake, one message), then (file, line, column, code); no exact duplicates."""
    seen: set[tuple[object, ...]] = set()
    out: list[Diagnostic] = []
    for d in sorted(diags, key=lambda d: (not d.code.startswith("TAKT0"), d.sort_key())):
        key = (d.sort_key(), d.severity, d.path)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def worst(diags: list[Diagnostic]) -> Severity | None:
    return max((d.severity for d in diags), default=None)
