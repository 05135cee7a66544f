"""Reference statistics for drift at the edge: quantile bins of every model input feature, computed at
build time from the gating TestSuite's reference dataset by `frames` (the code the runner scores with).

Which data: the suite and dataset `monitoring.drift` names; without it, the first gating suite's
`reference` dataset (or its first). Features of tensor inputs without per-position features (an
image) get no bins: PSI is defined per scalar feature. Deterministic: same data, same bytes.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

import frames
from compiler.bundle import runner as contract
from compiler.models.digest import DigestCache
from compiler.render.context import RenderError, RenderInput
from compiler.spec.testsuite import DriftTest, TestSuite
from compiler.testing.datasets import Dataset, load_dataset

DEFAULT_BINS = 10


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


def reference_statistics(inp: RenderInput) -> contract.Reference | None:
    chosen = _choose(inp)
    if chosen is None:
        return None
    suite, name = chosen
    spec = suite.spec.datasets[name]
    bins = next((t.bins for t in suite.spec.tests if isinstance(t, DriftTest) and t.reference == name), DEFAULT_BINS)
    inputs = tuple((t.name, tuple(f.name for f in t.features or [])) for t in inp.model.spec.inputs)
    try:  # many bundles share one reference dataset: read and binned once per process while unchanged
        st = os.stat(inp.root / spec.path)
        stamp = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
    except OSError:
        stamp = None  # load_dataset says why
    if stamp is None:
        return _reference(inp.root, spec.path, spec.format, None, suite.metadata.name, name, bins, inputs)
    return _shared_reference(inp.root, spec.path, spec.format, stamp, suite.metadata.name, name, bins, inputs)


def _reference(
    root: Path,
    rel: str,
    fmt: str | None,
    stamp: tuple[int, ...] | None,
    suite: str,
    name: str,
    bins: int,
    inputs: tuple[tuple[str, tuple[str, ...]], ...],
) -> contract.Reference | None:
    """The bins of every feature of `inputs` in the dataset; depends on nothing but its arguments and the
    file's bytes (`stamp`, its size, times and inode, stands for them in the memo)."""
    loaded = load_dataset(root, name, rel, fmt, DigestCache(None))
    if not isinstance(loaded, Dataset):
        raise RenderError(f"reference statistics: {loaded}")
    features: list[contract.FeatureReference] = []
    for tensor, feature_names in inputs:
        for feature in feature_names:
            column = loaded.columns.get(feature)
            if column is None or column.dtype == object or column.ndim != 1:
                raise RenderError(
                    f"reference statistics: dataset {name!r} of {suite!r} has no numeric column "
                    f"{feature!r} for input {tensor!r}"
                )
            ref = frames.reference_bins(column.astype(np.float64), bins)
            if ref is None:
                raise RenderError(f"reference statistics: column {feature!r} has no finite values")
            features.append(contract.FeatureReference(name=feature, edges=ref.edges, fractions=ref.fractions))
    if not features:
        return None  # no scalar features (e.g. one image input): nothing to score per feature
    return contract.Reference(test_suite=suite, dataset=name, sha256=loaded.sha256, bins=bins, features=tuple(features))


# A refusal (RenderError) is never memoised: lru_cache keeps only returned values.
_shared_reference = functools.lru_cache(maxsize=256)(_reference)
