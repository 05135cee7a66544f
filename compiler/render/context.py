"""What a renderer receives: validated, typed data only — never raw spec text or templates."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    profile: dict[str, Any]  # the class's default profile overlaid with the target's own
    sources: dict[str, DataSource]
    gates: tuple[TestSuite, ...]
    root: Path
    devices: tuple[str, ...] = ()
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def bundle_name(self) -> str:
        return f"{self.deployment.metadata.name}/{self.target_name}"


class RenderError(Exception):
    """A target class cannot render this input; the message names what to change."""

    def __init__(self, message: str, where: str = "target") -> None:
        super().__init__(message)
        self.message, self.where = message, where


def runner_config(inp: RenderInput, model_file: str) -> dict[str, Any]:
    """The runner's configuration, shared by target classes that run the takt runner."""
    spec = inp.deployment.spec
    dump = lambda m: m.model_dump(mode="json", by_alias=True, exclude_none=True)  # noqa: E731
    used = {b.source for b in spec.bindings} | {o.connection for o in spec.outputs if getattr(o, "connection", None)}
    return {
        "apiVersion": "takt/runner/v1",
        "deployment": inp.deployment.metadata.name,
        "target": inp.target_name,
        "model": {
            "name": inp.model.metadata.name,
            "version": inp.model.spec.version,
            "file": model_file,
            "sha256": inp.model_sha256,
            "inputs": [dump(t) for t in inp.model.spec.inputs],
            "outputs": [dump(t) for t in inp.model.spec.outputs],
            "preprocessing": [dump(p) for p in inp.model.spec.preprocessing],
        },
        "sources": {name: dump(inp.sources[name].spec) for name in sorted(used) if name in inp.sources},
        "bindings": [dump(b) for b in spec.bindings],
        "outputs": [dump(o) for o in spec.outputs],
        "resources": dump(spec.resources) if spec.resources else {},
        "monitoring": dump(spec.monitoring) if spec.monitoring else {},
    }
