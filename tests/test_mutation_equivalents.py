"""mutation/equivalent.txt names a mutant precisely: an entry for the `+ 2` variant of a read bound
must never excuse the `+ 0` variant on the same line, which truncates (a real hole)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run_module():
    spec = importlib.util.spec_from_file_location("mutation_run", ROOT / "mutation" / "run.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutation_run"] = module  # its dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


def _mutant(source: str, mutated: str) -> dict:
    return {"source_line": source, "diff": f"--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-    {source}\n+    {mutated}\n"}


def test_a_variant_entry_excuses_only_its_variant():
    run = _run_module()
    eq = run.load_equivalent(
        "x.py | core/NumberReplacer | data = fh.read(n + 1) -> data = fh.read(n + 2) | reads past the bound anyway\n"
        "x.py | core/RemoveDecorator | @functools.cache | only slower\n"
    )
    plus2 = _mutant("data = fh.read(n + 1)", "data = fh.read(n + 2)")
    plus0 = _mutant("data = fh.read(n + 1)", "data = fh.read(n + 0)")
    assert run.equivalent_because(eq, "x.py", "core/NumberReplacer#1", plus2) == "reads past the bound anyway"
    assert run.equivalent_because(eq, "x.py", "core/NumberReplacer#0", plus0) is None
    assert run.equivalent_because(eq, "y.py", "core/NumberReplacer#1", plus2) is None  # another module
    cache = _mutant("@functools.cache", "")
    assert run.equivalent_because(eq, "x.py", "core/RemoveDecorator#0", cache) == "only slower"  # every variant


def test_every_committed_entry_parses_and_names_a_file_that_exists():
    run = _run_module()
    eq = run.load_equivalent()
    assert eq, "mutation/equivalent.txt lists no entry"
    for (module, operator), entries in eq.items():
        assert (ROOT / module).is_file(), module
        assert operator.startswith("core/") and all(line and why for line, why in entries)
