"""A `file` DataSource's recording travels in the edge-pc bundle (the commissioning bench of the
press-line example): the bytes validated are the bytes replayed, they key the incremental build, and
a recording that leaves the spec tree is never bundled."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from compiler.build import build
from compiler.bundle import runner as contract
from compiler.bundle import verify_bundle
from compiler.validate.pipeline import validate
from tests.conftest import EXAMPLES, copy_example

pytestmark = pytest.mark.slow  # builds the example (onnxruntime gates) more than once

BENCH = "press-anomaly-bench/bench-pc"


def _bench(tmp_path: Path) -> Path:
    root = copy_example("press-line-anomaly", tmp_path / "spec")
    shutil.copytree(EXAMPLES / "press-line-anomaly" / "bench", root, dirs_exist_ok=True)
    return root


def _build(root: Path, out: Path):
    result = validate(root)
    assert [d for d in result.diagnostics if d.severity.label == "error"] == []
    return build(result, out)


def test_the_recording_travels_in_the_bench_bundle_and_keys_its_render(tmp_path: Path):
    root, out = _bench(tmp_path), tmp_path / "out"
    res = _build(root, out)
    assert not res.failed, res.blocked
    bench = next(b for b in res.bundles if b.name == BENCH)
    bundle = out / "bundles" / bench.digest
    manifest, problems = verify_bundle(bundle, bench.digest)
    assert manifest is not None and problems == [], problems
    recording = (root / "data/recorded-shift.csv").read_bytes()
    assert (bundle / "data/press-recording.csv").read_bytes() == recording
    config = contract.RunnerConfig.parse((bundle / contract.RUNNER_JSON).read_bytes())
    source = config.sources["press-recording"]
    assert isinstance(source, contract.FileSource) and source.path == "data/press-recording.csv"
    assert config.health.gate.max_latency_p95_seconds == pytest.approx(0.005)  # healthGate.maxLatencyP95: 5ms
    # a changed recording re-renders the bench bundle only
    (root / "data/recorded-shift.csv").write_bytes(recording + b"120.0,4,3,2,180,45\n")
    again = _build(root, out)
    by_name = {b.name: b for b in again.bundles}
    assert by_name[BENCH].digest != bench.digest and not by_name[BENCH].reused
    assert all(b.reused for n, b in by_name.items() if n != BENCH)
    assert (out / "bundles" / by_name[BENCH].digest / "data/press-recording.csv").read_bytes().endswith(b"180,45\n")


def test_threat_a_recording_linked_out_of_the_spec_tree_is_never_bundled(tmp_path: Path):
    root, out = _bench(tmp_path), tmp_path / "out"
    outside = tmp_path / "secret.csv"
    outside.write_text("timestamp,vib_x\n0.0,SECRET\n")
    (root / "data/recorded-shift.csv").unlink()
    (root / "data/recorded-shift.csv").symlink_to(outside)
    result = validate(root)
    res = build(result, out)
    assert res.failed
    why = dict(res.blocked).get("press-anomaly-bench", "") + " ".join(d.message for d in res.diagnostics)
    assert "recorded-shift.csv" in why, (res.blocked, [d.message for d in res.diagnostics])
    assert BENCH not in {b.name for b in res.bundles}
    assert not [p for p in out.rglob("*") if p.is_file() and b"SECRET" in p.read_bytes()]
    # the line's own bundles do not read the recording and are built
    assert {b.name for b in res.bundles} >= {"press-anomaly-muc/ipc-x86", "press-anomaly-muc/ipc-arm"}
    assert json.loads((out / "index.json").read_text())
