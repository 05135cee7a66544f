"""`takt init`: a small, valid spec repo to start from, with a real (tiny) ONNX model."""

from __future__ import annotations

import hashlib
from pathlib import Path

_MODELINE = "# yaml-language-server: $schema=https://takt.dev/schemas/v1/takt.json\n"

_PROJECT = """\
# Takt project file: which files are specs, where bundles are published.
apiVersion: takt/v1
kind: Project
metadata:
  name: {name}
spec:
  specs: ["specs/**/*.yaml"]
  ignore: []          # diagnostic codes to silence for the whole repo
  deploy:
    repo: ../{name}-deploy.git
    branch: deploy
  signing:
    keyRef: env:TAKT_SIGNING_KEY
"""

_SPECS = {
    "specs/sources.yaml": """\
apiVersion: takt/v1
kind: DataSource
metadata:
  name: oven-plc
spec:
  protocol: opcua
  endpoint: opc.tcp://oven-plc.local:4840
  security:
    mode: SignAndEncrypt
    policy: Basic256Sha256
    credentialsRef: env:OVEN_OPCUA_CREDENTIALS
  samplingInterval: 500ms
  fields:
    - name: temperature
      dtype: float32
      unit: degC
      range: [0, 400]
      address: {{nodeId: "nsu=urn:example:oven;s=Zone1.Temperature"}}
    - name: pressure
      dtype: float32
      unit: mbar
      range: [0, 2000]
      address: {{nodeId: "nsu=urn:example:oven;s=Zone1.Pressure"}}
""",
    "specs/model.yaml": """\
apiVersion: takt/v1
kind: Model
metadata:
  name: oven-health
spec:
  version: "0.1.0"
  task: regression
  artifact:
    path: models/oven_health.onnx
    sha256: "{digest}"
  inputs:
    - name: features
      dtype: float32
      shape: [batch, 2]
      features:
        - {{name: temperature, unit: degC}}
        - {{name: pressure, unit: mbar}}
  outputs:
    - {{name: score, dtype: float32, shape: [batch, 1]}}
""",
    "specs/tests.yaml": """\
apiVersion: takt/v1
kind: TestSuite
metadata:
  name: oven-health-acceptance
spec:
  model: oven-health
  datasets:
    reference: {{path: data/reference.csv}}
  tests:
    - {{name: reference-data, type: data, dataset: reference, source: oven-plc}}
    - {{name: latency, type: latency, budget: {{p99: 5ms}}}}
""",
    "specs/fleet.yaml": """\
apiVersion: takt/v1
kind: Target
metadata:
  name: edge-x86
spec:
  class: edge-pc
  arch: x86_64
  os: linux
  memory: 4Gi
  runtime:
    onnxruntime: "1.20"
    executionProviders: [CPUExecutionProvider]
---
apiVersion: takt/v1
kind: Device
metadata:
  name: oven-ipc-1
  labels: {{line: oven}}
spec:
  target: edge-x86
""",
    "specs/deployment.yaml": """\
apiVersion: takt/v1
kind: Deployment
metadata:
  name: oven-health
  labels: {{owner: process-engineering}}
spec:
  model: oven-health
  bindings:
    - {{input: features, source: oven-plc, fields: [temperature, pressure]}}
  targets: [edge-x86]
  selector: {{matchLabels: {{line: oven}}}}
  gates: [oven-health-acceptance]
  outputs:
    - {{type: mqtt, from: score, broker: "mqtts://broker.local:8883", topic: plant/oven/1/health}}
""",
    "specs/policies.yaml": """\
# Your organisation's own rules (cerberus schemas), checked beside Takt's on every pull request.
apiVersion: takt/v1
kind: Policy
metadata:
  name: deployments-have-owner
spec:
  ruleId: ORG001
  severity: error
  message: every Deployment names its owning team in the label `owner`
  appliesTo: {{kinds: [Deployment]}}
  schema:
    metadata:
      type: dict
      schema:
        labels: {{type: dict, required: true, schema: {{owner: {{type: string, required: true, empty: false}}}}}}
""",
}


def tiny_model_bytes() -> bytes:
    """y = x · w + b: two features in, one score out; small enough to read in a hex dump."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Gemm", ["features", "W", "B"], ["score"])],
        "oven_health",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch", 1])],
        [
            numpy_helper.from_array(np.array([[0.01], [0.002]], np.float32), "W"),
            numpy_helper.from_array(np.array([-2.0], np.float32), "B"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    model.producer_name = "takt-init"
    data: bytes = model.SerializeToString(deterministic=True)
    return data


def scaffold(directory: Path) -> list[Path]:
    """Write the starter repo; returns the files written, in order."""
    name = "".join(c if c.isalnum() else "-" for c in directory.resolve().name.lower()).strip("-") or "factory"
    model = tiny_model_bytes()
    digest = hashlib.sha256(model).hexdigest()
    files: dict[str, str | bytes] = {"takt.yaml": _PROJECT.format(name=name[:63])}
    files.update({path: _MODELINE + text.format(digest=digest) for path, text in _SPECS.items()})
    files[".gitignore"] = ".takt-cache/\nout/\n"
    files["models/oven_health.onnx"] = model
    rows = ["temperature,pressure"] + [f"{180 + i % 7 * 2.5:.1f},{950 + i % 5 * 10}" for i in range(50)]
    files["data/reference.csv"] = "\n".join(rows) + "\n"
    written = []
    for rel, content in files.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", newline="\n")
        written.append(path)
    return written
