"""Generate a realistic spec repo of any size: plants, lines and cells, one deployment per cell."""

from __future__ import annotations

from pathlib import Path

PROJECT = 'apiVersion: takt/v1\nkind: Project\nmetadata: {name: bench}\nspec:\n  specs: ["specs/**/*.yaml"]\n'


def _source(i: int) -> str:
    fields = "".join(
        f"    - {{name: f{j}, dtype: float32, unit: mm/s, range: [0, 50], "
        f'address: {{nodeId: "nsu=urn:plant:{i};s=S.{j}"}}}}\n'
        for j in range(4)
    )
    return (
        f"apiVersion: takt/v1\nkind: DataSource\nmetadata: {{name: src-{i}, labels: {{line: l{i}}}}}\nspec:\n"
        f"  protocol: opcua\n  endpoint: opc.tcp://plc-{i}.plant.local:4840\n"
        f"  security: {{mode: SignAndEncrypt, policy: Basic256Sha256, credentialsRef: 'vault:plc/{i}'}}\n"
        f"  samplingInterval: 100ms\n  fields:\n{fields}"
    )


def _model_bytes() -> bytes:
    """A real 4-feature scorer, so validation reads, digests and checks actual ONNX files."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["score"])],
        "bench",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch", 1])],
        [numpy_helper.from_array(np.ones((4, 1), np.float32), "W")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


def _model(i: int, sha: str) -> str:
    feats = ", ".join(f"{{name: f{j}, unit: mm/s}}" for j in range(4))
    return (
        f"apiVersion: takt/v1\nkind: Model\nmetadata: {{name: model-{i}}}\nspec:\n  version: '1.{i}.0'\n"
        f"  task: anomaly-detection\n  artifact: {{path: models/m{i}.onnx, sha256: '{sha}'}}\n"
        f"  inputs:\n    - {{name: x, dtype: float32, shape: [batch, 4], features: [{feats}]}}\n"
        f"  outputs:\n    - {{name: score, dtype: float32, shape: [batch, 1]}}\n"
    )


def _suite(i: int) -> str:
    return (
        f"apiVersion: takt/v1\nkind: TestSuite\nmetadata: {{name: suite-{i}}}\nspec:\n  model: model-{i}\n"
        f"  datasets: {{ref: {{path: data/ref{i}.csv}}}}\n  tests:\n"
        f"    - {{name: lat, type: latency, budget: {{p99: 5ms}}}}\n"
        f"    - {{name: drift, type: drift, reference: ref, candidate: ref, method: psi, threshold: 0.2}}\n"
    )


def _target(i: int) -> str:
    return (
        f"apiVersion: takt/v1\nkind: Target\nmetadata: {{name: target-{i}}}\nspec:\n  class: edge-pc\n"
        f"  arch: x86_64\n  os: linux\n  memory: {4 + i}Gi\n  runtime: {{onnxruntime: '1.20'}}\n"
    )


def _device(i: int, targets: int, lines: int) -> str:
    return (
        f"apiVersion: takt/v1\nkind: Device\nmetadata: {{name: ipc-{i}, labels: {{line: l{i % lines}, "
        f"cell: c{i}}}}}\nspec: {{target: target-{i % targets}}}\n"
    )


def _deployment(i: int, targets: int, lines: int) -> str:
    line = i % lines
    return (
        f"apiVersion: takt/v1\nkind: Deployment\nmetadata: {{name: deploy-{i}, labels: {{owner: team-{line}}}}}\n"
        f"spec:\n  model: model-{line}\n  bindings:\n    - {{input: x, source: src-{line}, fields: [f0, f1, f2, f3]}}\n"
        f"  targets: [target-{i % targets}]\n  selector: {{matchLabels: {{cell: c{i}}}}}\n  gates: [suite-{line}]\n"
        f"  outputs:\n    - {{type: mqtt, from: score, broker: 'mqtts://broker:8883', "
        f"topic: plant/l{line}/c{i}/score}}\n"
        f"  resources: {{cpu: 500m, memory: 256Mi}}\n"
    )


def generate(root: Path, deployments: int, *, lines: int = 50, targets: int = 10, per_file: int = 20) -> int:
    """Write the repo; returns the number of documents."""
    import hashlib

    (root / "specs").mkdir(parents=True, exist_ok=True)
    (root / "models").mkdir(exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    (root / "takt.yaml").write_text(PROJECT)
    model = _model_bytes()
    sha = hashlib.sha256(model).hexdigest()
    for i in range(lines):
        (root / "models" / f"m{i}.onnx").write_bytes(model)
        (root / "data" / f"ref{i}.csv").write_text("f0,f1,f2,f3\n1,2,3,4\n")
    groups = {
        "sources": [_source(i) for i in range(lines)],
        "models": [_model(i, sha) for i in range(lines)],
        "suites": [_suite(i) for i in range(lines)],
        "targets": [_target(i) for i in range(targets)],
        "devices": [_device(i, targets, lines) for i in range(deployments)],
        "deployments": [_deployment(i, targets, lines) for i in range(deployments)],
    }
    count = 0
    for name, docs in groups.items():
        for k in range(0, len(docs), per_file):
            (root / "specs" / f"{name}-{k // per_file:04d}.yaml").write_text("---\n".join(docs[k : k + per_file]))
        count += len(docs)
    return count
