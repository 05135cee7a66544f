"""frames: bindings → inputs, every preprocessing step (batch and streaming alike), reference bins and PSI."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import frames
from compiler.bundle import runner as contract
from compiler.spec import model as spec_model
from compiler.testing import stats


def test_assemble_stacks_fields_in_binding_order_and_names_missing_columns():
    cols = {"a": np.array([1.0, 2.0]), "b": np.array([10.0, 20.0]), "img": np.zeros((2, 1, 2, 2))}
    specs = [frames.InputSpec("x", ("b", "a"), "float32"), frames.InputSpec("i", ("img",), "float32", "tensor")]
    feeds = frames.cast(frames.assemble(specs, cols), {"x": "float32", "i": "float32"})
    np.testing.assert_array_equal(feeds["x"], [[10, 1], [20, 2]])
    assert feeds["x"].dtype == np.float32 and feeds["i"].shape == (2, 1, 2, 2)
    with pytest.raises(frames.MissingColumns, match="no column\\(s\\) c for input 'y'"):
        frames.assemble([frames.InputSpec("y", ("a", "c"), "float32")], cols)


def _both(kind: str, **params):
    """The same step as the spec language (pydantic) and as the runner contract (dataclass) carry it."""
    pyd = {"standardize": spec_model.Standardize, "minmax": spec_model.MinMax, "clip": spec_model.Clip}
    pyd |= {"fill-missing": spec_model.FillMissing, "window": spec_model.Window}
    dc = {"standardize": contract.Standardize, "minmax": contract.MinMax, "clip": contract.Clip}
    dc |= {"fill-missing": contract.FillMissing, "window": contract.Window}
    return pyd[kind].model_validate({"op": kind, **params}), dc[kind](**params)


X = np.array([[1.0, 100.0], [np.nan, 50.0], [3.0, -5.0], [4.0, 0.0], [5.0, 7.0]])


@pytest.mark.parametrize(
    ("kind", "params", "expected"),
    [
        ("standardize", {"mean": [1.0, 50.0], "std": [2.0, 25.0]}, (X - [1, 50]) / [2, 25]),
        ("minmax", {"min": [0.0, 0.0], "max": [10.0, 0.0]}, (X - 0) / [10, 1]),  # zero span divides by 1
        ("clip", {"min": 0.0, "max": 10.0}, np.clip(X, 0, 10)),
        ("fill-missing", {"value": -1.0}, np.where(np.isnan(X), -1.0, X)),
    ],
)
def test_elementwise_steps_from_spec_and_contract_agree_with_numpy(kind, params, expected):
    for step in _both(kind, **params):
        got = frames.Pipeline.from_steps([step], ["x"]).apply({"x": X})["x"]
        np.testing.assert_allclose(got, expected, equal_nan=True)


def test_steps_apply_in_spec_order_to_the_named_input():
    steps = [*_both("fill-missing", value=0.0)[:1], spec_model.Clip(op="clip", min=0, max=2, input="z")]
    pipe = frames.Pipeline.from_steps(steps, ["x", "z"])
    out = pipe.apply({"x": X, "z": X})
    np.testing.assert_array_equal(out["x"], np.where(np.isnan(X), 0, X))
    np.testing.assert_array_equal(out["z"], np.clip(X, 0, 2))
    with pytest.raises(frames.PreprocessError, match="names input 'w'"):
        frames.Pipeline.from_steps([contract.Clip(min=0, max=1, input="w")], ["x"])
    with pytest.raises(frames.PreprocessError, match="std must not be 0"):
        frames.Pipeline.from_steps([contract.Standardize(mean=(0,), std=(0,))], ["x"])


def _bits(a: np.ndarray) -> tuple[bytes, bytes, tuple[int, ...]]:
    """Every bit of a float array but NaN payloads: the sign of each zero counts."""
    a = np.ascontiguousarray(a, dtype=np.float64)
    return np.where(np.isnan(a), 0.0, a).tobytes(), np.isnan(a).tobytes(), a.shape


ZEROS = np.array([[-0.0, 0.0, np.nan], [-1.0, 51.0, 50.0], [np.inf, -np.inf, 5e-324], [-5e-324, 0.0, 25.0]])


CLIPS = [(0.0, 50.0), (-0.0, 50.0), (-5.0, 0.0), (-5.0, -0.0), (0.0, 0.0), (0.0, -1.0), (2.0, 1.0), (-3.0, 3.0)]


@pytest.mark.parametrize(("low", "high"), [*CLIPS, (float("nan"), 3.0), (0.0, float("inf"))])
def test_clip_is_its_definition_bit_for_bit_signed_zeros_included(low, high):
    """np.clip keeps x on a tie of ±0 where maximum/minimum return the bound: the step must give the
    definition's zero, or the model sees -0.0 where the runner on the line gives 0.0."""
    want = np.minimum(np.maximum(ZEROS, np.float64(low)), np.float64(high))
    pipe = frames.Pipeline.from_steps([contract.Clip(min=low, max=high)], ["x"])
    x = ZEROS.copy()
    assert _bits(pipe.apply({"x": x})["x"]) == _bits(want)
    assert _bits(x) == _bits(ZEROS)  # not owned: only read
    assert _bits(pipe.apply({"x": x}, owned=["x"])["x"]) == _bits(want)
    state = pipe.stream()
    assert _bits(np.concatenate([state.push({"x": row[None, :]})["x"] for row in ZEROS])) == _bits(want)


def test_owned_inputs_are_preprocessed_in_place_and_others_never_written():
    steps = [contract.FillMissing(value=-1.0), contract.Standardize(mean=(1.0, 0.0, 2.0), std=(2.0, 4.0, 8.0))]
    steps += [contract.Clip(min=0.0, max=3.0), contract.MinMax(min=(0.0,), max=(3.0,))]
    pipe = frames.Pipeline.from_steps(steps, ["x"])
    want = np.where(np.isnan(ZEROS), -1.0, ZEROS)
    want = np.minimum(np.maximum((want - [1.0, 0.0, 2.0]) / [2.0, 4.0, 8.0], 0.0), 3.0) / 3.0
    mine = ZEROS.copy()
    out = pipe.apply({"x": mine}, owned=["x"])["x"]
    assert out is mine and _bits(out) == _bits(want)  # written into the caller's array: no new ones
    theirs = ZEROS.copy()
    out = pipe.apply({"x": theirs})["x"]
    assert out is not theirs and _bits(out) == _bits(want) and _bits(theirs) == _bits(ZEROS)
    single = ZEROS.astype(np.float32)  # cast to float64 first: that copy is the pipeline's own
    assert _bits(pipe.apply({"x": single})["x"]) == _bits(
        np.minimum(
            np.maximum(
                (np.where(np.isnan(single), -1.0, single.astype(np.float64)) - [1.0, 0.0, 2.0]) / [2.0, 4.0, 8.0], 0.0
            ),
            3.0,
        )
        / 3.0
    )
    frozen = ZEROS.copy()
    frozen.flags.writeable = False  # e.g. a zero-copy view of an Arrow buffer: read, never written
    assert _bits(pipe.apply({"x": frozen}, owned=["x"])["x"]) == _bits(want)
    row = ZEROS[:, 0].copy()  # parameters of 3 features do not fit one: never written, numpy's own error
    with pytest.raises(ValueError):
        pipe.apply({"x": row}, owned=["x"])
    assert _bits(row) == _bits(ZEROS[:, 0])


def test_window_batch_shapes_rows_and_values():
    x = np.arange(20, dtype=np.float64).reshape(10, 2)
    pipe = frames.Pipeline.from_steps([contract.Window(size=4, stride=3)], ["x"])
    out = pipe.apply({"x": x})["x"]
    assert out.shape == (3, 4, 2)  # windows ending at rows 3, 6, 9
    np.testing.assert_array_equal(out[1], x[3:7])
    np.testing.assert_array_equal(pipe.rows(10), [3, 6, 9])
    assert pipe.apply({"x": x[:3]})["x"].shape == (0, 4, 2)
    two = frames.Pipeline.from_steps([contract.Window(size=4, input="x"), contract.Window(size=2, input="y")], "xy")
    with pytest.raises(frames.PreprocessError, match="do not align"):
        two.rows(10)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 30),
    size=st.integers(1, 6),
    stride=st.integers(1, 4),
    pre=st.booleans(),
    post=st.booleans(),
)
def test_streaming_emits_exactly_the_batch_samples(n: int, size: int, stride: int, pre: bool, post: bool):
    rng = np.random.default_rng(n * 31 + size)
    x = rng.normal(0, 5, (n, 3))
    steps = []
    if pre:
        steps.append(contract.Clip(min=-3.0, max=3.0))
    steps.append(contract.Window(size=size, stride=stride))
    if post:
        steps.append(contract.Standardize(mean=(1.0, 0.0, -1.0), std=(2.0, 2.0, 2.0)))
    pipe = frames.Pipeline.from_steps(steps, ["x"])
    batch = pipe.apply({"x": x})["x"]
    state = pipe.stream()
    streamed = [out["x"][0] for row in x if (out := state.push({"x": row[None, :]})) is not None]
    assert len(streamed) == len(batch)
    if streamed:
        np.testing.assert_allclose(np.stack(streamed), batch)


def test_reference_bins_equal_shares_and_psi_matches_takt_test():
    rng = np.random.default_rng(3)
    ref, cand = rng.normal(0, 1, 5000), rng.normal(0.5, 1, 3000)
    bins = frames.reference_bins(ref, 10)
    assert bins is not None and len(bins.edges) == 9 and len(bins.fractions) == 10
    np.testing.assert_allclose(bins.fractions, 0.1, atol=1e-3)
    np.testing.assert_array_equal(bins.counts(ref), np.round(np.asarray(bins.fractions) * ref.size))
    assert bins.psi(cand) == stats.psi(ref, cand, 10)
    assert bins.psi(ref[:2500]) < 0.01 < 0.1 < bins.psi(cand)
    # an independent computation of PSI from the same bins
    c = np.histogram(cand, [-np.inf, *bins.edges, np.inf])[0] / cand.size
    r = np.asarray(bins.fractions)
    assert bins.psi(cand) == pytest.approx(float(np.sum((c - r) * np.log(c / r))))
    const = frames.reference_bins(np.full(10, 2.0))
    assert const is not None and const.psi(np.full(10, 2.0)) == pytest.approx(0) and const.psi(np.full(5, 3.0)) > 1
    assert frames.reference_bins(np.array([np.nan])) is None


def test_bin_of_agrees_with_histogram_at_edges():
    bins = frames.reference_bins(np.arange(100.0), 4)
    assert bins is not None
    probes = np.array([-1.0, *bins.edges, 99.0, 1e9, *(np.asarray(bins.edges) - 1e-9)])
    for v in probes:
        assert np.argmax(bins.counts(np.array([v]))) == bins.bin_of(float(v))


def test_rolling_psi_is_psi_of_the_window_and_forgets_old_values():
    rng = np.random.default_rng(5)
    ref = rng.normal(0, 1, 4000)
    bins = frames.reference_bins(ref)
    assert bins is not None
    rolling = frames.RollingPSI(bins, window=30.0, min_count=50)
    shifted = rng.normal(2, 1, 200)
    for t, v in enumerate(shifted[:40]):
        rolling.add(float(v), now=t * 0.1)
    assert rolling.value(now=4.0) is None  # fewer than min_count values
    for t, v in enumerate(shifted[40:], start=40):
        rolling.add(float(v), now=t * 0.1)
    assert rolling.value(now=19.9) == pytest.approx(bins.psi(shifted))
    rolling.add(float("nan"), now=20.0)  # never counted
    normal = rng.normal(0, 1, 200)
    for t, v in enumerate(normal):
        rolling.add(float(v), now=60.0 + t * 0.04)  # the shifted values are older than the window now
    assert rolling.value(now=68.0) == pytest.approx(bins.psi(normal))


def test_takt_test_runs_windowed_models_through_frames(tmp_path):
    """A window step in a Model spec: `takt test`'s ModelRunner feeds (n - size + 1) samples of
    size rows each, and each sample stands for its last dataset row."""
    import hashlib

    from onnx import TensorProto, helper

    from compiler.spec.model import Model
    from compiler.testing.runner import ModelRunner

    node = helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)
    graph = helper.make_graph(
        [node],
        "win",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch"])],
        [helper.make_tensor("axes", TensorProto.INT64, [2], [1, 2])],
    )
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()
    (tmp_path / "win.onnx").write_bytes(data)
    model = Model.model_validate(
        {
            "apiVersion": "takt/v1",
            "kind": "Model",
            "metadata": {"name": "win"},
            "spec": {
                "version": "1",
                "task": "regression",
                "artifact": {"path": "win.onnx", "sha256": hashlib.sha256(data).hexdigest()},
                "inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", 3, 2],
                            "features": [{"name": "a"}, {"name": "b"}]}],
                "outputs": [{"name": "y", "dtype": "float32", "shape": ["batch"]}],
                "preprocessing": [{"op": "window", "size": 3}],
            },
        }
    )  # fmt: skip
    runner = ModelRunner(model, tmp_path / "win.onnx")
    columns = {"a": np.arange(10.0), "b": np.ones(10)}
    feeds = runner.feeds(columns)
    assert feeds["x"].shape == (8, 3, 2) and feeds["x"].dtype == np.float32
    y = runner.run(feeds)["y"]
    np.testing.assert_allclose(y, [sum(range(i - 2, i + 1)) + 3 for i in range(2, 10)])
    np.testing.assert_array_equal(runner.sample_rows(10), np.arange(2, 10))
