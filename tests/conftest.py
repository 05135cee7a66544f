"""Shared helpers: build spec repos on disk, run the validator and the CLI."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# The CLI and the validator are imported where a test uses them: a test file that needs neither (the bundle,
# tree and agent tests) starts without them, which is most of the per-mutant cost of `make mutation`.
if TYPE_CHECKING:
    from compiler.diagnostics import Diagnostic
    from compiler.validate.pipeline import ValidationResult

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
EXAMPLE_DIRS = sorted(p for p in EXAMPLES.iterdir() if (p / "takt.yaml").is_file())


def copy_example(name: str, dst: Path) -> Path:
    """A writable copy of one of the example spec repos (without a local cache), for a test to change."""
    shutil.copytree(EXAMPLES / name, dst, ignore=shutil.ignore_patterns(".takt-cache"))
    return dst


EXAMPLE_CANARY = """\
  rollout:
    strategy: canary
    canary:
      selector: {matchLabels: {ring: canary}}
      healthGate: {window: 30m, maxErrorRate: 0.01, maxLatencyP95: 5ms}
"""


def immediate_rollout(spec: Path) -> Path:
    """The press-line example with `rollout: all-at-once`: for tests of publish and agent mechanics,
    where a canary step would keep a changed bundle from the devices they watch."""
    path = spec / "specs" / "deployment.yaml"
    text = path.read_text()
    assert EXAMPLE_CANARY in text, "the example's rollout changed: update EXAMPLE_CANARY"
    path.write_text(text.replace(EXAMPLE_CANARY, "  rollout: {strategy: all-at-once}\n"))
    return spec


_LATENCY_BUDGET = re.compile(r"(type: latency,?\s+budget: \{)([^}]*)\}")


def load_free_latency(spec: Path) -> Path:
    """An example with latency budgets no host load can miss (1 s for each percentile it names), for tests
    whose subject is publish, the CLI or the demo and not the build host's timing: on a loaded CI machine
    the examples' 5-20 ms budgets are a coin toss. The latency tests still run and are judged; latency
    gates are tested where they are the subject (test_latency_targets, test_testing)."""
    path = spec / "specs" / "tests.yaml"
    text = path.read_text()
    loose, count = _LATENCY_BUDGET.subn(
        lambda m: m.group(1) + ", ".join(f"{kv.split(':')[0].strip()}: 1s" for kv in m.group(2).split(",")) + "}",
        text,
    )
    assert count, f"no latency budget in {path}: update load_free_latency"
    path.write_text(loose)
    return spec


PROJECT = """\
apiVersion: takt/v1
kind: Project
metadata: {name: test}
spec:
  specs: ["**/*.yaml"]
"""


def tiny_model(inputs: int = 2, in_type: int = 1, opset: int = 17, ir: int = 8) -> bytes:
    """y = x · w + b with x: [batch, inputs] → y: [batch, 1]; the signature BASE declares."""
    import numpy as np
    from onnx import helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "B"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", in_type, ["batch", inputs])],
        [helper.make_tensor_value_info("y", in_type, ["batch", 1])],
        [
            numpy_helper.from_array(np.full((inputs, 1), 0.5, helper.tensor_dtype_to_np_dtype(in_type)), "W"),
            numpy_helper.from_array(np.zeros(1, helper.tensor_dtype_to_np_dtype(in_type)), "B"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir)
    return model.SerializeToString(deterministic=True)


# A minimal valid repo: every kind once, wired together, with its model and dataset on disk. TINY, TINY_SHA and
# BASE are made on first use (module __getattr__): building the model imports onnx, which a test that never
# touches a spec repo should not pay for (`make mutation` starts pytest once per mutant).
_BASE_TEXT = {
    "sources.yaml": """\
        apiVersion: takt/v1
        kind: DataSource
        metadata: {name: plc}
        spec:
          protocol: opcua
          endpoint: opc.tcp://plc:4840
          security: {mode: Sign, policy: Basic256Sha256, credentialsRef: "env:OPCUA"}
          samplingInterval: 100ms
          fields:
            - {name: temp, dtype: float32, unit: degC, address: {nodeId: "nsu=urn:x;s=T"}}
            - {name: pres, dtype: float32, unit: bar, address: {nodeId: "nsu=urn:x;s=P"}}
        """,
    "model.yaml": """\
        apiVersion: takt/v1
        kind: Model
        metadata: {name: m}
        spec:
          version: "1.0.0"
          task: regression
          artifact: {path: models/m.onnx, sha256: "TINY_SHA"}
          inputs:
            - name: x
              dtype: float32
              shape: [batch, 2]
              features: [{name: temp, unit: degC}, {name: pres, unit: bar}]
          outputs:
            - {name: y, dtype: float32, shape: [batch, 1]}
        """,
    "fleet.yaml": """\
        apiVersion: takt/v1
        kind: Target
        metadata: {name: ipc}
        spec:
          class: edge-pc
          arch: x86_64
          os: linux
          memory: 4Gi
          runtime: {onnxruntime: "1.20"}
        ---
        apiVersion: takt/v1
        kind: Device
        metadata: {name: ipc-1, labels: {line: a}}
        spec: {target: ipc}
        """,
    "deploy.yaml": """\
        apiVersion: takt/v1
        kind: Deployment
        metadata: {name: d}
        spec:
          model: m
          bindings:
            - {input: x, source: plc, fields: [temp, pres]}
          targets: [ipc]
          selector: {matchLabels: {line: a}}
          gates: [suite]
          outputs:
            - {type: mqtt, from: y, broker: "mqtt://b:1883", topic: out/y}
        """,
    "tests.yaml": """\
        apiVersion: takt/v1
        kind: TestSuite
        metadata: {name: suite}
        spec:
          model: m
          datasets: {ref: {path: data/ref.csv}}
          tests:
            - {name: lat, type: latency, budget: {p99: 5ms}}
            - {name: dat, type: data, dataset: ref}
        """,
    "data/ref.csv": "temp,pres\n20.5,1.2\n21.0,1.3\n",
}


@functools.cache
def _base() -> dict[str, object]:
    tiny = tiny_model()
    sha = hashlib.sha256(tiny).hexdigest()
    base: dict[str, str | bytes] = {k: v.replace("TINY_SHA", sha) for k, v in _BASE_TEXT.items()}
    base["models/m.onnx"] = tiny
    return {"TINY": tiny, "TINY_SHA": sha, "BASE": base}


def __getattr__(name: str) -> object:
    if name in ("TINY", "TINY_SHA", "BASE"):
        return _base()[name]
    raise AttributeError(name)


def write_repo(root: Path, files: dict[str, str | bytes], *, project: str | None = PROJECT) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if project is not None:
        (root / "takt.yaml").write_text(project, encoding="utf-8")
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content), encoding="utf-8")
    return root


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., ValidationResult]:
    """`repo({...overrides})` writes BASE with overrides (None deletes a file) and validates it.

    The working directory is the repo, so diagnostics carry short relative paths.
    """
    monkeypatch.chdir(tmp_path)

    def run(overrides: dict[str, str | bytes | None] | None = None, *, base: bool = True, **kw) -> ValidationResult:
        files: dict[str, str | bytes | None] = dict(__getattr__("BASE")) if base else {}
        files.update(overrides or {})
        from compiler.validate.pipeline import validate

        write_repo(tmp_path, {k: v for k, v in files.items() if v is not None}, project=kw.pop("project", PROJECT))
        return validate(tmp_path, **kw)

    return run


def codes(result: ValidationResult | list[Diagnostic]) -> list[str]:
    diags = result if isinstance(result, list) else result.diagnostics
    return [d.code for d in diags]


def only(result: ValidationResult, code: str) -> Diagnostic:
    found = [d for d in result.diagnostics if d.code == code]
    assert len(found) == 1, f"expected one {code}, got {[(d.code, d.message) for d in result.diagnostics]}"
    return found[0]


@pytest.fixture(autouse=True)
def _own_user_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Takt's per-user cache (the build cache's secret) lives in the test run, never in the machine's home."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))


@pytest.fixture
def worker_pools(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The worker count of every process pool compiler.workers starts while the test runs."""
    import concurrent.futures

    import compiler.workers

    started: list[int] = []
    real = concurrent.futures.ProcessPoolExecutor

    def counting(*args, **kw):
        started.append(kw["max_workers"])
        return real(*args, **kw)

    monkeypatch.setattr(compiler.workers, "ProcessPoolExecutor", counting)
    return started


@pytest.fixture
def cli_run(monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[int, str]]:
    monkeypatch.setenv("NO_COLOR", "1")

    from click.testing import CliRunner

    from compiler.cli.main import cli

    def run(*args: str, cwd: Path | None = None) -> tuple[int, str]:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        return result.exit_code, result.output

    return run


os.environ.setdefault("NO_COLOR", "1")


def pytest_sessionstart(session):
    if not hasattr(session.config, "workerinput"):
        session.config.cache.set("takt/model-agreement", None)  # never report a stale figure


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Report measured figures (not only pass/fail): the model-check agreement with onnxruntime."""
    figure = config.cache.get("takt/model-agreement", None)
    if figure and not hasattr(config, "workerinput"):
        agree, total, refused, disagreements = figure
        terminalreporter.write_line(
            f"takt model check vs onnxruntime: {agree}/{total} agree ({agree / total:.1%}); "
            f"onnxruntime refuses {refused} of them"
        )
        for line in disagreements:
            terminalreporter.write_line(f"  disagreement: {line}")


def pytest_configure(config):
    """`slow`: tests against real servers (OPC UA, MQTT broker, Modbus) or long runs; registered here
    unless pyproject already does."""
    if not any(line.startswith("slow") for line in config.getini("markers")):
        config.addinivalue_line("markers", "slow: tests against real servers or long runs (deselect: -m 'not slow')")


# Tests of several seconds, by node-id prefix, with their seconds in a clean-clone run (`--durations`, rounded):
# they start first. `make test` runs `-n 2 --maxschedchunk 1`, where xdist hands out the tests one at a time in
# collection order, keeping two queued on each worker, so longest-first keeps a long test from starting last and
# making the tail. The demo's two tests come first, side by side: the first worker gets both as its first two,
# and they share one run of the demo fixture. (xdist's loadgroup cannot group them: with pytest 9.2 its
# group suffix on the node id is lost.) Only tests whose module-scoped fixtures are theirs alone (or cheap) are
# listed: moving a test away from its module's other tests sets such a fixture up once more.
LONG_TESTS = {
    "tests/test_demo.py::test_the_demo_": 55,  # the demo fixture's run, for both its tests
    "tests/test_agent_faults.py::test_kill_minus_nine_at_random_points": 11,
    "tests/test_demo.py::test_a_fresh_clone_installs_from_the_lock_with_make": 30,
    "tests/test_agent_runners.py::test_a_plc_down_during_an_update": 17,
    "tests/test_runner_opcua.py::test_outage_and_a_moved_namespace_index_after_restart": 12,
    "tests/test_runner_opcua.py::test_wrong_credentials_never_ready": 9,
    "tests/test_agent_runners.py::test_a_release_whose_node_id_the_server_rejects_is_rolled_back": 8,
    "tests/test_fleet.py::test_twenty_devices_report_at_once_over_git_and_mqtt_and_none_is_lost": 8,
    "tests/test_rollout_git.py::test_a_healthy_canary_is_promoted": 7,
    "tests/test_runner_shadow.py::test_the_challenger_never_writes": 7,
    "tests/test_ort_canonical.py::test_conversions_in_different_environments": 7,
    "tests/test_inspect_cache.py::test_takt_help_and_validate_never_import": 7,
    "tests/test_agent_runners.py::test_a_runner_": 6,
    "tests/test_agent_runners.py::test_a_failing_post_check_rolls_back": 6,
    "tests/test_fleet.py::test_threat_forged_replayed_and_other_device_reports": 6,
    "tests/test_properties.py::test_renamed_references_are_reported_at_the_referring_node": 5,
}


def _known_seconds(nodeid: str) -> float:
    return max((s for prefix, s in LONG_TESTS.items() if nodeid.startswith(prefix)), default=0.0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The long tests first, longest first (a stable sort: all others keep their order)."""
    items.sort(key=lambda item: -_known_seconds(item.nodeid))
