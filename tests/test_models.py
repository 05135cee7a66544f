"""Model artifacts in validate, `takt model check`, the digest cache, and hostile model files."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from compiler.models.digest import DigestCache
from tests.conftest import BASE, TINY, codes, only, tiny_model

MODEL, FLEET, DEPLOY, TESTS = (BASE[k] for k in ("model.yaml", "fleet.yaml", "deploy.yaml", "tests.yaml"))


def test_missing_artifact_and_dataset(repo):
    r = repo({"models/m.onnx": None, "data/ref.csv": None})
    assert sorted(d.path for d in r.diagnostics if d.code == "TAKT5001") == [
        "spec.artifact.path",
        "spec.datasets.ref.path",
    ]


def test_digest_mismatch_names_the_actual_digest(repo):
    r = repo({"models/m.onnx": tiny_model(inputs=2, opset=13)})
    d = only(r, "TAKT5002")
    assert d.path == "spec.artifact.sha256"
    assert len(d.message.split()[4].strip(",")) == 64


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "empty"),
        (b"\x00\x01garbage\xff" * 10, "not an ONNX model"),
        (TINY[: len(TINY) // 2], "not an ONNX model"),
        (b"apiVersion: takt/v1\n", "not an ONNX model"),
    ],
)
def test_hostile_model_files_are_located_diagnostics(repo, content: bytes, fragment: str):
    import hashlib

    model = MODEL.replace(hashlib.sha256(TINY).hexdigest(), hashlib.sha256(content).hexdigest())
    r = repo({"models/m.onnx": content, "model.yaml": model})
    d = [d for d in r.diagnostics if d.code in ("TAKT5003", "TAKT5004")]
    assert d and fragment in d[0].message
    assert d[0].location.file == "model.yaml" and d[0].path == "spec.artifact.path"


def _with_model(model_bytes: bytes) -> dict:
    import hashlib

    return {
        "models/m.onnx": model_bytes,
        "model.yaml": MODEL.replace(hashlib.sha256(TINY).hexdigest(), hashlib.sha256(model_bytes).hexdigest()),
    }


def test_signature_mismatches_point_at_the_declared_tensor(repo):
    r = repo(_with_model(tiny_model(inputs=3)))  # spec declares [batch, 2]
    d = only(r, "TAKT5011")
    assert d.path == "spec.inputs[0]" and "dimension 1 is 2 in the spec, 3 in the model" in d.message
    r = repo(_with_model(tiny_model(in_type=TensorProto.DOUBLE)))
    assert {d.path for d in r.diagnostics if d.code == "TAKT5010"} == {"spec.inputs[0]", "spec.outputs[0]"}
    r = repo({**_with_model(TINY), "model.yaml": _with_model(TINY)["model.yaml"].replace("- name: x", "- name: input")})
    assert [(d.path, d.message) for d in r.diagnostics if d.code == "TAKT5009"] == [
        ("spec.inputs[0]", "the model has no input 'input' (it has: x)")
    ]
    assert [(d.path, d.message) for d in r.diagnostics if d.code == "TAKT5032"] == [
        ("spec.inputs", "the model's input 'x' is not declared in the spec")
    ]


def test_deployment_to_a_target_whose_runtime_is_too_old(repo):
    old = FLEET.replace('runtime: {onnxruntime: "1.20"}', 'runtime: {onnxruntime: "1.16"}')
    r = repo({**_with_model(tiny_model(opset=21)), "fleet.yaml": old})
    d = only(r, "TAKT5006")
    assert d.location.file == "deploy.yaml" and d.path == "spec.targets[0]"
    assert "model 'm' on target 'ipc': opset ai.onnx 21 is newer than onnxruntime 1.16.3" in d.message
    r = repo({**_with_model(tiny_model(opset=19, ir=10)), "fleet.yaml": old})
    assert only(r, "TAKT5005").message.endswith(
        "IR version 10 is newer than onnxruntime 1.16.3 (target ipc) reads (<= 9)"
    )
    # the same model is fine on 1.20
    assert "TAKT5006" not in codes(repo(_with_model(tiny_model(opset=21))))


def test_target_limits_max_opset_minimal_build_memory_quantization(repo):
    strict = FLEET.replace(
        'runtime: {onnxruntime: "1.20"}',
        'runtime: {onnxruntime: "1.20", maxOpset: 13, allowedOperators: [MatMul], quantization: int8}',
    ).replace("memory: 4Gi", "memory: 100")
    r = repo({"fleet.yaml": strict})
    got = {d.code: d.message for d in r.diagnostics}
    assert "opset ai.onnx 17" in got["TAKT5006"]
    assert "operator Add is not in the target's minimal build" in got["TAKT5008"]
    assert "the target has 100" in got["TAKT5012"]
    assert "int8 quantization" in got["TAKT5013"]


def test_unknown_runtime_release_uses_nearest_table_with_a_warning(repo):
    r = repo({"fleet.yaml": FLEET.replace('onnxruntime: "1.20"', 'onnxruntime: "1.18"')})
    d = only(r, "TAKT5014")
    assert "checked against 1.16.3" in d.message


def test_an_artifact_that_cannot_be_read_is_located(repo, monkeypatch: pytest.MonkeyPatch):
    """TAKT5031 (split from 5001): the file is there, reading it fails (as a mode-000 file does for a user)."""
    from compiler.models import digest

    def denied(path: Path) -> str:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(digest, "sha256_file", denied)
    r = repo({})
    d = only(r, "TAKT5031")
    assert (d.location.file, d.path) == ("model.yaml", "spec.artifact.path")
    assert d.location.line == 7 and d.message == "cannot read model artifact 'models/m.onnx': Permission denied"
    assert "TAKT5001" not in codes(r)


def test_golden_samples_must_exist(repo):
    r = repo({"tests.yaml": textwrap.dedent(TESTS) + "    - {name: g, type: golden, samples: data/golden.npz}\n"})
    assert only(r, "TAKT5001").path == "spec.tests[2].samples"


def test_digest_cache_skips_unchanged_files_and_rereads_changed_ones(tmp_path: Path):
    f = tmp_path / "m.onnx"
    f.write_bytes(TINY)
    cache_file = tmp_path / "cache" / "digests.json"
    c1 = DigestCache.load(cache_file)
    first = c1.sha256(f)
    c1.save()
    c2 = DigestCache.load(cache_file)
    assert c2.sha256(f) == first and (c2.hits, c2.misses) == (1, 0)
    f.write_bytes(TINY + b"\x00")
    assert c2.sha256(f) != first and c2.misses == 1
    cache_file.write_text("{not json")
    assert DigestCache.load(cache_file).sha256(f) == c2.sha256(f)  # a damaged cache is only slower


def test_validate_uses_the_digest_cache_for_declared_digests(repo, tmp_path: Path):
    import hashlib

    csv = BASE["data/ref.csv"]
    tests = TESTS.replace(
        "{path: data/ref.csv}", f"{{path: data/ref.csv, sha256: '{hashlib.sha256(csv.encode()).hexdigest()}'}}"
    )
    assert repo({"tests.yaml": tests}).diagnostics == []
    cache = json.loads((tmp_path / ".takt-cache" / "digests.json").read_text())
    assert sorted(Path(k).name for k in cache["entries"]) == ["m.onnx", "ref.csv"]
    r = repo({"tests.yaml": tests, "data/ref.csv": csv + "1,2\n"})
    assert only(r, "TAKT5002").path == "spec.datasets.ref.sha256"


def test_model_check_cli_contract(cli_run, tmp_path: Path):
    f = tmp_path / "m.onnx"
    f.write_bytes(TINY)
    code, out = cli_run("model", "check", str(f), "--format", "json")
    assert code == 0, out
    report = json.loads(out)
    assert report["runnable"] is True and report["problems"] == []
    assert report["inputs"] == [{"name": "x", "dtype": "float32", "onnxType": "float", "shape": ["batch", 2]}]
    assert report["opsets"] == {"ai.onnx": 17}
    assert {o["op"] for o in report["operators"]} == {"MatMul", "Add"}
    assert report["paramBytes"] == 12


def test_model_check_not_runnable_and_unreadable(cli_run, tmp_path: Path):
    # Elu on double is valid ONNX, but onnxruntime's CPU provider only has a float kernel
    graph = helper.make_graph(
        [helper.make_node("Elu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [2])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [2])],
    )
    f = tmp_path / "elu64.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), f)
    code, out = cli_run("model", "check", str(f), "--format", "json")
    assert code == 1
    problems = json.loads(out)["problems"]
    assert [(p["code"], p["subject"]) for p in problems] == [("TAKT5007", "Elu")]
    assert "tensor(double)" in problems[0]["message"]
    # invalid ONNX (int8 MatMul is outside the ONNX schema) is reported as such
    f8 = tmp_path / "int8.onnx"
    f8.write_bytes(tiny_model(in_type=TensorProto.INT8))
    code, out = cli_run("model", "check", str(f8), "--format", "json")
    assert code == 1 and json.loads(out)["problems"][0]["code"] == "TAKT5004"
    (tmp_path / "bad.onnx").write_bytes(b"nope")
    assert cli_run("model", "check", str(tmp_path / "bad.onnx"))[0] == 2
    assert cli_run("model", "check", str(tmp_path / "missing.onnx"))[0] == 2


def test_model_check_against_a_spec_target(cli_run, tmp_path: Path):
    from tests.conftest import write_repo

    root = write_repo(tmp_path / "r", {**BASE, "fleet.yaml": FLEET.replace('"1.20"', '"1.16"')})
    f = tmp_path / "m21.onnx"
    f.write_bytes(tiny_model(opset=21))
    code, out = cli_run("model", "check", str(f), "--target", "ipc", "--spec-root", str(root), "-f", "json")
    assert code == 1
    report = json.loads(out)
    assert report["runtime"]["onnxruntime"] == "1.16.3"
    assert [p["code"] for p in report["problems"]] == ["TAKT5006"]
    assert cli_run("model", "check", str(f), "--target", "nope", "--spec-root", str(root))[0] == 2


def test_matrix_covers_every_model_and_target(cli_run):
    from tests.conftest import EXAMPLES

    code, out = cli_run("matrix", str(EXAMPLES / "press-line-anomaly"), "--format", "json")
    assert code == 0
    m = json.loads(out)
    assert m["models"] == ["press-anomaly"] and m["targets"] == ["ipc-arm", "ipc-x86", "vibration-node-m7"]
    cells = {c["target"]: c for c in m["cells"]}
    assert cells["ipc-x86"]["runnable"] and cells["ipc-x86"]["deployed"]
    node = cells["vibration-node-m7"]
    assert not node["runnable"] and not node["deployed"]
    assert {p["code"] for p in node["problems"]} == {"TAKT5008", "TAKT5013"}  # Concat not in the build; not int8
    code, out = cli_run("matrix", str(EXAMPLES / "press-line-anomaly"))
    assert code == 0 and "✗ TAKT5008" in out


def test_huge_artifact_is_refused_without_reading_it(cli_run, tmp_path: Path):
    f = tmp_path / "huge.onnx"
    with f.open("wb") as fh:  # sparse: 3 GiB of nothing, no disk used
        fh.truncate(3 * 2**30)
    code, _ = cli_run("model", "check", str(f))
    assert code == 2
    from compiler.models.inspect import Unreadable, inspect_model

    result = inspect_model(f)
    assert isinstance(result, Unreadable) and "2 GiB" in result.reason


@pytest.mark.parametrize("component", ["size", "mtime", "ctime", "inode"])
def test_digest_cache_entry_misses_when_any_stamp_component_differs(tmp_path: Path, component: str):
    f = tmp_path / "m.onnx"
    f.write_bytes(TINY)
    cache_file = tmp_path / "digests.json"
    c1 = DigestCache.load(cache_file)
    real = c1.sha256(f)
    c1.save()
    doc = json.loads(cache_file.read_text())
    entry = doc["entries"][str(f.resolve())]
    entry[["size", "mtime", "ctime", "inode"].index(component)] += 1
    entry[4] = "0" * 64  # what the forged entry claims
    cache_file.write_text(json.dumps(doc))
    c2 = DigestCache.load(cache_file)
    assert c2.sha256(f) == real and (c2.hits, c2.misses) == (0, 1)


def test_digest_cache_rereads_a_same_size_change_whose_mtime_was_restored(tmp_path: Path):
    """A tool (or attacker) that restores mtime after editing: the ctime still moves."""
    import hashlib
    import os
    import time

    f = tmp_path / "m.onnx"
    f.write_bytes(TINY)
    cache = DigestCache.load(tmp_path / "digests.json")
    first = cache.sha256(f)
    st = f.stat()
    time.sleep(0.01)
    f.write_bytes(bytes(reversed(TINY)))  # same size
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cache.sha256(f) == hashlib.sha256(bytes(reversed(TINY))).hexdigest() != first
