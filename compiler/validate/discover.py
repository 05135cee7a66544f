"""Finding the project: its root, its takt.yaml, and the spec files its globs name."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from compiler.codes import located
from compiler.diagnostics import Diagnostic, Location
from compiler.loader.source import SourceText, read_source
from compiler.loader.yamldoc import load_documents
from compiler.project import DEFAULT_SPECS, PROJECT_FILE, Project
from compiler.validate.checks import Check, run_checks
from compiler.validate.document import SpecDocument
from compiler.validate.structure import validate_model

_SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".takt-cache", ".tox"}


@dataclass
class Discovery:
    root: Path
    project: Project | None
    files: list[Path] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    project_source: SourceText | None = None
    has_project_file: bool = True
    project_documents: int = 1
    """How many YAML documents takt.yaml holds (it must hold one)."""
    unmatched: list[str] = field(default_factory=list)
    """Spec globs of takt.yaml that match no file."""


def display_path(path: Path) -> str:
    """Paths as users see them: relative to the working directory when below it."""
    try:
        return os.path.relpath(path) if path.resolve().is_relative_to(Path.cwd().resolve()) else str(path)
    except (OSError, ValueError):
        return str(path)


def find_root(start: Path) -> Path | None:
    start = start.resolve()
    for candidate in (start, *start.parents) if start.is_dir() else start.parents:
        if (candidate / PROJECT_FILE).is_file():
            return candidate
    return None


def _load_project(root: Path) -> Discovery:
    path = root / PROJECT_FILE
    source = read_source(path, display_path(path), root=root)
    if isinstance(source, Diagnostic):
        return Discovery(root, None, diagnostics=[source])
    docs, diags = load_documents(source)
    if diags or len(docs) != 1:
        count = 1 if diags else len(docs)  # a YAML error is the one finding
        return Discovery(root, None, diagnostics=diags, project_source=source, project_documents=count)
    doc = SpecDocument(docs[0], path, "Project", None)
    model, errors = validate_model(Project, docs[0].data, doc)
    return Discovery(root, model, diagnostics=errors, project_source=source)


def project_file_present(disc: Discovery) -> Iterator[Diagnostic]:
    """TAKT9001: a spec repo has a takt.yaml (without one, every YAML file below is validated)."""
    if not disc.has_project_file:
        yield located(
            "TAKT9001",
            f"no {PROJECT_FILE} in {display_path(disc.root)} or above; validating every YAML file below it",
            Location(display_path(disc.root)),
            "run `takt init` to create one",
        )


def globs_match(disc: Discovery) -> Iterator[Diagnostic]:
    """TAKT9002: every spec glob of takt.yaml matches a file."""
    for pattern in disc.unmatched:
        yield located(
            "TAKT9002", f"spec glob {pattern!r} matches no file", Location(display_path(disc.root / PROJECT_FILE))
        )


def project_is_one_document(disc: Discovery) -> Iterator[Diagnostic]:
    """TAKT9003: takt.yaml holds exactly one YAML document."""
    if disc.has_project_file and disc.project_documents != 1 and disc.project_source is not None:
        loc = Location(disc.project_source.display, 1, 1, 1, 1)
        yield located("TAKT9003", f"{PROJECT_FILE} must hold exactly one document", loc)


CHECKS: tuple[Check[Discovery, Diagnostic], ...] = (
    Check("TAKT9001", project_file_present),
    Check("TAKT9003", project_is_one_document),
    Check("TAKT9002", globs_match),
)


def _walk(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        found.extend(Path(dirpath, f) for f in filenames)
    return found


def discover(start: Path) -> Discovery:
    """The project containing `start` (a directory or a file inside the project)."""
    root = find_root(start)
    if root is None:
        root = start.resolve() if start.is_dir() else start.resolve().parent
        disc = Discovery(root, None, has_project_file=False)
    else:
        disc = _load_project(root)
    project = disc.project
    patterns = project.spec.specs if project else list(DEFAULT_SPECS)
    excludes = project.spec.exclude if project else []
    candidates = [(p, p.relative_to(root).as_posix()) for p in _walk(root)]
    excluded = [glob_regex(ex) for ex in excludes]
    chosen: set[Path] = set()
    for pattern in patterns:
        rx = glob_regex(pattern)
        matched = [p for p, rel in candidates if rx.fullmatch(rel) and not any(e.fullmatch(rel) for e in excluded)]
        if not matched and disc.project is not None:
            disc.unmatched.append(pattern)
        chosen.update(matched)
    chosen.discard(root / PROJECT_FILE)
    disc.files = sorted(chosen)
    disc.diagnostics[:0] = run_checks(CHECKS, disc)
    return disc


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Git-style globs: `**/` spans zero or more directories, `*` and `?` stay inside one."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)
