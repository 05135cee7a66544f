"""Read a file as UTF-8 text under a size limit, or explain precisely why not."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from compiler.diagnostics import Diagnostic, Location, Severity

DEFAULT_MAX_FILE_BYTES = 1 << 20  # 1 MiB: far above any hand-written spec, far below harm

_IGNORE_RE = re.compile(r"#\s*takt:\s*ignore\[([A-Za-z0-9_,\s-]+)\]")


@dataclass(frozen=True)
class SourceText:
    path: Path
    display: str  # the path users see in diagnostics (relative to the project root)
    text: str

    def line(self, number: int) -> str:
        """The 1-based source line, for carets in text output."""
        lines = self.text.splitlines()
        return lines[number - 1] if 0 < number <= len(lines) else ""


def _diag(code: str, message: str, display: str, line: int = 0, col: int = 0, hint: str = "") -> Diagnostic:
    loc = Location(display, line, col, line, col + 1 if line else 0)
    return Diagnostic(code, Severity.ERROR, message, loc, hint)


def read_source(path: Path, display: str, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> SourceText | Diagnostic:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            return _diag("TAKT0005", f"file is {size:,} bytes, over the limit of {max_bytes:,} bytes", display)
        with path.open("rb") as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as exc:
        return _diag("TAKT0009", f"cannot read file: {exc.strerror or exc}", display)
    if len(raw) > max_bytes:  # grew while we looked, or a device/pipe
        return _diag("TAKT0005", f"file is over the limit of {max_bytes:,} bytes", display)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = len(before) - (before.rfind(b"\n") + 1) + 1
        return _diag(
            "TAKT0004",
            f"invalid UTF-8 byte 0x{raw[exc.start]:02x} at byte offset {exc.start}",
            display,
            line,
            col,
            "Save the file as UTF-8 (not Latin-1, UTF-16 or Windows-1252).",
        )
    if text.startswith("\ufeff"):
        text = text[1:]
    return SourceText(path, display, text)


def inline_ignores(text: str) -> dict[int, frozenset[str]]:
    """`# takt: ignore[TAKT1234, TAKT2002]` comments, by 1-based line.

    Found by a regex over the text: the fast C composer drops comments, and only the
    line matters here.
    """
    out: dict[int, frozenset[str]] = {}
    if "takt:" not in text:
        return out
    for number, line in enumerate(text.splitlines(), start=1):
        m = _IGNORE_RE.search(line)
        if m:
            out[number] = frozenset(c.strip().upper() for c in m.group(1).split(",") if c.strip())
    return out
