"""Model artifacts and datasets on disk: digests, ONNX validity, declared signature, and whether
each deployed model can run on each of its targets (static: no session is created)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.bundle.tree import TreeError, regular_inside
from compiler.diagnostics import Diagnostic
from compiler.loader.yamldoc import Path_
from compiler.models.compat import Problem, check_runtime, check_signature
from compiler.models.digest import DigestCache
from compiler.models.inspect import ModelInfo, Unreadable
from compiler.models.inspect_cache import InspectCache
from compiler.models.profile import target_profile
from compiler.spec.deployment import Deployment
from compiler.spec.model import Model
from compiler.spec.testsuite import GoldenTest, TestSuite
from compiler.validate import stored
from compiler.validate.datasets import check_datasets
from compiler.validate.document import SpecDocument
from compiler.validate.index import SpecIndex


@dataclass
class ModelCheckResult:
    """What later stages (matrix, test, build) reuse instead of reading models again."""

    infos: dict[str, ModelInfo] = field(default_factory=dict)  # model name → inspection
    runtime: dict[tuple[str, str], list[Problem]] = field(default_factory=dict)  # (model, target) → problems
    notes: dict[str, str] = field(default_factory=dict)  # target → note about its kernel table
    artifacts: dict[str, Path] = field(default_factory=dict)  # model name → the local file of its artifact
    lineage: dict[str, dict[str, Any]] = field(default_factory=dict)  # spec path or uri → DVC / MLflow lineage


def _file_digest(
    doc: SpecDocument,
    root: Path,
    rel: str,
    sha: str | None,
    base: Path_,
    cache: DigestCache,
    out: list[Diagnostic],
    what: str,
    lineage: dict[str, dict[str, Any]],
) -> Path | None:
    path = stored.inside(doc, root, rel, (*base, "path"), out, what, lineage)
    if path is None:
        return None
    if sha is not None:
        try:
            actual = cache.sha256(path)
        except TreeError as exc:
            out.append(doc.diag("TAKT5019", f"{what} {rel!r} {exc.reason}", (*base, "path")))
            return None
        except OSError as exc:
            out.append(doc.diag("TAKT5001", f"cannot read {what} {rel!r}: {exc.strerror or exc}", (*base, "path")))
            return None
        if actual != sha:
            out.append(
                doc.diag(
                    "TAKT5002",
                    f"sha256 of {rel!r} is {actual}, not the declared digest",
                    (*base, "sha256"),
                    hint="if the new file is intended, run `takt pin` to record its digest",
                )
            )
            return None
    return path


def _inside(doc: SpecDocument, root: Path, rel: str, at: Path_, out: list[Diagnostic], what: str) -> Path | None:
    """The real path of a file a spec names, or a located diagnostic: missing, or leaving the project."""
    try:
        return regular_inside(root, rel)
    except FileNotFoundError:
        out.append(doc.diag("TAKT5001", f"{what} {rel!r} does not exist (paths are relative to the project root)", at))
    except TreeError as exc:
        out.append(doc.diag("TAKT5019", f"{what} {rel!r} {exc.reason}", at))
    except OSError as exc:
        out.append(doc.diag("TAKT5001", f"cannot read {what} {rel!r}: {exc.strerror or exc}", at))
    return None


def check_models(
    index: SpecIndex, root: Path, cache: DigestCache, inspections: InspectCache | None = None
) -> tuple[list[Diagnostic], ModelCheckResult]:
    """`inspections` reuses what earlier runs found in the same model bytes (onnx is imported only on a miss)."""
    inspections = inspections or InspectCache(None)
    out: list[Diagnostic] = []
    result = ModelCheckResult()
    for doc in index.valid("Model"):
        model: Model = doc.model
        art = model.spec.artifact
        if stored.is_mlflow(art):
            from compiler.validate.pipeline import CACHE_DIR  # pipeline imports this module lazily

            path = stored.remote_model(doc, art, root / CACHE_DIR, stored.process_env(), out, result.lineage)
        elif art.path is None:
            out.append(
                doc.diag(
                    "TAKT5018",
                    f"artifact {art.uri} is remote: fetched and checked at build time",
                    ("spec", "artifact", "uri"),
                )
            )
            continue
        else:
            path = _file_digest(
                doc, root, art.path, art.sha256, ("spec", "artifact"), cache, out, "model artifact", result.lineage
            )
        if path is None:
            continue
        result.artifacts[model.metadata.name] = path
        at = "path" if art.path else "uri"
        info = inspections.inspect(path, cache)
        if isinstance(info, Unreadable):
            out.append(doc.diag("TAKT5003", f"{art.path or art.uri}: {info.reason}", ("spec", "artifact", at)))
            continue
        if info.checker_error:
            out.append(
                doc.diag(
                    "TAKT5004",
                    f"{art.path or art.uri} is not a valid ONNX model: {info.checker_error}",
                    ("spec", "artifact", at),
                )
            )
        result.infos[model.metadata.name] = info
        for side, real in (("inputs", info.inputs), ("outputs", info.outputs)):
            for i, problem in check_signature(getattr(model.spec, side), real, side[:-1]):
                path_: Path_ = ("spec", side, i) if i is not None else ("spec", side)
                out.append(doc.diag(problem.code, problem.message, path_, key=i is None))
    for doc in index.valid("TestSuite"):
        suite: TestSuite = doc.model
        present = {}
        for name, ds in suite.spec.datasets.items():
            at = ("spec", "datasets", name)
            if _file_digest(doc, root, ds.path, ds.sha256, at, cache, out, "dataset", result.lineage) is not None:
                present[name] = ds
        out.extend(check_datasets(doc, suite, present, root, index))
        for i, test in enumerate(suite.spec.tests):
            if isinstance(test, GoldenTest):
                _inside(doc, root, test.samples, ("spec", "tests", i, "samples"), out, "golden samples")
    for doc in index.valid("Deployment"):
        dep: Deployment = doc.model
        info = result.infos.get(dep.spec.model.name)
        if info is None:
            continue
        for i, target_name in enumerate(dep.spec.targets):
            spec = index.resolved_targets.get(target_name)
            if spec is None:
                continue
            key = (dep.spec.model.name, target_name)
            if key not in result.runtime:
                profile, note = target_profile(spec, target_name)
                result.runtime[key] = check_runtime(info, profile)
                if note:
                    result.notes[target_name] = note
            for problem in result.runtime[key]:
                out.append(
                    doc.diag(
                        problem.code,
                        f"model {dep.spec.model.name!r} on target {target_name!r}: {problem.message}",
                        ("spec", "targets", i),
                    )
                )
            if target_name in result.notes:
                out.append(doc.diag("TAKT5014", result.notes[target_name], ("spec", "targets", i)))
    return out, result
