"""What a renderer receives: validated, typed data only — never raw spec text or templates."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.bundle import runner as contract
from compiler.render.profile import TargetProfile
from compiler.spec.datasource import DataSource
from compiler.spec.deployment import Deployment
from compiler.spec.model import Model
from compiler.spec.target import TargetSpec
from compiler.spec.testsuite import TestSuite


@dataclass(frozen=True)
class RenderInput:
    deployment: Deployment
    model: Model
    model_path: Path
    model_sha256: str
    target_name: str
    target: TargetSpec
    profile: TargetProfile  # the class's typed profile: its defaults overlaid with the target's own
    sources: dict[str, DataSource]
    gates: tuple[TestSuite, ...]
    root: Path
    devices: tuple[str, ...] = ()
    provenance: dict[str, Any] = field(default_factory=dict)
    # this deployment's place among the project's deployments (sorted by name): target classes that
    # run several runners on one device give each its own port from it (profile.httpPort + index)
    deployment_index: int = 0

    @property
    def bundle_name(self) -> str:
        return f"{self.deployment.metadata.name}/{self.target_name}"


class RenderError(Exception):
    """A target class cannot render this input; the message names what to change."""

    def __init__(self, message: str, where: str = "target") -> None:
        super().__init__(message)
        self.message, self.where = message, where


def runner_config(inp: RenderInput, model_file: str) -> contract.RunnerConfig:
    """The runner's configuration, shared by target classes that run the takt runner.

    Each section is the spec's own serialization read through the runner contract, so a spec
    field the contract does not know fails here, at build time, not on the device.
    """
    spec = inp.deployment.spec
    dump = lambda m: m.model_dump(mode="json", by_alias=True, exclude_none=True)  # noqa: E731
    used = {b.source for b in spec.bindings} | {o.connection for o in spec.outputs if getattr(o, "connection", None)}
    try:
        model = contract.ModelSection(
            name=inp.model.metadata.name,
            version=inp.model.spec.version,
            file=model_file,
            sha256=inp.model_sha256,
            inputs=tuple(contract.decode(contract.Tensor, dump(t)) for t in inp.model.spec.inputs),
            outputs=tuple(contract.decode(contract.Tensor, dump(t)) for t in inp.model.spec.outputs),
            preprocessing=tuple(contract.decode(contract.Step, dump(p)) for p in inp.model.spec.preprocessing),
        )
        return contract.RunnerConfig(
            deployment=inp.deployment.metadata.name,
            target=inp.target_name,
            model=model,
            sources={
                name: contract.decode(contract.Source, dump(inp.sources[name].spec), f"sources.{name}")
                for name in sorted(used)
                if name in inp.sources
            },
            bindings=tuple(contract.decode(contract.Binding, dump(b)) for b in spec.bindings),
            outputs=tuple(contract.decode(contract.Output, dump(o)) for o in spec.outputs),
            resources=contract.decode(contract.Resources, dump(spec.resources) if spec.resources else {}),
            monitoring=contract.decode(contract.Monitoring, dump(spec.monitoring) if spec.monitoring else {}),
        )
    except contract.ContractError as exc:
        raise RenderError(f"the runner contract {contract.API_VERSION} cannot carry this deployment: {exc}") from exc
