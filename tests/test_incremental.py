"""Incremental builds: after each kind of change, warm caches give the bytes and findings of a cold build."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from compiler.build import build
from compiler.build_cache import load_secret, seal, user_cache_dir
from compiler.diagnostics import Diagnostic
from compiler.validate import probe_cache
from compiler.validate.pipeline import validate
from compiler.validate.probe_cache import FILE_NAME, ProbeCache
from tests.conftest import copy_example, load_free_latency

Tree = dict[str, bytes]


def _tree(out: Path) -> Tree:
    strip = {".takt-build.json"}  # sealed with each user's secret: the one file that may differ
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.relative_to(out).as_posix() not in strip
    }


def _warm(root: Path, out: Path) -> tuple[list[Diagnostic], Tree]:
    result = validate(root)
    build(result, out, run_gates=False, jobs=1)
    return result.diagnostics, _tree(out)


def _cold(root: Path, out: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Diagnostic], Tree]:
    with monkeypatch.context() as m:
        m.setenv("XDG_CACHE_HOME", str(out.parent / f"{out.name}-fresh-user"))  # another secret: nothing reused
        shutil.rmtree(root / ".takt-cache", ignore_errors=True)
        result = validate(root, use_cache=False)
        build(result, out, run_gates=False, jobs=1)
        return result.diagnostics, _tree(out)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new))


def _model_change(root: Path) -> None:
    _edit(root / "specs" / "model.yaml", 'version: "1.3.0"', 'version: "1.3.1"')


def _target_change(root: Path) -> None:
    _edit(root / "specs" / "targets.yaml", "unit: {user: takt, nice: -5}", "unit: {user: takt, nice: -3}")


def _rename_referenced(root: Path) -> None:
    _edit(root / "specs" / "model.yaml", "name: press-anomaly\n", "name: press-anomaly-v2\n")


def _deleted_file(root: Path) -> None:
    (root / "specs" / "policies.yaml").unlink()


def _dataset_change(root: Path) -> None:
    """New bytes (the header alone) under an updated pin: the probe of the old bytes must not answer."""
    data = root / "data" / "reference.csv"
    old_sha = hashlib.sha256(data.read_bytes()).hexdigest()
    data.write_text(data.read_text().splitlines()[0] + "\n")
    _edit(root / "specs" / "tests.yaml", old_sha, hashlib.sha256(data.read_bytes()).hexdigest())


def _unpinned_dataset_change(root: Path) -> None:
    """New values in a reference dataset the suite does not pin: the bins of edge bundles come from its bytes."""
    tests = root / "specs" / "tests.yaml"
    tests.write_text("".join(line for line in tests.read_text().splitlines(True) if "sha256:" not in line))
    _warm(root, root.parent / "warm")  # the unpinned spec built once, so only the bytes change below
    data = root / "data" / "reference.csv"
    head, *rows = data.read_text().splitlines()
    shifted = [",".join([c[0], str(float(c[1]) * 3 + 50), *c[2:]]) for c in (r.split(",") for r in rows)]
    data.write_text("\n".join([head, *shifted]) + "\n")


CHANGES: dict[str, Callable[[Path], None]] = {
    "model": _model_change,
    "target": _target_change,
    "rename-referenced": _rename_referenced,
    "deleted-file": _deleted_file,
    "dataset": _dataset_change,
    "unpinned-dataset": _unpinned_dataset_change,
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_warm_build_after_a_change_is_the_cold_build_byte_for_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
):
    root = load_free_latency(copy_example("press-line-anomaly", tmp_path / "spec"))
    for _ in range(2):  # fill every cache: documents, digests, inspections, probes, bundles
        _warm(root, tmp_path / "warm")
    CHANGES[change](root)
    warm = _warm(root, tmp_path / "warm")
    cold = _cold(root, tmp_path / "cold", monkeypatch)
    assert warm[0] == cold[0]
    assert warm[1] == cold[1]
    if change == "rename-referenced":  # the reference left behind still dangles, located, on the warm path
        dangling = [d for d in warm[0] if d.code == "TAKT3001" and "'press-anomaly'" in d.message]
        assert {d.location.file.rsplit("/", 1)[-1] for d in dangling} >= {"deployment.yaml", "tests.yaml"}
        assert all(d.location.line > 0 for d in dangling)
    if change == "dataset":
        assert any(d.code == "TAKT5023" for d in warm[0]), "a dataset left without rows went unnoticed"


def _probes_file() -> Path:
    return user_cache_dir() / FILE_NAME


@pytest.mark.parametrize("damage", ["corrupt", "truncated", "foreign-secret", "other-version", "forged"])
def test_a_damaged_foreign_or_stale_probe_cache_is_ignored_and_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
):
    root = copy_example("press-line-anomaly", tmp_path / "spec")
    cold = validate(root, use_cache=False).diagnostics
    validate(root)
    path = _probes_file()
    raw = path.read_bytes()
    secret = load_secret()
    assert ProbeCache.load(path, secret).entries, "a validation with datasets keeps their probes"
    if damage == "corrupt":
        path.write_bytes(raw[:-40] + bytes(b ^ 0xFF for b in raw[-40:]))
    elif damage == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "foreign-secret":
        assert ProbeCache.load(path, b"x" * 32).entries == {}
    elif damage == "other-version":
        monkeypatch.setattr(probe_cache, "code_stamp", lambda: b"another takt")
    elif damage == "forged":  # pickle under another secret: refused before the unpickler sees it
        evil = b"cos\nsystem\n(S'touch PWNED'\ntR."
        path.write_bytes(probe_cache.FORMAT + seal(b"y" * 32, probe_cache.FORMAT, evil) + evil)
    if damage != "foreign-secret":
        assert ProbeCache.load(path, secret).entries == {}
    monkeypatch.chdir(tmp_path)
    assert validate(root).diagnostics == cold
    assert validate(root).diagnostics == cold
    assert not (tmp_path / "PWNED").exists()


def test_a_probe_is_cached_by_the_bytes_and_format_never_by_the_path(tmp_path: Path):
    """Same bytes read as another format is another entry; the tree's errors (a missing file) are not cached."""
    cache = ProbeCache(None)
    calls: list[str] = []

    def run(fmt: str) -> Callable[[], probe_cache.Probe]:
        def go() -> probe_cache.Probe:
            calls.append(fmt)
            return probe_cache.Probe(fmt, (), 3)

        return go

    assert cache.probe("a" * 64, "csv", run("csv"), lambda: True) == probe_cache.Probe("csv", (), 3)
    assert cache.probe("a" * 64, "csv", run("csv"), lambda: True) == probe_cache.Probe("csv", (), 3)
    assert cache.probe("a" * 64, "parquet", run("parquet"), lambda: True).format == "parquet"
    assert calls == ["csv", "parquet"]
    changed = cache.probe("b" * 64, "csv", run("csv"), lambda: False)  # rewritten while probed: not kept
    assert changed.format == "csv" and f"{'b' * 64}:csv" not in cache.entries


def _fresh_process(script: str, tmp_path: Path) -> list[str]:
    """The words `script` prints, run by a new interpreter with its own per-user cache under `tmp_path`."""
    env = {"PATH": os.defpath, "XDG_CACHE_HOME": str(tmp_path / "user-cache"), "HOME": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    return run.stdout.split()


def test_a_warm_validation_imports_neither_numpy_nor_pyarrow(tmp_path: Path):
    """A real process: with every dataset's probe cached, validation of an unchanged repo never loads them."""
    root = copy_example("press-line-anomaly", tmp_path / "spec")
    script = (
        "import sys; from pathlib import Path; from compiler.validate.pipeline import validate\n"
        f"r = validate(Path({str(root)!r}))\n"
        "print(len(r.diagnostics), 'numpy' in sys.modules, 'pyarrow' in sys.modules)\n"
    )
    first, second = runs = [_fresh_process(script, tmp_path) for _ in range(2)]
    assert first[0] == second[0]
    assert first[2] == "True", "the first validation probes the datasets (pyarrow)"
    assert second[1:] == ["False", "False"], runs


def test_a_build_by_other_compiler_code_of_the_same_version_renders_every_bundle_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import compiler.build as build_module

    root = load_free_latency(copy_example("press-line-anomaly", tmp_path / "spec"))
    first = build(validate(root), tmp_path / "out", run_gates=False, jobs=1)
    again = build(validate(root), tmp_path / "out", run_gates=False, jobs=1)
    assert first.bundles and all(b.reused for b in again.bundles)
    monkeypatch.setattr(build_module, "_render_code", lambda: "0" * 64)  # an edited renderer, same version
    edited = build(validate(root), tmp_path / "out", run_gates=False, jobs=1)
    assert not any(b.reused for b in edited.bundles)


def test_the_render_code_stamp_follows_every_source_file_and_library_version(tmp_path: Path):
    from compiler.build import render_code_stamp

    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "a.py").write_text("A = 1\n")
    (tmp_path / "pkg" / "sub" / "b.py").write_text("B = 1\n")
    (tmp_path / "pkg" / "notes.txt").write_text("not code\n")
    stamp = render_code_stamp(tmp_path, ("pkg",), ("pytest",))
    assert render_code_stamp(tmp_path, ("pkg",), ("pytest",)) == stamp
    (tmp_path / "pkg" / "notes.txt").write_text("still not code\n")
    assert render_code_stamp(tmp_path, ("pkg",), ("pytest",)) == stamp
    (tmp_path / "pkg" / "sub" / "b.py").write_text("B = 2\n")
    edited = render_code_stamp(tmp_path, ("pkg",), ("pytest",))
    assert edited != stamp
    assert render_code_stamp(tmp_path, ("pkg",), ("pytest", "no-such-dist-takt")) != edited
    assert render_code_stamp(tmp_path, ("pkg",), ()) != edited  # the library's version counts


def _references(out: Path) -> dict[str, dict[str, str]]:
    import json

    return json.loads((out / ".takt-build.json").read_text())["references"]


def _edge_runner_json(tree: Tree) -> list[bytes]:
    return [data for name, data in sorted(tree.items()) if name.endswith("/runner.json")]


def test_an_incremental_edge_render_reads_no_dataset_and_imports_neither_numpy_nor_pyarrow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A real process: the drift reference statistics of the re-rendered bundles come from the build cache,
    and the bundles are those of a cold build."""
    root = load_free_latency(copy_example("press-line-anomaly", tmp_path / "spec"))
    script = (
        "import sys; from pathlib import Path; from compiler.validate.pipeline import validate\n"
        "from compiler.build import build\n"
        f"r = build(validate(Path({str(root)!r})), Path({str(tmp_path / 'out')!r}), run_gates=False, jobs=1)\n"
        "print(sum(not b.reused for b in r.bundles), 'numpy' in sys.modules, 'pyarrow' in sys.modules)\n"
    )
    first = _fresh_process(script, tmp_path)
    assert int(first[0]) >= 2 and first[1] == "True", "the first build bins the reference dataset"
    _model_change(root)
    again = _fresh_process(script, tmp_path)
    assert int(again[0]) >= 2 and again[1:] == ["False", "False"], again
    warm = _tree(tmp_path / "out")
    assert any(b'"fractions"' in data for data in _edge_runner_json(warm)), "the edge bundles carry bins"
    assert warm == _cold(root, tmp_path / "cold", monkeypatch)[1]


@pytest.mark.parametrize("damage", ["forged", "sealed-garbage"])
def test_a_forged_or_undecodable_reference_entry_is_computed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
):
    """A repository that ships its build directory may plant other bins under a real key: without the
    user's seal they miss. An entry that is sealed but does not decode is computed again and replaced."""
    import json

    from compiler.build_cache import BuildCache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    root = load_free_latency(copy_example("press-line-anomaly", tmp_path / "spec"))
    out = tmp_path / "out"
    build(validate(root), out, run_gates=False, jobs=1)
    cache_file = out / ".takt-build.json"
    doc = json.loads(cache_file.read_text())
    assert doc["references"], "the edge bundles' statistics are kept"
    secret = load_secret()
    for key, entry in doc["references"].items():
        if damage == "forged":
            planted = json.loads(entry["json"])
            planted["features"][0]["fractions"] = [1.0] + [0.0] * (len(planted["features"][0]["fractions"]) - 1)
            entry["json"] = json.dumps(planted)  # the old seal no longer matches; a forger has no secret
        else:
            entry["json"] = '{"not": "a reference"}'
            entry["mac"] = BuildCache(cache_file, secret)._reference_mac(key, entry["json"])
    cache_file.write_text(json.dumps(doc))
    _model_change(root)
    result = build(validate(root), out, run_gates=False, jobs=1)
    assert any(not b.reused for b in result.bundles)
    assert _tree(out) == _cold(root, tmp_path / "cold", monkeypatch)[1]
    assert _references(out).keys() == doc["references"].keys()
    assert all(e["json"] != doc["references"][k]["json"] for k, e in _references(out).items())


def test_the_statistics_of_bundles_not_rendered_again_stay_in_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The next change may be to another deployment: the statistics of those not rendered must still be there."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    root = load_free_latency(copy_example("press-line-anomaly", tmp_path / "spec"))
    specs = root / "specs"
    suite = (specs / "tests.yaml").read_text()  # a second deployment, gated on a copy of the suite: its own key
    (specs / "tests-two.yaml").write_text(suite.replace("name: press-anomaly-acceptance", "name: acceptance-two"))
    two = (specs / "deployment.yaml").read_text().replace("name: press-anomaly-muc", "name: press-anomaly-two")
    (specs / "deployment-two.yaml").write_text(two.replace("press-anomaly-acceptance", "acceptance-two"))
    out = tmp_path / "out"
    first = build(validate(root), out, run_gates=False, jobs=1)
    assert {b.deployment for b in first.bundles} == {"press-anomaly-muc", "press-anomaly-two"}
    kept = _references(out)
    assert len(kept) == 2
    _edit(specs / "deployment.yaml", "cpu: 500m", "cpu: 750m")
    again = build(validate(root), out, run_gates=False, jobs=1)
    assert {b.deployment for b in again.bundles if not b.reused} == {"press-anomaly-muc"}
    assert _references(out) == kept


def test_statistics_of_a_file_that_changed_after_it_was_keyed_are_never_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The key holds the sha256 taken before the dataset was read; bins read from other bytes (the file
    changed in between) must not be kept under it, or the old bytes back would get the new bytes' bins."""
    import dataclasses

    from compiler.render import reference

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    real = reference.compute_reference

    def read_other_bytes(request: reference.ReferenceRequest):
        value = real(request)
        return dataclasses.replace(value, sha256="0" * 64) if value is not None else None

    root = load_free_latency(copy_example("press-line-anomaly", tmp_path / "spec"))
    monkeypatch.setattr(reference, "compute_reference", read_other_bytes)
    assert build(validate(root), tmp_path / "out", run_gates=False, jobs=1).bundles
    assert _references(tmp_path / "out") == {}
    monkeypatch.setattr(reference, "compute_reference", real)
    _model_change(root)
    build(validate(root), tmp_path / "out", run_gates=False, jobs=1)
    assert len(_references(tmp_path / "out")) == 1
