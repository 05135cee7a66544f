"""One rule, one check: every code of the rule table fires, at its file and line, from a minimal
spec repo (tests.conftest.BASE with one change); every registered check yields only its own code.

A new code is one function, one registry line and one case in CASES below. A code in the table
without a case fails `test_every_code_has_a_case`, so no code is defined but never emitted.
"""

from __future__ import annotations

import hashlib
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from compiler.codes import RULES
from compiler.diagnostics import Diagnostic
from compiler.validate import modbus_outputs, protocols, references, semantics
from tests.conftest import BASE, PROJECT, TINY, TINY_SHA, tiny_model, write_repo
from tests.test_modbus_and_numbers import modbus
from tests.test_modbus_output import MODBUS_SOURCE, _deploy


@dataclass(frozen=True)
class Edit:
    """Replace `old` (which must occur) with `new` in a BASE file."""

    old: str
    new: str


@dataclass(frozen=True)
class Case:
    files: dict[str, str | bytes | Edit | tuple[Edit, ...] | None]
    file: str  # where the diagnostic must be
    at: str | None  # text on its line (the first line holding it); None: the file itself (line 0 or 1)
    nth: int = 1  # the nth line holding `at`
    project: str | None = PROJECT
    setup: Callable[[Path], None] | None = None
    stage: str = "validate"  # or "build" (6xxx: rendering), "gated-build" (with the gates run)
    marks: tuple = field(default=())


def _model(data: bytes) -> dict[str, bytes | Edit]:
    """A different model file, its digest pinned in the spec."""
    return {"models/m.onnx": data, "model.yaml": Edit(TINY_SHA, hashlib.sha256(data).hexdigest())}


def _custom_domain_model() -> bytes:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Scale", ["x"], ["y"], domain="com.acme")],
        "custom",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1])],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.acme", 1)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=8).SerializeToString(deterministic=True)


def _string_normalizer_model() -> bytes:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("StringNormalizer", ["x"], ["y"], case_change_action="LOWER")],
        "strings",
        [helper.make_tensor_value_info("x", TensorProto.STRING, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.STRING, [1, 2])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString(
        deterministic=True
    )


def _parquet_with_unit(path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    temp = pa.field("temp", pa.float32(), metadata={"unit": "degF"})
    table = pa.table({"temp": pa.array([20.5], pa.float32()), "pres": pa.array([1.2], pa.float32())})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.cast(pa.schema([temp, pa.field("pres", pa.float32())])), path)


def _link(name: str, target: str) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        (root / name).symlink_to(target)

    return make


def _outside_link(root: Path) -> None:
    """The model a link to a file beside the project, not in it."""
    (root.parent / "outside.onnx").write_bytes(TINY)
    (root / "models").mkdir(exist_ok=True)
    (root / "models" / "m.onnx").symlink_to(root.parent / "outside.onnx")


def _fifo(root: Path) -> None:
    import os

    os.mkfifo(root / "pipe.yaml")


ALIAS_BOMB = "\n".join(
    ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    + [f"{chr(97 + i)}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 10) + "]" for i in range(1, 10)]
)
MCU = textwrap.dedent("""\
    apiVersion: takt/v1
    kind: Target
    metadata: {name: mcu}
    spec:
      class: embedded
      arch: cortex-m7
      os: zephyr
      memory: 512Ki
      runtime: {onnxruntime: "1.20"}
    """)
MQTT = textwrap.dedent("""\
    apiVersion: takt/v1
    kind: DataSource
    metadata: {name: broker}
    spec:
      protocol: mqtt
      broker: mqtt://b:1883
      fields:
        - {name: v, dtype: float32, address: {topic: "TOPIC", jsonPath: "PATH"}}
    """)
SPARKPLUG = MQTT.replace("broker: mqtt://b:1883", "broker: mqtt://b:1883\n  sparkplug: true")
OTHER_MODEL = textwrap.dedent("""\
    apiVersion: takt/v1
    kind: Model
    metadata: {name: m2}
    spec:
      version: "1.0.0"
      task: regression
      artifact: {path: models/m.onnx, sha256: "SHA"}
      inputs: [{name: x, dtype: float32, shape: [batch, 2]}]
      outputs: [{name: y, dtype: float32, shape: [batch, 1]}]
    """).replace("SHA", TINY_SHA)
RUNTIME = 'runtime: {onnxruntime: "1.20"}'


def _runtime(extra: str) -> dict[str, Edit]:
    return {"fleet.yaml": Edit(RUNTIME, 'runtime: {onnxruntime: "1.20", ' + extra + "}")}


slow = (pytest.mark.slow,)

CASES: dict[str, Case] = {
    # 0xxx: reading files
    "TAKT0001": Case(
        {"bad.yaml": "apiVersion: takt/v1\nkind: Model\nmetadata: {name: x\nspec: {}\n"}, "bad.yaml", "spec: {}"
    ),
    "TAKT0002": Case(
        {"model.yaml": Edit("task: regression", "task: regression\n  task: anomaly-detection")},
        "model.yaml",
        "task: anomaly-detection",
    ),
    "TAKT0003": Case({"t.yaml": "apiVersion: takt/v1\nkind: Model\nmetadata:\n\tname: x\n"}, "t.yaml", "\tname: x"),
    "TAKT0004": Case({"u.yaml": b"apiVersion: takt/v1\nkind: Model # \xff\n"}, "u.yaml", "kind: Model"),
    "TAKT0005": Case(
        {"big.yaml": "# " + "x" * 5000 + "\n"}, "big.yaml", None, project=PROJECT + "  limits: {maxFileBytes: 4096}\n"
    ),
    "TAKT0006": Case({"bomb.yaml": ALIAS_BOMB + "\n"}, "bomb.yaml", "a: &a"),
    "TAKT0007": Case({"tag.yaml": "apiVersion: takt/v1\nkind: !custom Model\n"}, "tag.yaml", "kind: !custom"),
    "TAKT0008": Case({"list.yaml": "- a\n- b\n"}, "list.yaml", "- a"),
    "TAKT0013": Case({"key.yaml": "apiVersion: takt/v1\n? [a, b]\n: 1\n"}, "key.yaml", "? [a, b]"),
    "TAKT0009": Case({}, "gone.yaml", None, setup=_link("gone.yaml", "nowhere.yaml")),
    "TAKT0010": Case({"merge.yaml": "a: &x 1\nb:\n  <<: *x\n"}, "merge.yaml", "a: &x 1"),
    "TAKT0011": Case({}, "pipe.yaml", None, setup=_fifo),
    "TAKT0012": Case({"deep.yaml": "a: " + "[" * 600 + "]" * 600 + "\n"}, "deep.yaml", "a: [[["),
    # 1xxx: structure
    "TAKT1001": Case(
        {"model.yaml": Edit("apiVersion: takt/v1", "apiVersion: takt/v2")}, "model.yaml", "apiVersion: takt/v2"
    ),
    "TAKT1002": Case({"model.yaml": Edit("kind: Model", "kind: Modle")}, "model.yaml", "kind: Modle"),
    "TAKT1003": Case({"model.yaml": Edit('  version: "1.0.0"\n', "")}, "model.yaml", "spec:"),
    "TAKT1004": Case({"model.yaml": Edit("task: regression", "task: regression\n  tsak: x")}, "model.yaml", "tsak: x"),
    "TAKT1005": Case({"mb.yaml": modbus(1).replace("address: 1,", "address: true,")}, "mb.yaml", "address: true"),
    "TAKT1006": Case({"model.yaml": Edit("metadata: {name: m}", "metadata: {name: M_1}")}, "model.yaml", "name: M_1"),
    "TAKT1007": Case({"fleet.yaml": Edit("os: linux", "os: beos")}, "fleet.yaml", "os: beos"),
    "TAKT1008": Case({"tests.yaml": Edit("type: latency", "type: latancy")}, "tests.yaml", "type: latancy"),
    "TAKT1009": Case({"fleet.yaml": Edit("memory: 4Gi", "memory: 4Gx")}, "fleet.yaml", "memory: 4Gx"),
    "TAKT1010": Case(
        {
            "deploy.yaml": Edit(
                "metadata: {name: d}", "metadata: {name: d, annotations: {note: ghp_" + "a1B2" * 9 + "}}"
            )
        },
        "deploy.yaml",
        "annotations",
    ),
    "TAKT1011": Case(
        {"sources.yaml": Edit('credentialsRef: "env:OPCUA"', 'credentialsRef: "bogus:x"')}, "sources.yaml", "bogus:x"
    ),
    "TAKT1012": Case({"model.yaml": Edit("path: models/m.onnx", "path: /etc/passwd")}, "model.yaml", "/etc/passwd"),
    "TAKT1014": Case(
        {
            "tests.yaml": Edit(
                "    - {name: dat, type: data, dataset: ref}",
                "    - {name: dat, type: data, dataset: ref}\n"
                "    - {name: acc, type: metric, metric: recall, dataset: ref, threshold: 1.5, output: y}",
            )
        },
        "tests.yaml",
        "threshold: 1.5",
    ),
    "TAKT1013": Case(
        {"fleet.yaml": Edit("spec: {target: ipc}", 'spec: {target: ipc, publicKey: "ssh-ed25519 AAAA-not-a-key"}')},
        "fleet.yaml",
        "publicKey",
    ),
    # 2xxx: addresses
    "TAKT2001": Case({"sources.yaml": Edit('"nsu=urn:x;s=T"', '"nsu=urn:x;q=T"')}, "sources.yaml", "q=T"),
    "TAKT2002": Case({"sources.yaml": Edit('"nsu=urn:x;s=T"', '"ns=2;s=T"')}, "sources.yaml", "ns=2;s=T"),
    "TAKT2003": Case(
        {"sources.yaml": Edit("{mode: Sign, policy: Basic256Sha256,", "{mode: None, policy: Basic256Sha256,")},
        "sources.yaml",
        "security:",
    ),
    "TAKT2004": Case(
        {"sources.yaml": Edit("{mode: Sign, policy: Basic256Sha256,", "{mode: None, policy: None,")},
        "sources.yaml",
        "security:",
    ),
    "TAKT2005": Case(
        {"sources.yaml": Edit("policy: Basic256Sha256", "policy: Basic128Rsa15")}, "sources.yaml", "Basic128Rsa15"
    ),
    "TAKT2006": Case(
        {"sources.yaml": Edit("endpoint: opc.tcp://plc:4840", "endpoint: http://plc:4840")},
        "sources.yaml",
        "http://plc",
    ),
    "TAKT2007": Case({"sources.yaml": Edit('"nsu=urn:x;s=T"', '"i=0"')}, "sources.yaml", '"i=0"'),
    "TAKT2008": Case({"sources.yaml": Edit('"nsu=urn:x;s=T"', '"s=T"')}, "sources.yaml", '"s=T"'),
    "TAKT2010": Case(
        {"mqtt.yaml": MQTT.replace("TOPIC", "a/#/b").replace(', jsonPath: "PATH"', "")}, "mqtt.yaml", "a/#/b"
    ),
    "TAKT2011": Case(
        {"mqtt.yaml": SPARKPLUG.replace("TOPIC", "spBv1.0/g/NDATA").replace(', jsonPath: "PATH"', ", metric: t")},
        "mqtt.yaml",
        "spBv1.0/g/NDATA",
    ),
    "TAKT2013": Case(
        {"mqtt.yaml": MQTT.replace("TOPIC", "a/b").replace(', jsonPath: "PATH"', ", metric: t")},
        "mqtt.yaml",
        "metric: t",
    ),
    "TAKT2012": Case({"mqtt.yaml": MQTT.replace("TOPIC", "a/b").replace("PATH", "$..[")}, "mqtt.yaml", "jsonPath"),
    "TAKT2020": Case({"mb.yaml": modbus(65536, data="int16")}, "mb.yaml", "address: 65536"),
    "TAKT2026": Case(
        {"mb.yaml": modbus(1).replace("samplingInterval: 1s", "samplingInterval: 1s\n      serial: {baudRate: 9600}")},
        "mb.yaml",
        "serial:",
    ),
    "TAKT2027": Case(
        {"mb.yaml": modbus(1).replace("dataType: float32}", "dataType: float32, scale: 0}")}, "mb.yaml", "scale: 0"
    ),
    "TAKT2021": Case(
        {"mb.yaml": modbus(1, kind="coil", data="float32").replace("dataType: bool", "dataType: float32")},
        "mb.yaml",
        "registerType: coil",
    ),
    "TAKT2022": Case(
        {"mb.yaml": modbus(1, data="float32").replace("dtype: float32", "dtype: int8")}, "mb.yaml", "dtype: int8"
    ),
    "TAKT2023": Case(
        {
            "mb.yaml": modbus(1).replace(
                "        - {name: a,",
                "        - {name: b, dtype: float32,"
                " address: {registerType: holding-register, address: 2, dataType: float32}}\n"
                "        - {name: a,",
            )
        },
        "mb.yaml",
        "name: a",
    ),
    "TAKT2024": Case(
        {
            "sources.yaml": MODBUS_SOURCE,
            "deploy.yaml": _deploy(
                "{type: modbus, from: y, connection: plc, address: {registerType: input-register, address: 101, "
                "dataType: float32}}"
            ),
        },
        "deploy.yaml",
        "registerType: input-register",
    ),
    "TAKT2025": Case(
        {
            "sources.yaml": MODBUS_SOURCE,
            "deploy.yaml": _deploy(
                "{type: modbus, from: y, connection: plc, address: {registerType: holding-register, address: 101, "
                "dataType: int16}}"
            ),
        },
        "deploy.yaml",
        "dataType: int16",
    ),
    "TAKT2029": Case({"mb.yaml": modbus(40001)}, "mb.yaml", "address: 40001"),
    "TAKT2028": Case({"mb.yaml": modbus(1).replace("endpoint: gw:502", "endpoint: gw")}, "mb.yaml", "endpoint: gw"),
    # 3xxx: references
    "TAKT3001": Case({"deploy.yaml": Edit("model: m", "model: mm")}, "deploy.yaml", "model: mm"),
    "TAKT3002": Case({"m2.yaml": OTHER_MODEL.replace("name: m2", "name: m")}, "model.yaml", "metadata: {name: m}"),
    "TAKT3003": Case(
        {"fleet.yaml": Edit("class: edge-pc", "class: edge-pc\n  extends: ipc")}, "fleet.yaml", "extends: ipc"
    ),
    "TAKT3004": Case({"deploy.yaml": Edit("model: m", "model: m@2.0.0")}, "deploy.yaml", "model: m@2.0.0"),
    "TAKT3005": Case(
        {
            "fleet.yaml": Edit(
                "spec: {target: ipc}",
                "spec: {target: ipc}\n"
                "---\n"
                "apiVersion: takt/v1\n"
                "kind: Device\n"
                "metadata: {name: ipc-2}\n"
                "spec: {target: ipc, id: ipc-1}",
            )
        },
        "fleet.yaml",
        "id: ipc-1",
    ),
    "TAKT3007": Case(
        {
            "mb.yaml": modbus(1).replace(
                "        - {name: a,",
                "        - {name: a, dtype: float32,"
                " address: {registerType: holding-register, address: 9, dataType: float32}}\n"
                "        - {name: a,",
            )
        },
        "mb.yaml",
        "name: a",
        nth=2,
    ),
    "TAKT3008": Case(
        {"tests.yaml": Edit("    - {name: dat, type: data", "    - {name: lat, type: data")},
        "tests.yaml",
        "name: lat",
        nth=2,
    ),
    "TAKT3009": Case(
        {
            "tests-2.yaml": BASE["tests.yaml"].replace("{name: suite}", "{name: suite-2}"),
            "deploy.yaml": Edit(
                "  gates: [suite]", "  gates: [suite]\n  monitoring: {drift: {testSuite: suite-2, dataset: ref}}"
            ),
        },
        "deploy.yaml",
        "testSuite: suite-2",
    ),
    "TAKT3006": Case(
        {"tests.yaml": Edit("budget: {p99: 5ms}}", "budget: {p99: 5ms}, budgets: {ipc-x68: {p99: 5ms}}}")},
        "tests.yaml",
        "ipc-x68",
    ),
    # 4xxx: semantics
    "TAKT4001": Case({"deploy.yaml": Edit("{input: x,", "{input: xx,")}, "deploy.yaml", "bindings:"),
    "TAKT4002": Case({"deploy.yaml": Edit("fields: [temp, pres]", "fields: [temp]")}, "deploy.yaml", "fields: [temp]"),
    "TAKT4003": Case(
        {"sources.yaml": Edit("{name: pres, dtype: float32", "{name: pres, dtype: string")},
        "deploy.yaml",
        "fields: [temp, pres]",
    ),
    "TAKT4004": Case(
        {"sources.yaml": Edit("{name: pres, dtype: float32", "{name: pres, dtype: float64")},
        "deploy.yaml",
        "fields: [temp, pres]",
    ),
    "TAKT4005": Case({"sources.yaml": Edit("unit: bar", "unit: psi")}, "deploy.yaml", "fields: [temp, pres]"),
    "TAKT4006": Case(
        {
            "deploy.yaml": Edit(
                "    - {input: x, source: plc, fields: [temp, pres]}",
                "    - {input: x, source: plc, fields: [temp, pres]}\n"
                "    - {input: x, source: plc, fields: [pres, temp]}",
            )
        },
        "deploy.yaml",
        "fields: [pres, temp]",
    ),
    "TAKT4007": Case(
        {"m2.yaml": OTHER_MODEL, "tests.yaml": Edit("  model: m", "  model: m2")}, "deploy.yaml", "gates: [suite]"
    ),
    "TAKT4008": Case({"deploy.yaml": Edit("from: y,", "from: yy,")}, "deploy.yaml", "from: yy"),
    "TAKT4010": Case(
        {"deploy.yaml": Edit("matchLabels: {line: a}", "matchLabels: {line: b}")}, "deploy.yaml", "selector:"
    ),
    "TAKT4011": Case(
        {
            "fleet.yaml": Edit(
                "spec: {target: ipc}",
                "spec: {target: ipc}\n"
                "---\n"
                "apiVersion: takt/v1\n"
                "kind: Target\n"
                "metadata: {name: ipc2}\n"
                "spec: {extends: ipc}\n"
                "---\n"
                "apiVersion: takt/v1\n"
                "kind: Device\n"
                "metadata: {name: ipc-2, labels: {line: a}}\n"
                "spec: {target: ipc2}",
            )
        },
        "deploy.yaml",
        "targets: [ipc]",
    ),
    "TAKT4012": Case(
        {"deploy.yaml": Edit("  gates: [suite]", "  gates: [suite]\n  resources: {memory: 8Gi}")},
        "deploy.yaml",
        "resources:",
    ),
    "TAKT4013": Case({"fleet.yaml": Edit("  memory: 4Gi\n", "")}, "fleet.yaml", "spec:"),
    "TAKT4014": Case(
        {
            "model.yaml": Edit(
                "    - {name: y, dtype: float32, shape: [batch, 1]}",
                "    - {name: y, dtype: float32, shape: [batch, 1]}\n"
                "    - {name: y, dtype: float32, shape: [batch, 1]}",
            )
        },
        "model.yaml",
        "- {name: y",
        nth=2,
    ),
    "TAKT4015": Case({"fleet.yaml": Edit("arch: x86_64", "arch: cortex-m4")}, "fleet.yaml", "arch: cortex-m4"),
    "TAKT4016": Case({"tests.yaml": Edit("dataset: ref}", "dataset: reff}")}, "tests.yaml", "dataset: reff"),
    "TAKT4017": Case(
        {
            "deploy.yaml": Edit(
                "  gates: [suite]",
                "  gates: [suite]\n  rollout: {strategy: canary, canary: {selector: {matchLabels: {ring: canary}}}}",
            )
        },
        "deploy.yaml",
        "rollout:",
    ),
    "TAKT4018": Case(
        {"sources.yaml": Edit("{name: pres, dtype: float32", "{name: pres, dtype: bool")},
        "deploy.yaml",
        "fields: [temp, pres]",
    ),
    "TAKT4019": Case(
        {
            "model.yaml": Edit(
                "features: [{name: temp, unit: degC}, {name: pres, unit: bar}]",
                "features: [{name: temp}, {name: pres}]",
            ),
            "deploy.yaml": Edit("fields: [temp, pres]", "fields: [pres, temp]"),
        },
        "deploy.yaml",
        "fields: [pres, temp]",
    ),
    "TAKT4030": Case(
        {
            "mcu.yaml": MCU.replace(
                "os: zephyr", 'os: zephyr\n  runtime: {onnxruntime: "1.20", minimalBuild: true}'
            ).replace('  runtime: {onnxruntime: "1.20"}\n', "", 1)
        },
        "mcu.yaml",
        "spec:",
    ),
    "TAKT4031": Case({"mcu.yaml": MCU.replace("memory: 512Ki", "memory: 512Ki\n  flash: 2Mi")}, "mcu.yaml", "runtime:"),
    "TAKT4032": Case(_runtime("disableCpuFallback: true"), "fleet.yaml", "disableCpuFallback"),
    "TAKT4033": Case(
        {
            "deploy.yaml": Edit(
                '{type: mqtt, from: y, broker: "mqtt://b:1883", topic: out/y}',
                "{type: mqtt, from: y, connection: plc, topic: out/y}",
            )
        },
        "deploy.yaml",
        "connection: plc",
    ),
    "TAKT4034": Case({"fleet.yaml": Edit("class: edge-pc", "class: jetsn")}, "fleet.yaml", "class: jetsn"),
    "TAKT4035": Case(
        {"fleet.yaml": Edit(RUNTIME, RUNTIME + '\n  profile: {httpPort: "8080"}')}, "fleet.yaml", "httpPort"
    ),
    # 5xxx: models and data on disk
    "TAKT5001": Case({"models/m.onnx": None}, "model.yaml", "artifact:"),
    "TAKT5002": Case({"models/m.onnx": tiny_model(opset=16)}, "model.yaml", "artifact:"),
    "TAKT5003": Case(_model(b"not a model"), "model.yaml", "artifact:"),
    "TAKT5004": Case(_model(tiny_model(in_type=3)), "model.yaml", "artifact:"),
    "TAKT5005": Case(_runtime("maxIrVersion: 7"), "deploy.yaml", "targets: [ipc]"),
    "TAKT5006": Case(_runtime("maxOpset: 13"), "deploy.yaml", "targets: [ipc]"),
    "TAKT5007": Case(
        _runtime("executionProviders: [CUDAExecutionProvider], disableCpuFallback: true"),
        "deploy.yaml",
        "targets: [ipc]",
    ),
    "TAKT5008": Case(_runtime("allowedOperators: [MatMul]"), "deploy.yaml", "targets: [ipc]"),
    "TAKT5009": Case(
        {"model.yaml": Edit("- name: x", "- name: xx"), "deploy.yaml": Edit("{input: x,", "{input: xx,")},
        "model.yaml",
        "- name: xx",
    ),
    "TAKT5010": Case(
        {"model.yaml": Edit("- {name: y, dtype: float32", "- {name: y, dtype: float64")},
        "model.yaml",
        "{name: y, dtype: float64",
    ),
    "TAKT5011": Case(
        {
            "model.yaml": Edit(
                "{name: y, dtype: float32, shape: [batch, 1]}", "{name: y, dtype: float32, shape: [batch, 1, 1]}"
            )
        },
        "model.yaml",
        "shape: [batch, 1, 1]",
    ),
    "TAKT5012": Case({"fleet.yaml": Edit("memory: 4Gi", "memory: 100")}, "deploy.yaml", "targets: [ipc]"),
    "TAKT5013": Case(_runtime("quantization: int8"), "deploy.yaml", "targets: [ipc]"),
    "TAKT5014": Case({"fleet.yaml": Edit(RUNTIME, 'runtime: {onnxruntime: "1.18"}')}, "deploy.yaml", "targets: [ipc]"),
    "TAKT5029": Case(_runtime("executionProviders: [TensorrtExecutionProvider]"), "deploy.yaml", "targets: [ipc]"),
    "TAKT5030": Case(
        {
            "mcu.yaml": MCU.replace("memory: 512Ki", "memory: 512Ki\n  flash: 100").replace(
                'runtime: {onnxruntime: "1.20"}', 'runtime: {onnxruntime: "1.20", minimalBuild: true}'
            ),
            "deploy.yaml": Edit("targets: [ipc]", "targets: [ipc, mcu]"),
        },
        "deploy.yaml",
        "targets: [ipc, mcu]",
    ),
    "TAKT5032": Case(
        {
            "model.yaml": Edit(
                "outputs:\n    - {name: y, dtype: float32, shape: [batch, 1]}",
                "outputs:\n    - {name: z, dtype: float32, shape: [batch, 1]}",
            ),
        },
        "model.yaml",
        "outputs:",
    ),
    "TAKT5015": Case(_model(_custom_domain_model()), "deploy.yaml", "targets: [ipc]"),
    "TAKT5016": Case(
        {
            **_model(_string_normalizer_model()),
            "model.yaml": (
                Edit(TINY_SHA, hashlib.sha256(_string_normalizer_model()).hexdigest()),
                Edit("dtype: float32\n      shape: [batch, 2]", "dtype: string\n      shape: [1, 2]"),
                Edit("{name: y, dtype: float32, shape: [batch, 1]}", "{name: y, dtype: string, shape: [1, 2]}"),
            ),
        },
        "deploy.yaml",
        "targets: [ipc]",
    ),
    "TAKT5018": Case(
        {"model.yaml": Edit("artifact: {path: models/m.onnx,", "artifact: {uri: https://models.example.com/m.onnx,")},
        "model.yaml",
        "artifact:",
    ),
    "TAKT5019": Case({"models/m.onnx": None}, "model.yaml", "artifact:", setup=_outside_link),
    "TAKT5020": Case(
        {
            "data/ref.csv": None,
            "data/ref.parquet": b"PAR1 not parquet",
            "tests.yaml": Edit("data/ref.csv", "data/ref.parquet"),
        },
        "tests.yaml",
        "datasets:",
    ),
    "TAKT5021": Case(
        {"data/ref.csv": "temp,pres\nwarm,1.2\n", "tests.yaml": Edit("dataset: ref}", "dataset: ref, source: plc}")},
        "tests.yaml",
        "source: plc",
    ),
    "TAKT5022": Case(
        {
            "data/ref.csv": None,
            "tests.yaml": (
                Edit("data/ref.csv", "data/ref.parquet"),
                Edit("dataset: ref}", "dataset: ref, source: plc}"),
            ),
        },
        "tests.yaml",
        "source: plc",
        setup=lambda root: _parquet_with_unit(root / "data" / "ref.parquet"),
    ),
    "TAKT5023": Case({"data/ref.csv": "temp,pres\n"}, "tests.yaml", "datasets:"),
    # 6xxx: rendering (takt build)
    "TAKT6002": Case(
        {"fleet.yaml": Edit(RUNTIME, RUNTIME + '\n  profile: {unit: {user: "Bad User"}}')},
        "fleet.yaml",
        "profile:",
        stage="build",
        marks=slow,
    ),
    "TAKT6004": Case(
        {
            "mcu.yaml": MCU.replace("memory: 512Ki", "memory: 512Ki\n  flash: 2Mi").replace(
                'runtime: {onnxruntime: "1.20"}', 'runtime: {onnxruntime: "1.20", minimalBuild: true}'
            ),
            "deploy.yaml": Edit("targets: [ipc]", "targets: [ipc, mcu]"),
        },
        "deploy.yaml",
        "targets: [ipc, mcu]",
        stage="gated-build",
        marks=slow,
    ),
    # 8xxx: policies
    "TAKT8001": Case(
        {
            "policy.yaml": (
                "apiVersion: takt/v1\n"
                "kind: Policy\n"
                "metadata: {name: p}\n"
                "spec:\n"
                "  ruleId: ACME001\n"
                "  message: m\n"
                "  appliesTo: {kinds: [Deployment]}\n"
                "  schema: {metadata: {type: dikt}}\n"
            )
        },
        "policy.yaml",
        "schema:",
    ),
    # 9xxx: project
    "TAKT9001": Case({}, ".", None, project=None),
    "TAKT9002": Case(
        {}, "takt.yaml", None, project=PROJECT.replace('specs: ["**/*.yaml"]', 'specs: ["**/*.yaml", "nothing/*.yml"]')
    ),
    "TAKT9003": Case({}, "takt.yaml", None, project=PROJECT + "---\n" + PROJECT),
    "TAKT9004": Case({}, "takt.yaml", None, project=PROJECT + "  ignore: [TAKT9999]\n"),
}


def _apply(text: str, edits: Edit | tuple[Edit, ...]) -> str:
    for edit in edits if isinstance(edits, tuple) else (edit for edit in (edits,)):
        assert edit.old in text, f"{edit.old!r} is not in the base file"
        text = text.replace(edit.old, edit.new, 1)
    return text


def _write(root: Path, case: Case) -> dict[str, str | bytes]:
    files: dict[str, str | bytes] = {k: textwrap.dedent(v) if isinstance(v, str) else v for k, v in BASE.items()}
    for name, change in case.files.items():
        if change is None:
            files.pop(name, None)
        elif isinstance(change, Edit | tuple):
            files[name] = _apply(str(files[name]), change)
        else:
            files[name] = textwrap.dedent(change) if isinstance(change, str) else change
    write_repo(root, files, project=case.project)
    if case.setup:
        case.setup(root)
    return files


def _fired(root: Path, case: Case, code: str, tmp_path: Path) -> list[Diagnostic]:
    from compiler.validate.pipeline import validate

    result = validate(root)
    if case.stage in ("build", "gated-build"):
        from compiler.build import build

        gates = case.stage == "gated-build"
        result = build(result, tmp_path / "out", run_gates=gates, cache_secret_dir=tmp_path / "secret")
    return [d for d in result.diagnostics if d.code == code]


def _expected_line(root: Path, case: Case) -> int | None:
    if case.at is None:
        return None
    lines = (root / case.file).read_text(encoding="utf-8", errors="replace").splitlines()
    hits = [n for n, line in enumerate(lines, start=1) if case.at in line]
    assert len(hits) >= case.nth, f"{case.at!r} is not on {case.nth} line(s) of {case.file}"
    return hits[case.nth - 1]


@pytest.mark.parametrize("code", [pytest.param(c, marks=CASES[c].marks, id=c) for c in sorted(CASES)])
def test_code_fires_at_its_location(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    root = tmp_path / "repo"
    root.mkdir()
    monkeypatch.chdir(root)  # diagnostics carry paths relative to the working directory
    case = CASES[code]
    _write(root, case)
    fired = _fired(root, case, code, tmp_path)
    assert fired, f"{code} did not fire"
    line = _expected_line(root, case)
    where = {(d.location.file, d.location.line) for d in fired}
    if line is None:
        assert {f for f, _ in where} == {case.file} and all(n <= 1 for _, n in where), where
    else:
        assert (case.file, line) in where, f"{code} fired at {sorted(where)}, expected {case.file}:{line}"
    assert all(d.severity is RULES[code].severity for d in fired)  # the table's severity, whoever emits it


# Codes only an installed class emits (the built-in ones have no build warning): tested there.
ELSEWHERE = {  # codes whose case needs a server, a store or an installed package: tested at their location there
    "TAKT6003": "tests/test_target_plugins.py::test_an_installed_class_validates_builds_and_publishes",
    "TAKT4040": "tests/test_rollout_spec.py::test_rollout_mistakes_are_located",
    "TAKT4041": "tests/test_rollout_spec.py::test_rollout_mistakes_are_located",
    "TAKT4042": "tests/test_rollout_spec.py::test_rollout_mistakes_are_located",
    "TAKT4043": "tests/test_rollout_spec.py::test_rollout_mistakes_are_located",
    "TAKT5031": "tests/test_models.py::test_an_artifact_that_cannot_be_read_is_located",
    "TAKT5024": "tests/test_stores_mlflow.py::test_without_the_extra_the_diagnostic_names_it",
    "TAKT5025": "tests/test_stores_dvc.py::test_threat_a_dvc_cache_entry_that_is_not_its_md5",
    "TAKT5026": "tests/test_stores_mlflow.py::test_threat_an_unknown_version_is_a_located_error",
    "TAKT5027": "tests/test_stores_mlflow.py::test_threat_a_moved_version_is_a_located_error",
    "TAKT5028": "tests/test_stores_mlflow.py::test_threat_a_fetch_onto_a_full_disk_keeps_nothing",
}


def test_codes_tested_elsewhere_name_a_test_that_mentions_them():
    for code, where in ELSEWHERE.items():
        file, _, name = where.partition("::")
        text = (Path(__file__).parent.parent / file).read_text()
        assert f"def {name}(" in text and code in text, (code, where)


def test_every_code_has_a_case():
    """A code nothing emits has no case that can pass: wire it or remove it from the table."""
    assert sorted(set(RULES) - set(CASES) - set(ELSEWHERE)) == []
    assert sorted(set(CASES) - set(RULES)) == []


CHECKS = references.CHECKS + protocols.CHECKS + modbus_outputs.CHECKS + semantics.CHECKS


def test_one_check_per_code_and_only_its_code(tmp_path: Path):
    """The registries of the reference, protocol, Modbus output and semantics stages: each code has
    one check, and a check yields nothing but its code."""
    codes = [c.code for c in CHECKS]
    assert len(codes) == len(set(codes)) and set(codes) <= set(RULES)
    from compiler.validate.pipeline import validate

    for code in codes:
        root = tmp_path / code
        root.mkdir()
        _write(root, CASES[code])
        index = validate(root, check_artifacts=False).index
        for check in CHECKS:
            assert {d.code for d in check.run(index)} <= {check.code}, check.name


def test_each_code_has_one_check_across_every_stage():
    """The structure stage's checks (envelope, model errors) and the cross-document ones: no code twice."""
    from compiler.validate import structure

    codes = [c.code for c in (*CHECKS, structure.ENVELOPE, *structure.CHECKS, *structure.MODEL_CHECKS)]
    assert sorted(c for c in set(codes) if codes.count(c) > 1) == []
    assert set(codes) <= set(RULES)


def test_split_codes_are_documented():
    """Codes split from one that meant several things name it; the README lists the split."""
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    split = [r for r in RULES.values() if r.split_from]
    assert {r.split_from for r in split} == {
        *("TAKT4015", "TAKT2020", "TAKT2011", "TAKT3002", "TAKT0008", "TAKT1007"),
        *("TAKT5001", "TAKT5009", "TAKT5012", "TAKT5014", "TAKT2006"),
    }
    for r in split:
        assert r.code in readme and r.split_from in readme


def test_severities_are_never_stated_at_call_sites():
    """`severity=` belongs to the rule table: no check, stage or renderer passes one."""
    root = Path(__file__).parent.parent
    offenders = []
    for path in [*root.glob("compiler/**/*.py"), *root.glob("targets/**/*.py")]:
        text = path.read_text(encoding="utf-8")
        for n, line in enumerate(text.splitlines(), start=1):
            if (
                re.search(r"severity=Severity\.|(Problem|located|Diagnostic)\(.*Severity\.", line)
                and path.name != "codes.py"
            ):
                offenders.append(f"{path.relative_to(root)}:{n}")
    assert offenders == []
