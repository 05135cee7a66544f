"""Render an edge-pc bundle: model, runner config, systemd unit, compose file, health samples, and
the recordings that `file` DataSources replay."""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any

from compiler.bundle import runner as contract
from compiler.bundle.tree import TreeError, read_inside, read_regular
from compiler.models.inspect import PROTOBUF_LIMIT
from compiler.render import blockyaml
from compiler.render.context import RenderError, RenderInput, runner_config
from compiler.render.reference import reference_statistics
from compiler.spec.testsuite import MAX_SAMPLE_BYTES, GoldenTest, LatencyTest
from targets.edge_pc.profile import EdgePcProfile

if TYPE_CHECKING:
    from jinja2 import Environment  # the templates arrive built; validate never imports jinja2

_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_ABS_PATH = re.compile(r"^(/[A-Za-z0-9._-]+)+/?$")
_COMMAND = re.compile(r"^[A-Za-z0-9._/-]{1,255}$")
MAX_REPLAY_BYTES = 64 << 20  # a recording for a bench or a demo, not a historian's archive


def replay_files(inp: RenderInput, config: contract.RunnerConfig, files: dict[str, bytes]) -> contract.RunnerConfig:
    """A `file` DataSource's recording travels in the bundle (`data/<source>.<format>`), so the device
    replays exactly the bytes that were validated; the runner reads it relative to its runner.json."""
    sources = dict(config.sources)
    for name, src in config.sources.items():
        if isinstance(src, contract.FileSource):
            rel = f"data/{name}.{src.format}"
            try:
                files[rel] = read_inside(inp.root, src.path, MAX_REPLAY_BYTES)
            except (OSError, TreeError) as exc:
                raise RenderError(f"the recording of DataSource {name} cannot be bundled: {exc}", "sources") from None
            sources[name] = dataclasses.replace(src, path=rel)
    return config.with_(sources=sources) if sources != config.sources else config


def _profile(inp: RenderInput) -> EdgePcProfile:
    assert isinstance(inp.profile, EdgePcProfile)  # the plugin declares it; TargetClass.profile parses it
    return inp.profile


def runner_gate(inp: RenderInput) -> contract.RunnerGate | None:
    """The Deployment's rollout health gate, which the agent applies to the runner after activation."""
    rollout = inp.deployment.spec.rollout
    gate = rollout.canary.health_gate if rollout and rollout.canary else None
    if gate is None:
        return None
    return contract.RunnerGate(
        window_seconds=gate.window, max_error_rate=gate.max_error_rate, max_latency_p95_seconds=gate.max_latency_p95
    )


def http_port(inp: RenderInput) -> int:
    """profile.httpPort plus the deployment's index: runners of several deployments on one device
    never share a port, and the same deployment gets the same port on every device."""
    base = _profile(inp).http_port
    if isinstance(base, bool) or not isinstance(base, int) or not 1 <= base <= 65535:
        raise RenderError("profile.httpPort must be an integer 1..65535", "profile")
    port = base + inp.deployment_index
    if port > 65535:
        raise RenderError(
            f"profile.httpPort {base} + deployment index {inp.deployment_index} is past 65535; lower httpPort",
            "profile",
        )
    return port


def health(inp: RenderInput, files: dict[str, bytes], port: int | None = None) -> contract.Health:
    """What the agent replays before and after activation: golden samples and a latency budget;
    and where and how it judges the running runner (its port, the Deployment's health gate)."""
    timeout = _profile(inp).health.timeout_seconds
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 3600:
        raise RenderError("profile.health.timeoutSeconds must be a number of seconds in (0, 3600]", "profile")
    samples: contract.HealthSamples | None = None
    latency: float | None = None
    for suite in inp.gates:
        for test in suite.spec.tests:
            if isinstance(test, GoldenTest) and samples is None:
                data = read_inside(inp.root, test.samples, MAX_SAMPLE_BYTES)
                name = f"health/{suite.metadata.name}-{test.name}.npz"
                files[name] = data
                samples = contract.HealthSamples(file=name, abs=test.tolerance.abs, rel=test.tolerance.rel)
            if isinstance(test, LatencyTest) and latency is None:
                judged = test.budget_for(inp.target_name, inp.target.class_ or "")  # this target's own entry
                if judged is not None:
                    budget = judged[1]
                    latency = budget.p99 or budget.p95 or budget.p50
    return contract.Health(
        timeout_seconds=timeout, samples=samples, latency_seconds=latency, http_port=port, gate=runner_gate(inp)
    )


def render(inp: RenderInput, templates: Environment) -> dict[str, bytes]:
    profile = _profile(inp)
    user = profile.unit.user
    if not _USER.match(user):
        raise RenderError(f"profile.unit.user {user!r} is not a valid user name", "profile")
    nice = profile.unit.nice
    if not isinstance(nice, int) or isinstance(nice, bool) or not -20 <= nice <= 19:
        raise RenderError("profile.unit.nice must be an integer -20..19", "profile")
    install_dir = profile.install_dir
    if not _ABS_PATH.match(install_dir) or "/../" in f"{install_dir}/":
        raise RenderError(f"profile.installDir {install_dir!r} must be an absolute path of plain segments", "profile")
    command = profile.runner_command
    if not _COMMAND.match(command):
        raise RenderError(f"profile.runnerCommand {command!r} must be a program name or path", "profile")
    port = http_port(inp)
    files: dict[str, bytes] = {}
    model_file = "model/model.onnx"
    files[model_file] = read_regular(inp.model_path, PROTOBUF_LIMIT)
    # the agent exposes each deployment's bundle of the active release here (a link it keeps current)
    workdir = f"{install_dir.rstrip('/')}/deployments/{inp.deployment.metadata.name}"
    config = runner_config(inp, model_file).with_(health=health(inp, files, port), reference=reference_statistics(inp))
    config = replay_files(inp, config, files)
    files[contract.RUNNER_JSON] = config.to_json()
    res = inp.deployment.spec.resources
    files["takt-runner.service"] = (
        templates.get_template("takt-runner.service.j2")
        .render(
            bundle_name=inp.bundle_name,
            description=f"takt runner {inp.deployment.metadata.name}: "
            f"{inp.model.metadata.name} {inp.model.spec.version}",
            user=user,
            nice=nice,
            workdir=workdir,
            command=command,
            config=f"{workdir}/{contract.RUNNER_JSON}",
            http_port=port,
            memory_max=res.memory if res and res.memory else None,
            cpu_quota=round(res.cpu * 100) if res and res.cpu else None,
        )
        .encode()
    )
    service: dict[str, Any] = {
        "image": profile.image,
        "command": ["--config", f"/bundle/{contract.RUNNER_JSON}", "--http-port", str(port)],
        "working_dir": "/bundle",
        "volumes": [{"type": "bind", "source": workdir, "target": "/bundle", "read_only": True}],
        "restart": "unless-stopped",
        "read_only": True,
        "network_mode": "host",
    }
    if res and res.memory:
        service["mem_limit"] = res.memory
    if res and res.cpu:
        service["cpus"] = res.cpu
    compose = {"name": f"takt-{inp.deployment.metadata.name}", "services": {"runner": service}}
    files["compose.yaml"] = blockyaml.dumps(compose).encode()  # to_yaml's bytes
    return files
