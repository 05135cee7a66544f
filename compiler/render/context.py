"""What a renderer receives: validated, typed data only — never raw spec text or templates."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from compiler.bundle import runner as contract
from compiler.render.profile import TargetProfile
from compiler.spec.datasource import DataSource
from compiler.spec.deployment import Deployment
from compiler.spec.model import Model
from compiler.spec.target import TargetSpec
from compiler.spec.testsuite import TestSuite


@dataclass(frozen=True)
class KnownReference:
    """An input's drift reference statistics, computed before its render (the build keeps them by their
    dataset's bytes, `compiler/build.py`); `value` None: the input has none."""

    value: contract.Reference | None


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
    reference: KnownReference | None = None  # None: `reference_statistics` computes them from the dataset

    @property
    def bundle_name(self) -> str:
        return f"{self.deployment.metadata.name}/{self.target_name}"


class RenderError(Exception):
    """A target class cannot render this input; the message names what to change."""

    def __init__(self, message: str, where: str = "target") -> None:
        super().__init__(message)
        self.message, self.where = message, where


def spec_json(m: BaseModel) -> dict[str, Any]:
    """A spec object as the JSON data a renderer passes on (aliases, no unset options)."""
    return m.model_dump(mode="json", by_alias=True, exclude_none=True)


@functools.lru_cache(maxsize=1024)
def _section(tp: Any, text: str, path: str) -> Any:
    """One spec section (its JSON text) read through the runner contract. A fleet's deployments
    share their models and sources, so each distinct section is decoded once per process; what
    `decode` returns is frozen (dataclasses of tuples), so every bundle may share it, and a refusal
    (ContractError) is raised again each time, never memoised."""
    return contract.decode(tp, json.loads(text), path)


def _decode(tp: Any, data: dict[str, Any], path: str = "") -> Any:
    """`contract.decode(tp, data, path)` for the JSON data of a spec section (`spec_json`: string keys,
    finite numbers, so its JSON text stands for it exactly)."""
    return _section(tp, json.dumps(data, ensure_ascii=False), path)


def runner_config(inp: RenderInput, model_file: str) -> contract.RunnerConfig:
    """The runner's configuration, shared by target classes that run the takt runner.

    Each section is the spec's own serialization read through the runner contract, so a spec
    field the contract does not know fails here, at build time, not on the device.
    """
    spec = inp.deployment.spec
    used = {b.source for b in spec.bindings} | {c for o in spec.outputs if (c := getattr(o, "connection", None))}
    try:
        model = contract.ModelSection(
            name=inp.model.metadata.name,
            version=inp.model.spec.version,
            file=model_file,
            sha256=inp.model_sha256,
            inputs=tuple(_decode(contract.Tensor, spec_json(t)) for t in inp.model.spec.inputs),
            outputs=tuple(_decode(contract.Tensor, spec_json(t)) for t in inp.model.spec.outputs),
            preprocessing=tuple(_decode(contract.Step, spec_json(p)) for p in inp.model.spec.preprocessing),
        )
        return contract.RunnerConfig(
            deployment=inp.deployment.metadata.name,
            target=inp.target_name,
            model=model,
            sources={
                name: _decode(contract.Source, spec_json(inp.sources[name].spec), f"sources.{name}")
                for name in sorted(used)
                if name in inp.sources
            },
            bindings=tuple(_decode(contract.Binding, spec_json(b)) for b in spec.bindings),
            outputs=tuple(_decode(contract.Output, spec_json(o)) for o in spec.outputs),
            resources=_decode(contract.Resources, spec_json(spec.resources) if spec.resources else {}),
            monitoring=_decode(contract.Monitoring, spec_json(spec.monitoring) if spec.monitoring else {}),
        )
    except contract.ContractError as exc:
        raise RenderError(f"the runner contract {contract.API_VERSION} cannot carry this deployment: {exc}") from exc
