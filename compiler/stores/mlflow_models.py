"""Models held by MLflow: `models:/<name>/<version>` and `runs:/<run-id>/<path>` resolved through MLflow's own
client (the optional extra `mlflow`, i.e. mlflow-skinny), fetched once into the object store, pinned by sha256.

The server is asked every time (the version's run and source are cheap to read, and they carry the
lineage); the bytes are downloaded only when the store does not already hold what that version served
before. Bytes other than the sha256 the spec pins are refused: a registry version that moved is an
error, never a silently different model.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from compiler.bundle.atomic import write_atomic
from compiler.bundle.tree import TreeError, read_regular, walk
from compiler.stores.located import Located, Refused, bounded, missing_extra
from compiler.stores.objects import Disk, ObjectStore, StoreError

MODELS = re.compile(r"^models:/(?P<name>[^/\s]+)/(?P<version>\d+)$")
RUNS = re.compile(r"^runs:/(?P<run>[0-9a-zA-Z]{1,64})/(?P<path>\S+)$")
MAX_FILES = 1000  # a model directory downloaded from a hostile server: walked, never unbounded
ENV = "MLFLOW_TRACKING_URI"


def is_mlflow(uri: str) -> bool:
    return bool(MODELS.match(uri) or RUNS.match(uri))


def _public(uri: str) -> str:
    """The tracking URI without credentials, as it may appear in a bundle."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True)
class _Version:
    run_id: str
    source: str  # where the server says the bytes are (a file or a model directory); a change means download again
    version: str | None


def _describe(client: Any, uri: str) -> _Version:
    m = MODELS.match(uri)
    if m:
        mv = client.get_model_version(m["name"], m["version"])
        where = client.get_model_version_download_uri(m["name"], m["version"])  # a file source stays a file
        return _Version(str(mv.run_id or ""), str(where or mv.source or ""), str(mv.version))
    r = RUNS.match(uri)
    assert r is not None
    return _Version(r["run"], uri, None)


def _model_file(downloaded: Path) -> Path:
    if downloaded.is_file() and not downloaded.is_symlink():
        return downloaded
    onnx = []
    for n, entry in enumerate(walk(downloaded)):
        if n > MAX_FILES:
            raise Refused("TAKT5026", f"the artifact has more than {MAX_FILES} files", "uri")
        if entry.rel.endswith(".onnx"):
            onnx.append(downloaded / entry.rel)
    if len(onnx) != 1:
        raise Refused("TAKT5026", f"the artifact holds {len(onnx)} .onnx files, not exactly one", "uri")
    return onnx[0]


def resolve(uri: str, pinned: str, tracking_uri: str | None, cache: Path, disk: Disk | None = None) -> Located:
    """The model file in the object store under `cache`, with its MLflow lineage; Refused otherwise.
    `disk` is the seam a test makes full."""
    try:
        import mlflow.artifacts
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise missing_extra(f"artifact uri {uri}", "mlflow", "uri") from None
    if not tracking_uri:
        raise Refused("TAKT5026", f"{uri} names MLflow but {ENV} is not set", "uri")
    store = ObjectStore(cache / "objects", disk or Disk())
    key = hashlib.sha256(f"{tracking_uri} {uri}".encode()).hexdigest()
    record = cache / "mlflow" / f"{key}.json"
    try:
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        version = _describe(client, uri)
        run = client.get_run(version.run_id) if version.run_id else None
        seen = _read_record(record)
        same = seen.get("source") == version.source and seen.get("runId") == version.run_id
        path = store.get(seen["sha256"]) if same else None
        if path is None:
            cache.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix=".mlflow.", dir=cache) as tmp:
                got = mlflow.artifacts.download_artifacts(
                    artifact_uri=version.source, dst_path=tmp, tracking_uri=tracking_uri
                )
                path, sha = store.put_file(_model_file(Path(got)))
            seen = {"source": version.source, "runId": version.run_id, "sha256": sha}
            write_atomic(record, json.dumps(seen).encode())
        else:
            sha = seen["sha256"]
    except MlflowException as exc:
        said = " ".join(str(exc.message).split())[:300]
        raise Refused("TAKT5026", f"{uri} on {_public(tracking_uri)}: {said}", "uri") from None
    except StoreError as exc:
        raise Refused("TAKT5028", f"{uri}: {exc.reason}", "uri") from None
    except TreeError as exc:
        raise Refused("TAKT5026", f"{uri}: the download {exc.reason}", "uri") from None
    except OSError as exc:  # the server unreachable, or the download's disk full
        raise Refused("TAKT5026", f"{uri} on {_public(tracking_uri)}: {exc.strerror or exc}", "uri") from None
    if sha != pinned:
        raise Refused(
            "TAKT5027",
            f"{uri} now serves sha256 {sha}, not the pinned digest"
            f" (run {version.run_id or '?'}, source {version.source[:200]})",
            "sha256",
        )
    lineage: dict[str, Any] = {"uri": uri, "trackingUri": _public(tracking_uri), "runId": version.run_id}
    if version.version is not None:
        lineage["modelVersion"] = version.version
    if run is not None:
        lineage["params"] = bounded(dict(run.data.params))
        lineage["metrics"] = bounded(dict(run.data.metrics))
    return Located(path, {"mlflow": lineage})


def _read_record(path: Path) -> dict[str, str]:
    try:
        data = json.loads(read_regular(path, 4096))
    except (OSError, TreeError, ValueError):
        return {}
    ok = isinstance(data, dict) and all(isinstance(data.get(k), str) for k in ("source", "runId", "sha256"))
    return data if ok else {}
