"""A loaded spec document, and the one way stages turn findings into located diagnostics."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from compiler.codes import rule
from compiler.diagnostics import Diagnostic, Location
from compiler.loader.yamldoc import Path_, YamlDocument
from compiler.spec.types import SpecModel


@dataclass
class SpecDocument:
    yaml: YamlDocument
    file_path: Path  # absolute, to resolve relative artifact/dataset paths
    kind: str
    name: str | None  # from the raw data, so references to a broken document don't cascade
    model: SpecModel | None = None  # None when the structure stage refused it

    @property
    def data(self) -> Any:
        return self.yaml.data

    @property
    def labels(self) -> dict[str, str]:
        meta = self.data.get("metadata") if isinstance(self.data, dict) else None
        labels = meta.get("labels") if isinstance(meta, dict) else None
        return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}

    def locate(self, path: Path_, *, key: bool = False) -> Location:
        return self.yaml.locate(path, key=key)

    def diag(
        self,
        code: str,
        message: str,
        path: Path_ = (),
        *,
        hint: str = "",
        key: bool = False,
        related: Sequence[Location] = (),
    ) -> Diagnostic:
        """The severity is the rule table's (compiler/codes.py), never the caller's."""
        return Diagnostic(
            code=code,
            severity=rule(code).severity,
            message=message,
            location=self.locate(path, key=key),
            hint=hint,
            path=dotted(path),
            related=tuple(related),
        )

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name} at {self.yaml.file}>"


M = TypeVar("M", bound=SpecModel, covariant=True)


class Named(SpecDocument, Generic[M]):
    """How the index hands out a document of one kind: named (the index keys it by name), and its
    model, if the structure stage accepted it, of that kind's class. A view for the type checker:
    the objects are the index's SpecDocuments, whose kind and name the index guarantees."""

    name: str
    model: M | None


class Valid(Named[M]):
    """A document of one kind that passed the structure stage: its model is that kind's class."""

    model: M


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A hint naming the closest choice, or listing the choices when there are few."""
    options = sorted({c for c in choices if c})
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    if 0 < len(options) <= 8:
        return "expected one of: " + ", ".join(repr(o) for o in options)
    return ""
