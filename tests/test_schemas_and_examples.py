"""The committed schemas match the models and accept what the models accept; examples are valid."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import ModuleType

import jsonschema
import numpy as np
import pytest
from referencing import Registry, Resource
from ruamel.yaml import YAML

from compiler.schema_export import BASE_ID, schema_files
from compiler.validate.pipeline import validate
from tests.conftest import EXAMPLE_DIRS, EXAMPLES, ROOT, copy_example, load_free_latency

SCHEMAS = ROOT / "schemas"


def test_committed_schemas_match_the_models():
    generated = schema_files()
    committed = {p.name: p.read_text(encoding="utf-8") for p in SCHEMAS.glob("*.json")}
    stale = sorted(n for n in generated.keys() | committed.keys() if generated.get(n) != committed.get(n))
    assert not stale, f"schemas drifted from the models, run `make schemas`: {stale}"


def test_committed_spec_reference_matches_the_models():
    from compiler.spec_reference import reference_markdown

    committed = (ROOT / "docs/spec-reference.md").read_text(encoding="utf-8")
    assert committed == reference_markdown(), "docs/spec-reference.md drifted from the models, run `make schemas`"


def test_spec_reference_names_every_field_of_every_kind():
    """Each property of every object in the editor schema has its row in the reference."""
    from compiler.spec_reference import reference_markdown

    text = reference_markdown()
    for name, body in schema_files().items():
        if name in ("takt.json", "runner.json"):
            continue
        schema = json.loads(body)
        for obj in schema.get("$defs", {}).values():  # the envelope (apiVersion, kind, metadata, spec) is the prose
            for key in obj.get("properties", {}):
                assert f"| `{key}` |" in text, (name, key)


def _validator() -> jsonschema.Draft202012Validator:
    files = schema_files()
    registry = Registry().with_resources(
        (BASE_ID + name, Resource.from_contents(json.loads(text))) for name, text in files.items()
    )
    return jsonschema.Draft202012Validator(json.loads(files["takt.json"]), registry=registry)


def _documents(example: Path):
    yaml = YAML(typ="safe")
    for path in sorted((example / "specs").glob("*.yaml")):
        yield from yaml.load_all(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("example", EXAMPLE_DIRS, ids=lambda p: p.name)
def test_examples_validate_clean(example: Path):
    result = validate(example)
    assert result.diagnostics == []
    assert len(result.documents) >= 6
    assert {d.kind for d in result.documents} >= {"DataSource", "Model", "TestSuite", "Target", "Device", "Deployment"}


@pytest.mark.parametrize("example", EXAMPLE_DIRS, ids=lambda p: p.name)
def test_editor_schema_accepts_examples_and_rejects_typos(example: Path):
    validator = _validator()
    for doc in _documents(example):
        errors = list(validator.iter_errors(doc))
        assert not errors, (doc["kind"], errors[0].message)
        broken = json.loads(json.dumps(doc))
        broken["spec"]["unknownKey"] = 1
        assert list(validator.iter_errors(broken)), doc["kind"]


# --- the examples' generator -------------------------------------------------------------------
# make_models.py computes weights and outputs with numpy, whose BLAS picks its kernels by CPU (and
# numpy builds differ too): on another machine the same seed gives floats a few ulps apart. So the
# committed files are compared with what the generator writes here by structure exactly and by
# float values within a tolerance; byte-identity is asserted where it is Takt's claim: the same
# generator run twice in one environment writes the same bytes.

GENERATORS = {
    "press-line-anomaly": "press_line",
    "visual-inspection": "visual_inspection",
    "motor-current": "motor_current",
    "soft-sensor": "soft_sensor",
}
# float32 weights and outputs. Measured, OpenBLAS Prescott or Sandybridge kernels against Haswell: at most
# 2e-6 relative (on probabilities near 0) and 1.9e-6 absolute (on head weights near 30); a changed seed,
# formula or constant moves values by far more.
RTOL, ATOL = 1e-4, 1e-6
_DIGEST = re.compile(r"\b[0-9a-f]{64}\b")


def _generator() -> ModuleType:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_models", EXAMPLES / "make_models.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def _files(root: Path) -> dict[str, bytes]:
    """Every file of an example, without caches (dot directories) that validation leaves behind."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    }


def _hand_written(rel: str) -> bool:
    """The project file, the specs (an update's too) and the READMEs are written by people; the generator
    only fills in the specs' digests."""
    return rel == "takt.yaml" or rel.startswith("specs/") or "/specs/" in rel or rel.endswith("README.md")


def _seed(example: str, dst: Path) -> Path:
    """An empty example: the hand-written files with every digest blanked, and the empty folders."""
    for rel, data in _files(EXAMPLES / example).items():
        path = dst / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if _hand_written(rel):
            path.write_text(_DIGEST.sub("0" * 64, data.decode("utf-8")), encoding="utf-8")
    return dst


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    assert set(GENERATORS) == {p.name for p in EXAMPLE_DIRS}, "every example has a generator"
    mod, out = _generator(), tmp_path_factory.mktemp("generated")
    for example, func in GENERATORS.items():
        getattr(mod, func)(_seed(example, out / example))
    return {example: out / example for example in GENERATORS}


def _close(rel: str, what: str, got: np.ndarray, want: np.ndarray) -> None:
    assert (got.dtype, got.shape) == (want.dtype, want.shape), (rel, what, got.dtype, got.shape, want.shape)
    if np.issubdtype(want.dtype, np.floating):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=f"{rel}: {what}")
    else:
        np.testing.assert_array_equal(got, want, err_msg=f"{rel}: {what}")


def _same_onnx(rel: str, got: bytes, want: bytes) -> None:
    """Initializers within tolerance; everything else (graph, names, types, shapes, opsets) exactly."""
    import onnx
    from onnx import numpy_helper

    models = [onnx.load_from_string(got), onnx.load_from_string(want)]
    inits = [list(m.graph.initializer) for m in models]
    assert [i.name for i in inits[0]] == [i.name for i in inits[1]], rel
    for a, b in zip(*inits, strict=True):
        _close(rel, a.name, numpy_helper.to_array(a), numpy_helper.to_array(b))
    for m in models:
        for init in m.graph.initializer:
            init.ClearField("raw_data")
            init.ClearField("float_data")
    assert models[0].SerializeToString(deterministic=True) == models[1].SerializeToString(deterministic=True), rel


def _same_npz(rel: str, got: bytes, want: bytes) -> None:
    with np.load(io.BytesIO(got)) as a, np.load(io.BytesIO(want)) as b:
        assert a.files == b.files, rel
        for key in b.files:
            _close(rel, key, a[key], b[key])


def _number(cell: str) -> int | Decimal | str:
    for kind in (int, Decimal):
        try:
            return kind(cell)
        except (ValueError, InvalidOperation):
            pass
    return cell


def _same_csv(rel: str, got: bytes, want: bytes) -> None:
    """Header, shape, text and integer cells exactly; decimals by at most one unit of their last digit.

    The generator prints 6 significant digits, so ulp-level differences can move only the last one;
    printing fewer digits, or any real change of the data, moves more.
    """
    rows = [list(csv.reader(io.StringIO(data.decode("utf-8")))) for data in (got, want)]
    assert rows[0][:1] == rows[1][:1], rel
    assert [len(r) for r in rows[0]] == [len(r) for r in rows[1]], rel
    for n, (a, b) in enumerate(zip(rows[0][1:], rows[1][1:], strict=True), start=2):
        for col, (x, y) in enumerate(zip(map(_number, a), map(_number, b), strict=True)):
            if isinstance(y, Decimal) and isinstance(x, Decimal):
                last = min(int(x.as_tuple().exponent), int(y.as_tuple().exponent))  # the finer last digit
                assert abs(x - y) <= Decimal(1).scaleb(last), (rel, n, col, x, y)
            else:
                assert x == y, (rel, n, col, x, y)


def _same_spec(rel: str, got: bytes, want: bytes, got_files: dict[str, bytes], want_files: dict[str, bytes]) -> None:
    """Spec text exactly, where each digest must be that of the file it names in its own example."""

    def named(text: str, files: dict[str, bytes]) -> str:
        digests = {hashlib.sha256(data).hexdigest(): f"<sha256 of {path}>" for path, data in files.items()}
        return _DIGEST.sub(lambda m: digests.get(m[0], m[0]), text)

    assert named(got.decode("utf-8"), got_files) == named(want.decode("utf-8"), want_files), rel


@pytest.mark.parametrize("example", sorted(GENERATORS))
def test_generator_writes_every_committed_file(example: str, generated: dict[str, Path]):
    """Generated from scratch: each committed file is produced, and equals the committed one."""
    got, want = _files(generated[example]), _files(EXAMPLES / example)
    assert sorted(want.keys() - got.keys()) == [], "committed but no longer generated"
    assert sorted(got.keys() - want.keys()) == [], "generated but not committed"
    compared = {".onnx": _same_onnx, ".npz": _same_npz, ".csv": _same_csv}
    for rel in want:
        if _hand_written(rel) and rel.endswith(".yaml"):
            _same_spec(rel, got[rel], want[rel], got, want)
        elif Path(rel).suffix in compared:
            compared[Path(rel).suffix](rel, got[rel], want[rel])
        else:
            assert got[rel] == want[rel], rel


@pytest.mark.slow
def test_generator_is_byte_reproducible(tmp_path: Path, generated: dict[str, Path]):
    """The same inputs give the same bytes: a fresh interpreter (another hash seed) writes what this one did."""
    for example in GENERATORS:
        _seed(example, tmp_path / example)
    code = (
        "import importlib.util, sys; from pathlib import Path; "
        "s = importlib.util.spec_from_file_location('make_models', sys.argv[1]); "
        "m = importlib.util.module_from_spec(s); s.loader.exec_module(m); "
        "[getattr(m, f)(Path(sys.argv[2]) / e) for e, f in zip(sys.argv[3::2], sys.argv[4::2])]"
    )
    args = [a for pair in GENERATORS.items() for a in pair]
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    cmd = [sys.executable, "-c", code, str(EXAMPLES / "make_models.py"), str(tmp_path), *args]
    subprocess.run(cmd, env=env, check=True)
    for example in GENERATORS:
        first, again = _files(generated[example]), _files(tmp_path / example)
        assert sorted(first) == sorted(again)
        for rel, data in first.items():
            assert again[rel] == data, (example, rel)


def test_example_model_digests_match_the_files():
    import hashlib

    for example in EXAMPLE_DIRS:
        for doc in validate(example).index.valid("Model"):
            art = doc.model.spec.artifact
            assert hashlib.sha256((example / art.path).read_bytes()).hexdigest() == art.sha256


# --- every example passes the user's three commands ----------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLE_DIRS, ids=lambda p: p.name)
def test_example_passes_validate_test_and_build(example: Path, tmp_path: Path, cli_run):
    spec = load_free_latency(copy_example(example.name, tmp_path / "spec"))  # its subject: the commands, not the host
    for args in (["validate", str(spec)], ["test", str(spec)]):
        code, out = cli_run(*args)
        assert code == 0, (args[0], out)
    code, out = cli_run("build", str(spec), "--out", str(tmp_path / "out"), "--no-progress")
    assert code == 0, out
    deployments = {d.name for d in validate(spec).index.valid("Deployment")}
    assert deployments and all(f"rendered  {name}/" in out for name in deployments), out
    assert any((tmp_path / "out/bundles").iterdir())


@pytest.mark.slow
def test_soft_sensor_update_fails_its_gate_and_is_never_built(tmp_path: Path, cli_run):
    """The 1.1.0 update (updates/melt-index-1.1.0, laid over the repo as its README says) validates,
    fails the lab gate, and leaves no bundle: 1.0.0 keeps running on both plants."""
    spec = copy_example("soft-sensor", tmp_path / "spec")
    shutil.copytree(spec / "updates/melt-index-1.1.0", spec, dirs_exist_ok=True)
    load_free_latency(spec)  # the gate that must fail is lab-mae, never the host's load
    model = next(iter(validate(spec).index.valid("Model"))).model
    assert model.spec.version == "1.1.0"
    code, out = cli_run("validate", str(spec))
    assert code == 0, out
    code, out = cli_run("build", str(spec), "--out", str(tmp_path / "out"), "--no-progress")
    assert code == 1, out
    assert "blocked   melt-index-extrusion: gate melt-index-acceptance failed: lab-mae" in out, out
    bundles = tmp_path / "out/bundles"
    assert not bundles.exists() or not any(bundles.iterdir())
