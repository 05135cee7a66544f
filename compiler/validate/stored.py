"""Model artifacts and datasets held by DVC or MLflow: resolved to local files for the model checks,
with their lineage kept for the bundle; each refusal a located diagnostic."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compiler.bundle.tree import TreeError
from compiler.diagnostics import Diagnostic
from compiler.loader.yamldoc import Path_
from compiler.spec.model import Artifact
from compiler.stores import mlflow_models
from compiler.stores.locate import locate
from compiler.stores.located import Refused
from compiler.validate.document import SpecDocument


def inside(
    doc: SpecDocument, root: Path, rel: str, at: Path_, out: list[Diagnostic], what: str, lineage: dict[str, Any]
) -> Path | None:
    """The real file a spec path names (DVC's cached copy when DVC tracks it), or a located diagnostic."""
    try:
        found = locate(root, rel, verify=True)
    except FileNotFoundError:
        out.append(doc.diag("TAKT5001", f"{what} {rel!r} does not exist (paths are relative to the project root)", at))
    except TreeError as exc:
        out.append(doc.diag("TAKT5019", f"{what} {rel!r} {exc.reason}", at))
    except Refused as exc:
        out.append(doc.diag(exc.code, f"{what} {exc.message}", at))
    except OSError as exc:
        out.append(doc.diag("TAKT5001", f"cannot read {what} {rel!r}: {exc.strerror or exc}", at))
    else:
        if found.lineage:
            lineage[rel] = found.lineage
        return found.path
    return None


def remote_model(
    doc: SpecDocument,
    art: Artifact,
    cache: Path,
    env: Mapping[str, str],
    out: list[Diagnostic],
    lineage: dict[str, Any],
) -> Path | None:
    """An MLflow-held artifact fetched into the cache and pinned; None (with a diagnostic) otherwise."""
    assert art.uri is not None
    try:
        found = mlflow_models.resolve(art.uri, art.sha256, env.get(mlflow_models.ENV), cache)
    except Refused as exc:
        out.append(doc.diag(exc.code, exc.message, ("spec", "artifact", exc.at)))
        return None
    lineage[art.uri] = found.lineage
    return found.path


def is_mlflow(art: Artifact) -> bool:
    return art.uri is not None and mlflow_models.is_mlflow(art.uri)


def process_env() -> Mapping[str, str]:
    """MLFLOW_TRACKING_URI comes from the environment takt runs in, as MLflow's own tools take it."""
    return os.environ
