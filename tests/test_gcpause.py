"""Validation and builds pause the cyclic collector while they run and always leave it as they found it."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from compiler.build import build
from compiler.gcpause import collections_paused, frozen_for_fork
from compiler.validate.pipeline import validate
from tests.conftest import EXAMPLES


@pytest.fixture
def collector_restored():
    was = gc.isenabled()
    yield
    gc.enable() if was else gc.disable()


def test_the_collector_is_paused_inside_and_enabled_again_after(collector_restored):
    gc.enable()
    with collections_paused():
        assert not gc.isenabled()
        with collections_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # an inner pause never ends the outer one
    assert gc.isenabled()


def test_a_caller_that_disabled_the_collector_keeps_it_disabled(collector_restored):
    gc.disable()
    with collections_paused():
        pass
    assert not gc.isenabled()


def test_the_collector_is_enabled_again_when_the_block_raises(collector_restored):
    gc.enable()
    with pytest.raises(ValueError), collections_paused():
        raise ValueError("boom")
    assert gc.isenabled()


def test_frozen_objects_are_unfrozen_after_the_fork_window():
    with frozen_for_fork():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


@pytest.mark.slow
def test_validate_and_build_leave_the_collector_enabled(tmp_path: Path, collector_restored):
    gc.enable()
    result = validate(EXAMPLES / "press-line-anomaly", cache_dir=tmp_path / "cache")
    assert gc.isenabled()
    build(result, tmp_path / "out", jobs=1, run_gates=False, cache_secret_dir=tmp_path / "cache")
    assert gc.isenabled()
