"""The cache of parsed and validated spec files: never a different result, never trusted from elsewhere."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from compiler.build_cache import seal, user_cache_dir
from compiler.validate import doc_cache
from compiler.validate.doc_cache import DocumentCache, cache_path
from compiler.validate.pipeline import ValidationResult, validate
from tests.conftest import BASE, write_repo

NOISY = '{name: temp, dtype: float32, unit: degC, address: {nodeId: "nsu=urn:x;s=T"}}'
SILENCED = '{name: temp, dtype: float32, unit: degC, address: {nodeId: "ns=2;s=T"}}  # takt: ignore[TAKT2002]'


def _files() -> dict[str, str | bytes]:
    """BASE with an inline ignore, a finding left standing and a reference across files that dangles."""
    files = dict(BASE)
    files["sources.yaml"] = str(BASE["sources.yaml"]).replace(NOISY, SILENCED).replace('"nsu=urn:x;s=P"', '"ns=3;s=P"')
    files["deploy.yaml"] = str(BASE["deploy.yaml"]).replace("targets: [ipc]", "targets: [ipc, ipc-missing]")
    files["broken.yaml"] = (
        "apiVersion: takt/v1\nkind: Device\nmetadata: {name: ipc-2}\nspec: {target: ipc, colour: red}\n"
    )
    return files


def _seen(r: ValidationResult) -> tuple:
    return (r.diagnostics, r.silenced, [(d.kind, d.name, d.model) for d in r.documents], r.files)


@pytest.fixture
def spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return write_repo(tmp_path / "spec", _files())


def _cache_file(root: Path) -> Path:
    return cache_path(user_cache_dir(), root)


def test_warm_and_cold_validation_report_the_same_findings(spec: Path):
    cold = validate(spec, use_cache=False)
    codes = sorted(d.code for d in cold.diagnostics)
    assert "TAKT2002" in codes and "TAKT3001" in codes and "TAKT1004" in codes and cold.silenced == 1
    filling = validate(spec)
    assert _cache_file(spec).is_file()
    warm = validate(spec)
    assert _seen(cold) == _seen(filling) == _seen(warm)


def test_references_are_checked_across_the_repo_when_only_one_file_changed(spec: Path):
    validate(spec)
    (spec / "model.yaml").write_text(str(BASE["model.yaml"]).replace("metadata: {name: m}", "metadata: {name: m2}"))
    warm = validate(spec)  # deploy.yaml and tests.yaml come from the cache; their reference to m dangles now
    assert _seen(warm) == _seen(validate(spec, use_cache=False))
    assert any(
        d.code == "TAKT3001" and "'m'" in d.message and d.location.file.endswith("deploy.yaml")
        for d in warm.diagnostics
    )


def test_an_inline_ignore_added_to_an_unchanged_document_takes_effect(spec: Path):
    validate(spec)
    src = (spec / "sources.yaml").read_text().replace('"ns=3;s=P"}}', '"ns=3;s=P"}}  # takt: ignore[TAKT2002]')
    (spec / "sources.yaml").write_text(src)
    warm = validate(spec)
    assert _seen(warm) == _seen(validate(spec, use_cache=False)) and warm.silenced == 2


@pytest.mark.parametrize("damage", ["corrupt", "truncated", "foreign-secret", "other-version", "empty"])
def test_a_damaged_foreign_or_stale_cache_is_ignored_and_rebuilt(spec: Path, damage: str, monkeypatch):
    cold = validate(spec, use_cache=False)
    validate(spec)
    path = _cache_file(spec)
    raw = path.read_bytes()
    if damage == "corrupt":
        path.write_bytes(raw[:-40] + bytes(b ^ 0xFF for b in raw[-40:]))
    elif damage == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "foreign-secret":  # a valid cache of another user (or committed somewhere) never loads
        other = DocumentCache.load(path, b"x" * 32)
        assert other.entries == {}
    elif damage == "other-version":
        monkeypatch.setattr(doc_cache, "code_stamp", lambda: b"another takt")
    again = DocumentCache.load(path, _secret())
    if damage != "foreign-secret":
        assert again.entries == {}
    assert _seen(validate(spec)) == _seen(cold)
    assert _seen(validate(spec)) == _seen(cold)


def test_a_forged_entry_under_another_secret_never_reaches_the_unpickler(spec: Path):
    """The payload is pickle: anything not sealed with the user's secret is refused before loading."""
    validate(spec)
    path = _cache_file(spec)
    evil = b"cos\nsystem\n(S'touch PWNED'\ntR."
    path.write_bytes(doc_cache.FORMAT + seal(b"y" * 32, doc_cache.FORMAT, evil) + evil)
    assert DocumentCache.load(path, _secret()).entries == {}
    validate(spec)
    assert not Path("PWNED").exists() and not (spec / "PWNED").exists()


def test_the_cache_is_outside_the_spec_tree_and_private(spec: Path):
    validate(spec)
    path = _cache_file(spec)
    assert not path.resolve().is_relative_to(spec.resolve())
    assert (os.stat(path).st_mode & 0o077) == 0


def _secret() -> bytes:
    from compiler.build_cache import load_secret

    return load_secret()
