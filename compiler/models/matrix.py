"""The compatibility matrix: every model × every target, whether or not a deployment pairs them yet."""

from __future__ import annotations

from dataclasses import dataclass

from compiler.diagnostics import Severity
from compiler.models.compat import Problem, check_runtime
from compiler.models.profile import target_profile
from compiler.validate.pipeline import ValidationResult


@dataclass(frozen=True)
class Cell:
    model: str
    target: str
    deployed: bool  # some Deployment puts this model on this target
    problems: tuple[Problem, ...]

    @property
    def runnable(self) -> bool:
        return not any(p.severity == Severity.ERROR for p in self.problems)


def compatibility_matrix(result: ValidationResult) -> tuple[list[str], list[str], list[Cell]]:
    deployed = {(d.model.spec.model.name, t) for d in result.index.valid("Deployment") for t in d.model.spec.targets}
    models = sorted(result.models.infos)
    targets = sorted(result.index.resolved_targets)
    cells = []
    for target in targets:
        profile = target_profile(result.index.resolved_targets[target], target)
        for model in models:
            problems = result.models.runtime.get((model, target))
            if problems is None:
                problems = check_runtime(result.models.infos[model], profile)
            cells.append(Cell(model, target, (model, target) in deployed, tuple(problems)))
    return models, targets, cells
