"""Tests stream their datasets in batches within --memory: on generated data the streamed results equal
independent numpy/scipy computations over the whole data (exact), or stay within their stated bound (sketch)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats

from compiler.testing.stream import Budget, RowSample, batch_rows, dkw_bound, parse_memory, sample_capacity
from tests.conftest import BASE, TINY_SHA

MEMORY = 16 << 20  # the smallest budget: many batches, and samples that cannot hold 200k rows


def test_row_sample_keeps_every_row_in_order_until_it_is_full():
    rng = np.random.default_rng(3)
    parts = [rng.normal(size=n) for n in (10, 500, 7, 300)]
    s = RowSample(2000, seed=5)
    for p in parts:
        s.add({"x": p})
    assert s.exact and s.computation().method == "exact"
    np.testing.assert_array_equal(s.columns()["x"], np.concatenate(parts))


def test_row_sample_past_its_size_is_a_seeded_uniform_sample_within_the_dkw_bound():
    rng = np.random.default_rng(4)
    data = rng.gamma(2.0, size=100_000)
    runs = []
    for _ in range(2):
        s = RowSample(5000, seed=9)
        for start in range(0, data.size, 3000):
            s.add({"x": data[start : start + 3000], "i": np.arange(start, min(start + 3000, data.size))})
        runs.append(s.columns())
    kept = runs[0]
    np.testing.assert_array_equal(kept["x"], runs[1]["x"])  # deterministic
    assert kept["x"].size == 5000 and np.all(np.diff(kept["i"]) > 0)  # stream order, no repeats
    np.testing.assert_array_equal(data[kept["i"]], kept["x"])  # rows kept whole
    d = stats.ks_2samp(kept["x"], data).statistic  # the sample's CDF against the stream's
    assert d <= dkw_bound(5000)
    assert s.computation().as_dict() == {
        "rows": 100_000,
        "method": "sketch",
        "sampleRows": 5000,
        "cdfBound": dkw_bound(5000),
        "delta": 1e-3,
    }


def test_row_sample_keeps_the_rows_of_the_k_smallest_seeded_keys_whatever_the_batches():
    """Rows dropped early (above the k-th key so far) and columns cut one at a time change nothing: the
    sample is the rows with the k smallest of the keys drawn in stream order, computed here independently."""
    rng = np.random.default_rng(11)
    n, k = 50_000, 3000
    data = rng.normal(size=n)
    for sizes in ((n,), (700,) * (n // 700) + (n % 700,), tuple(int(x) for x in rng.integers(1, 5000, 40))):
        s = RowSample(k, seed=4)
        start = 0
        for size in sizes:
            s.add({"x": data[start : start + size], "i": np.arange(start, min(start + size, n))})
            start += size
        seen = min(start, n)
        keys = np.random.default_rng(4).random(seen)  # one draw per row, in stream order
        expected = np.sort(np.argsort(keys)[:k]) if seen > k else np.arange(seen)
        np.testing.assert_array_equal(s.columns()["i"], expected)
        np.testing.assert_array_equal(s.columns()["x"], data[expected])


@pytest.mark.parametrize(("text", "size"), [("1GiB", 1 << 30), ("512MiB", 512 << 20), ("2G", 2_000_000_000)])
def test_memory_sizes(text: str, size: int):
    assert parse_memory(text) == size
    for bad in ("lots", "1MiB", "-3G"):
        with pytest.raises(ValueError):
            parse_memory(bad)
    assert batch_rows(size, 5) <= 65_536 and sample_capacity(size, 2, 0.25) * 32 * 3 <= size * 0.25 + 96


@pytest.mark.parametrize("total", [16 << 20, 64 << 20, 1 << 30, 8 << 30])
def test_the_budget_shares_add_up_to_the_budget(total: int):
    """Each stage's buffers are sized from its share, and one test's shares leave 1/8 of the budget free."""
    b = Budget(total)
    assert b.BATCH + b.KEEP + b.WORK <= 7 / 8
    for columns in (1, 6, 40):
        rows = b.batch_rows(columns)
        assert rows * 64 * columns <= total * b.BATCH or rows == 1024  # the floor of a batch
        assert 64 << 10 <= b.read_buffer(columns) <= 1 << 20
        assert b.read_buffer(columns) * columns <= total * b.BATCH / 4 or b.read_buffer(columns) == 64 << 10
        for samples in (1, 2):
            assert b.sample_rows(columns, samples) * 3 * (8 * columns + 16) * samples <= total * b.KEEP
    assert b.pair_rows() * 32 <= total * b.KEEP
    for row_bytes in (20, 4 * 224 * 224 * 3):  # five float32 features; an image
        rows = b.model_rows(row_bytes)
        assert 1 <= rows <= 65_536 and (rows * 8 * row_bytes <= total * b.BATCH or rows == 1)
    assert b.model_rows(20) > 256 and b.model_rows(4 * 224 * 224 * 3) < 256  # 256 rows a call, as before, fit neither
    for arrays in (1, 2):
        assert b.resample_values(arrays) * 8 * (1 + arrays) <= total * b.WORK
    assert Budget(total // 4).batch_rows(6) <= b.batch_rows(6)  # a smaller budget, smaller batches


def _generated(n: int, seed: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    temp = rng.normal(20 + shift, 4, n)
    temp[rng.random(n) < 0.01] = np.nan
    pres = rng.gamma(2.0, 1.0 + shift / 10, n)
    label = (0.5 * np.nan_to_num(temp) + 0.5 * pres + rng.normal(0, 1, n) >= 11).astype(np.int64)
    return {"temp": temp, "pres": pres, "label": label}


SUITE = """\
    apiVersion: takt/v1
    kind: TestSuite
    metadata: {name: suite}
    spec:
      model: m
      datasets:
        ref: {path: data/ref.parquet, labelColumn: label}
        cand: {path: data/cand.csv}
      tests:
        - {name: dat, type: data, dataset: ref, source: plc, checks: {maxMissing: 0.5}, gate: false}
        - {name: acc, type: metric, metric: accuracy, dataset: ref, threshold: 0.1, decisionThreshold: 11}
        - {name: rec, type: metric, metric: recall, dataset: ref, threshold: 0.1, decisionThreshold: 11}
        - {name: psi, type: drift, reference: ref, candidate: cand, method: psi, threshold: 10, features: [temp, pres]}
        - {name: ks, type: drift, reference: ref, candidate: cand, method: ks, threshold: 1, features: [temp, pres]}
        - {name: lat, type: latency, budget: {p99: 10s}, runs: 10}
    """
RANGED = BASE["sources.yaml"].replace("unit: degC,", "unit: degC, range: [10, 30],")


def _write(repo, n_ref: int, n_cand: int, suite: str = SUITE) -> tuple[dict, dict]:
    ref, cand = _generated(n_ref, 1), _generated(n_cand, 2, shift=1.0)
    buf = io.BytesIO()
    pq.write_table(pa.table({k: pa.array(v, from_pandas=True) for k, v in ref.items()}), buf, row_group_size=30_000)
    rows = zip(cand["temp"], cand["pres"], strict=True)
    csv = "temp,pres\n" + "".join(f"{'' if np.isnan(t) else repr(float(t))},{float(p)!r}\n" for t, p in rows)
    files = {"tests.yaml": suite, "sources.yaml": RANGED, "data/ref.csv": None}
    repo({**files, "data/ref.parquet": buf.getvalue(), "data/cand.csv": csv})
    return ref, cand


def _results(cli_run, tmp_path: Path, memory: str | None) -> dict[str, dict]:
    code, out = cli_run(
        "test", str(tmp_path), "--format", "json", "--no-progress", *(["--memory", memory] if memory else [])
    )
    assert code == 0, out
    return {t["name"]: t for t in json.loads(out[: out.rindex("}") + 1])["suites"][0]["tests"]}


def _run(repo, cli_run, tmp_path: Path, n_ref: int, n_cand: int) -> tuple[dict, dict, dict]:
    ref, cand = _write(repo, n_ref, n_cand)
    return _results(cli_run, tmp_path, str(MEMORY)), ref, cand


def _psi(ref: np.ndarray, cand: np.ndarray, bins: int) -> float:
    """PSI written out independently: quantile edges of the reference, shares, empty shares floored at 1e-4."""
    ref, cand = ref[np.isfinite(ref)], cand[np.isfinite(cand)]
    q = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)))
    edges = np.concatenate(([-np.inf], q[1:-1], [np.inf]))
    r = np.maximum(np.histogram(ref, edges)[0] / ref.size, 0)
    c = np.histogram(cand, edges)[0] / cand.size
    r, c = np.where(r == 0, 1e-4, r), np.where(c == 0, 1e-4, c)
    return float(np.sum((c - r) * np.log(c / r)))


def test_streamed_results_equal_whole_data_computations(repo, cli_run, tmp_path: Path):
    tests, ref, cand = _run(repo, cli_run, tmp_path, 40_000, 30_000)  # several batches, samples hold all rows
    temp = ref["temp"]
    dat = tests["dat"]["details"]
    assert dat["rows"] == 40_000 and dat["computation"] == {"rows": 40_000, "method": "exact"}
    assert dat["columns"]["temp"]["missing"] == np.mean(np.isnan(temp))
    fin = temp[np.isfinite(temp)]
    assert dat["columns"]["temp"]["outsideRange"] == np.mean((fin < 10) | (fin > 30))
    y = (0.5 * temp.astype(np.float32) + 0.5 * ref["pres"].astype(np.float32)).astype(np.float32)
    pred = (y >= 11).astype(np.int64)  # NaN rows are never >= 11
    truth = ref["label"]
    for name, k, n in (
        ("acc", int(np.sum(pred == truth)), truth.size),
        ("rec", int(np.sum((pred == 1) & (truth == 1))), int(np.sum(truth == 1))),
    ):
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.9, method="wilson")
        assert tests[name]["value"] == pytest.approx(k / n, abs=1e-15)
        assert tests[name]["bound"] == pytest.approx(ci.low, abs=1e-12)
        assert tests[name]["details"]["n"] == n
    psi = tests["psi"]["details"]
    assert psi["computation"]["reference"]["method"] == "exact" and psi["computation"]["candidate"]["rows"] == 30_000
    for f in ("temp", "pres"):
        assert psi["perFeature"][f] == pytest.approx(_psi(ref[f], cand[f], 10), rel=1e-12)
        a, b = ref[f][np.isfinite(ref[f])], cand[f][np.isfinite(cand[f])]
        assert tests["ks"]["details"]["perFeature"][f] == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-15)


BOOTSTRAPPED = SUITE.replace(
    "        - {name: lat,",
    "        - {name: f1, type: metric, metric: f1, dataset: ref, threshold: 0.1, decisionThreshold: 11}\n"
    "        - {name: lat,",
)


def test_a_tiny_budget_gives_the_results_of_the_default_budget(repo, cli_run, tmp_path: Path):
    """Batch sizes, Parquet read buffers, sample shares and bootstrap chunks all follow --memory; on data that
    the smallest budget still holds whole, no count, exact statistic or bootstrap bound depends on it."""
    _write(repo, 40_000, 30_000, BOOTSTRAPPED)
    tiny, default = _results(cli_run, tmp_path, "16MiB"), _results(cli_run, tmp_path, None)
    assert Budget(16 << 20).batch_rows(3) < 40_000 // 3  # the tiny budget reads the data in several batches
    assert tiny.keys() == default.keys() and "f1" in tiny
    for name in tiny.keys() - {"lat"}:  # latency is a timing
        small, large = tiny[name], default[name]
        assert small["status"] == large["status"] and small["status"] in ("passed", "failed"), small
        assert (small["value"], small["bound"], small["details"]) == (large["value"], large["bound"], large["details"])
    assert tiny["f1"]["details"]["method"] == "bootstrap" and tiny["psi"]["details"]["computation"]["reference"] == {
        "rows": 40_000,
        "method": "exact",
    }


@pytest.mark.slow
def test_past_the_budget_drift_is_sketched_and_stays_within_its_stated_bound(repo, cli_run, tmp_path: Path):
    tests, ref, cand = _run(repo, cli_run, tmp_path, 200_000, 150_000)
    ks = tests["ks"]["details"]
    how = ks["computation"]
    assert how["reference"]["method"] == "sketch" and how["reference"]["rows"] == 200_000
    k = how["reference"]["sampleRows"]
    assert k == sample_capacity(MEMORY, 2, 0.25) and how["reference"]["cdfBound"] == dkw_bound(k)
    for f in ("temp", "pres"):
        a, b = ref[f][np.isfinite(ref[f])], cand[f][np.isfinite(cand[f])]
        assert abs(ks["perFeature"][f] - stats.ks_2samp(a, b).statistic) <= how["statisticBound"]["abs"]
    psi = tests["psi"]["details"]
    assert (
        psi["computation"]["reference"]["method"] == "sketch" and psi["computation"]["candidate"]["method"] == "exact"
    )
    assert tests["dat"]["details"]["computation"] == {"rows": 200_000, "method": "exact"}  # counts never sketch


def test_the_html_report_says_how_each_statistic_was_computed():
    from compiler.testing.report import render_html
    from compiler.testing.runner import SuiteResult, TestResult

    sketch = {"rows": 10**7, "method": "sketch", "sampleRows": 43690, "cdfBound": dkw_bound(43690), "delta": 1e-3}
    how = {
        "reference": sketch,
        "candidate": {"rows": 500, "method": "exact"},
        "statisticBound": {"abs": dkw_bound(43690), "probability": 0.999},
    }
    drift = TestResult("s", "ks", "drift", True, "passed", "KS max 0.01", details={"computation": how})
    data = TestResult(
        "s", "dat", "data", True, "passed", "ok", details={"computation": {"rows": 2000, "method": "exact"}}
    )
    page = render_html([SuiteResult("s", "m", "t.yaml", [drift, data])])
    assert "computed: exact over 2,000 rows" in page
    bound = f"{dkw_bound(43690):.4f}"
    assert f"reference: sketch from a seeded sample of 43,690 of 10,000,000 rows (CDF within ±{bound}" in page
    assert "candidate: exact over 500 rows" in page and "statistic within ±" in page


def _window_model(size: int) -> bytes:
    """y = mean over a window of `size` rows × 2 features: x [batch, size, 2] → y [batch, 1]."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["x"], ["m"], axes=[1, 2], keepdims=0),
         helper.make_node("Unsqueeze", ["m", "one"], ["y"])],
        "win",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", size, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1])],
        [helper.make_tensor("one", TensorProto.INT64, [1], [1])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    return model.SerializeToString(deterministic=True)


@pytest.mark.parametrize(("size", "stride"), [(8, 3), (5, 1), (4, 7)])
def test_a_windowed_model_streams_and_gives_the_whole_data_result(
    repo, cli_run, tmp_path: Path, size: int, stride: int
):
    import hashlib

    n = 50_000  # more rows than one batch at the smallest budget
    rng = np.random.default_rng(size)
    temp, pres = rng.normal(20, 4, n), rng.gamma(2.0, 1.0, n)
    label = rng.normal(10, 2, n)
    buf = io.BytesIO()
    pq.write_table(pa.table({"temp": temp, "pres": pres, "label": label}), buf, row_group_size=7_000)
    onnx = _window_model(size)
    window = f"{{op: window, size: {size}, stride: {stride}, input: x}}"
    model = (
        BASE["model.yaml"]
        .replace("shape: [batch, 2]", f"shape: [batch, {size}, 2]")
        .replace("task: regression\n", f"task: regression\n          preprocessing: [{window}]\n")
        .replace(TINY_SHA, hashlib.sha256(onnx).hexdigest())
    )
    suite = (
        "apiVersion: takt/v1\nkind: TestSuite\nmetadata: {name: suite}\nspec:\n  model: m\n"
        "  datasets: {ref: {path: data/ref.parquet, labelColumn: label}}\n"
        "  tests: [{name: mae, type: metric, metric: mae, dataset: ref, threshold: 100}]\n"
    )
    repo({"model.yaml": model, "models/m.onnx": onnx, "tests.yaml": suite, "data/ref.parquet": buf.getvalue()})

    def mae(memory: str) -> dict:
        code, out = cli_run("test", str(tmp_path), "--format", "json", "--no-progress", "--memory", memory)
        assert code == 0, out
        return json.loads(out[: out.rindex("}") + 1])["suites"][0]["tests"][0]

    small, large = mae("16MiB"), mae("1GiB")
    ends = np.arange(size - 1, n, stride)
    x = np.stack([temp, pres], axis=1).astype(np.float32)
    y = np.array([x[e - size + 1 : e + 1].mean(dtype=np.float32) for e in ends], dtype=np.float32)
    expected = float(np.mean(np.abs(y.astype(np.float64) - label[ends])))
    assert small["details"]["n"] == large["details"]["n"] == ends.size
    assert small["value"] == large["value"]  # bit for bit: the batch boundaries change nothing
    assert small["value"] == pytest.approx(expected, rel=1e-6)


def test_window_batches_form_every_window_of_the_stream_exactly_once():
    from compiler.testing.stream import window_batches

    def windows(x: np.ndarray, size: int, stride: int) -> list[tuple]:
        return [tuple(x[s : s + size]) for s in range(0, len(x) - size + 1, stride)]

    rng = np.random.default_rng(7)
    for _ in range(2000):
        n, size, stride = int(rng.integers(0, 60)), int(rng.integers(1, 9)), int(rng.integers(1, 12))
        x = np.arange(n)
        cuts = sorted(rng.integers(0, n + 1, size=int(rng.integers(0, 6))))
        parts = [x[a:b] for a, b in zip([0, *cuts], [*cuts, n], strict=True)]
        batches = list(window_batches(({"x": p} for p in parts), size, stride))
        got = [w for b in batches for w in windows(b["x"], size, stride)]
        assert got == windows(x, size, stride), (n, size, stride, cuts)
        assert all(len(b["x"]) <= max(len(p) for p in parts) + size + stride for b in batches)


def _reference_of(root: Path, rel: str, memory: int):
    from compiler.render.reference import _reference

    inputs = (("x", ("temp", "pres")),)
    return _reference(root, rel, None, None, "suite", "ref", 10, inputs, memory)


def test_build_time_drift_bins_stream_and_equal_the_whole_data_bins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The edge bundle's reference bins come from the dataset streamed in batches within the budget; while
    its sample holds every row they are the whole column's quantile bins, bit for bit."""
    import frames
    from compiler.testing import formats

    ref = _generated(40_000, 1)
    pq.write_table(pa.table({k: pa.array(v, from_pandas=True) for k, v in ref.items()}), tmp_path / "r.parquet")
    sizes: list[int] = []
    real = formats.DatasetFile.batches

    def counted(self, names=None, rows=formats.BATCH_ROWS, buffer=formats.READ_BUFFER):
        for batch in real(self, names, rows, buffer):
            sizes.append(len(next(iter(batch.values()))))
            assert sorted(batch) == ["pres", "temp"]  # the feature columns only, never the label
            yield batch

    monkeypatch.setattr(formats.DatasetFile, "batches", counted)
    got = _reference_of(tmp_path, "r.parquet", MEMORY)
    assert len(sizes) >= 3 and max(sizes) <= Budget(MEMORY).batch_rows(2)  # streamed, in the budget's batches
    assert got is not None and [f.name for f in got.features] == ["temp", "pres"]
    for feature in got.features:
        whole = frames.reference_bins(ref[feature.name], 10)
        assert whole is not None and (feature.edges, feature.fractions) == (whole.edges, whole.fractions)


@pytest.mark.slow
def test_build_time_drift_bins_past_the_budget_are_within_the_dkw_bound(tmp_path: Path):
    ref = _generated(300_000, 3)
    pq.write_table(pa.table({k: pa.array(v, from_pandas=True) for k, v in ref.items()}), tmp_path / "r.parquet")
    got = _reference_of(tmp_path, "r.parquet", MEMORY)
    k = Budget(MEMORY).sample_rows(2)
    assert k < 300_000 and got is not None
    for feature in got.features:
        column = ref[feature.name][np.isfinite(ref[feature.name])]
        cdf = np.searchsorted(np.sort(column), feature.edges, side="left") / column.size
        stated = np.cumsum(feature.fractions)[:-1]  # the sample's share below each edge
        assert np.max(np.abs(cdf - stated)) <= dkw_bound(k)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "reference statistics: dataset 'ref': r.csv does not exist"),
        ("temp,pres\n1,warm\n", "dataset 'ref' of 'suite' has no numeric column 'pres' for input 'x'"),
        ("temp,pres\n1,\n", "reference statistics: column 'pres' has no finite values"),
    ],
)
def test_build_time_drift_bins_refuse_unusable_data_by_name(tmp_path: Path, content: str | None, words: str):
    from compiler.render.context import RenderError

    if content is not None:
        (tmp_path / "r.csv").write_text(content)
    with pytest.raises(RenderError) as err:
        _reference_of(tmp_path, "r.csv", MEMORY)
    assert words in str(err.value)


def test_the_model_feeds_are_the_stacked_columns_and_clip_is_np_clip_bit_for_bit():
    """The batch path fills (rows, fields) a column at a time and clips by maximum/minimum (faster on the
    rows a test holds): the same bytes as stacking the columns and np.clip, NaN and ±0 included."""
    from types import SimpleNamespace

    import frames
    from frames.assemble import InputSpec

    rng = np.random.default_rng(4)
    cols = {c: rng.normal(0, 30, 5000) for c in "abc"}
    cols["b"][::7] = np.nan
    cols["c"][::5] = -0.0
    cols["a"] = cols["a"].astype(np.float32)
    feeds = frames.assemble([InputSpec("x", ("a", "b", "c"), "float32", "features")], cols)
    stacked = np.ascontiguousarray(np.array([cols["a"], cols["b"], cols["c"]], dtype=np.float64).T)
    assert feeds["x"].tobytes() == stacked.tobytes() and feeds["x"].flags.c_contiguous
    step = SimpleNamespace(op="clip", input="x", min=-0.0, max=25)
    pipe = frames.Pipeline.from_steps([step], ["x"])
    assert pipe.apply(feeds)["x"].tobytes() == np.clip(stacked, -0.0, 25.0).tobytes()
