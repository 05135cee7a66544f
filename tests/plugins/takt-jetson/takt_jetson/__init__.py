"""jetson: a third-party target class (a test fixture): one package, one entry point, nothing else."""

from __future__ import annotations

from collections.abc import Iterator

from jinja2 import Environment

from compiler.bundle import runner as contract
from compiler.bundle.activation import Activation
from compiler.bundle.tree import read_regular
from compiler.codes import Rule
from compiler.diagnostics import Diagnostic, Severity
from compiler.models.inspect import PROTOBUF_LIMIT
from compiler.render.context import RenderError, RenderInput, runner_config
from compiler.render.platforms import application_host
from compiler.render.plugins import ClassPlugin
from compiler.spec.target import TargetSpec
from compiler.validate.document import SpecDocument

GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")
RULES = (
    Rule("JETSON001", "Jetson target without a GPU execution provider", Severity.WARNING, "List CUDA or TensorRT."),
)


def validate(doc: SpecDocument, spec: TargetSpec) -> Iterator[Diagnostic]:
    yield from application_host(doc, spec)
    providers = spec.runtime.execution_providers if spec.runtime else None
    if not any(p in GPU_PROVIDERS for p in providers or []):
        yield doc.diag("JETSON001", "a Jetson without CUDA runs the model on its CPU", ("spec", "runtime"))


def render(inp: RenderInput, templates: Environment) -> dict[str, bytes]:
    mode = str(inp.profile.get("powerMode", "MAXN"))
    if not mode.isalnum():
        raise RenderError(f"profile.powerMode {mode!r} is not a power mode name", "profile")
    model_file = "model/model.onnx"
    return {
        model_file: read_regular(inp.model_path, PROTOBUF_LIMIT),
        contract.RUNNER_JSON: runner_config(inp, model_file).to_json(),
        "jetson.env": templates.get_template("jetson.env.j2")
        .render(bundle_name=inp.bundle_name, power_mode=mode)
        .encode(),
    }


def warnings(inp: RenderInput) -> list[str]:
    return [f"power mode {inp.profile.get('powerMode', 'MAXN')}: measure latency on the device"]


PLUGIN = ClassPlugin(
    name="jetson", render=render, activation=Activation.RUN, validate=validate, warnings=warnings, rules=RULES
)
