"""Spec files loaded in worker processes give the validation a single process gives, finding for finding."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import compiler.validate.files as files_module
from compiler.validate.pipeline import ValidationResult, validate
from tests.conftest import BASE, write_repo

SECRET = "ghp_" + "a1B2" * 9


def _files() -> dict[str, str | bytes]:
    """BASE with findings of every per-file stage, spread over files, and references across them."""
    files = dict(BASE)
    files["deploy.yaml"] = str(BASE["deploy.yaml"]).replace(
        "metadata: {name: d}", "metadata: {name: d, annotations: {note: " + SECRET + "}}"
    )
    files["broken.yaml"] = (
        "apiVersion: takt/v1\nkind: Device\nmetadata: {name: ipc-2}\nspec: {target: ipc, colour: red}\n"
    )
    files["syntax.yaml"] = "apiVersion: takt/v1\nkind: Device\nmetadata: {name: [unclosed\n"
    files["latin1.yaml"] = "apiVersion: takt/v1\nkind: Device\nmetadata: {name: caf\xe9}\n".encode("latin-1")
    files["ignored.yaml"] = (
        "apiVersion: takt/v1\nkind: Device\nmetadata: {name: ipc-3}\n"
        "spec: {target: ipc, colour: blue}  # takt: ignore[TAKT1004]\n"
    )
    for n in range(12):  # enough files that each worker gets several, in chunks
        files[f"devices/dev-{n:02d}.yaml"] = (
            f"apiVersion: takt/v1\nkind: Device\nmetadata: {{name: dev-{n:02d}, labels: {{line: l{n % 3}}}}}\n"
            f"spec: {{target: {'ipc' if n % 4 else 'nowhere'}}}\n"
        )
    return files


_LOAD_BLOB = files_module._load_blob


def _refuse_some(task):
    """As if these outcomes could not be pickled (module level: the pool pickles it by name)."""
    return None if task[1].name.startswith("dev-0") else _LOAD_BLOB(task)


_TEST_PROCESS = os.getpid()


def _die_on_some(task):
    """A worker killed while it loads (out of memory, say): the whole pool breaks."""
    if task[1].name == "dev-07.yaml" and os.getpid() != _TEST_PROCESS:
        os._exit(137)
    return _LOAD_BLOB(task)


def _seen(r: ValidationResult) -> tuple:
    return (
        r.diagnostics,
        r.silenced,
        [(d.kind, d.name, d.model, d.file_path) for d in r.documents],
        r.files,
        {k: v.text for k, v in r.sources.items()},
        r.index.unparsed,
    )


@pytest.fixture
def spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return write_repo(tmp_path / "spec", _files())


@pytest.fixture
def pools(worker_pools: list[int], monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every loading pool started (its worker count); any amount of text is enough to fork for."""
    monkeypatch.setattr(files_module, "MIN_PARALLEL_BYTES", 0)
    return worker_pools


def test_workers_report_what_one_process_reports(spec: Path, pools: list[int]):
    serial = validate(spec, use_cache=False, jobs=1)
    assert pools == []
    codes = {d.code for d in serial.diagnostics}
    assert {"TAKT0001", "TAKT0004", "TAKT1004", "TAKT1010", "TAKT3001"} <= codes and serial.silenced == 1
    pooled = validate(spec, use_cache=False, jobs=2)
    assert pools == [2]
    assert _seen(pooled) == _seen(serial)


def test_outcomes_loaded_by_workers_fill_the_cache_as_a_serial_run_does(spec: Path, pools: list[int]):
    cold = validate(spec, use_cache=False, jobs=1)
    filled = validate(spec, jobs=2)  # every file loaded in a worker and kept
    assert pools == [2]
    warm = validate(spec, jobs=2)  # every file from the cache: nothing to fork for
    assert pools == [2]
    assert _seen(filled) == _seen(warm) == _seen(cold)
    (spec / "devices" / "dev-03.yaml").write_text("apiVersion: takt/v1\nkind: Device\nmetadata: {name: dev-03}\n")
    changed = validate(spec, jobs=2)  # one file to load: no pool
    assert pools == [2]
    assert _seen(changed) == _seen(validate(spec, use_cache=False, jobs=1))


def test_a_file_whose_outcome_cannot_travel_back_is_loaded_here(spec: Path, pools: list[int], monkeypatch):
    monkeypatch.setattr(files_module, "_load_blob", _refuse_some)  # inherited by the forked workers
    serial = validate(spec, use_cache=False, jobs=1)
    pooled = validate(spec, jobs=2)
    assert pools == [2]
    assert _seen(pooled) == _seen(serial)
    assert _seen(validate(spec, jobs=2)) == _seen(serial)  # those files were cached from here


def test_a_worker_that_dies_leaves_its_files_to_this_process(spec: Path, pools: list[int], monkeypatch):
    serial = validate(spec, use_cache=False, jobs=1)
    monkeypatch.setattr(files_module, "_load_blob", _die_on_some)
    pooled = validate(spec, jobs=2)
    assert pools == [2]
    assert _seen(pooled) == _seen(serial)
    monkeypatch.setattr(files_module, "_load_blob", _LOAD_BLOB)
    assert _seen(validate(spec, jobs=2)) == _seen(serial)  # and every file was cached, once
    assert pools == [2]


def test_a_small_repo_never_forks(spec: Path, worker_pools: list[int]):
    validate(spec, use_cache=False, jobs=2)
    assert worker_pools == []  # a few KiB of YAML: loading them costs less than a pool
