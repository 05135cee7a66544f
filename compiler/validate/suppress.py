"""Silencing findings at three levels, like cfn-lint: command line, takt.yaml, inline."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from compiler.diagnostics import Diagnostic
from compiler.validate.document import SpecDocument

IGNORE_ANNOTATION = "takt.dev/ignore"


def _codes(text: str) -> frozenset[str]:
    return frozenset(c.strip().upper() for c in text.replace(";", ",").split(",") if c.strip())


@dataclass
class Suppressions:
    global_codes: frozenset[str] = frozenset()  # CLI and takt.yaml; `TAKT20*` globs allowed
    inline: dict[str, dict[int, frozenset[str]]] = field(default_factory=dict)  # file → line → codes
    documents: list[tuple[str, int, int, frozenset[str]]] = field(default_factory=list)  # file, first, last line

    def add_document(self, doc: SpecDocument) -> None:
        meta = doc.data.get("metadata") if isinstance(doc.data, dict) else None
        ann = meta.get("annotations") if isinstance(meta, dict) else None
        value = ann.get(IGNORE_ANNOTATION) if isinstance(ann, dict) else None
        if isinstance(value, str):
            span = doc.yaml.span
            self.documents.append((doc.yaml.file, span.line, span.end_line, _codes(value)))

    def silences(self, d: Diagnostic) -> bool:
        code = d.code.upper()
        if any(fnmatch.fnmatchcase(code, pattern) for pattern in self.global_codes):
            return True
        loc = d.location
        if code in self.inline.get(loc.file, {}).get(loc.line, ()):
            return True
        return any(f == loc.file and lo <= loc.line <= hi and code in codes for f, lo, hi, codes in self.documents)

    def apply(self, diags: list[Diagnostic]) -> tuple[list[Diagnostic], int]:
        """The findings that stay, and how many were silenced."""
        kept = [d for d in diags if not self.silences(d)]
        return kept, len(diags) - len(kept)
