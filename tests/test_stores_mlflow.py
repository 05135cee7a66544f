"""Models in MLflow: resolved through MLflow's client against a real `mlflow server` on 127.0.0.1
(sqlite backend, local artifact root), fetched once, pinned by sha256, their run carried into the bundle."""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
from pathlib import Path

import pytest

from compiler.build import build
from compiler.validate.pipeline import validate
from tests.conftest import BASE, TINY, TINY_SHA, write_repo
from tests.serverkit import MlflowServer

URI_LINE = f'artifact: {{path: models/m.onnx, sha256: "{TINY_SHA}"}}'


def _spec(tmp_path: Path, uri: str, sha: str = TINY_SHA) -> Path:
    model = BASE["model.yaml"].replace(URI_LINE, f'artifact: {{uri: "{uri}", sha256: "{sha}"}}')
    assert model != BASE["model.yaml"]
    return write_repo(tmp_path / "spec", _base_without("models/m.onnx") | {"model.yaml": model})


def _base_without(rel: str) -> dict[str, str | bytes]:
    return {k: v for k, v in BASE.items() if k != rel}


def _errors(result) -> list:
    return [d for d in result.diagnostics if d.severity.name == "ERROR"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("mlflow", reason="the optional extra 'mlflow' is not installed")
    srv = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    yield srv
    srv.stop()


def _register(server: MlflowServer, tmp_path: Path, name: str, content: bytes) -> tuple[str, str]:
    """A run with a param, a metric and the ONNX file, registered as a new version of `name`: (run id, version)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
    try:
        exp = client.create_experiment("takt")
    except MlflowException:
        exp = client.get_experiment_by_name("takt").experiment_id
    run = client.create_run(exp)
    run_id = run.info.run_id
    client.log_param(run_id, "window", "16")
    client.log_metric(run_id, "rmse", 0.25)
    model = tmp_path / "upload" / "m.onnx"
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_bytes(content)
    client.log_artifact(run_id, str(model))
    client.set_terminated(run_id)
    with contextlib.suppress(MlflowException):  # the name exists from an earlier test
        client.create_registered_model(name)
    mv = client.create_model_version(name, f"{run.info.artifact_uri}/m.onnx", run_id=run_id)
    return run_id, str(mv.version)


@pytest.mark.slow
def test_a_registered_model_is_resolved_fetched_once_and_its_run_goes_into_the_bundle(
    server: MlflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    run_id, version = _register(server, tmp_path, "press", TINY)
    root = _spec(tmp_path, f"models:/press/{version}")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    result = validate(root)
    assert not _errors(result), result.diagnostics
    stored = root / ".takt-cache/objects/sha256" / TINY_SHA
    assert result.models.artifacts["m"] == stored and stored.read_bytes() == TINY
    lineage = result.models.lineage[f"models:/press/{version}"]["mlflow"]
    assert lineage == {
        "uri": f"models:/press/{version}",
        "trackingUri": server.url,
        "runId": run_id,
        "modelVersion": version,
        "params": {"window": "16"},
        "metrics": {"rmse": 0.25},
    }
    built = build(result, tmp_path / "out", jobs=1, cache_secret_dir=tmp_path / "secret")
    assert built.bundles, built.blocked
    manifest = json.loads((tmp_path / "out/bundles" / built.bundles[0].digest / "MANIFEST.json").read_text())
    assert manifest["provenance"]["modelLineage"]["mlflow"]["runId"] == run_id
    assert manifest["provenance"]["model"]["sha256"] == TINY_SHA

    # a second run downloads nothing: the server's artifacts may go, the store has the pinned bytes
    for f in (server_dir := Path(server.log.name).parent / "artifacts").rglob("m.onnx"):
        f.unlink()
    assert server_dir.exists()
    again = validate(root)
    assert not _errors(again), again.diagnostics


@pytest.mark.slow
def test_a_runs_uri_is_resolved_too(server: MlflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    run_id, _ = _register(server, tmp_path, "press-runs", TINY)
    root = _spec(tmp_path, f"runs:/{run_id}/m.onnx")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    result = validate(root)
    assert not _errors(result), result.diagnostics
    assert result.models.lineage[f"runs:/{run_id}/m.onnx"]["mlflow"]["params"] == {"window": "16"}


@pytest.mark.slow
def test_threat_a_moved_version_is_a_located_error(server: MlflowServer, tmp_path: Path, monkeypatch):
    other = TINY + b"\x00"  # other bytes under the same name and version the spec pinned
    _, version = _register(server, tmp_path, "moved", other)
    root = _spec(tmp_path, f"models:/moved/{version}")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    found = [d for d in validate(root).diagnostics if d.code == "TAKT5027"]
    assert len(found) == 1 and hashlib.sha256(other).hexdigest() in found[0].message
    line = next(i for i, t in enumerate((root / "model.yaml").read_text().splitlines(), 1) if "models:/moved" in t)
    assert found[0].location.file.endswith("model.yaml") and found[0].location.line == line


@pytest.mark.slow
def test_threat_an_unknown_version_is_a_located_error(server: MlflowServer, tmp_path: Path, monkeypatch):
    root = _spec(tmp_path, "models:/nobody/7")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    found = [d for d in validate(root).diagnostics if d.code == "TAKT5026"]
    assert len(found) == 1 and "models:/nobody/7" in found[0].message, found
    line = next(i for i, t in enumerate((root / "model.yaml").read_text().splitlines(), 1) if "models:/nobody" in t)
    assert found[0].location.file.endswith("model.yaml") and found[0].location.line == line


def test_no_tracking_uri_is_a_located_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("mlflow", reason="the optional extra 'mlflow' is not installed")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = _spec(tmp_path, "models:/press/1")
    found = [d for d in validate(root).diagnostics if d.code == "TAKT5026"]
    assert len(found) == 1 and "MLFLOW_TRACKING_URI is not set" in found[0].message
    line = next(i for i, t in enumerate((root / "model.yaml").read_text().splitlines(), 1) if "models:/press" in t)
    assert found[0].location.file.endswith("model.yaml") and found[0].location.line == line


@pytest.mark.parametrize(("module", "extra"), [("mlflow", "mlflow"), ("dvc", "dvc")])
def test_without_the_extra_the_diagnostic_names_it(tmp_path: Path, monkeypatch, module: str, extra: str):
    for name in list(sys.modules):
        if name == module or name.startswith(f"{module}."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # `import mlflow` / `import dvc` now raises ImportError
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    if module == "mlflow":
        root = _spec(tmp_path, "models:/press/1")
        needle, file = "models:/press/1", "model.yaml"
    else:
        root = write_repo(tmp_path / "spec", _base_without("data/ref.csv") | {"data/ref.csv.dvc": DVC_FILE})
        needle, file = "data/ref.csv", "tests.yaml"
    found = [d for d in validate(root).diagnostics if d.code == "TAKT5024"]
    assert len(found) == 1 and f"pip install 'takt[{extra}]'" in found[0].message
    line = next(i for i, t in enumerate((root / file).read_text().splitlines(), 1) if needle in t)
    assert found[0].location.file.endswith(file) and found[0].location.line == line


DVC_FILE = """\
outs:
- md5: 401b30e3b8b5d629635a5c613cdb7919
  size: 2
  hash: md5
  path: ref.csv
"""


@pytest.mark.slow
def test_threat_a_fetch_onto_a_full_disk_keeps_nothing(server: MlflowServer, tmp_path: Path, monkeypatch):
    from compiler.stores.located import Refused
    from compiler.stores.mlflow_models import resolve
    from compiler.stores.objects import Disk
    from tests.test_hostile_data import _FullDisk

    _, version = _register(server, tmp_path, "full", TINY)
    cache = tmp_path / "cache"
    with pytest.raises(Refused) as refused:
        resolve(f"models:/full/{version}", TINY_SHA, server.url, cache, disk=_FullDisk(free=1 << 20))
    assert refused.value.code == "TAKT5028" and "free" in refused.value.message
    assert [p for p in cache.rglob("*") if p.is_file()] == []  # no object, no record, no download left behind

    root = _spec(tmp_path, f"models:/full/{version}")  # and through `takt validate`, located at the uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    monkeypatch.setattr(Disk, "free_bytes", lambda self, directory: 0)
    found = [d for d in validate(root).diagnostics if d.code == "TAKT5028"]
    line = next(i for i, t in enumerate((root / "model.yaml").read_text().splitlines(), 1) if "models:/full" in t)
    assert len(found) == 1 and found[0].location.line == line and found[0].location.file.endswith("model.yaml")
    objects = root / ".takt-cache/objects/sha256"
    assert not objects.exists() or not any(objects.iterdir())
