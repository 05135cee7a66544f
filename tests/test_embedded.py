"""The embedded target class: ORT model, operator config, C sources that compile clean, escaping."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from compiler.build import build
from compiler.render.escape import c_identifier, c_string
from compiler.validate.pipeline import validate
from tests.conftest import EXAMPLES, copy_example

GCC = shutil.which("gcc") or shutil.which("cc")
needs_gcc = pytest.mark.skipif(GCC is None, reason="no C compiler on this machine")


def embedded_repo(dst: Path) -> Path:
    """The press-line example with its Cortex-M7 node deployed to (made compatible for the test)."""
    copy_example("press-line-anomaly", dst)
    t = dst / "specs/targets.yaml"
    t.write_text(
        t.read_text()
        .replace("allowedOperators: [MatMul,", "allowedOperators: [Concat, MatMul,")
        .replace("    quantization: int8\n", "")
    )
    d = dst / "specs/devices.yaml"
    d.write_text(
        d.read_text() + "---\napiVersion: takt/v1\nkind: Device\nmetadata:\n  name: node-9\n"
        '  labels: {plant: muc, line: press, cell: "9"}\nspec:\n  target: vibration-node-m7\n'
    )
    p = dst / "specs/deployment.yaml"
    p.write_text(
        p.read_text()
        .replace("targets: [ipc-x86, ipc-arm]", "targets: [ipc-x86, ipc-arm, vibration-node-m7]")
        .replace("resources: {cpu: 500m, memory: 256Mi}", "resources: {cpu: 500m}")
    )
    return dst


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    tmp = tmp_path_factory.mktemp("emb")
    result = validate(embedded_repo(tmp / "spec"))
    assert not [d for d in result.diagnostics if d.severity.label == "error"]
    res = build(result, tmp / "out", run_gates=False)  # the gate times latency; this tests the bundle
    digest = next(b.digest for b in res.bundles if b.target == "vibration-node-m7")
    return tmp / "out/bundles" / digest, res.diagnostics


def test_bundle_contents(bundle):
    d, diags = bundle
    assert sorted(p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file()) == [
        "MANIFEST.json",
        "gateway.json",
        "model/model.ort",
        "model_data.c",
        "model_data.h",
        "required_operators.config",
        "takt.cmake",
        "takt_config.h",
    ]
    config = (d / "required_operators.config").read_text()
    assert "ai.onnx;13;Concat,Greater,MatMul,ReduceSum" in config and "/tmp" not in config
    assert [x.code for x in diags] == []  # the target pins 1.16, which reads the ORT format written (6)
    gateway = json.loads((d / "gateway.json").read_text())
    assert [o["type"] for o in gateway["outputs"]] == ["opcua", "http"]  # carried to the gateway, never dropped
    assert gateway["model"]["sha256"] == json.loads((d / "MANIFEST.json").read_text())["provenance"]["model"]["sha256"]


def test_onnxruntime_loads_the_ort_file_and_computes_like_the_onnx_model(bundle):
    import numpy as np
    import onnxruntime as ort

    d, _ = bundle
    x = {"vibration": np.array([[4.0, 3.0, 2.0]], np.float32), "process": np.array([[180.0, 45.0]], np.float32)}
    ort_out = ort.InferenceSession(str(d / "model/model.ort")).run(None, x)
    onnx_out = ort.InferenceSession(str(EXAMPLES / "press-line-anomaly/models/press_anomaly.onnx")).run(None, x)
    assert np.allclose(ort_out[0], onnx_out[0]) and (ort_out[1] == onnx_out[1]).all()


@pytest.mark.slow
@needs_gcc
def test_c_sources_compile_with_all_warnings_as_errors(bundle, tmp_path: Path):
    d, _ = bundle
    main = tmp_path / "main.c"
    main.write_text(
        '#include <stdio.h>\n#include "model_data.h"\n#include "takt_config.h"\n'
        'int main(void) { printf("%lu %s %s\\n", takt_model_size, TAKT_MODEL_NAME, takt_fields[3].unit);'
        " return 0; }\n"
    )
    exe = tmp_path / "t"
    subprocess.run(
        [
            GCC,
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            f"-I{d}",
            str(main),
            str(d / "model_data.c"),
            "-o",
            str(exe),
        ],
        check=True,
        capture_output=True,
    )
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    assert out == [str((d / "model/model.ort").stat().st_size), "press-anomaly", "bar"]
    size = (d / "model/model.ort").stat().st_size
    assert f"[{size}]" in (d / "model_data.h").read_text()


HOSTILE = [
    'a"b',
    "back\\slash",
    "new\nline",
    "*/ int evil; /*",
    "??=trigraph",
    "%s%n",
    "tab\there",
    "ümlaut",
    "${x}",
    "{{ x }}",
    "\x7f\x01",
]


@pytest.mark.slow
@needs_gcc
@pytest.mark.parametrize("value", HOSTILE)
def test_c_string_keeps_every_value_a_value(tmp_path: Path, value: str):
    src = tmp_path / "s.c"
    src.write_text(
        "#include <stdio.h>\nstatic const char *v = " + c_string(value) + ";\n"
        "int main(void) { fputs(v, stdout); return 0; }\n"
    )
    exe = tmp_path / "s"
    subprocess.run(
        [GCC, "-std=c11", "-Wall", "-Wextra", "-Werror", "-Wtrigraphs", str(src), "-o", str(exe)],
        check=True,
        capture_output=True,
    )
    assert subprocess.run([str(exe)], capture_output=True, check=True).stdout == value.encode()


def test_c_identifiers():
    assert c_identifier("press-anomaly") == "press_anomaly"
    assert c_identifier("9lives") == "_9lives"
    assert c_identifier("") == "_"


@pytest.mark.slow
def test_embedded_bundle_is_reproducible_across_checkouts(tmp_path: Path):
    """onnxruntime's converter is not deterministic by itself; the renderer makes it so within one build
    environment (same interpreter path and machine), wherever the checkout lives."""
    digests = []
    for name in ("a", "deeper/path/b"):
        root = embedded_repo(tmp_path / name)
        res = build(validate(root), tmp_path / name / "out", run_gates=False)
        digests.append(next(b.digest for b in res.bundles if b.target == "vibration-node-m7"))
    assert digests[0] == digests[1]
