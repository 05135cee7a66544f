"""`takt pin`: write the sha256 of every pinned model and dataset back into its spec, in place.

TAKT5002 says a file no longer matches its declared digest; when the new file is intended,
re-pinning by hand (sha256sum, copy, paste into the right quotes) is error-prone. Only the 64
hex digits of each stale digest change: comments, quoting, order and every other byte of the
file stay as they are. Files are read and written only inside the project.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from compiler.bundle.atomic import write_atomic
from compiler.bundle.tree import TreeError, regular_inside
from compiler.loader.yamldoc import Path_
from compiler.models.digest import sha256_file
from compiler.validate.document import SpecDocument
from compiler.validate.pipeline import ValidationResult


@dataclass(frozen=True)
class Pin:
    file: str  # as users see it
    line: int
    column: int
    what: str  # "model artifact models/x.onnx"
    old: str
    new: str


@dataclass(frozen=True)
class PinProblem:
    file: str
    line: int
    message: str


def stale_pins(result: ValidationResult) -> tuple[list[Pin], list[PinProblem]]:
    """Every declared sha256 of a local model or dataset that differs from the file's own."""
    pins: list[Pin] = []
    problems: list[PinProblem] = []
    wanted: list[tuple[SpecDocument, str, str, Path_, str]] = []
    for doc in result.index.valid("Model"):
        art = doc.model.spec.artifact
        if art.path is not None:
            wanted.append((doc, art.path, art.sha256, ("spec", "artifact", "sha256"), "model artifact"))
    for doc in result.index.valid("TestSuite"):
        for name, ds in doc.model.spec.datasets.items():
            if ds.sha256 is not None:
                wanted.append((doc, ds.path, ds.sha256, ("spec", "datasets", name, "sha256"), "dataset"))
    for doc, rel, declared, at, what in wanted:
        loc = doc.locate(at)
        try:
            actual = sha256_file(regular_inside(result.root, rel))
        except (TreeError, OSError) as exc:
            problems.append(PinProblem(loc.file, loc.line, f"cannot read {what} {rel!r}: {exc}"))
            continue
        if actual != declared:
            pins.append(Pin(loc.file, loc.line, loc.column, f"{what} {rel}", declared, actual))
    return pins, problems


def apply_pins(result: ValidationResult, pins: list[Pin]) -> list[PinProblem]:
    """Rewrite each file once, atomically, with its mode kept; a digest not where expected is a problem."""
    problems: list[PinProblem] = []
    by_file: dict[str, list[Pin]] = {}
    for pin in pins:
        by_file.setdefault(pin.file, []).append(pin)
    for display, file_pins in sorted(by_file.items()):
        source = result.sources[display]
        lines = source.text.splitlines(keepends=True)
        for pin in file_pins:
            text = lines[pin.line - 1]
            at = text.find(pin.old, max(pin.column - 2, 0))
            if at < 0:
                problems.append(PinProblem(display, pin.line, f"the digest of the {pin.what} is not where expected"))
                continue
            lines[pin.line - 1] = text[:at] + pin.new + text[at + len(pin.old) :]
        try:
            real = regular_inside(result.root, source.path)
            mode = os.stat(real).st_mode & 0o7777
            write_atomic(real, "".join(lines).encode("utf-8"))
            os.chmod(real, mode)
        except (TreeError, OSError) as exc:
            problems.append(PinProblem(display, 0, f"cannot write: {exc}"))
    return problems
