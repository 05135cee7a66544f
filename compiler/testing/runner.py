"""Run a TestSuite against its model with onnxruntime and judge every test.

Each test yields a `TestResult`: passed, failed (the model does not show what the suite asks)
or error (the test cannot be judged: missing data, wrong columns, an unusable output). Errors
are values with a message, never exceptions escaping to the CLI.
"""

from __future__ import annotations

import io
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import frames
from compiler.bundle.tree import TreeError, read_inside
from compiler.models.digest import DigestCache
from compiler.spec.datasource import DataSource
from compiler.spec.model import Model, Tensor
from compiler.spec.testsuite import (
    MAX_SAMPLE_BYTES,
    DataTest,
    DriftTest,
    GoldenTest,
    InvarianceTest,
    LatencyTest,
    MetricTest,
    TestSuite,
)
from compiler.testing import stats
from compiler.testing.datasets import Dataset, open_dataset
from compiler.testing.formats import DatasetError
from compiler.testing.source import NUMERIC, DataUnusable, TestData, rows_of
from compiler.testing.stream import (
    DEFAULT_MEMORY,
    DELTA,
    Budget,
    Computation,
    RowSample,
    window_batches,
)

NP_DTYPES = frames.NP_DTYPES
Handler = Callable[[Any], tuple[str, str, dict[str, Any]]]  # a test type's judge: (status, summary, result fields)


@dataclass(frozen=True)
class TestResult:
    __test__ = False  # not a pytest class

    suite: str
    name: str
    type: str
    gate: bool
    status: str  # passed | failed | error
    summary: str
    value: float | None = None
    bound: float | None = None
    threshold: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def blocks(self) -> bool:
        return self.gate and self.status != "passed"


@dataclass
class SuiteResult:
    suite: str
    model: str
    file: str
    results: list[TestResult] = field(default_factory=list)
    datasets: dict[str, str] = field(default_factory=dict)  # name → sha256, for provenance
    error: str | None = None  # the suite could not run at all

    @property
    def passed(self) -> bool:
        return self.error is None and not any(r.blocks for r in self.results)


class _Unjudgeable(Exception):
    """A test that cannot be judged; becomes an `error` result with this message."""


class ModelRunner:
    """One onnxruntime session per model; inputs assembled from dataset columns, preprocessing applied."""

    def __init__(self, model: Model, path: Path, budget: Budget | None = None) -> None:
        import onnxruntime as ort

        self.budget = budget or Budget(DEFAULT_MEMORY)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = 1  # stable latency figures, no contention with the test process
        options.enable_cpu_mem_arena = False  # the arena keeps its largest batch's memory for good: off the budget
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.model = model
        self.inputs = {t.name: t for t in model.spec.inputs}
        self.output_names = [o.name for o in self.session.get_outputs()]
        first = model.spec.inputs[0].shape[0] if model.spec.inputs[0].shape else None
        self.fixed_batch = first if isinstance(first, int) else None
        self.specs = [
            frames.InputSpec(t.name, tuple(self.columns_for(t)), t.dtype, "features" if t.features else "tensor")
            for t in model.spec.inputs
        ]
        self.pipeline = frames.Pipeline.from_steps(model.spec.preprocessing, list(self.inputs))
        sizes = [(s.size, s.stride) for s in self.pipeline.steps if s.op == "window"]
        self.window: tuple[int, int] | None = sizes[0] if sizes else None  # (size, stride): samples span rows
        self.windowed = self.window is not None

    @property
    def input_columns(self) -> list[str]:
        return [c for t in self.model.spec.inputs for c in self.columns_for(t)]

    def columns_for(self, tensor: Tensor) -> list[str]:
        return [f.name for f in tensor.features] if tensor.features else [tensor.name]

    def feeds(
        self,
        data: Dataset | dict[str, np.ndarray],
        rows: slice | np.ndarray | None = None,
        reuse: dict[str, np.ndarray] | None = None,
    ) -> dict[str, np.ndarray]:
        """Model inputs from dataset columns through `frames`, the pipeline the runner runs. `reuse`: inputs
        already made from these same rows (e.g. those no noise touches), taken as they are: each step of the
        pipeline reads and writes its own input only, so the others come out as they would anyway."""
        columns = data.columns if isinstance(data, Dataset) else data
        if rows is not None:
            columns = {k: v[rows] for k, v in columns.items()}
        specs, pipeline = self.specs, self.pipeline
        if reuse:
            specs = [s for s in self.specs if s.name not in reuse]
            pipeline = frames.Pipeline(pipeline.inputs, tuple(s for s in pipeline.steps if s.input not in reuse))
        try:
            feeds = frames.assemble(specs, columns)
            # a features input is a new array (its columns stacked); a tensor input is the dataset's column
            feeds = pipeline.apply(feeds, owned=[s.name for s in specs if s.layout == "features"])
        except frames.FramesError as exc:
            raise _Unjudgeable(str(exc)) from exc
        made = frames.cast(feeds, {k: self.inputs[k].dtype for k in feeds})
        if not reuse:
            return made
        return {s.name: reuse[s.name] if s.name in reuse else made[s.name] for s in self.specs}

    def sample_rows(self, n: int) -> np.ndarray:
        """The dataset row each model sample stands for (its last row when inputs are windowed)."""
        try:
            return self.pipeline.rows(n)
        except frames.PreprocessError as exc:
            raise _Unjudgeable(str(exc)) from exc

    def run(self, feeds: dict[str, np.ndarray], batch: int | None = None) -> dict[str, np.ndarray]:
        """All outputs for all rows, in batches of `batch` rows, by default as many as the budget's batch
        share holds (row by row when the model's batch size is fixed)."""
        n = len(next(iter(feeds.values())))
        row_bytes = sum(v.nbytes // n for v in feeds.values()) if n else 1
        step = self.fixed_batch or batch or self.budget.model_rows(row_bytes)
        parts: dict[str, list[np.ndarray]] = {o: [] for o in self.output_names}
        for start in range(0, n, step):
            chunk = {k: v[start : start + step] for k, v in feeds.items()}
            for name, value in zip(self.output_names, self.session.run(None, chunk), strict=True):
                parts[name].append(np.asarray(value))
        return {k: np.concatenate(v) if v else np.empty(0) for k, v in parts.items()}


def _labels_from(output: np.ndarray, decision_threshold: float | None) -> np.ndarray:
    """Class-like predictions from an output: argmax of scores, bools as 0/1, thresholded scores."""
    out = output
    if out.ndim >= 2 and out.shape[-1] == 1:
        out = out.reshape(out.shape[:-1])
    if out.ndim == 2:
        labels: np.ndarray = out.argmax(axis=1)
        return labels
    if out.dtype == np.bool_:
        return out.astype(np.int64)
    if np.issubdtype(out.dtype, np.floating):
        if decision_threshold is None:
            raise _Unjudgeable("a float score output needs decisionThreshold to give classes")
        return (out >= decision_threshold).astype(np.int64)
    return out


def _classlike_output(runner: ModelRunner, preferred: str | None) -> str:
    if preferred:
        return preferred
    for t in runner.model.spec.outputs:
        if t.dtype not in ("float16", "float32", "float64") or (len(t.shape) == 2 and t.shape[-1] != 1):
            return t.name
    return runner.model.spec.outputs[0].name


def measured_on() -> dict[str, Any]:
    """Where a latency figure was measured: it holds for this machine, not for a target's hardware."""
    import os
    import platform
    from importlib.metadata import version

    host, machine, cores, ort = platform.node(), platform.machine(), os.cpu_count(), version("onnxruntime")
    return {
        "host": host,
        "machine": machine,
        "cores": cores,
        "onnxruntime": ort,
        "threads": 1,
        "description": f"{host} ({machine}, {cores} cores, onnxruntime {ort}, 1 thread)",
    }


def _latency_verdict(measured: dict[str, float], budget: Any, judged: bool) -> dict[str, Any]:
    limits = {q: getattr(budget, q) for q in ("p50", "p95", "p99") if getattr(budget, q) is not None}
    over = [f"{q} {measured[q] * 1e3:.3f} ms > {b * 1e3:.3f} ms" for q, b in limits.items() if measured[q] > b]
    return {"budgetMs": {q: b * 1e3 for q, b in limits.items()}, "over": over, "judged": judged}


def whole_passes(suite: TestSuite) -> Counter[str]:
    """How many tests read each dataset whole: a CSV read more than once is parsed once (its snapshot)."""
    passes: Counter[str] = Counter()
    for test in suite.spec.tests:
        if isinstance(test, MetricTest | DataTest | InvarianceTest):
            passes[test.dataset] += 1
        elif isinstance(test, DriftTest):
            passes.update((test.reference, test.candidate))
    return passes


class SuiteRunner:
    def __init__(
        self,
        suite: TestSuite,
        model: Model,
        model_path: Path,
        root: Path,
        cache: DigestCache,
        sources: dict[str, DataSource],
        file: str,
        memory: int = DEFAULT_MEMORY,
        off_host: frozenset[str] = frozenset(),
    ) -> None:
        """`off_host`: target and target-class names whose latency this build host's timing does not stand for."""
        self.suite, self.model, self.root, self.cache, self.sources = suite, model, root, cache, sources
        self.off_host = off_host
        self.model_path, self.memory = model_path, memory
        self.budget = Budget(memory)
        self.result = SuiteResult(suite.metadata.name, model.metadata.name, file)
        self._sources: dict[str, TestData | str] = {}
        self._passes = whole_passes(suite)

    def source(self, name: str) -> TestData:
        """The dataset as a stream (schema read, digest checked); no rows are read here."""
        if name not in self._sources:
            spec = self.suite.spec.datasets[name]
            try:
                file = open_dataset(self.root, spec.path, spec.format)
                probe = file.probe()
                sha = self.cache.sha256(file.path)
                try:
                    file.check_unchanged()  # the digest is of the file the schema came from
                except DatasetError:
                    self.cache.entries.pop(str(file.path.resolve()), None)  # never keep a digest of a moving file
                    raise
                loaded: TestData | str = TestData(name, spec.path, file, probe, sha)
            except DatasetError as exc:
                loaded = f"dataset {name!r}: {spec.path} {exc.reason}"
            except TreeError as exc:
                loaded = f"dataset {name!r}: {spec.path} {exc.reason}"
            if isinstance(loaded, TestData):
                if spec.sha256 and loaded.sha256 != spec.sha256:
                    loaded = f"dataset {name!r}: sha256 is {loaded.sha256}, not the declared digest"
                else:
                    self.result.datasets[name] = loaded.sha256
            self._sources[name] = loaded
        loaded = self._sources[name]
        if isinstance(loaded, str):
            raise _Unjudgeable(loaded)
        return loaded

    def stream(self, name: str, names: list[str], model: bool = False) -> Generator[dict[str, np.ndarray]]:
        """Batches of the named columns of a dataset. For the model (`model`) of a windowed model, each batch
        carries the rows its first window needs from the one before, so every window is formed once and
        the batch's rows are cut so its windows (rows × size) stay within the budget's batch."""
        data = self.source(name)
        if self._passes[name] > 1 and not data.file.snapshotted:  # a CSV read again and again: parsed once
            self._passes[name] = 0  # tried once: a CSV that gets no snapshot is streamed directly
            wanted = self._snapshot_columns(name)
            width = len(data.probe.columns) if wanted is None else len(wanted)
            data.file.take_snapshot(self.budget.batch_rows(width), names=wanted)
        rows, buffer = self.budget.batch_rows(len(names)), self.budget.read_buffer(len(names))
        try:
            if model and self.runner.window is not None:
                size, stride = self.runner.window
                rows = max(size + stride, rows // size)
                yield from window_batches(data.batches(names, rows, buffer), size, stride)
            else:
                yield from data.batches(names, rows, buffer)
        except DataUnusable as exc:
            raise _Unjudgeable(str(exc)) from None

    def _snapshot_columns(self, name: str) -> list[str] | None:
        """The columns of dataset `name` that the suite's tests read (None: possibly any), so its snapshot
        converts only those. A test that wants one more reads the CSV itself: same result, one more parse."""
        inputs = self.runner.input_columns
        wanted: list[str] = []
        for test in self.suite.spec.tests:
            if isinstance(test, MetricTest) and test.dataset == name:
                wanted += [*inputs, self.suite.spec.datasets[name].label_column or "label"]
            elif isinstance(test, DataTest) and test.dataset == name:
                source = self.sources.get(test.source) if test.source else None
                wanted += [*inputs, *(f.name for f in source.spec.fields)] if source else inputs
            elif isinstance(test, DriftTest) and name in (test.reference, test.candidate):
                if not test.features:
                    return None  # every common numeric column
                wanted += test.features
            elif isinstance(test, InvarianceTest) and test.dataset == name:
                wanted += [*inputs, *test.noise]
            elif isinstance(test, LatencyTest) and next(iter(self.suite.spec.datasets), None) == name:
                wanted += inputs
        return list(dict.fromkeys(wanted))

    def run(self, progress: Callable[[str], None] | None = None) -> SuiteResult:
        try:
            self.runner = ModelRunner(self.model, self.model_path, self.budget)
        except Exception as exc:  # noqa: BLE001 - onnxruntime refusing the model is a finding, not a crash
            self.result.error = f"onnxruntime cannot load {self.model_path.name}: {str(exc).splitlines()[0][:300]}"
            return self.result
        # each handler takes the test of its own type (the key is the test's `type` tag)
        handlers: dict[str, Handler] = {
            "golden": self.golden,
            "metric": self.metric,
            "data": self.data,
            "drift": self.drift,
            "latency": self.latency,
            "invariance": self.invariance,
        }
        try:
            self._run_tests(handlers, progress)
        finally:  # CSV snapshots are anonymous files: closing them frees their space
            for data in self._sources.values():
                if isinstance(data, TestData):
                    data.file.release()
        return self.result

    def _run_tests(self, handlers: dict[str, Handler], progress: Callable[[str], None] | None) -> None:
        for test in self.suite.spec.tests:
            if progress:
                progress(f"{self.suite.metadata.name}/{test.name}")
            started = time.perf_counter()
            try:
                status, summary, extra = handlers[test.type](test)
            except _Unjudgeable as exc:
                status, summary, extra = "error", str(exc), {}
            except Exception as exc:  # noqa: BLE001 - e.g. onnxruntime failing on real data: report it
                status, summary, extra = "error", f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}", {}
            self.result.results.append(
                TestResult(
                    self.suite.metadata.name,
                    test.name,
                    test.type,
                    test.gate,
                    status,
                    summary,
                    seconds=time.perf_counter() - started,
                    **extra,
                )
            )

    # --- the tests ---------------------------------------------------------------------------------

    def golden(self, test: GoldenTest) -> tuple[str, str, dict[str, Any]]:
        try:
            data = read_inside(self.root, test.samples, MAX_SAMPLE_BYTES)
        except FileNotFoundError:
            raise _Unjudgeable(f"golden samples {test.samples} do not exist") from None
        except TreeError as exc:
            raise _Unjudgeable(f"golden samples {test.samples} {exc.reason}") from None
        if test.samples.endswith(".json"):
            try:
                doc = json.loads(data.decode("utf-8"))
                inputs = {k: np.asarray(v) for k, v in doc["inputs"].items()}
                expected = {k: np.asarray(v) for k, v in doc["expected"].items()}
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise _Unjudgeable(f"golden samples {test.samples}: need {{inputs, expected}} ({exc})") from exc
        else:
            try:
                with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                    inputs = {k: npz[k] for k in npz.files if not k.startswith("expected/")}
                    expected = {k.removeprefix("expected/"): npz[k] for k in npz.files if k.startswith("expected/")}
            except (OSError, ValueError, EOFError) as exc:
                raise _Unjudgeable(f"golden samples {test.samples} are not a readable NPZ file") from exc
        if not expected:
            raise _Unjudgeable("golden samples hold no expected/<output> arrays")
        missing = [n for n in self.runner.inputs if n not in inputs]
        if missing:
            raise _Unjudgeable(f"golden samples lack input(s) {', '.join(missing)}")
        feeds: dict[str, np.ndarray] = {
            k: v.astype(NP_DTYPES[self.runner.inputs[k].dtype]) for k, v in inputs.items() if k in self.runner.inputs
        }
        actual = self.runner.run(feeds)
        worst, mismatched, per_output = 0.0, 0, {}
        for name, want in expected.items():
            if name not in actual:
                raise _Unjudgeable(f"the model has no output {name!r}")
            got = actual[name]
            if got.shape != want.shape:
                raise _Unjudgeable(f"output {name!r} has shape {got.shape}, the samples {want.shape}")
            if np.issubdtype(want.dtype, np.floating):
                ok = np.isclose(got, want, rtol=test.tolerance.rel, atol=test.tolerance.abs)
                err = float(np.max(np.abs(got.astype(np.float64) - want))) if want.size else 0.0
            else:
                ok = got == want
                err = float(np.sum(~ok))
            worst = max(worst, err)
            mismatched += int(np.sum(~ok))
            per_output[name] = err
        n = len(next(iter(feeds.values())))
        status = "passed" if mismatched == 0 else "failed"
        return (
            status,
            f"{n} samples, {mismatched} values outside tolerance, max abs error {worst:.3g}",
            {"value": worst, "details": {"maxAbsError": per_output, "samples": n}},
        )

    def _truth(self, name: str, cols: dict[str, np.ndarray], column: str | None) -> np.ndarray:
        col = column or "label"
        if col not in cols:
            raise _Unjudgeable(f"dataset {name!r} has no label column {col!r} (set labelColumn)")
        truth = cols[col]
        labels = self.model.spec.class_labels
        if truth.dtype == object and labels:
            index = {name: i for i, name in enumerate(labels)}
            unknown = sorted({str(v) for v in truth if v not in index})
            if unknown:
                raise _Unjudgeable(f"labels {unknown[:5]} are not in the model's classLabels")
            return np.array([index[v] for v in truth])
        return truth

    def metric(self, test: MetricTest) -> tuple[str, str, dict[str, Any]]:
        """Accuracy, precision and recall from counts streamed batch by batch; F1 and errors keep
        the (prediction, truth) pairs their bootstrap resamples, within the memory budget."""
        out_name = test.output or _classlike_output(self.runner, None)
        label = self.suite.spec.datasets[test.dataset].label_column
        positive = test.positive_class if test.positive_class is not None else 1
        if isinstance(positive, str) and self.model.spec.class_labels and positive in self.model.spec.class_labels:
            positive = self.model.spec.class_labels.index(positive)
        counted = test.metric in ("accuracy", "precision", "recall")
        cap = self.budget.pair_rows()  # rows of pairs a bootstrap may hold
        correct = n = tp = fp = fn = 0
        preds: list[np.ndarray] = []
        truths: list[np.ndarray] = []
        for cols in self.stream(test.dataset, [*self.runner.input_columns, label or "label"], model=True):
            outputs = self.runner.run(self.runner.feeds(cols))
            if out_name not in outputs:
                raise _Unjudgeable(f"the model has no output {out_name!r}")
            truth = self._truth(test.dataset, cols, label)
            truth = truth[self.runner.sample_rows(len(truth))]
            if test.metric in ("mae", "rmse"):
                pred = outputs[out_name].reshape(len(truth), -1)[:, 0].astype(np.float64)
                truth = truth.astype(np.float64)
            else:
                pred = _labels_from(outputs[out_name], test.decision_threshold)
                truth = truth.astype(pred.dtype) if truth.dtype != object else truth
            if counted:
                correct += int(np.sum(pred == truth))
                n += int(pred.size)
                t_p, f_p, f_n, _ = stats.confusion(pred, truth, positive)
                tp, fp, fn = tp + t_p, fp + f_p, fn + f_n
            else:
                preds.append(pred)
                truths.append(truth)
                n += int(pred.size)
                if n > cap:
                    raise _Unjudgeable(
                        f"{test.metric}'s bootstrap needs every (prediction, truth) pair in memory: over "
                        f"{cap:,} rows exceed --memory {self.memory:,} bytes (raise it, or test accuracy, "
                        "precision or recall, which stream)"
                    )
        if counted:
            est = stats.count_estimate(test.metric, correct, n, tp, fp, fn, test.confidence)
        else:
            pred_all = np.concatenate(preds) if preds else np.empty(0)
            truth_all = np.concatenate(truths) if truths else np.empty(0)
            chunk = self.budget.resample_values(1 if test.metric in ("mae", "rmse") else 2)
            est = stats.metric_estimate(test.metric, pred_all, truth_all, test.confidence, positive, chunk_values=chunk)
        if est is None:
            raise _Unjudgeable(
                f"{test.metric} is undefined here: no {'positive ' if test.metric != 'accuracy' else ''}cases to count"
            )
        how = Computation(n, "exact").as_dict()
        higher_is_better = test.metric not in ("mae", "rmse")
        bound = est.low if higher_is_better else est.high
        ok = bound >= test.threshold if higher_is_better else bound <= test.threshold
        side = "lower" if higher_is_better else "upper"
        cmp = ">=" if higher_is_better else "<="
        return (
            "passed" if ok else "failed",
            f"{test.metric} {est.value:.4f}, {side} {test.confidence:.0%} bound {bound:.4f} ({est.method}, "
            f"n={est.n}) {cmp} {test.threshold}? {'yes' if ok else 'no'}",
            {
                "value": est.value,
                "bound": bound,
                "threshold": test.threshold,
                "details": {
                    "metric": test.metric,
                    "low": est.low,
                    "high": est.high,
                    "n": est.n,
                    "method": est.method,
                    "confidence": test.confidence,
                    "computation": how,
                },
            },
        )

    def data(self, test: DataTest) -> tuple[str, str, dict[str, Any]]:
        """Per-column counts streamed batch by batch: values, non-finite ones, finite ones outside the range."""
        data = self.source(test.dataset)
        needed = list(self.runner.input_columns)
        source = self.sources.get(test.source) if test.source else None
        fields = {f.name: f for f in source.spec.fields} if source else {}
        needed += [f for f in fields if f not in needed]
        problems: list[str] = []
        if test.checks.schema_:
            why = data.require(needed)
            if why:
                problems.append(why)
        kinds = data.kinds
        numeric = []
        for name in needed:
            if name not in kinds:
                continue
            if kinds[name] not in (*NUMERIC, "tensor"):
                if test.checks.schema_:
                    problems.append(f"column {name!r} is not numeric")
                continue
            numeric.append(name)
        values = dict.fromkeys(numeric, 0)
        nonfinite = dict.fromkeys(numeric, 0)
        finite = dict.fromkeys(numeric, 0)
        outside = dict.fromkeys(numeric, 0)
        rows = 0
        for cols in self.stream(test.dataset, numeric):
            rows += rows_of(cols)
            for name in numeric:
                col = cols[name]
                if col.dtype == object:  # an NPZ array of strings
                    raise _Unjudgeable(f"column {name!r} of dataset {test.dataset!r} holds strings")
                flat = col.reshape(len(col), -1) if col.ndim > 1 else col[:, None]
                ok = np.isfinite(flat)
                values[name] += int(flat.size)
                nonfinite[name] += int(flat.size - np.count_nonzero(ok))
                f = fields.get(name)
                if test.checks.ranges and f is not None and f.range is not None:
                    fin = flat[ok]
                    finite[name] += int(fin.size)
                    outside[name] += int(np.count_nonzero((fin < f.range[0]) | (fin > f.range[1])))
        per_column: dict[str, dict[str, float]] = {}
        for name in numeric:
            missing = nonfinite[name] / values[name] if values[name] else 1.0
            stats_ = {"missing": missing}
            if missing > test.checks.max_missing:
                problems.append(f"{name!r}: {missing:.2%} missing (max {test.checks.max_missing:.2%})")
            f = fields.get(name)
            if test.checks.ranges and f is not None and f.range is not None:
                share = outside[name] / finite[name] if finite[name] else 0.0
                stats_["outsideRange"] = share
                if share > 0:
                    problems.append(f"{name!r}: {share:.2%} outside [{f.range[0]}, {f.range[1]}]")
            per_column[name] = stats_
        status = "failed" if problems else "passed"
        summary = (
            "; ".join(problems[:4]) + (" …" if len(problems) > 4 else "")
            if problems
            else f"{rows} rows, {len(per_column)} columns within schema, ranges and missing-value limits"
        )
        how = Computation(rows, "exact").as_dict()
        return status, summary, {"details": {"columns": per_column, "rows": rows, "computation": how}}

    def drift(self, test: DriftTest) -> tuple[str, str, dict[str, Any]]:
        """The reference's bins (or both samples, for KS) from a seeded sample that holds every row
        within the memory budget (exact), else a uniform sample whose CDF bound the result states;
        the candidate's bin counts for PSI are exact, streamed."""
        ref, cand = self.source(test.reference), self.source(test.candidate)
        label = self.suite.spec.datasets[test.reference].label_column or "label"
        rk, ck = ref.kinds, cand.kinds
        features = test.features or sorted(c for c in rk.keys() & ck.keys() if c != label and rk[c] in NUMERIC)
        if not features:
            raise _Unjudgeable("no common numeric feature columns to compare")
        why = ref.require(features) or cand.require(features)
        if why:
            raise _Unjudgeable(why)
        k = self.budget.sample_rows(len(features), samples=2 if test.method == "ks" else 1)
        ref_sample = RowSample(k, seed=0)
        for cols in self.stream(test.reference, features):  # copies: a kept view of a CSV snapshot's batch
            ref_sample.add({f: cols[f].astype(np.float64) for f in features})  # holds all its columns (+300 MB)
        ref_cols = ref_sample.columns()
        how: dict[str, dict[str, Any]] = {"reference": ref_sample.computation().as_dict()}
        values: dict[str, float] = {}
        pvalues: dict[str, float] = {}
        if test.method == "psi":
            bins = {f: frames.reference_bins(ref_cols[f], test.bins) if ref_cols else None for f in features}
            binned = {f: b for f, b in bins.items() if b is not None}
            counts = {f: np.zeros(len(b.fractions), dtype=np.int64) for f, b in binned.items()}
            rows = 0
            for cols in self.stream(test.candidate, features):
                rows += rows_of(cols)
                for f, c in counts.items():
                    c += binned[f].counts(cols[f].astype(np.float64, copy=False))
            how["candidate"] = Computation(rows, "exact").as_dict()
            for f in features:
                b = bins[f]
                v = b.psi_counts(counts[f]) if b is not None else None
                if v is None:
                    raise _Unjudgeable(f"feature {f!r} has no finite values in one of the datasets")
                values[f] = v
        else:
            cand_sample = RowSample(k, seed=1)
            for cols in self.stream(test.candidate, features):
                cand_sample.add({f: cols[f].astype(np.float64) for f in features})
            cand_cols = cand_sample.columns()
            how["candidate"] = cand_sample.computation().as_dict()
            for f in features:
                ks = stats.ks_2samp(ref_cols[f], cand_cols[f]) if ref_cols and cand_cols else None
                if ks is None:
                    raise _Unjudgeable(f"feature {f!r} has no finite values in one of the datasets")
                values[f], pvalues[f] = ks
            bounds = [h["cdfBound"] for h in how.values() if h["method"] == "sketch"]
            if bounds:
                how["statisticBound"] = {"abs": sum(bounds), "probability": 1 - len(bounds) * DELTA}
        worst = max(values, key=values.__getitem__)
        ok = values[worst] < test.threshold
        return (
            "passed" if ok else "failed",
            f"{test.method.upper()} max {values[worst]:.4f} ({worst}) < {test.threshold}? {'yes' if ok else 'no'}"
            f" over {len(values)} feature(s)",
            {
                "value": values[worst],
                "threshold": test.threshold,
                "details": {"method": test.method, "perFeature": values, "pValues": pvalues, "computation": how},
            },
        )

    def _head(self, name: str, rows: int, names: list[str] | None = None) -> tuple[dict[str, np.ndarray], bool]:
        """The first `rows` rows of the named columns (the model's inputs by default), and whether that is
        the whole dataset."""
        parts: list[dict[str, np.ndarray]] = []
        held = 0
        batches = self.stream(name, names or self.runner.input_columns)
        whole = True
        for cols in batches:
            parts.append(cols)
            held += rows_of(cols)
            if held >= rows:
                whole = held == rows and next(batches, None) is None
                batches.close()
                break
        if not parts:
            return {}, True
        return {k: np.concatenate([p[k] for p in parts])[:rows] for k in parts[0]}, whole

    def latency(self, test: LatencyTest) -> tuple[str, str, dict[str, Any]]:
        rng = np.random.default_rng(0)
        batch = self.runner.fixed_batch or test.batch_size
        source = next(iter(self.suite.spec.datasets), None)
        if source is not None:  # the first rows the runs cycle through, not the whole dataset
            try:
                feeds_all = self.runner.feeds(self._head(source, (test.warmup + test.runs + 1) * batch)[0])
            except _Unjudgeable:
                feeds_all = None
        else:
            feeds_all = None
        if feeds_all is None:  # synthetic inputs of the declared shapes
            feeds_all = {}
            for name, t in self.runner.inputs.items():
                shape = [
                    batch * 8 if i == 0 and not isinstance(d, int) else (d if isinstance(d, int) else 1)
                    for i, d in enumerate(t.shape)
                ]
                feeds_all[name] = rng.normal(0, 1, shape).astype(NP_DTYPES[t.dtype])
        n = len(next(iter(feeds_all.values())))
        if n == 0:
            raise _Unjudgeable("no rows to time")
        samples = []
        session = self.runner.session
        for i in range(test.warmup + test.runs):
            start = (i * batch) % max(n - batch + 1, 1)
            chunk = {k: v[start : start + batch] for k, v in feeds_all.items()}
            t0 = time.perf_counter_ns()
            session.run(None, chunk)
            if i >= test.warmup:
                samples.append((time.perf_counter_ns() - t0) / 1e9)
        measured = stats.percentiles(np.array(samples))
        verdicts = {
            key: _latency_verdict(measured, budget, judged=key not in self.off_host)
            for key, budget in ([("budget", test.budget)] if test.budget else []) + sorted(test.budgets.items())
        }
        over = [f"{k}: {'; '.join(v['over'])}" for k, v in verdicts.items() if v["judged"] and v["over"]]
        counts, edges = np.histogram(np.array(samples) * 1e3, bins=30)
        text = ", ".join(f"{q} {v * 1e3:.3f} ms" for q, v in measured.items())
        where = measured_on()
        off = [k for k, v in verdicts.items() if not v["judged"]]
        note = f"; not judged here for {', '.join(off)} (the model runs on the device's own hardware)" if off else ""
        return (
            "failed" if over else "passed",
            ("; ".join(over) if over else text)
            + f" over {len(samples)} warm runs, batch {batch}, measured on {where['description']}{note}",
            {
                "value": measured["p99"],
                "details": {
                    "percentilesMs": {k: v * 1e3 for k, v in measured.items()},
                    "budgetMs": verdicts["budget"]["budgetMs"] if "budget" in verdicts else {},
                    "verdicts": verdicts,
                    "measuredOn": where,
                    "histogram": {"counts": counts.tolist(), "edgesMs": edges.tolist()},
                },
            },
        )

    def invariance(self, test: InvarianceTest) -> tuple[str, str, dict[str, Any]]:
        """On every row within the memory budget, else on a seeded uniform sample of rows (stated)."""
        out_name = _classlike_output(self.runner, None)
        tensor = next(t for t in self.model.spec.outputs if t.name == out_name)
        if tensor.dtype in ("float16", "float32", "float64") and not (len(tensor.shape) == 2 and tensor.shape[-1] != 1):
            raise _Unjudgeable("invariance needs a class-like output (labels, booleans or class scores)")
        data = self.source(test.dataset)
        unknown = [k for k in test.noise if k not in data.kinds]
        if unknown:
            raise _Unjudgeable(f"noise names unknown column(s) {', '.join(unknown)}")
        names = list(dict.fromkeys([*self.runner.input_columns, *test.noise]))
        capacity = self.budget.sample_rows(len(names), samples=2)  # the rows, and their noisy copies
        if self.runner.window is not None:  # a window spans rows: a sample of rows would break every window
            capacity = max(self.runner.window[0], capacity // self.runner.window[0])
            columns, whole = self._head(test.dataset, capacity, names)
            how = Computation(rows_of(columns), "exact" if whole else "head").as_dict()
        else:
            sample = RowSample(capacity, seed=test.seed)
            for cols in self.stream(test.dataset, names):
                sample.add(cols)
            columns = sample.columns()
            how = sample.computation().as_dict()
        clean_feeds = self.runner.feeds(columns)
        clean = _labels_from(self.runner.run(clean_feeds)[out_name], None)
        # the inputs no noise reaches are the same in every trial: made once, from the clean rows
        fixed = {s.name: clean_feeds[s.name] for s in self.runner.specs if not set(s.columns) & test.noise.keys()}
        rng = np.random.default_rng(test.seed)
        flips = 0
        # each noisy column is a new array (noise + col, the same sum as col + noise): the clean one is only
        # read, so cast it once, no copy; the noise's own array takes the sum
        clean_cols = {name: columns[name].astype(np.float64, copy=False) for name in test.noise}
        for _ in range(test.trials):
            noisy = dict(columns)
            for name, std in test.noise.items():
                col = clean_cols[name]
                noise = rng.normal(0, std, col.shape)
                noisy[name] = np.add(noise, col, out=noise)
            pred = _labels_from(self.runner.run(self.runner.feeds(noisy, reuse=fixed))[out_name], None)
            flips += int(np.sum(pred != clean))
        total = clean.size * test.trials
        rate = flips / total if total else math.nan
        upper = stats.wilson(flips, total, 0.95)
        ok = rate <= test.max_flip_rate
        return (
            "passed" if ok else "failed",
            f"flip rate {rate:.4f} (95% upper bound {upper.high if upper else math.nan:.4f}) <= "
            f"{test.max_flip_rate}? {'yes' if ok else 'no'} over {total} noisy predictions",
            {
                "value": rate,
                "threshold": test.max_flip_rate,
                "details": {
                    "flips": flips,
                    "predictions": total,
                    "upper95": upper.high if upper else None,
                    "computation": how,
                },
            },
        )
