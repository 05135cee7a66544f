"""The rule table against the source: every code is emitted, by one check, and has a located test.

Read from the code, not from a list kept by hand (tests/rules_scan.py): the AST of compiler/ and
targets/ says where each code literal is emitted and which registered check reaches it; the
registries are the `Check` objects the stage modules hold; the located tests are the cases of
tests/test_rules.py and the tests its ELSEWHERE names, read from their own AST.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

from compiler.codes import RULES
from tests import rules_scan
from tests.rules_scan import ROOT, Registered, Scan, Site, owners, registered_checks, scan, scan_source
from tests.test_rules import CASES, ELSEWHERE


@functools.cache
def _scan() -> tuple[Scan, tuple[Registered, ...]]:
    return scan(), tuple(registered_checks())


def _owners() -> dict[str, dict[str, list[Site]]]:
    found, checks = _scan()
    return owners(found, list(checks))


def test_every_code_of_the_table_is_emitted():
    """(a) A code no source line emits is a rule nobody can meet: wire it or take it out of the table."""
    emitted = _owners()
    assert sorted(c for c in RULES if c not in emitted) == []
    assert sorted(c for c in emitted if c not in RULES) == []  # and nothing emits a code the table lacks


def test_every_code_is_emitted_by_one_check():
    """(b) One owner per code: one registered check, or one unit that is not a stage (the YAML loader,
    the spec models' validators, the stores, a target class's hook, the build)."""
    twice = {code: sorted(by) for code, by in _owners().items() if len(by) > 1}
    assert twice == {}


def test_a_check_emits_only_its_own_code():
    """(b) What a registered check reaches emits the code it is registered with, nothing else."""
    _, checks = _scan()
    by_name = {f"{c.file}::{c.function}": c for c in checks}
    wrong = [
        f"{owner} is registered for {by_name[owner].code} but emits {code} at {', '.join(map(str, sites))}"
        for code, by in _owners().items()
        for owner, sites in by.items()
        if owner in by_name and by_name[owner].code != code
    ]
    assert wrong == []


def test_no_code_is_registered_twice():
    _, checks = _scan()
    codes = [c.code for c in checks]
    assert sorted({c for c in codes if codes.count(c) > 1}) == []
    assert set(codes) <= set(RULES)


def test_the_validation_stages_emit_only_from_registered_checks():
    """Item 3 of #11: in compiler/validate each code comes from a check registered in its stage."""
    loose = {
        code: [str(s) for s in sites]
        for code, by in _owners().items()
        for owner, sites in by.items()
        if "::" not in owner and owner.startswith("compiler/validate/")
    }
    assert loose == {}


def _test_function(where: str) -> ast.FunctionDef:
    file, _, name = where.partition("::")
    tree = ast.parse((ROOT / file).read_text(encoding="utf-8"))
    found = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name]
    assert found, f"{where} does not exist"
    return found[0]


def _asserts_a_location(fn: ast.FunctionDef, code: str) -> bool:
    """The test names the code and asserts on where it is: a `.location`, `.line`, `.path` or `.column`,
    a `["line"]` of a JSON report, or a line number it computed (a name holding "line")."""
    literals = {n.value for n in ast.walk(fn) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    asserted = [n for a in ast.walk(fn) if isinstance(a, ast.Assert) for n in ast.walk(a)]
    located = any(
        (isinstance(n, ast.Attribute) and n.attr in ("location", "line", "path", "column"))
        or (isinstance(n, ast.Constant) and n.value == "line")
        or (isinstance(n, ast.Name) and "line" in n.id)
        for n in asserted
    )
    return any(code in text for text in literals) and located


def test_every_code_has_a_test_of_its_location():
    """(c) A case of tests/test_rules.py (which asserts file and line), or a named test that asserts one."""
    missing = [c for c in RULES if c not in CASES and c not in ELSEWHERE]
    assert missing == []
    weak = [
        f"{code}: {where}" for code, where in ELSEWHERE.items() if not _asserts_a_location(_test_function(where), code)
    ]
    assert weak == []
    assert sorted(set(ELSEWHERE) & set(CASES)) == []  # one place says where each code is tested


def test_the_scan_finds_a_second_emitter_and_a_foreign_code(tmp_path: Path):
    """The audit itself can fail: a code emitted by two checks, or by a helper of the wrong check, is seen."""
    found = Scan()
    scan_source(
        found,
        "from compiler.validate.checks import Check\n"
        "def a(index):\n    yield doc.diag('TAKT3001', 'x')\n"
        "def b(index):\n    yield from _helper(index)\n"
        "def _helper(index):\n    yield doc.diag('TAKT3001', 'y')\n    yield doc.diag('TAKT3004', 'z')\n"
        "CHECKS = (Check('TAKT3001', a), Check('TAKT3002', b))\n",
        "compiler/validate/fake.py",
    )
    checks = [
        Registered("TAKT3001", "compiler/validate/fake.py", "a"),
        Registered("TAKT3002", "compiler/validate/fake.py", "b"),
    ]
    by = owners(found, checks)
    assert sorted(by["TAKT3001"]) == ["compiler/validate/fake.py::a", "compiler/validate/fake.py::b"]
    assert list(by["TAKT3004"]) == ["compiler/validate/fake.py::b"]  # b is registered for TAKT3002
    assert [r[:2] for r in found.registrations] == [
        ("TAKT3001", "compiler/validate/fake.py"),
        ("TAKT3002", "compiler/validate/fake.py"),
    ]
    loose = Scan()
    scan_source(loose, "def f():\n    raise Refused('TAKT5025', 'm', 'path')\n", "compiler/stores/x.py")
    assert list(owners(loose, [])["TAKT5025"]) == ["compiler/stores"]  # one package, one job: one unit
    assert rules_scan.CODE.match("TAKT5025")
