"""Where each diagnostic code is emitted, read from the source (AST), for tests/test_rules_audit.py.

An emission is a code literal passed as the first argument of a call (`doc.diag("TAKT…", …)`,
`Problem(…)`, `located(…)`, a store's `Refused(…)`, a validator's `_err(…)`); a literal anywhere
else (a comparison, a set of codes a reader looks up) is a reference. `Check("TAKT…", fn)` is a
registration. An emission's owner is each registered check whose function reaches it through the
calls of its module; an emission no check reaches is owned by its unit: the module, or the whole
package where one package has one job (the YAML loader, the spec models' validators, the stores).
"""

from __future__ import annotations

import ast
import importlib
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE = re.compile(r"^TAKT\d{4}$")
SCANNED = ("compiler", "targets")
TABLE = ROOT / "compiler" / "codes.py"
PACKAGE_UNITS = ("compiler/loader", "compiler/spec", "compiler/stores")
"""Packages whose modules share one job: each is one emitter (a code twice inside one is one place)."""


Fn = tuple[str, str]  # (file, function name); ("file", "") is the module's top level


@dataclass(frozen=True)
class Site:
    code: str
    file: str  # relative to the repo root
    line: int
    function: str  # the innermost enclosing function ("" at module level)

    def __str__(self) -> str:
        return f"{self.file}:{self.line} ({self.function or 'module level'})"


@dataclass
class Scan:
    sites: list[Site] = field(default_factory=list)
    registrations: list[tuple[str, str, str]] = field(default_factory=list)  # (code, module file, function)
    calls: dict[Fn, set[Fn]] = field(default_factory=dict)  # function → the functions it calls

    def reach(self, start: Fn) -> set[Fn]:
        """The functions `start` calls, directly or through others (of its module, or imported by name)."""
        seen, todo = {start}, [start]
        while todo:
            for fn in self.calls.get(todo.pop(), ()):
                if fn not in seen and fn in self.calls:
                    seen.add(fn)
                    todo.append(fn)
        return seen


def _unit(file: str) -> str:
    for package in PACKAGE_UNITS:
        if file.startswith(package + "/"):
            return package
    return file.removesuffix(".py")


def _literal_code(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and CODE.match(node.value):
        return node.value
    return None


def _callee(node: ast.Call) -> str:
    f = node.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


class _Visitor(ast.NodeVisitor):
    def __init__(self, scan: Scan, file: str) -> None:
        self.scan, self.file, self.stack = scan, file, [""]
        self.imported: dict[str, Fn] = {}  # a name imported from a scanned module → where it is defined

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if module.split(".")[0] in SCANNED:
            path = ROOT / (module.replace(".", "/") + ".py")
            for alias in node.names:
                self.imported[alias.asname or alias.name] = (path.relative_to(ROOT).as_posix(), alias.name)
        self.generic_visit(node)

    def _fn(self, name: str) -> Fn:
        return self.imported.get(name, (self.file, name))

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scan.calls.setdefault((self.file, node.name), set())
        self.stack.append(node.name)
        self.generic_visit(node)
        self.stack.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Call(self, node: ast.Call) -> None:
        here = self.stack[-1]
        name = _callee(node)
        called = self.scan.calls.setdefault((self.file, here), set())
        if isinstance(node.func, ast.Name):
            called.add(self._fn(name))
        for arg in node.args:  # a function passed as an argument is called by whoever takes it
            if isinstance(arg, ast.Name):
                called.add(self._fn(arg.id))
        code = _literal_code(node.args[0]) if node.args else None
        if code and name == "Check":
            fn = node.args[1] if len(node.args) > 1 else None
            self.scan.registrations.append((code, self.file, fn.id if isinstance(fn, ast.Name) else ""))
        elif code:
            self.scan.sites.append(Site(code, self.file, node.lineno, here))
        self.generic_visit(node)


def scan_source(out: Scan, text: str, rel: str) -> None:
    _Visitor(out, rel).visit(ast.parse(text, rel))


def scan() -> Scan:
    out = Scan()
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if path == TABLE or "rootfs" in path.parts:
                continue
            scan_source(out, path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())
    return out


@dataclass(frozen=True)
class Registered:
    code: str
    file: str
    function: str


def registered_checks() -> Iterator[Registered]:
    """Every `Check` object the stage modules hold at import time (registries built by a loop included)."""
    from compiler.validate.checks import Check

    for path in sorted([*(ROOT / "compiler").rglob("*.py"), *(ROOT / "targets").rglob("*.py")]):
        if "rootfs" in path.parts or "Check(" not in path.read_text(encoding="utf-8"):
            continue
        rel = path.relative_to(ROOT).as_posix()
        module = importlib.import_module(rel.removesuffix(".py").replace("/", "."))
        for value in vars(module).values():
            for item in value if isinstance(value, tuple) else (value,):
                if isinstance(item, Check) and item.run.__module__ == module.__name__:
                    yield Registered(item.code, rel, item.run.__name__)


def owners(found: Scan, checks: list[Registered]) -> dict[str, dict[str, list[Site]]]:
    """code → owner (a registered check `file::function`, or a unit) → its emission sites."""
    reach = {c: found.reach((c.file, c.function)) for c in checks}
    out: dict[str, dict[str, list[Site]]] = defaultdict(lambda: defaultdict(list))
    for site in found.sites:
        by = [c for c in checks if (site.file, site.function) in reach[c]]
        for c in by or [None]:
            owner = f"{c.file}::{c.function}" if c else _unit(site.file)
            out[site.code][owner].append(site)
    return out
