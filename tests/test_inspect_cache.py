"""The sealed cache of model inspections: the same facts as inspecting afresh, never trusted from elsewhere,
and `takt validate` on unchanged models imports no model or template library."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.build_cache import load_secret, seal
from compiler.models import inspect_cache
from compiler.models.digest import DigestCache
from compiler.models.inspect import ELEM_TYPES, ModelInfo, inspect_model
from compiler.models.inspect_cache import FILE_NAME, FORMAT, InspectCache
from compiler.validate.pipeline import validate
from tests.conftest import EXAMPLES, copy_example

MODEL = EXAMPLES / "press-line-anomaly" / "models" / "press_anomaly.onnx"


def _cache(directory: Path) -> InspectCache:
    return InspectCache.load(directory / FILE_NAME, load_secret(directory))


def test_the_literal_dtype_numbers_are_onnx_own():
    from onnx import TensorProto

    for number, name in ELEM_TYPES.items():
        assert TensorProto.DataType.Name(number).lower() == name


def test_a_cached_inspection_is_the_fresh_one(tmp_path: Path):
    model = tmp_path / "m.onnx"
    model.write_bytes(MODEL.read_bytes())
    digests = DigestCache(None)
    cold = _cache(tmp_path)
    first = cold.inspect(model, digests)
    cold.save()
    assert cold.misses == 1 and isinstance(first, ModelInfo)
    warm = _cache(tmp_path)
    again = warm.inspect(model, digests)
    assert warm.hits == 1 and warm.misses == 0
    assert again == first == inspect_model(model)
    other = tmp_path / "copy.onnx"  # same bytes elsewhere: a hit, labelled with its own path
    other.write_bytes(model.read_bytes())
    assert warm.inspect(other, digests) == inspect_model(other)


def test_a_changed_model_is_inspected_again(tmp_path: Path):
    model = tmp_path / "m.onnx"
    model.write_bytes(MODEL.read_bytes())
    cache = _cache(tmp_path)
    cache.inspect(model, DigestCache(None))
    model.write_bytes(b"not a model at all")
    got = cache.inspect(model, DigestCache(None))
    assert cache.misses == 2 and got == inspect_model(model)


@pytest.mark.parametrize("damage", ["corrupt", "truncated", "empty", "foreign-secret", "other-version", "forged"])
def test_a_damaged_foreign_forged_or_stale_cache_is_ignored_and_rebuilt(tmp_path: Path, damage: str, monkeypatch):
    model = tmp_path / "m.onnx"
    model.write_bytes(MODEL.read_bytes())
    cache = _cache(tmp_path)
    cache.inspect(model, DigestCache(None))
    cache.save()
    path = tmp_path / FILE_NAME
    raw = path.read_bytes()
    if damage == "corrupt":
        path.write_bytes(raw[:-40] + bytes(b ^ 0xFF for b in raw[-40:]))
    elif damage == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "foreign-secret":
        assert InspectCache.load(path, b"x" * 32).entries == {}
        return
    elif damage == "other-version":
        monkeypatch.setattr(inspect_cache, "code_stamp", lambda: b"another takt")
    elif damage == "forged":  # pickle under another secret: refused before the unpickler sees it
        evil = pickle.dumps((inspect_cache.code_stamp(), {"0" * 64: b"cos\nsystem\n(S'touch PWNED'\ntR."}))
        path.write_bytes(FORMAT + seal(b"y" * 32, FORMAT, evil) + evil)
    again = _cache(tmp_path)
    assert again.entries == {}
    assert again.inspect(model, DigestCache(None)) == inspect_model(model) and again.misses == 1
    again.save()
    assert _cache(tmp_path).inspect(model, DigestCache(None)) == inspect_model(model)
    assert not (tmp_path / "PWNED").exists()


def test_warm_validation_reports_what_cold_validation_does(tmp_path: Path):
    spec = copy_example("press-line-anomaly", tmp_path / "spec")
    cold = validate(spec, use_cache=False)
    validate(spec, cache_dir=tmp_path / "cache")
    warm = validate(spec, cache_dir=tmp_path / "cache")
    assert warm.diagnostics == cold.diagnostics
    assert warm.models.infos == cold.models.infos and warm.models.runtime == cold.models.runtime


_PROBE = """
import atexit, sys
seen = sys.argv[1]
atexit.register(lambda: open(seen, "w").write(" ".join(sorted(sys.modules))))
from compiler.cli.main import main
sys.argv = ["takt", *sys.argv[2:]]
main()
"""


def _modules_of_cli(tmp_path: Path, *args: str, top_level: bool = True) -> set[str]:
    """The (top-level) modules a real `takt` process had imported when it exited."""
    seen = tmp_path / "modules.txt"
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(seen), *args], env=env, capture_output=True, text=True)
    assert seen.is_file(), proc.stderr
    return {m for m in seen.read_text().split() if not top_level or "." not in m}


@pytest.mark.slow
def test_takt_help_and_validate_never_import_onnx_onnxruntime_or_jinja2(tmp_path: Path):
    spec = copy_example("press-line-anomaly", tmp_path / "spec")
    heavy = {"onnx", "onnxruntime", "jinja2"}
    assert "click" in _modules_of_cli(tmp_path, "--help")
    assert not _modules_of_cli(tmp_path, "--help") & heavy
    # a cold validation inspects the models with onnx's compiled core only: no onnx/__init__, numpy or ml_dtypes
    first = _modules_of_cli(tmp_path, "validate", str(spec), "--no-progress", top_level=False)
    assert {"onnx.onnx_cpp2py_export", "onnx.onnx_ml_pb2"} <= first
    assert not first & {*heavy, "ml_dtypes", "onnx.helper", "onnx.checker"}
    warm = _modules_of_cli(tmp_path, "validate", str(spec), "--no-progress")
    assert "compiler" in warm and not warm & heavy
    (spec / "specs" / "targets.yaml").write_text((spec / "specs" / "targets.yaml").read_text() + "\n")
    assert not _modules_of_cli(tmp_path, "validate", str(spec), "--no-progress") & heavy  # a spec change, same models
