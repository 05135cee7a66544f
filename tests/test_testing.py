"""`takt test`: suites on the examples, failing gates, unusable data, and every output format."""

from __future__ import annotations

import json
import textwrap
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest

from tests.conftest import BASE, copy_example, load_free_latency

TESTS = textwrap.dedent(BASE["tests.yaml"])


@pytest.fixture
def press(tmp_path: Path) -> Path:
    dst = tmp_path / "press"
    copy_example("press-line-anomaly", dst)
    return dst


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def test_examples_pass_with_measured_figures(cli_run, tmp_path: Path):
    for name in ("press-line-anomaly", "visual-inspection"):  # latency judged, but not by the host's load
        root = load_free_latency(copy_example(name, tmp_path / name))
        code, out = cli_run("test", str(root), "--format", "json", "--no-progress")
        assert code == 0, out
        doc = json.loads(out[: out.rindex("}") + 1])
        assert doc["summary"]["blocking"] == 0 and doc["summary"]["failed"] == 0
        suite = doc["suites"][0]
        assert suite["passed"] and set(suite["datasets"]) >= {"reference"}
        lat = next(t for t in suite["tests"] if t["type"] == "latency")
        assert lat["details"]["percentilesMs"]["p50"] > 0


def test_failing_gate_exits_1_and_reports_everywhere(cli_run, press: Path, tmp_path: Path):
    load_free_latency(press)  # the one blocking failure must be fault-recall's, whatever the load
    _edit(press / "specs/tests.yaml", "threshold: 0.6", "threshold: 0.99")  # recall lower bound is ~0.92
    report = tmp_path / "r.html"
    code, out = cli_run("test", str(press), "--report", str(report), "--no-progress")
    assert code == 1
    assert "✖ fault-recall" in out and "lower 95% bound" in out and "1 blocking" in out
    junit = tmp_path / "j.xml"
    code, _ = cli_run("test", str(press), "-f", "junit", "-o", str(junit), "--no-progress")
    assert code == 1
    case = ET.parse(junit).getroot().find(".//testcase[@name='fault-recall']")
    assert case.find("failure") is not None
    html = report.read_text()
    assert "<svg" in html and "fault-recall" in html and "failed" in html
    HTMLParser().feed(html)


def test_non_gating_failure_does_not_block(cli_run, press: Path, tmp_path: Path):
    load_free_latency(press)
    _edit(press / "specs/tests.yaml", "maxFlipRate: 0.02", "maxFlipRate: 0.0")
    junit = tmp_path / "j.xml"
    code, out = cli_run("test", str(press), "-f", "junit", "-o", str(junit), "--no-progress")
    assert code == 0, out
    case = ET.parse(junit).getroot().find(".//testcase[@name='sensor-noise']")
    assert case.find("skipped") is not None and "non-gating failed" in case.find("skipped").get("message")


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ("budget: {p50: 2ms, p99: 10ms}", "budget: {p50: 1us}", "p50"),
        ("threshold: 0.25", "threshold: 0.001", "PSI max"),
        ("tolerance: {abs: 1.0e-4, rel: 1.0e-3}", "tolerance: {abs: 0, rel: 0}", None),
    ],
)
def test_each_test_type_can_fail(cli_run, press: Path, old: str, new: str, fragment: str | None):
    if fragment is None:  # golden: perturb the expected scores instead
        g = dict(np.load(press / "data/golden.npz"))
        g["expected/score"] = g["expected/score"] + 0.01
        np.savez(press / "data/golden.npz", **g)
        fragment = "values outside tolerance"
    else:
        _edit(press / "specs/tests.yaml", old, new)
    if fragment != "p50":  # the one failure must be the edited test's, never the host's load on latency
        load_free_latency(press)
    code, out = cli_run("test", str(press), "--format", "json", "--no-progress")
    assert code == 1
    doc = json.loads(out[: out.rindex("}") + 1])
    failed = [t for t in doc["suites"][0]["tests"] if t["status"] == "failed"]
    assert len(failed) == 1 and fragment in failed[0]["summary"]


def test_unusable_data_is_an_error_result_not_a_traceback(repo, cli_run, tmp_path: Path):
    suite = TESTS + "    - {name: acc, type: metric, metric: mae, dataset: ref, threshold: 1}\n"
    repo({"tests.yaml": suite, "data/ref.csv": "temp,wrong\n1,2\n"})
    code, out = cli_run("test", str(tmp_path), "--format", "json", "--no-progress")
    assert code == 1
    tests = {t["name"]: t for t in json.loads(out[: out.rindex("}") + 1])["suites"][0]["tests"]}
    assert tests["dat"]["status"] == "failed" and "no column(s) pres" in tests["dat"]["summary"]
    assert tests["acc"]["status"] == "error" and "no column(s) pres for input 'x'" in tests["acc"]["summary"]
    assert "Traceback" not in out


@pytest.mark.parametrize("content", [b"\xff\xfe\x00garbage", b"", b"a,b\n1\n"])
def test_corrupt_csv_is_reported(repo, cli_run, tmp_path: Path, content: bytes):
    """Found when the suite is validated, before a row is used: located at the dataset's path."""
    repo({"data/ref.csv": content})
    code, out = cli_run("test", str(tmp_path), "--no-progress")
    assert code == 1 and "Traceback" not in out
    assert "tests.yaml:6:" in out and "TAKT5020 dataset 'ref': data/ref.csv is not a readable csv file" in out


def test_regression_metric_and_invariance_needs_classes(repo, cli_run, tmp_path: Path):
    rows = "temp,pres,label\n" + "".join(f"{i},{i},{i}\n" for i in range(50))  # y = 0.5 t + 0.5 p = label
    suite = TESTS + (
        "    - {name: err, type: metric, metric: mae, dataset: ref, threshold: 0.01}\n"
        "    - {name: inv, type: invariance, dataset: ref, noise: {temp: 0.1}, maxFlipRate: 0.1}\n"
    )
    repo({"tests.yaml": suite, "data/ref.csv": rows})
    code, out = cli_run("test", str(tmp_path), "--format", "json", "--no-progress")
    tests = {t["name"]: t for t in json.loads(out[: out.rindex("}") + 1])["suites"][0]["tests"]}
    assert tests["err"]["status"] == "passed" and tests["err"]["value"] == pytest.approx(0.0, abs=1e-5)
    assert tests["inv"]["status"] == "error" and "class-like output" in tests["inv"]["summary"]
    assert code == 1


def test_html_escapes_hostile_text(repo, cli_run, tmp_path: Path):
    repo({"data/ref.csv": "<script>alert(1)</script>,temp\n1,2\n"})
    report = tmp_path / "r.html"
    cli_run("test", str(tmp_path), "--report", str(report), "--no-progress")
    html = report.read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_spec_errors_stop_before_running(cli_run, press: Path):
    _edit(press / "specs/tests.yaml", "metric: recall", "metric: recal")
    code, out = cli_run("test", str(press), "--no-progress")
    assert code == 1 and "fix the spec errors" in out


def test_unknown_suite_is_a_usage_error(cli_run, press: Path):
    assert cli_run("test", str(press), "--suite", "nope", "--no-progress")[0] == 2


def _result(**kw):
    from compiler.testing.runner import TestResult

    base = {"suite": "s", "name": "t", "type": "metric", "gate": True, "status": "failed", "summary": "…"}
    return TestResult(**{**base, **kw})


def test_a_metric_that_fails_only_on_sample_size_says_so_in_plain_words():
    from compiler.testing.report import verdict

    small = _result(
        value=1.0,
        bound=0.962,
        threshold=0.99,
        details={"metric": "recall", "low": 0.962, "high": 1.0, "n": 78, "confidence": 0.95},
    )
    assert verdict(small) == (
        "recall 1.000 on 78 positives: the lower 95% bound is 0.962, below 0.99; more positives are needed to show it."
    )
    bad = _result(value=0.8, bound=0.7, threshold=0.9, details={"metric": "recall", "low": 0.7, "n": 500})
    assert "already as an estimate" in verdict(bad)
    err = _result(
        value=0.1,
        bound=0.15,
        threshold=0.12,
        status="failed",
        details={"metric": "mae", "low": 0.05, "high": 0.15, "n": 40, "confidence": 0.9},
    )
    assert verdict(err).startswith("mae 0.100 on 40 samples: the upper 90% bound is 0.150, above 0.12")


def test_the_html_report_carries_provenance_ticks_and_keeps_labels_on_the_canvas():
    import re

    from compiler.testing.report import ReportProvenance, render_html
    from compiler.testing.runner import SuiteResult

    latency = _result(
        type="latency",
        status="failed",
        details={"histogram": {"counts": [1, 5, 2], "edgesMs": [0.1, 0.2, 0.3, 0.4]}, "budgetMs": {"p99": 0.39}},
    )
    suite = SuiteResult("s", "m", "specs/t.yaml", [latency])
    prov = ReportProvenance(
        "abc123", {"m": ("1.2.0", "f" * 64)}, "ci-host", "x86_64, 2 cores", "1.20.1", "2026-12-01T00:00:00+00:00"
    )
    page = render_html([suite], prov)
    for text in ("abc123", "1.2.0", "ffffffffffffffff", "ci-host", "onnxruntime 1.20.1", "2026-12-01"):
        assert text in page
    svg = re.search(r"<svg width=\"(\d+)\"[^>]*aria-label=\"latency histogram\">(.*?)</svg>", page).groups()
    width, body = int(svg[0]), svg[1]
    assert len(re.findall(r"<line [^>]*y2=\"[0-9.]+\" stroke=\"#555\"/>", body)) >= 3  # tick marks
    label = re.search(r'<text x="([0-9.]+)" y="\d+" font-size="10" text-anchor="(\w+)">budget p99', body)
    x, anchor = float(label.group(1)), label.group(2)
    assert anchor == "end" and x <= width  # a label near the right edge is drawn leftwards, on the canvas
    assert "Measured on the build machine" in page


def test_invariance_flips_equal_a_plain_recomputation(cli_run, press: Path):
    """The noise test's flip count is the one numpy and onnxruntime give on the same rows, seed and order of
    draws (trial by trial, column by column in the spec's order): the noisy copies come from the clean
    columns, which no trial alters."""
    import onnxruntime as ort
    import pyarrow.csv as pacsv

    load_free_latency(press)
    code, out = cli_run("test", str(press), "--format", "json", "--no-progress")
    assert code == 0, out
    suite = json.loads(out[: out.rindex("}") + 1])["suites"][0]
    got = next(t for t in suite["tests"] if t["name"] == "sensor-noise")["details"]
    table = pacsv.read_csv(press / "data/reference.csv")
    cols = {c: table.column(c).to_numpy().astype(np.float64) for c in table.column_names}
    assert got["computation"] == {"rows": table.num_rows, "method": "exact"}
    sess = ort.InferenceSession(str(press / "models/press_anomaly.onnx"), providers=["CPUExecutionProvider"])

    def predict(c: dict[str, np.ndarray]) -> np.ndarray:
        vib = np.clip(np.stack([c["vib_x"], c["vib_y"], c["vib_z"]], axis=1), 0, 50).astype(np.float32)
        proc = np.stack([c["pressure"], c["oil_temp"]], axis=1).astype(np.float32)
        return np.asarray(sess.run(["is_anomaly"], {"vibration": vib, "process": proc})[0]).reshape(-1)

    clean, rng, flips = predict(cols), np.random.default_rng(0), 0
    for _ in range(5):
        noisy = dict(cols)
        for name in ("vib_x", "vib_y", "vib_z"):
            noisy[name] = cols[name] + rng.normal(0, 0.05, cols[name].shape)
        flips += int(np.sum(predict(noisy) != clean))
    assert got["predictions"] == 5 * table.num_rows
    assert got["flips"] == flips
