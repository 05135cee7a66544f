"""mutation/run.py keeps a module's verdicts across its shards' files: a kill that `--check` showed must survive
a shard run of the same module that goes on meanwhile and writes the survivor it loaded at its start."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE = "def f(x):\n    return x + 1\n"


def _run_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutation_run", ROOT / "mutation" / "run.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutation_run"] = module  # its dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


def _entry(status: str) -> dict:
    return {"status": status, "line": 2, "col": 13, "seconds": 1.0, "source_line": "return x + 1",
            "diff": "--- m.py\n+++ m.py\n@@ -2 +2 @@\n-    return x + 1\n+    return x - 1\n"}


def _write(path: Path, mutants: dict[str, dict], when: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"module": "m.py", "tests": ["tests/test_m.py"], "baseline_s": 1.0,
                                "source": SOURCE, "mutants": mutants}))
    os.utime(path, (when, when))


@pytest.fixture()
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    module = _run_module()
    (tmp_path / "m.py").write_text(SOURCE)
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(module, "OUT", tmp_path / "build")
    monkeypatch.setattr(module, "KEPT", tmp_path / "kept")
    monkeypatch.setattr(module, "load_equivalent", lambda: {})  # the report of m.py alone, not the repo's list
    return module


@pytest.mark.parametrize("rewritten", ["the same shard file", "another shard file"])
def test_a_check_s_kill_outlives_a_concurrent_shard_s_survivor(run: ModuleType, rewritten: str) -> None:
    module = run.Module("m.py", ("tests/test_m.py",))
    mid = "core/ReplaceBinaryOperator_Add_Sub#0"
    first = run.results_path(module, (0, 2))
    second = first if rewritten == "the same shard file" else run.results_path(module)
    _write(first, {mid: _entry("survived")}, 1_000)
    if second != first:
        _write(second, {mid: _entry("survived")}, 1_001)

    run.record_check(module, mid, ("tests/test_m.py",), "killed")
    assert run.load_results(module)["mutants"][mid]["killed_by"] == ["tests/test_m.py"]

    # the shard went on meanwhile: it writes the survivor it loaded at its start, after the check
    _write(second, {mid: _entry("survived")}, 2_000_000_000)
    merged = run.load_results(module)["mutants"][mid]
    assert merged["status"] == "killed" and merged["killed_by"] == ["tests/test_m.py"]


def test_a_check_on_a_fresh_clone_records_its_kill_beside_the_committed_verdicts(run: ModuleType) -> None:
    module = run.Module("m.py", ("tests/test_m.py",))
    mid = "core/ReplaceBinaryOperator_Add_Sub#0"
    _write(run.results_path(module), {mid: _entry("survived")}, 1_000)
    run.keep_results([module])
    shutil.rmtree(run.OUT)  # a fresh clone: mutation/results/ alone, no build/ directory
    run.record_check(module, mid, ("tests/test_m.py",), "killed")
    assert run.load_results(module)["mutants"][mid]["killed_by"] == ["tests/test_m.py"]


def test_a_later_run_s_verdict_still_wins_over_an_earlier_run_s() -> None:
    run = _run_module()
    a, b = "core/AddNot#0", "core/AddNot#1"
    older = {"mutants": {a: _entry("survived"), b: _entry("killed")}}
    newer = {"mutants": {a: _entry("killed"), b: _entry("timeout")}}
    assert {k: v["status"] for k, v in run.merge_verdicts([older, newer]).items()} == {a: "killed", b: "timeout"}
    checked = {"mutants": {a: {**_entry("killed"), "killed_by": ["t.py"]}}}
    rechecked = {"mutants": {a: {**_entry("killed"), "killed_by": ["u.py"]}}}
    assert run.merge_verdicts([checked, rechecked])[a]["killed_by"] == ["u.py"]  # a later check replaces a check


def test_a_check_that_did_not_kill_or_used_unmapped_tests_records_nothing(run: ModuleType) -> None:
    module = run.Module("m.py", ("tests/test_m.py",))
    mid = "core/ReplaceBinaryOperator_Add_Sub#0"
    _write(run.results_path(module), {mid: _entry("survived")}, 1_000)
    run.record_check(module, mid, ("tests/test_m.py",), "survived")
    run.record_check(module, mid, ("tests/test_other.py",), "killed")
    run.record_check(module, "core/AddNot#9", ("tests/test_m.py",), "killed")  # never generated
    assert not run.checks_path(module).exists()
    assert run.load_results(module)["mutants"] == {mid: _entry("survived")}


def test_the_committed_verdicts_alone_make_the_report_and_say_when_the_source_changed(run: ModuleType) -> None:
    module = run.Module("m.py", ("tests/test_m.py",))
    killed, survived, checked = "core/AddNot#0", "core/ReplaceBinaryOperator_Add_Sub#0", "core/NumberReplacer#0"
    _write(run.results_path(module, (0, 2)), {killed: _entry("killed"), survived: _entry("survived")}, 1_000)
    _write(run.results_path(module, (1, 2)), {checked: _entry("survived")}, 1_001)
    run.record_check(module, checked, ("tests/test_m.py",), "killed")
    run.keep_results([module])
    kept = json.loads(run.kept_path(module).read_text())
    assert "source" not in kept and kept["source_sha256"] == run.digest(SOURCE)
    assert "diff" in kept["mutants"][survived] and "diff" not in kept["mutants"][killed]  # only what is shown

    for p in (run.OUT / "results").iterdir():  # a fresh clone: no working files
        p.unlink()
    merged = run.load_results(module)
    assert {k: v["status"] for k, v in merged["mutants"].items()} == {
        killed: "killed", survived: "survived", checked: "killed"}
    assert merged["mutants"][checked]["killed_by"] == ["tests/test_m.py"]
    row = next(line for line in run.report([module]).splitlines() if line.startswith("| m.py"))
    assert row == "| m.py | 3 | 2 | 1 | 0 | 0 | 67% |"

    (run.ROOT / "m.py").write_text(SOURCE + "\n# changed\n")
    row = next(line for line in run.report([module]).splitlines() if line.startswith("| m.py"))
    assert row.startswith("| m.py (source changed since) | 3 |")


def test_a_new_run_on_the_changed_source_is_not_merged_with_the_old_verdicts(run: ModuleType) -> None:
    module = run.Module("m.py", ("tests/test_m.py",))
    old, new = "core/AddNot#0", "core/AddNot#1"
    _write(run.results_path(module), {old: _entry("survived")}, 1_000)
    run.keep_results([module])
    changed = SOURCE + "\n# changed\n"
    (run.ROOT / "m.py").write_text(changed)
    shard = run.results_path(module, (0, 2))
    shard.write_text(json.dumps({"module": "m.py", "tests": ["tests/test_m.py"], "baseline_s": 1.0,
                                 "source": changed, "mutants": {new: _entry("killed")}}))
    merged = run.load_results(module)
    assert merged["source_sha256"] == run.digest(changed) and set(merged["mutants"]) == {new}


def test_a_part_run_shows_how_many_of_the_module_s_mutants_it_ran(run: ModuleType) -> None:
    """Shards stopped at a deadline leave some mutants unrun: the report must not read as the whole module."""
    module = run.Module("m.py", ("tests/test_m.py",))
    _write(run.results_path(module, (0, 2)), {"core/AddNot#0": _entry("killed")}, 1_000)
    row = next(line for line in run.report([module]).splitlines() if line.startswith("| m.py"))
    assert row.startswith("| m.py | 1 |")  # a file from before runs said how many there were
    path = run.results_path(module, (1, 2))
    _write(path, {"core/AddNot#1": _entry("killed")}, 1_001)
    path.write_text(json.dumps({**json.loads(path.read_text()), "generated": 5}))
    run.keep_results([module])
    assert json.loads(run.kept_path(module).read_text())["generated"] == 5
    for p in (run.OUT / "results").iterdir():  # a fresh clone: the committed verdicts alone
        p.unlink()
    row = next(line for line in run.report([module]).splitlines() if line.startswith("| m.py"))
    assert row == "| m.py | 2 / 5 | 2 | 0 | 0 | 0 | 100% |"


def test_the_readme_shows_the_committed_verdicts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The score in the README is the one mutation/results/ holds, made by run.py, never typed by hand: a module
    edited after its last run shows as such there until it is run again."""
    module = _run_module()
    monkeypatch.setattr(module, "OUT", tmp_path / "build")  # a fresh clone: no working files of a local run
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert module.with_table(readme, module.summarise(module.load_modules()).table) == readme, (
        "README.md's mutation table is not the committed verdicts': `make mutation MUTATION_ARGS=--report-only` "
        "rewrites it (a module edited since its last run shows as 'source changed since': run it again)"
    )


def test_the_readme_table_is_replaced_whole_and_a_missing_section_is_an_error(run: ModuleType) -> None:
    begin, end = run.TABLE_BEGIN, run.TABLE_END
    text = f"intro\n{begin}\n| old |\n| rows |\n{end}\nafter\n"
    assert run.with_table(text, "| new |\n") == f"intro\n{begin}\n| new |\n{end}\nafter\n"
    with pytest.raises(ValueError, match="mutation-table"):
        run.with_table("intro\nno table here\n", "| new |\n")


def test_a_source_line_holding_the_arrow_can_be_listed_whole_or_by_variant() -> None:
    """equivalent.txt's `SOURCE -> MUTATED` separator occurs in Python source (a return annotation): such a
    line, listed whole, was split at its annotation and never matched its survivors."""
    run = _run_module()
    source = "def f(fh: BinaryIO, block: int = 65536) -> int:"

    def mutant(mutated: str) -> dict:
        return {"source_line": source, "diff": f"--- x.py\n+++ x.py\n@@ -1 +1 @@\n-{source}\n+{mutated}\n"}

    up, down = (mutant(source.replace("65536", n)) for n in ("65537", "65535"))
    whole = run.load_equivalent(f"x.py | core/NumberReplacer | {source} | any block size\n")
    assert run.equivalent_because(whole, "x.py", "core/NumberReplacer#0", up) == "any block size"
    assert run.equivalent_because(whole, "x.py", "core/NumberReplacer#1", down) == "any block size"
    one = run.load_equivalent(
        f"x.py | core/NumberReplacer | {source} -> {source.replace('65536', '65537')} | a larger block\n"
    )
    assert run.equivalent_because(one, "x.py", "core/NumberReplacer#0", up) == "a larger block"
    assert run.equivalent_because(one, "x.py", "core/NumberReplacer#1", down) is None
    assert run.equivalent_because(whole, "x.py", "core/AddNot#0", up) is None  # another operator
    shorter = run.load_equivalent("x.py | core/NumberReplacer | def f(fh: BinaryIO, block: int = 65536) | ?\n")
    assert run.equivalent_because(shorter, "x.py", "core/NumberReplacer#0", up) is None  # a prefix is no match
