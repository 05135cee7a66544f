"""`takt model check` and `takt matrix` as requests: what runs where, and the exit code.

model check exits 0 runnable, 1 not runnable, 2 unreadable input or unknown target; matrix exits 0
when it could be computed (cells may say "no"), 2 when the repo has no project.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compiler.commands.errors import ExitCode, UsageError
from compiler.diagnostics import Severity

if TYPE_CHECKING:  # onnx and pydantic load only when a model command runs, not for `takt agent`
    from compiler.models.compat import Problem, RuntimeProfile
    from compiler.models.inspect import ModelInfo, TensorInfo
    from compiler.models.matrix import Cell


@dataclass(frozen=True)
class ModelCheckRequest:
    model: Path
    cwd: Path
    target: str | None = None
    spec_root: Path = Path(".")


@dataclass(frozen=True)
class ModelCheckOutcome:
    report: dict[str, Any]
    """The JSON of `takt model check --format json` (compiler.report.model renders it as text)."""

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.report["runnable"] else ExitCode.FINDINGS


def _resolve_target(name: str, spec_root: Path) -> RuntimeProfile:
    from compiler.models.profile import target_profile
    from compiler.validate.pipeline import validate

    result = validate(spec_root, check_artifacts=False)
    if result.project is None:
        raise UsageError(f"no takt.yaml at or above {spec_root}")
    spec = result.index.resolved_targets.get(name)
    if spec is None:
        known = ", ".join(sorted(result.index.resolved_targets)) or "none"
        broken = result.index.get("Target", name)
        why = "it has errors (run takt validate)" if broken else f"known targets: {known}"
        raise UsageError(f"target {name!r} not found or not valid in {result.root}: {why}")
    return target_profile(spec, name)


def _tensor(t: TensorInfo) -> dict[str, Any]:
    """Spec dtype names (float32), so a signature can be pasted into a Model spec."""
    from compiler.models.inspect import ONNX_TO_SPEC

    return {
        "name": t.name,
        "dtype": ONNX_TO_SPEC.get(t.elem_type or "", t.elem_type),
        "onnxType": t.elem_type,
        "shape": list(t.shape) if t.shape is not None else None,
    }


def model_report(info: ModelInfo, problems: list[Problem], profile: RuntimeProfile, sha256: str) -> dict[str, Any]:
    errors = [p for p in problems if p.severity == Severity.ERROR]
    return {
        "model": info.path,
        "sha256": sha256,
        "runnable": not errors,
        "runtime": {
            "onnxruntime": profile.table.version,
            "providers": list(profile.effective_providers),
            "label": profile.label,
        },
        "problems": [p.as_dict() for p in problems],
        "irVersion": info.ir_version,
        "producer": info.producer,
        "opsets": info.opsets,
        "inputs": [_tensor(t) for t in info.inputs],
        "outputs": [_tensor(t) for t in info.outputs],
        "operators": [{"domain": d, "op": o, "sinceVersion": v} for d, o, v in info.operators],
        "fileBytes": info.file_bytes,
        "paramBytes": info.param_bytes,
        "activationBytes": info.activation_bytes,
        "warnings": list(info.warnings),
    }


def run_model_check(request: ModelCheckRequest) -> ModelCheckOutcome:
    """UsageError (exit 2) for an unreadable model or an unknown target."""
    from compiler.models.compat import check_model, check_runtime
    from compiler.models.digest import sha256_file
    from compiler.models.inspect import Unreadable, inspect_model
    from compiler.models.profile import installed_profile

    model = request.cwd / request.model
    info = inspect_model(model) if model.is_file() else Unreadable(f"{request.model} does not exist or is not a file")
    if isinstance(info, Unreadable):
        raise UsageError(f"{request.model}: {info.reason}")
    if request.target:
        profile = _resolve_target(request.target, request.cwd / request.spec_root)
    else:
        profile = installed_profile()
    problems = check_model(info) + check_runtime(info, profile)
    return ModelCheckOutcome(model_report(info, problems, profile, sha256_file(model)))


@dataclass(frozen=True)
class MatrixOutcome:
    models: list[str]
    targets: list[str]
    cells: list[Cell]


def run_matrix(path: Path) -> MatrixOutcome:
    """Every model of the spec repo × every target; UsageError when there is no project."""
    from compiler.models.matrix import compatibility_matrix
    from compiler.validate.pipeline import validate

    result = validate(path)
    if result.project is None:
        raise UsageError(f"no takt.yaml at or above {path}")
    models, targets, cells = compatibility_matrix(result)
    return MatrixOutcome(models, targets, cells)
