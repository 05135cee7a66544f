"""`make mutation`: cosmic-ray mutants of the trust path, each run against the tests that guard its module.

Why our own loop around `cosmic-ray init` / `cosmic-ray apply` rather than `cosmic-ray exec`: the machine is
shared, so every mutant runs under `nice`, with a timeout derived from the module's baseline, resumably (a
module's results are kept per mutant and an interrupted run goes on where it stopped), and survivors can be
re-checked alone after a test was added (`--survivors`) or one mutant shown failing a test (`--check`).

The tool mutates a copy of the work tree (build/mutation/tree), never the checkout, and the tests import that
copy through PYTHONPATH (the editable install's finder comes after it), subprocesses included.

    python mutation/run.py                         every module of mutation/modules.toml, smallest first
    python mutation/run.py compiler/bundle/atomic.py   one module (more may follow)
    python mutation/run.py --survivors MODULE      re-run only the mutants that survived last time
    python mutation/run.py --check MODULE ID [TEST ...]   apply one mutant and run the given tests (or the mapped)

Mutant ids are `<operator>#<occurrence>` as cosmic-ray numbers them. The report (killed, survived, timeout
per module, every survivor with its diff and whether it is in mutation/equivalent.txt) is written to
build/mutation/report.md.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = ROOT / "build" / "mutation"
# The verdicts, committed: a fresh clone's report (`--report-only`) shows every module's last run and whether its
# source changed since, where build/mutation/ (the tree copies, the shards' working files) is not kept.
KEPT = HERE / "results"
TREE = OUT / "tree"
TOOL = ROOT / ".venv-mutation" / "bin" / "cosmic-ray"
PYTHON = ROOT / ".venv" / "bin" / "python"
# Every tool and test run is niced here, once: `make mutation` itself is not run under nice, or the tests would
# run at 19 and crawl on a machine whose other work runs at 10.
NICE = ("nice", "-n", "10")
# Plugins a mutant's run never uses, off: importing hypothesis's and hydra's was about 3 of the 4.5 CPU seconds a
# mutant of a small module cost (`@given` tests still run without the plugin; anyio's, which marks tests, stays).
NO_PLUGINS = ("-p", "no:hypothesispytest", "-p", "no:hydra_pytest", "-p", "no:xdist", "-p", "no:xdist.looponfail")

# One mutant per operator, the nearest wrong program (a boundary moved, a condition negated, a sum turned into a
# difference), instead of cosmic-ray's every-operator-into-every-other (167 mutants for a 69-line module, most of
# them `a + b` → `a << b`, killed by any test that runs the line).
KEEP = {
    "core/NumberReplacer",
    "core/AddNot",
    "core/ReplaceAndWithOr",
    "core/ReplaceOrWithAnd",
    "core/ReplaceTrueWithFalse",
    "core/ReplaceFalseWithTrue",
    "core/ZeroIterationForLoop",
    "core/ExceptionReplacer",
    "core/RemoveDecorator",
    "core/ReplaceBreakWithContinue",
    "core/ReplaceContinueWithBreak",
    "core/ReplaceUnaryOperator_Delete_Not",
    "core/ReplaceUnaryOperator_Delete_USub",
    "core/ReplaceBinaryOperator_Add_Sub",
    "core/ReplaceBinaryOperator_Sub_Add",
    "core/ReplaceBinaryOperator_Mul_Div",
    "core/ReplaceBinaryOperator_Div_Mul",
    "core/ReplaceBinaryOperator_FloorDiv_Div",
    "core/ReplaceBinaryOperator_Mod_FloorDiv",
    "core/ReplaceBinaryOperator_Pow_Mul",
    "core/ReplaceBinaryOperator_BitOr_BitAnd",
    "core/ReplaceBinaryOperator_BitAnd_BitOr",
    "core/ReplaceBinaryOperator_LShift_RShift",
    "core/ReplaceBinaryOperator_RShift_LShift",
    "core/ReplaceComparisonOperator_Eq_NotEq",
    "core/ReplaceComparisonOperator_NotEq_Eq",
    "core/ReplaceComparisonOperator_Lt_LtE",
    "core/ReplaceComparisonOperator_LtE_Lt",
    "core/ReplaceComparisonOperator_Gt_GtE",
    "core/ReplaceComparisonOperator_GtE_Gt",
    "core/ReplaceComparisonOperator_Lt_GtE",
    "core/ReplaceComparisonOperator_LtE_Gt",
    "core/ReplaceComparisonOperator_Gt_LtE",
    "core/ReplaceComparisonOperator_GtE_Lt",
    "core/ReplaceComparisonOperator_Is_IsNot",
    "core/ReplaceComparisonOperator_IsNot_Is",
}


@dataclass(frozen=True)
class Module:
    path: str
    tests: tuple[str, ...]


@dataclass(frozen=True)
class Mutant:
    operator: str
    occurrence: int
    line: int
    col: int = 0

    @property
    def id(self) -> str:
        return f"{self.operator}#{self.occurrence}"


def annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Where the annotations are, in a module with `from __future__ import annotations` (else none).

    They are strings there, never evaluated: `str | None` → `str & None` is the same program, so such
    mutants are not generated rather than listed as equivalent one by one.
    """
    tree = ast.parse(source)
    if not any(isinstance(n, ast.ImportFrom) and n.module == "__future__" and any(a.name == "annotations"
               for a in n.names) for n in tree.body):
        return []
    spans = []
    for node in ast.walk(tree):
        notes = []
        if isinstance(node, ast.arg | ast.AnnAssign) and node.annotation is not None:
            notes.append(node.annotation)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns is not None:
            notes.append(node.returns)
        spans += [((n.lineno, n.col_offset), (n.end_lineno, n.end_col_offset)) for n in notes]
    return spans


def in_spans(pos: tuple[int, int], spans: list[tuple[tuple[int, int], tuple[int, int]]]) -> bool:
    return any(start <= pos < end for start, end in spans)


def load_modules() -> list[Module]:
    data = tomllib.loads((HERE / "modules.toml").read_text(encoding="utf-8"))
    mods = [Module(m["path"], tuple(m["tests"])) for m in data["module"]]
    return sorted(mods, key=lambda m: len((ROOT / m.path).read_text(encoding="utf-8").splitlines()))


Equivalents = dict[tuple[str, str], list[tuple[str, str]]]


def load_equivalent(text: str | None = None) -> Equivalents:
    """(module, operator) → [(line field, why)]; `equivalent_because` matches the field against a mutant.

    The field is not split here: a source line may hold ` -> ` itself (a return annotation), so only the
    mutant's own source line can tell where the source ends. See the header of mutation/equivalent.txt."""
    out: Equivalents = {}
    text = (HERE / "equivalent.txt").read_text(encoding="utf-8") if text is None else text
    for raw in text.splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        module, operator, line, why = (p.strip() for p in raw.split(" | ", 3))
        out.setdefault((module, operator), []).append((line, why))
    return out


def mutated_line(diff: str) -> str | None:
    """The first line the mutant's unified diff adds, stripped."""
    for line in diff.splitlines():
        if line.startswith("+") and not line.startswith("+++"):
            return line[1:].strip()
    return None


def names_mutant(field: str, source: str, mutated: str | None) -> bool:
    """Whether a line field names this mutant: the whole field is its source line (every variant of the
    operator there), or the source line, ` -> ` and its mutated line (that variant only). The full line is
    matched first, so a source line holding ` -> ` is listed like any other."""
    if field == source:
        return True
    rest = field[len(source) :].lstrip() if field.startswith(source) else ""
    return rest.startswith("->") and mutated is not None and rest[2:].strip() == mutated


def equivalent_because(equivalent: Equivalents, module: str, mutant_id: str, mutant: dict[str, Any]) -> str | None:
    """Why a surviving mutant is equivalent, or None when the list does not name it (variant included)."""
    entries = equivalent.get((module, mutant_id.split("#")[0]), [])
    got = mutated_line(mutant.get("diff", ""))
    return next((why for field, why in entries if names_mutant(field, mutant["source_line"], got)), None)


def copy_tree() -> None:
    """The tracked and untracked-but-not-ignored files of the checkout, as they are on disk now."""
    if TREE.exists():
        shutil.rmtree(TREE)
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.split(b"\0")
    for rel in filter(None, files):
        src = ROOT / os.fsdecode(rel)
        if src.is_file() and not src.is_symlink():
            dst = TREE / os.fsdecode(rel)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
        elif src.is_symlink():
            dst = TREE / os.fsdecode(rel)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.readlink(src), dst)


def mutants_of(module: Module) -> list[Mutant]:
    work = TREE.parent / f"{TREE.name}.sessions"  # one per run: runs side by side never share a session
    work.mkdir(parents=True, exist_ok=True)
    slug = module.path.replace("/", "_")
    config, session = work / f"{slug}.toml", work / f"{slug}.sqlite"
    config.write_text(
        f'[cosmic-ray]\nmodule-path = "{module.path}"\ntimeout = 60.0\nexcluded-modules = []\n'
        f'test-command = "false"\n[cosmic-ray.distributor]\nname = "local"\n',
        encoding="utf-8",
    )
    session.unlink(missing_ok=True)
    subprocess.run([*NICE, str(TOOL), "init", str(config), str(session)], cwd=TREE, check=True)
    dump = subprocess.run([*NICE, str(TOOL), "dump", str(session)], cwd=TREE, check=True, capture_output=True,
                          text=True)
    found = []
    spans = annotation_spans((ROOT / module.path).read_text(encoding="utf-8"))
    for line in dump.stdout.splitlines():
        item, _ = json.loads(line)
        for m in item["mutations"]:
            if m["operator_name"] in KEEP and not in_spans(tuple(m["start_pos"]), spans):
                found.append(Mutant(m["operator_name"], m["occurrence"], *m["start_pos"]))
    return sorted(found, key=lambda m: (m.line, m.operator, m.occurrence))


def run_tests(tests: tuple[str, ...], timeout: float) -> tuple[str, float, str]:
    """killed / survived / timeout, seconds, the tail of pytest's output."""
    env = {**os.environ, "PYTHONPATH": str(TREE), "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [*NICE, str(PYTHON), "-m", "pytest", "-x", "-q", *NO_PLUGINS, *tests]
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=TREE, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - start, ""
    took = time.monotonic() - start
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
    return ("survived" if proc.returncode == 0 else "killed"), took, tail


# Every mutant's source made in one process: `cosmic-ray apply` per mutant cost as much CPU as its test run.
_PREMUTATE = """
import json, pathlib, sys
from cosmic_ray.mutating import mutate_code
from cosmic_ray.plugins import get_operator
from cosmic_ray.util import read_python_source
source, out = read_python_source(sys.argv[1]), pathlib.Path(sys.argv[2])
for operator, occurrence in json.loads(sys.stdin.read()):
    try:
        code = mutate_code(source, get_operator(operator)(), occurrence)
    except Exception:  # left to `cosmic-ray apply`, which reports why
        continue
    if code is not None:
        (out / (operator.replace("/", "_") + "#" + str(occurrence) + ".py")).write_text(code, encoding="utf-8")
"""


def premade(module: Module, mutant: Mutant) -> Path:
    return TREE.parent / f"{TREE.name}.mutants" / module.path.replace("/", "_") / (
        f"{mutant.operator.replace('/', '_')}#{mutant.occurrence}.py")


def premutate(module: Module, mutants: list[Mutant]) -> None:
    """Write each mutant's source beside the tree (apply() copies it); one that fails is left to apply()."""
    if not mutants:
        return
    out = premade(module, mutants[0]).parent
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    subprocess.run([*NICE, str(TOOL.parent / "python"), "-c", _PREMUTATE, str(ROOT / module.path), str(out)],
                   input=json.dumps([[m.operator, m.occurrence] for m in mutants]), text=True, check=True)


def apply(module: Module, mutant: Mutant) -> str:
    """Mutate the copy; the unified diff of the mutant."""
    path = TREE / module.path
    before = (ROOT / module.path).read_text(encoding="utf-8")
    made = premade(module, mutant)
    if made.is_file():
        path.write_text(made.read_text(encoding="utf-8"), encoding="utf-8")
    else:
        path.write_text(before, encoding="utf-8")
        subprocess.run(
            [*NICE, str(TOOL), "apply", module.path, mutant.operator, str(mutant.occurrence)],
            cwd=TREE, check=True, capture_output=True,
        )
    after = path.read_text(encoding="utf-8")
    return "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), module.path, module.path, n=0))


def restore(module: Module) -> None:
    shutil.copy2(ROOT / module.path, TREE / module.path)


def results_path(module: Module, shard: tuple[int, int] | None = None) -> Path:
    """One file per module, or per shard of it (`--shard K/N`: two runs of one module side by side)."""
    name = module.path.replace("/", "_") + ".json"
    return OUT / "results" / (f"{name}.{shard[0]}of{shard[1]}" if shard else name)


def checks_path(module: Module) -> Path:
    """Where `--check` records its kills: a file of its own, which no run of the module ever rewrites."""
    return OUT / "results" / (module.path.replace("/", "_") + ".json.checks")


def merge_verdicts(parts: list[dict]) -> dict[str, dict]:
    """Every part's mutants, oldest part first: a later verdict wins, except over a kill that `--check` showed
    (killed_by). A shard run that loaded a survivor before the check was made writes it back later, and must
    not bring it back to life."""
    merged: dict[str, dict] = {}
    for part in parts:
        for mutant_id, entry in part["mutants"].items():
            prev = merged.get(mutant_id)
            if prev is not None and "killed_by" in prev and "killed_by" not in entry:
                continue
            merged[mutant_id] = entry
    return merged


def digest(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def source_digest(part: dict) -> str:
    """The digest of the source a run saw: kept files carry only the digest, working files the whole source."""
    return part["source_sha256"] if "source_sha256" in part else digest(part["source"])


def kept_path(module: Module) -> Path:
    return KEPT / (module.path.replace("/", "_") + ".json")


def load_results(module: Module) -> dict | None:
    """The module's results: the committed verdicts, then its runs', shards' and checks' merged in (a later
    verdict wins); None when it was never run."""
    stores = sorted((OUT / "results").glob(module.path.replace("/", "_") + ".json*"), key=lambda p: p.stat().st_mtime)
    kept = kept_path(module)
    parts = ([json.loads(kept.read_text())] if kept.is_file() else []) + [json.loads(p.read_text()) for p in stores]
    if not parts:
        return None
    current = digest((ROOT / module.path).read_text(encoding="utf-8"))
    fresh = [r for r in parts if source_digest(r) == current] or [
        r for r in parts if source_digest(r) == source_digest(parts[-1])]
    generated = [r["generated"] for r in fresh if "generated" in r]  # an older run's file does not say
    return {**fresh[-1], "source_sha256": source_digest(fresh[-1]), "mutants": merge_verdicts(fresh),
            **({"generated": generated[-1]} if generated else {})}


def compact(res: dict) -> dict:
    """What the report needs of a module's results, for the repository: per mutant its verdict and place, and
    the diff only where the report shows it or matches it against mutation/equivalent.txt (a survivor, one the
    tool could not make)."""
    mutants = {}
    for mid, m in sorted(res["mutants"].items()):
        entry = {k: m[k] for k in ("status", "line", "col", "source_line", "killed_by") if k in m}
        if m["status"] in ("survived", "error"):
            entry["diff"] = m["diff"]
        mutants[mid] = entry
    kept = {"module": res["module"], "tests": res["tests"], "source_sha256": source_digest(res), "mutants": mutants}
    return {**kept, "generated": res["generated"]} if "generated" in res else kept


def keep_results(modules: list[Module]) -> None:
    """Write each module's merged verdicts to mutation/results/ (replaced whole, never half-written)."""
    KEPT.mkdir(parents=True, exist_ok=True)
    for module in modules:
        res = load_results(module)
        if res is None:
            continue
        store = kept_path(module)
        text = json.dumps(compact(res), indent=1, sort_keys=True) + "\n"
        if store.is_file() and store.read_text() == text:
            continue
        tmp = store.with_name(f".{store.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, store)


def run_module(module: Module, *, survivors_only: bool, log, shard: tuple[int, int] | None = None) -> dict:
    """Every mutant of one module (or last run's survivors, or every N-th), resumable; the results as saved."""
    mutants = mutants_of(module)
    generated = len(mutants)  # the whole module's, every shard's: the report tells a part run from the whole
    if shard:
        mutants = mutants[shard[0]::shard[1]]
    store = results_path(module, shard)
    store.parent.mkdir(parents=True, exist_ok=True)
    old = load_results(module) or {}  # every shard's results: a mutant run once is never run again
    same_source = bool(old) and source_digest(old) == digest((ROOT / module.path).read_text(encoding="utf-8"))
    done: dict[str, dict] = old.get("mutants", {}) if same_source else {}
    premutate(module, [m for m in mutants if m.id not in done or done[m.id]["status"] == "error"
                       or (survivors_only and done[m.id]["status"] == "survived")])
    restore(module)
    status, base_s, tail = run_tests(module.tests, timeout=3600)
    if status != "survived":
        raise SystemExit(f"{module.path}: the mapped tests fail without a mutant:\n{tail}")
    timeout = max(120.0, 10 * base_s)  # a loaded machine: slow is not a hang
    log(f"{module.path}: {len(mutants)} mutants, baseline {base_s:.0f} s, timeout {timeout:.0f} s")
    result = {"module": module.path, "tests": list(module.tests), "baseline_s": round(base_s, 1),
              "generated": generated, "source": (ROOT / module.path).read_text(encoding="utf-8"), "mutants": {}}
    lines = result["source"].splitlines()
    for i, mutant in enumerate(mutants, 1):
        prev = done.get(mutant.id)
        if prev and (not survivors_only or prev["status"] != "survived") and prev["status"] != "error":
            result["mutants"][mutant.id] = prev
            continue
        if survivors_only and prev is None:
            continue
        try:
            diff = apply(module, mutant)
            status, took, tail = run_tests(module.tests, timeout)
        except subprocess.CalledProcessError as exc:  # cosmic-ray cannot make it (`except (A, mod.B)`)
            diff, status, took = (exc.stderr or b"").decode(errors="replace").strip().splitlines()[-1:], "error", 0.0
            diff = "".join(diff)
        finally:
            restore(module)
        result["mutants"][mutant.id] = {"status": status, "line": mutant.line, "col": mutant.col,
                                        "seconds": round(took, 1), "source_line": lines[mutant.line - 1].strip(),
                                        "diff": diff}
        log(f"  [{i}/{len(mutants)}] {mutant.id} line {mutant.line}: {status} ({took:.0f} s)")
        store.write_text(json.dumps(result, indent=1))
    store.write_text(json.dumps(result, indent=1))
    return result


@dataclass(frozen=True)
class Summary:
    table: str  # the markdown table, one row per module and the total
    survivors: list[str]  # each survivor's heading and diff
    errors: list[str]  # mutants the tool could not apply


def summarise(modules: list[Module]) -> Summary:
    equivalent = load_equivalent()
    rows, details, errors = [], [], []
    totals = {"killed": 0, "survived": 0, "timeout": 0, "equivalent": 0}
    for module in modules:
        res = load_results(module)
        if res is None:
            rows.append(f"| {module.path} | not run | | | | | |")
            continue
        current = (ROOT / module.path).read_text(encoding="utf-8")
        stale = res["source_sha256"] != digest(current)
        count = {"killed": 0, "survived": 0, "timeout": 0, "equivalent": 0}
        spans = annotation_spans(res.get("source", current)) if not stale or "source" in res else []
        for mid, m in sorted(res["mutants"].items(), key=lambda kv: kv[1]["line"]):
            if "col" in m and in_spans((m["line"], m["col"]), spans):
                continue
            if m["status"] == "error":  # the tool could not apply it: no mutant, named under the table
                errors.append(f"{module.path}:{m['line']} {mid}: {m['diff']}")
                continue
            status = m["status"]
            why = equivalent_because(equivalent, module.path, mid, m)
            if status == "survived" and why:
                status = "equivalent"
            count[status] = count.get(status, 0) + 1
            if m["status"] == "survived":
                details.append(f"### {module.path}:{m['line']} {mid} ({'equivalent: ' + why if why else 'SURVIVED'})"
                               f"\n\n```diff\n{m['diff']}```\n")
        for k in totals:
            totals[k] += count[k]
        n = sum(count.values())
        score = (count["killed"] + count["timeout"]) / max(1, n - count["equivalent"])
        run = f"{n} / {res['generated']}" if "generated" in res else str(n)  # shards stopped early: a part run
        rows.append(f"| {module.path}{' (source changed since)' if stale else ''} | {run} | {count['killed']} | "
                    f"{count['survived']} | {count['equivalent']} | {count['timeout']} | {score:.0%} |")
    n = sum(totals.values())
    score = (totals["killed"] + totals["timeout"]) / max(1, n - totals["equivalent"])
    head = ("| module | mutants run / generated | killed | survived | equivalent | timeout | score |\n"
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    total = (f"| **all run** | {n} | {totals['killed']} | {totals['survived']} | {totals['equivalent']} | "
             f"{totals['timeout']} | {score:.0%} |")
    return Summary(f"{head}\n" + "\n".join(rows) + f"\n{total}\n", details, errors)


def report(modules: list[Module]) -> str:
    s = summarise(modules)
    return ("# Mutation report (cosmic-ray, mutation/run.py)\n\nScore = (killed + timeout) / (mutants − equivalent)."
            f"\n\n{s.table}\n"
            + ("Not generated (cosmic-ray could not apply them):\n\n" + "".join(f"- {e}\n" for e in s.errors) + "\n"
               if s.errors else "")
            + "## Survivors\n\n" + ("\n".join(s.survivors) or "none\n"))


TABLE_BEGIN, TABLE_END = "<!-- mutation-table: made by mutation/run.py -->", "<!-- mutation-table end -->"


def with_table(readme: str, table: str) -> str:
    """The README with its mutation table replaced by `table`: the score it shows is the committed verdicts',
    never typed by hand (tests/test_mutation_results.py fails when they differ)."""
    before, sep, rest = readme.partition(TABLE_BEGIN)
    _, sep2, after = rest.partition(TABLE_END)
    if not sep or not sep2:
        raise ValueError(f"README.md has no {TABLE_BEGIN} ... {TABLE_END} section")
    return f"{before}{TABLE_BEGIN}\n{table}{TABLE_END}{after}"


def record_check(module: Module, mutant_id: str, tests: tuple[str, ...], status: str) -> None:
    """A survivor that mapped test files now kill is killed in the module's results (same source only).

    Written to the module's checks file, never into a shard's: a shard running meanwhile rewrites its own file
    from what it loaded at its start, and the merge lets the check's kill win over its stale survivor."""
    res = load_results(module)
    if status != "killed" or res is None or res["source_sha256"] != digest((ROOT / module.path).read_text("utf-8")):
        return
    entry = res["mutants"].get(mutant_id)
    mapped = {t.split("::")[0] for t in module.tests}
    if entry is None or not all(t.split("::")[0] in mapped for t in tests):
        return
    store = checks_path(module)
    checks = json.loads(store.read_text()) if store.is_file() else None
    if checks is None or source_digest(checks) != res["source_sha256"]:
        checks = {**{k: v for k, v in res.items() if k not in ("mutants", "source")}, "mutants": {}}
    checks["mutants"][mutant_id] = {**entry, "status": "killed", "killed_by": list(tests)}
    tmp = store.with_name(f".{store.name}.tmp")  # outside the results glob; replaced whole, never half-written
    tmp.parent.mkdir(parents=True, exist_ok=True)  # a fresh clone has the committed verdicts, no working files
    tmp.write_text(json.dumps(checks, indent=1))
    os.replace(tmp, store)


def tree_name(chosen: list[Module]) -> str:
    """A readable name for a run's tree copy; a long list of modules is named by its hash (a file name ends at
    255 bytes)."""
    name = "-".join(m.path.replace("/", "_") for m in chosen)
    return name if len(name) <= 120 else "modules-" + hashlib.sha256(name.encode()).hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modules", nargs="*", help="module paths of mutation/modules.toml (default: all)")
    ap.add_argument("--survivors", action="store_true", help="re-run only last run's survivors")
    ap.add_argument("--check", nargs="+", metavar="ARG", help="MODULE MUTANT_ID [TEST ...]")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--shard", metavar="K/N", help="only every N-th mutant from the K-th (0-based), own results file")
    args = ap.parse_args(argv)
    modules = load_modules()
    by_path = {m.path: m for m in modules}

    def log(msg: str) -> None:
        print(msg, flush=True)

    global TREE
    if args.check:
        TREE = OUT / "check-tree"  # beside a running `make mutation`, never in its copy
        module = by_path[args.check[0]]
        operator, occurrence = args.check[1].rsplit("#", 1)
        tests = tuple(args.check[2:]) or module.tests
        copy_tree()
        mutant = Mutant(operator, int(occurrence), 0)
        try:
            print(apply(module, mutant))
            status, took, tail = run_tests(tests, timeout=3600)
        finally:
            restore(module)
        print(f"{tail}\n{args.check[1]} against {' '.join(tests)}: {status} ({took:.0f} s)")
        record_check(module, args.check[1], tests, status)
        keep_results([module])
        return 0 if status == "killed" else 1
    if not args.report_only:
        chosen = [by_path[p] for p in args.modules] if args.modules else modules
        # One copy per set of modules: two runs over different modules can go side by side.
        shard = tuple(int(x) for x in args.shard.split("/")) if args.shard else None
        name = tree_name(chosen) if args.modules else "all"
        TREE = OUT / "trees" / (name + (f"-{shard[0]}of{shard[1]}" if shard else ""))
        copy_tree()
        for module in chosen:
            run_module(module, survivors_only=args.survivors, log=log, shard=shard)
    keep_results(modules)
    text = report(modules)
    (OUT / "report.md").parent.mkdir(parents=True, exist_ok=True)
    (OUT / "report.md").write_text(text, encoding="utf-8")
    (HERE / "report.md").write_text(text, encoding="utf-8")  # committed beside the verdicts it is made of
    readme = ROOT / "README.md"
    readme.write_text(with_table(readme.read_text(encoding="utf-8"), summarise(modules).table), encoding="utf-8")
    log(f"report: {OUT / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
