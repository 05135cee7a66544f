"""compiler/testing/stats.py: what the scipy comparisons in test_stats.py cannot pin (they agree only to a
tolerance): the bootstrap's draws, and so its bounds, are the same whatever chunk of resample indices is
drawn at a time, exactly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from compiler.testing.stats import BOOTSTRAP_CHUNK_VALUES, bootstrap


@pytest.mark.parametrize("chunk_values", [1, 7, 500, 1 << 16, BOOTSTRAP_CHUNK_VALUES, 1 << 40])
def test_the_bootstrap_bounds_do_not_depend_on_the_chunk_size(chunk_values: int) -> None:
    e = np.random.default_rng(3).normal(0, 1, 50)
    one_call = bootstrap(lambda x: float(np.mean(x)), (e,), 0.9, resamples=300, seed=5, chunk_values=50 * 300)
    chunked = bootstrap(lambda x: float(np.mean(x)), (e,), 0.9, resamples=300, seed=5, chunk_values=chunk_values)
    assert chunked == one_call
    assert one_call is not None and one_call.low < one_call.value < one_call.high


def test_an_estimate_is_a_value_that_cannot_be_changed_after_it_is_judged() -> None:
    est = bootstrap(lambda x: float(np.mean(x)), (np.arange(10.0),), 0.9, resamples=50)
    assert est is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        est.low = 0.0  # type: ignore[misc]
