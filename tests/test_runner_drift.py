"""Drift at the edge: the runner scores live values against the bundle's reference bins (PSI over a
rolling window) and raises its drift condition past the Deployment's threshold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import frames
from compiler.bundle import runner as contract
from tests.runnerkit import config_for, start_runner, wait_for, write_bundle

pytestmark = pytest.mark.slow


def _bundle(tmp_path: Path, shift: float) -> Path:
    rng = np.random.default_rng(11)
    ref_a, ref_b = rng.normal(10, 2, 5000), rng.normal(50, 5, 5000)
    live = np.stack([rng.normal(10 + shift, 2, 300), rng.normal(50, 5, 300)], axis=1)
    (tmp_path / "live.csv").write_text("a,b\n" + "\n".join(f"{a:.5f},{b:.5f}" for a, b in live) + "\n")
    refs = []
    for name, col in (("a", ref_a), ("b", ref_b)):
        bins = frames.reference_bins(col, 10)
        assert bins is not None
        refs.append(contract.FeatureReference(name=name, edges=bins.edges, fractions=bins.fractions))
    src = contract.FileSource(
        path="live.csv",
        format="csv",
        fields=tuple(contract.FileField(name=n, dtype="float32", address=contract.FileAddress(column=n)) for n in "ab"),
    )
    monitoring = contract.Monitoring(drift=contract.DriftMonitor(test_suite="s", dataset="ref", threshold=0.25))
    reference = contract.Reference(test_suite="s", dataset="ref", sha256="0" * 64, bins=10, features=tuple(refs))
    config = config_for("live", src, monitoring=monitoring, reference=reference)
    return write_bundle(tmp_path, config)


@pytest.mark.parametrize(("shift", "drifting"), [(0.0, False), (4.0, True)])
def test_rolling_psi_raises_the_drift_condition_past_the_threshold(tmp_path: Path, shift: float, drifting: bool):
    rp = start_runner(_bundle(tmp_path, shift))
    try:
        wait_for(lambda: rp.metric("takt_runner_inferences_total") == 300, what="all rows inferred")
        psi_a = rp.metric("takt_runner_drift_psi", 'feature="a"')
        psi_b = rp.metric("takt_runner_drift_psi", 'feature="b"')
        assert rp.metric("takt_runner_drift") == (1.0 if drifting else 0.0)
        assert (psi_a > 0.25) is drifting and psi_b < 0.25  # only the shifted feature drifts
        assert rp.get("/v2/health/ready")[0] == 200  # drift is reported, it does not make the runner unready
    finally:
        rp.stop()
