"""The committed schemas match the models and accept what the models accept; examples are valid."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
from referencing import Registry, Resource
from ruamel.yaml import YAML

from compiler.schema_export import BASE_ID, schema_files
from compiler.validate.pipeline import validate
from tests.conftest import EXAMPLE_DIRS, EXAMPLES, ROOT

SCHEMAS = ROOT / "schemas"


def test_committed_schemas_match_the_models():
    generated = schema_files()
    committed = {p.name: p.read_text(encoding="utf-8") for p in SCHEMAS.glob("*.json")}
    stale = sorted(n for n in generated.keys() | committed.keys() if generated.get(n) != committed.get(n))
    assert not stale, f"schemas drifted from the models, run `make schemas`: {stale}"


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


def test_example_models_are_reproducible(tmp_path: Path):
    """make_models.py regenerates byte-identical models, data and specs."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_models", EXAMPLES / "make_models.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    for name, build in (("press-line-anomaly", mod.press_line), ("visual-inspection", mod.visual_inspection)):
        copy = tmp_path / name
        shutil.copytree(EXAMPLES / name, copy)
        build(copy)
        for original in sorted((EXAMPLES / name).rglob("*")):
            if original.is_file():
                rel = original.relative_to(EXAMPLES / name)
                assert (copy / rel).read_bytes() == original.read_bytes(), rel


def test_example_model_digests_match_the_files():
    import hashlib

    for example in EXAMPLE_DIRS:
        for doc in validate(example).index.valid("Model"):
            art = doc.model.spec.artifact
            assert hashlib.sha256((example / art.path).read_bytes()).hexdigest() == art.sha256
