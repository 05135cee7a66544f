"""Generate a realistic spec repo of any size: plants, lines and cells, one deployment per cell.

Every size is a parameter: plants, lines (one DataSource each), models and suites, edge-pc
targets (plus one it-server cluster per plant and one embedded node class when asked for),
devices per cell and deployments. Models are small real ONNX files, one distinct file per model.
"""

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


def _model_bytes(seed: int = 0) -> bytes:
    """A real 4-feature scorer, so validation reads, digests and checks actual ONNX files."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["score"])],
        "bench",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch", 1])],
        [numpy_helper.from_array(np.full((4, 1), 1.0 + seed, np.float32), "W")],
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


def _suite(i: int, models: int) -> str:
    return (
        f"apiVersion: takt/v1\nkind: TestSuite\nmetadata: {{name: suite-{i}}}\nspec:\n  model: model-{i % models}\n"
        f"  datasets: {{ref: {{path: data/ref{i}.csv}}}}\n  tests:\n"
        f"    - {{name: lat, type: latency, budget: {{p99: 5ms}}}}\n"
        f"    - {{name: drift, type: drift, reference: ref, candidate: ref, method: psi, threshold: 0.2}}\n"
    )


def _target(i: int) -> str:
    return (
        f"apiVersion: takt/v1\nkind: Target\nmetadata: {{name: target-{i}}}\nspec:\n  class: edge-pc\n"
        f"  arch: x86_64\n  os: linux\n  memory: {4 + i}Gi\n  runtime: {{onnxruntime: '1.20'}}\n"
    )


def _cluster(plant: int) -> str:
    return (
        f"apiVersion: takt/v1\nkind: Target\nmetadata: {{name: k8s-p{plant}}}\nspec:\n  class: it-server\n"
        f"  arch: x86_64\n  os: linux\n  memory: 16Gi\n"
        f"  runtime: {{onnxruntime: '1.20.1', executionProviders: [CPUExecutionProvider]}}\n"
        f"  profile: {{namespace: plant-{plant}, image: 'registry.p{plant}.local/takt/onnx-runner:1.20.1', "
        f"modelStore: 'https://models.p{plant}.local', replicas: 2}}\n"
        f"---\napiVersion: takt/v1\nkind: Device\nmetadata: {{name: cluster-p{plant}, labels: {{cluster: p{plant}}}}}\n"
        f"spec: {{target: k8s-p{plant}}}\n"
    )


EMBEDDED = (
    "apiVersion: takt/v1\nkind: Target\nmetadata: {name: node-m7}\nspec:\n  class: embedded\n  arch: cortex-m7\n"
    "  os: zephyr\n  memory: 512Ki\n  flash: 2Mi\n"
    "  runtime: {onnxruntime: '1.16', minimalBuild: true, allowedOperators: [MatMul, Add, Sub, Mul, Div]}\n"
)


def _device(i: int, cells: int, targets: int, lines: int, plants: int) -> str:
    cell, line = i % cells, i % cells % lines
    return (
        f"apiVersion: takt/v1\nkind: Device\nmetadata: {{name: ipc-{i}, labels: {{plant: p{line % plants}, "
        f"line: l{line}, cell: c{cell}}}}}\nspec: {{target: target-{cell % targets}}}\n"
    )


def _deployment(i: int, where: str, targets: int, lines: int, plants: int, models: int) -> str:
    line = i % lines
    if where == "it-server":
        place = f"  targets: [k8s-p{line % plants}]\n  selector: {{matchLabels: {{cluster: p{line % plants}}}}}\n"
    elif where == "embedded":
        place = f"  targets: [node-m7]\n  selector: {{matchLabels: {{node: n{i}}}}}\n"
    else:
        place = f"  targets: [target-{i % targets}]\n  selector: {{matchLabels: {{cell: c{i}}}}}\n"
    memory = "" if where == "embedded" else ", memory: 256Mi"
    return (
        f"apiVersion: takt/v1\nkind: Deployment\nmetadata: {{name: deploy-{i}, labels: {{owner: team-{line}}}}}\n"
        f"spec:\n  model: model-{line % models}\n"
        f"  bindings:\n    - {{input: x, source: src-{line}, fields: [f0, f1, f2, f3]}}\n"
        f"{place}  gates: [suite-{line}]\n"
        f"  outputs:\n    - {{type: mqtt, from: score, broker: 'mqtts://broker:8883', "
        f"topic: plant/l{line}/c{i}/score}}\n"
        f"  resources: {{cpu: 500m{memory}}}\n"
    )


def _placement(i: int, it_server_every: int, embedded_every: int) -> str:
    if embedded_every and i % embedded_every == embedded_every - 1:
        return "embedded"
    if it_server_every and i % it_server_every == it_server_every - 1:
        return "it-server"
    return "edge-pc"


def generate(
    root: Path,
    deployments: int,
    *,
    lines: int = 50,
    targets: int = 10,
    per_file: int = 20,
    plants: int = 1,
    models: int | None = None,
    devices_per_cell: int = 1,
    it_server_every: int = 0,
    embedded_every: int = 0,
) -> int:
    """Write the repo; returns the number of documents.

    One cell (and one deployment) per `deployments`, spread over `lines` lines of `plants`
    plants; `models` models (default: one per line) each with its suite; `devices_per_cell`
    edge PCs per cell. Every `it_server_every`-th deployment goes to its plant's Kubernetes
    cluster and every `embedded_every`-th to an embedded node (0: none), so all three target
    classes render.
    """
    import hashlib

    models = models or lines
    (root / "specs").mkdir(parents=True, exist_ok=True)
    (root / "models").mkdir(exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    (root / "takt.yaml").write_text(PROJECT)
    shas = []
    for i in range(models):
        blob = _model_bytes(i)
        (root / "models" / f"m{i}.onnx").write_bytes(blob)
        shas.append(hashlib.sha256(blob).hexdigest())
    for i in range(lines):
        (root / "data" / f"ref{i}.csv").write_text("f0,f1,f2,f3\n1,2,3,4\n")
    places = [_placement(i, it_server_every, embedded_every) for i in range(deployments)]
    fleet_targets = [_target(i) for i in range(targets)]
    if "it-server" in places:
        fleet_targets += [_cluster(p) for p in range(plants)]
    if "embedded" in places:
        fleet_targets.append(EMBEDDED)
    nodes = [
        f"apiVersion: takt/v1\nkind: Device\nmetadata: {{name: node-{i}, labels: {{node: n{i}}}}}\n"
        "spec: {target: node-m7}\n"
        for i, where in enumerate(places)
        if where == "embedded"
    ]
    groups = {
        "sources": [_source(i) for i in range(lines)],
        "models": [_model(i, shas[i]) for i in range(models)],
        "suites": [_suite(i, models) for i in range(lines)],
        "targets": fleet_targets,
        "devices": [_device(i, deployments, targets, lines, plants) for i in range(deployments * devices_per_cell)]
        + nodes,
        "deployments": [_deployment(i, w, targets, lines, plants, models) for i, w in enumerate(places)],
    }
    count = 0
    for name, docs in groups.items():
        for k in range(0, len(docs), per_file):
            (root / "specs" / f"{name}-{k // per_file:04d}.yaml").write_text("---\n".join(docs[k : k + per_file]))
        count += sum(1 + d.count("\n---\n") for d in docs)
    return count
