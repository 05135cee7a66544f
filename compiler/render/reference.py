"""Reference statistics for drift at the edge: quantile bins of every model input feature, computed at
build time from the gating TestSuite's reference dataset by `frames` (the code the runner scores with).

Which data: the suite and dataset `monitoring.drift` names; without it, the first gating suite's
`reference` dataset (or its first). Features of tensor inputs without per-position features (an
image) get no bins: PSI is defined per scalar feature. Deterministic: same data, same bytes.

The dataset is streamed as `takt test` streams it: the feature columns only, in record batches, into
the seeded `RowSample` of the drift test, within the default `--memory` budget. While the dataset fits
(about 3 M rows of 5 features at 1 GiB) the sample is every row and the bins are those of the whole
data, bit for bit; past that they are the quantiles of a uniform sample of that many rows, within the
DKW bound sqrt(ln(2/δ) / 2k) of the data's CDF (δ = 1e-3: 0.0011 at 3 M rows).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from compiler.bundle import runner as contract
from compiler.render.context import RenderError, RenderInput
from compiler.spec.testsuite import DriftTest, TestSuite
from compiler.testing.dataset_types import DEFAULT_MEMORY

DEFAULT_BINS = 10


@dataclass(frozen=True)
class ReferenceRequest:
    """Everything the reference statistics of an input depend on but the dataset's bytes: the build keys
    its cache of them by this and the bytes' sha256. Reading it imports neither numpy nor pyarrow."""

    root: Path
    rel: str
    fmt: str | None
    suite: str
    name: str
    bins: int
    inputs: tuple[tuple[str, tuple[str, ...]], ...]


def _choose(inp: RenderInput) -> tuple[TestSuite, str] | None:
    monitor = inp.deployment.spec.monitoring.drift if inp.deployment.spec.monitoring else None
    if monitor is not None:
        suite = next((s for s in inp.gates if s.metadata.name == monitor.test_suite), None)
        if suite is None:
            raise RenderError(f"monitoring.drift.testSuite {monitor.test_suite!r} is not one of the deployment's gates")
        if monitor.dataset not in suite.spec.datasets:
            raise RenderError(f"monitoring.drift.dataset {monitor.dataset!r} is not in suite {monitor.test_suite!r}")
        return suite, monitor.dataset
    for suite in inp.gates:
        if suite.spec.datasets:
            name = "reference" if "reference" in suite.spec.datasets else next(iter(suite.spec.datasets))
            return suite, name
    return None


def reference_request(inp: RenderInput) -> ReferenceRequest | None:
    """What the input's reference statistics are computed from; None: it has none (no suite names a
    dataset). RenderError when `monitoring.drift` names a suite or dataset the deployment does not gate on."""
    chosen = _choose(inp)
    if chosen is None:
        return None
    suite, name = chosen
    spec = suite.spec.datasets[name]
    bins = next((t.bins for t in suite.spec.tests if isinstance(t, DriftTest) and t.reference == name), DEFAULT_BINS)
    inputs = tuple((t.name, tuple(f.name for f in t.features or [])) for t in inp.model.spec.inputs)
    return ReferenceRequest(inp.root, spec.path, spec.format, suite.metadata.name, name, bins, inputs)


def reference_statistics(inp: RenderInput) -> contract.Reference | None:
    if inp.reference is not None:  # computed before the render, or kept by the build from an earlier one
        return inp.reference.value
    request = reference_request(inp)
    return None if request is None else compute_reference(request)


def compute_reference(req: ReferenceRequest) -> contract.Reference | None:
    """The statistics `req` names, from the dataset's bytes; RenderError when they cannot be computed."""
    try:  # many bundles share one reference dataset: read and binned once per process while unchanged
        st = os.stat(req.root / req.rel)
        stamp = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
    except OSError:
        stamp = None  # load_dataset says why
    args = (req.root, req.rel, req.fmt, stamp, req.suite, req.name, req.bins, req.inputs)
    return _reference(*args) if stamp is None else _shared_reference(*args)


def _reference(
    root: Path,
    rel: str,
    fmt: str | None,
    stamp: tuple[int, ...] | None,
    suite: str,
    name: str,
    bins: int,
    inputs: tuple[tuple[str, tuple[str, ...]], ...],
    memory: int = DEFAULT_MEMORY,
) -> contract.Reference | None:
    """The bins of every feature of `inputs` in the dataset, streamed within `memory` bytes; depends on
    nothing but its arguments and the file's bytes (`stamp`, its size, times and inode, stands for them in
    the memo)."""
    import numpy as np  # here, not at import: a render whose statistics the build kept never loads numpy

    import frames
    from compiler.bundle.tree import TreeError
    from compiler.models.digest import DigestCache
    from compiler.testing.datasets import open_dataset
    from compiler.testing.formats import DatasetError
    from compiler.testing.source import NUMERIC
    from compiler.testing.stream import Budget, RowSample

    features = [(tensor, feature) for tensor, feature_names in inputs for feature in feature_names]
    if not features:
        return None  # no scalar features (e.g. one image input): nothing to score per feature
    names = list(dict.fromkeys(feature for _, feature in features))
    budget = Budget(memory)
    try:
        file = open_dataset(root, rel, fmt)
        probe = file.probe()
        if len({c.name for c in probe.columns}) != len(probe.columns):
            raise DatasetError("repeats a column name")
        kinds = {c.name: c.kind for c in probe.columns}
        for tensor, feature in features:
            if kinds.get(feature) not in NUMERIC:
                raise RenderError(
                    f"reference statistics: dataset {name!r} of {suite!r} has no numeric column "
                    f"{feature!r} for input {tensor!r}"
                )
        sample = RowSample(budget.sample_rows(len(names)), seed=0)
        for batch in file.batches(names, budget.batch_rows(len(names)), budget.read_buffer(len(names))):
            sample.add({f: batch[f].astype(np.float64) for f in names})
        sha256 = DigestCache(None).sha256(file.path)
        file.check_unchanged()  # the digest is of the file the bins came from
    except DatasetError as exc:
        raise RenderError(f"reference statistics: dataset {name!r}: {rel} {exc.reason}") from None
    except TreeError as exc:
        raise RenderError(f"reference statistics: dataset {name!r}: {rel} {exc.reason}") from None
    columns = sample.columns()
    out: list[contract.FeatureReference] = []
    for _, feature in features:
        ref = frames.reference_bins(columns[feature], bins) if columns else None
        if ref is None:
            raise RenderError(f"reference statistics: column {feature!r} has no finite values")
        out.append(contract.FeatureReference(name=feature, edges=ref.edges, fractions=ref.fractions))
    return contract.Reference(test_suite=suite, dataset=name, sha256=sha256, bins=bins, features=tuple(out))


# A refusal (RenderError) is never memoised: lru_cache keeps only returned values.
_shared_reference = functools.lru_cache(maxsize=256)(_reference)
