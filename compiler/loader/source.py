"""Read a file as UTF-8 text under a size limit, or explain precisely why not."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from compiler.bundle.tree import TooLarge, TreeError, read_regular, resolve_inside
from compiler.codes import located
from compiler.diagnostics import Diagnostic, Location

DEFAULT_MAX_FILE_BYTES = 1 << 20  # 1 MiB: far above any hand-written spec, far below harm

_IGNORE_RE = re.compile(r"#\s*takt:\s*ignore\[([A-Za-z0-9_,\s-]+)\]")


@dataclass(frozen=True)
class SourceText:
    path: Path
    display: str  # the path users see in diagnostics (relative to the project root)
    text: str

    @functools.cached_property
    def lines(self) -> list[str]:
        """Split once: a report with thousands of findings in one file must stay linear."""
        return self.text.splitlines()

    def line(self, number: int) -> str:
        """The 1-based source line, for carets in text output."""
        return self.lines[number - 1] if 0 < number <= len(self.lines) else ""


def _diag(code: str, message: str, display: str, line: int = 0, col: int = 0, hint: str = "") -> Diagnostic:
    loc = Location(display, line, col, line, col + 1 if line else 0)
    return located(code, message, loc, hint)


def read_source(
    path: Path, display: str, max_bytes: int = DEFAULT_MAX_FILE_BYTES, root: Path | None = None
) -> SourceText | Diagnostic:
    """The file's text; inside `root` when given (a link leaving it, a device or a FIFO is refused)."""
    try:
        real = resolve_inside(root, path) if root is not None else path
        raw = read_regular(real, max_bytes, display)
    except TooLarge as exc:
        return _diag("TAKT0005", f"file {exc.reason}", display)
    except TreeError as exc:
        return _diag("TAKT0011", f"spec file {exc.reason}", display, hint="commit the file itself, not a link to it")
    except OSError as exc:
        return _diag("TAKT0009", f"cannot read file: {exc.strerror or exc}", display)
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
