"""Model artifacts and datasets on disk: digests, ONNX validity, declared signature, and whether
each deployed model can run on each of its targets (static: no session is created).

One check per code over the resolved files (compiler/validate/artifacts.py). What a model is worth
on its own and on a runtime is decided by compiler/models/compat.py's registries; the `placed_*`
functions here only locate those problems in the specs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from compiler.diagnostics import Diagnostic
from compiler.loader.yamldoc import Path_
from compiler.models.compat import check_model, check_runtime, check_signature
from compiler.models.digest import DigestCache
from compiler.models.inspect import Unreadable
from compiler.models.inspect_cache import InspectCache
from compiler.models.profile import target_profile
from compiler.stores.located import STORE_CODES
from compiler.validate import artifacts, datasets, stored
from compiler.validate.artifacts import ModelCheckResult, ModelFiles
from compiler.validate.checks import Check, run_checks
from compiler.validate.index import SpecIndex
from compiler.validate.probe_cache import ProbeCache
from compiler.validate.stored import CannotRead, DigestDiffers, Escapes, Missing, StoreRefused

__all__ = ["CHECKS", "ModelCheckResult", "check_models"]


def files_exist(m: ModelFiles) -> Iterator[Diagnostic]:
    """TAKT5001: every artifact, dataset and samples file a spec names exists."""
    for f, _ in m.outcomes(Missing):
        yield f.doc.diag(
            "TAKT5001", f"{f.what} {f.rel!r} does not exist (paths are relative to the project root)", f.at
        )


def files_readable(m: ModelFiles) -> Iterator[Diagnostic]:
    """TAKT5031: a file that exists can be read (permissions, I/O errors)."""
    for f, o in m.outcomes(CannotRead):
        yield f.doc.diag("TAKT5031", f"cannot read {f.what} {f.rel!r}: {o.reason}", f.at)


def files_inside_project(m: ModelFiles) -> Iterator[Diagnostic]:
    """TAKT5019: no link out of the project, no device or FIFO."""
    for f, o in m.outcomes(Escapes):
        yield f.doc.diag("TAKT5019", f"{f.what} {f.rel!r} {o.reason}", f.at)


def digests_match(m: ModelFiles) -> Iterator[Diagnostic]:
    """TAKT5002: a pinned file still has its recorded sha256."""
    for f, o in m.outcomes(DigestDiffers):
        yield f.doc.diag(
            "TAKT5002",
            f"sha256 of {f.rel!r} is {o.actual}, not the declared digest",
            f.sha_at,
            hint="if the new file is intended, run `takt pin` to record its digest",
        )


def _refused_by_store(code: str) -> Callable[[ModelFiles], Iterator[Diagnostic]]:
    """The check of one store code: DVC and MLflow decide the refusal (compiler/stores), this places it."""

    def refused(m: ModelFiles) -> Iterator[Diagnostic]:
        for f, o in m.outcomes(StoreRefused):
            if o.code == code:
                yield f.doc.diag(o.code, o.message, o.at)

    refused.__name__ = f"store_refused_{code}"
    return refused


def remote_artifacts_noted(m: ModelFiles) -> Iterator[Diagnostic]:
    """TAKT5018: an artifact at a plain URI is fetched and checked at build time, not here."""
    for doc in m.index.valid("Model"):
        art = doc.model.spec.artifact
        if art.path is None and not stored.is_mlflow(art):
            yield doc.diag(
                "TAKT5018",
                f"artifact {art.uri} is remote: fetched and checked at build time",
                ("spec", "artifact", "uri"),
            )


def artifacts_are_onnx(m: ModelFiles) -> Iterator[Diagnostic]:
    """TAKT5003: the artifact parses as an ONNX model."""
    for a in m.inspected:
        if isinstance(a.info, Unreadable):
            yield a.doc.diag("TAKT5003", f"{a.shown}: {a.info.reason}", a.at)


def placed_model_problems(m: ModelFiles) -> Iterator[Diagnostic]:
    """compat's model checks (TAKT5004), at the artifact."""
    for a in m.inspected:
        if not isinstance(a.info, Unreadable):
            for p in check_model(a.info):
                yield a.doc.diag(p.code, f"{a.shown}: {p.message}", a.at)


def placed_signature_problems(m: ModelFiles) -> Iterator[Diagnostic]:
    """compat's signature checks (TAKT5009–5011, 5032), at the declared tensor or the side's key."""
    for a in m.inspected:
        if isinstance(a.info, Unreadable):
            continue
        for side, real in (("inputs", a.info.inputs), ("outputs", a.info.outputs)):
            for i, problem in check_signature(getattr(a.doc.model.spec, side), real, side[:-1]):
                at: Path_ = ("spec", side, i) if i is not None else ("spec", side)
                yield a.doc.diag(problem.code, problem.message, at, key=i is None)


def placed_runtime_problems(m: ModelFiles) -> Iterator[Diagnostic]:
    """compat's runtime checks (TAKT5005–5008, 5012–5016, 5029, 5030), at each target a Deployment lists."""
    runtime = m.result.runtime
    for doc in m.index.valid("Deployment"):
        model = doc.model.spec.model.name
        info = m.result.infos.get(model)
        if info is None:
            continue
        for i, target in enumerate(doc.model.spec.targets):
            spec = m.index.resolved_targets.get(target)
            if spec is None:
                continue
            if (model, target) not in runtime:
                runtime[model, target] = check_runtime(info, target_profile(spec, target))
            for problem in runtime[model, target]:
                yield doc.diag(
                    problem.code, f"model {model!r} on target {target!r}: {problem.message}", ("spec", "targets", i)
                )


CHECKS: tuple[Check[ModelFiles, Diagnostic], ...] = (
    Check("TAKT5001", files_exist),
    Check("TAKT5031", files_readable),
    Check("TAKT5019", files_inside_project),
    Check("TAKT5002", digests_match),
    *(Check(code, _refused_by_store(code)) for code in STORE_CODES),
    Check("TAKT5018", remote_artifacts_noted),
    Check("TAKT5003", artifacts_are_onnx),
    *datasets.CHECKS,
)
PLACERS: tuple[Callable[[ModelFiles], Iterator[Diagnostic]], ...] = (
    placed_model_problems,
    placed_signature_problems,
    placed_runtime_problems,
    datasets.placed_column_mismatches,
)
"""They yield the codes of compat's and the dataset schema's checks, each decided there by one check."""


def check_models(
    index: SpecIndex,
    root: Path,
    cache: DigestCache,
    inspections: InspectCache | None = None,
    probes: ProbeCache | None = None,
) -> tuple[list[Diagnostic], ModelCheckResult]:
    """`inspections` and `probes` reuse what earlier runs found in the same model and dataset bytes (onnx,
    numpy and pyarrow are imported only on a miss)."""
    from compiler.validate.pipeline import CACHE_DIR  # pipeline imports this module lazily

    files = artifacts.resolve(
        index, root, root / CACHE_DIR, cache, inspections or InspectCache(None), stored.process_env(), probes
    )
    out = run_checks(CHECKS, files)
    for place in PLACERS:
        out.extend(place(files))
    return out, files.result
