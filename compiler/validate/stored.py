"""Where a file a spec names really is: inside the project, DVC's cached copy, or fetched from MLflow.

Resolution gives typed outcomes, never diagnostics: the model stage's checks (compiler/validate/models.py)
turn each kind of outcome into its own code, so a refusal is reported by one check whoever found it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler.bundle.tree import TreeError, regular_inside
from compiler.loader.yamldoc import Path_
from compiler.spec.model import Artifact
from compiler.stores import mlflow_models
from compiler.stores.locate import locate
from compiler.stores.located import Refused


@dataclass(frozen=True)
class Found:
    path: Path


@dataclass(frozen=True)
class Missing:
    """No such file (TAKT5001)."""


@dataclass(frozen=True)
class CannotRead:
    """The file is there but cannot be read (TAKT5031)."""

    reason: str


@dataclass(frozen=True)
class Escapes:
    """A link out of the project, a device or a FIFO (TAKT5019)."""

    reason: str


@dataclass(frozen=True)
class StoreRefused:
    """DVC or MLflow refused the file: its own code, message and the spec key it is located at."""

    code: str
    message: str
    at: Path_


@dataclass(frozen=True)
class DigestDiffers:
    """The file's sha256 is not the pinned one (TAKT5002)."""

    actual: str


Outcome = Found | Missing | CannotRead | Escapes | StoreRefused | DigestDiffers


def locate_file(root: Path, rel: str, at: Path_, what: str, lineage: dict[str, Any], *, dvc: bool = True) -> Outcome:
    """The real file a spec path names (DVC's cached copy when DVC tracks it and `dvc`)."""
    try:
        if not dvc:
            return Found(regular_inside(root, rel))
        found = locate(root, rel, verify=True)
    except FileNotFoundError:
        return Missing()
    except TreeError as exc:
        return Escapes(exc.reason)
    except Refused as exc:
        return StoreRefused(exc.code, f"{what} {exc.message}", at)
    except OSError as exc:
        return CannotRead(str(exc.strerror or exc))
    if found.lineage:
        lineage[rel] = found.lineage
    return Found(found.path)


def remote_model(art: Artifact, cache: Path, env: Mapping[str, str], lineage: dict[str, Any]) -> Outcome:
    """An MLflow-held artifact fetched into the cache and pinned, or the store's refusal."""
    assert art.uri is not None
    try:
        found = mlflow_models.resolve(art.uri, art.sha256, env.get(mlflow_models.ENV), cache)
    except Refused as exc:
        return StoreRefused(exc.code, exc.message, ("spec", "artifact", exc.at))
    lineage[art.uri] = found.lineage
    return Found(found.path)


def is_mlflow(art: Artifact) -> bool:
    return art.uri is not None and mlflow_models.is_mlflow(art.uri)


def process_env() -> Mapping[str, str]:
    """MLFLOW_TRACKING_URI comes from the environment takt runs in, as MLflow's own tools take it."""
    return os.environ
