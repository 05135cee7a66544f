"""Human output: location, severity, code, message, the source line with a caret, the hint."""

from __future__ import annotations

from rich.text import Text

from compiler.diagnostics import Diagnostic, Severity
from compiler.loader.source import SourceText

STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "bold yellow", Severity.INFO: "bold cyan"}
REDACTED = {"TAKT1010"}  # a line holding a secret is never echoed into CI logs, whatever else is found on it


def _excerpt(d: Diagnostic, source: SourceText | None, secret_lines: set[tuple[str, int]]) -> Text | None:
    loc = d.location
    if source is None or loc.line <= 0 or (loc.file, loc.line) in secret_lines:
        return None
    line = source.line(loc.line).replace("\t", " ")
    if len(line) > 200:
        line = line[:200] + "…"
    start = max(loc.column, 1)
    end = loc.end_column if loc.end_line == loc.line and loc.end_column > start else len(line) + 1
    width = max(1, min(end, len(line) + 1) - start)
    gutter = f"{loc.line:>5} | "
    text = Text(gutter, style="dim")
    text.append(line + "\n")
    text.append(" " * (len(gutter) - 2) + "| ", style="dim")
    text.append(" " * (start - 1) + "^" * width, style=STYLE[d.severity])
    return text


def render_text(diags: list[Diagnostic], sources: dict[str, SourceText], summary: str) -> Text:
    out = Text()
    secret_lines = {(d.location.file, d.location.line) for d in diags if d.code in REDACTED}
    for d in diags:
        out.append(f"{d.location}: ", style="bold")
        out.append(d.severity.label, style=STYLE[d.severity])
        out.append(f" {d.code} ", style="dim")
        out.append(d.message)
        if d.path:
            out.append(f"  [{d.path}]", style="dim")
        out.append("\n")
        excerpt = _excerpt(d, sources.get(d.location.file), secret_lines)
        if excerpt is not None:
            out.append_text(excerpt)
            out.append("\n")
        if d.hint:
            out.append("  hint: ", style="green")
            out.append(d.hint + "\n")
        for rel in d.related:
            out.append(f"  see: {rel}\n", style="dim")
        out.append("\n")
    out.append(summary)
    return out
