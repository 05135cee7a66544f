"""agent/loop.py without a repository: the reconciler is replaced at the module's boundary by a fake
that hands back scripted outcomes, and sleep is recorded instead of slept, so the loop's delays
(interval, exponential backoff with its cap and exponent bound, jitter), its stop conditions and
its closing of the runners are asserted exactly in milliseconds."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import agent.loop as loop
from agent.config import AgentConfig
from agent.reasons import Result


def _cfg(**kw: Any) -> AgentConfig:
    base: dict[str, Any] = {
        "repo": "file:///nowhere",
        "branch": "main",
        "device": "dev",
        "state_dir": Path("/nonexistent"),
        "trusted_keys": (),
        "interval": 10.0,
        "jitter": 0.0,
        "max_backoff": 1e9,
    }
    base.update(kw)
    return AgentConfig(**base)


class _Rng(random.Random):
    """uniform(a, b) answers a fixed point of the range: 0 = low end, 1 = high end."""

    def __init__(self, at: float) -> None:
        super().__init__(0)
        self.at = at
        self.asked: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.asked.append((a, b))
        return a + (b - a) * self.at


def test_the_interval_without_failures_and_doubling_backoff_after_them() -> None:
    cfg = _cfg()
    rng = _Rng(0.5)
    assert loop.next_delay(cfg, 0, rng) == 10.0
    assert loop.next_delay(cfg, 1, rng) == 20.0
    assert loop.next_delay(cfg, 2, rng) == 40.0
    assert loop.next_delay(cfg, 3, rng) == 80.0


def test_the_backoff_is_capped_by_max_backoff_at_its_exact_bound() -> None:
    rng = _Rng(0.5)
    assert loop.next_delay(_cfg(max_backoff=40.0), 2, rng) == 40.0
    assert loop.next_delay(_cfg(max_backoff=40.0), 3, rng) == 40.0
    assert loop.next_delay(_cfg(max_backoff=39.0), 2, rng) == 39.0
    assert loop.next_delay(_cfg(max_backoff=41.0), 2, rng) == 40.0
    # the cap never applies to the plain interval (no failures)
    assert loop.next_delay(_cfg(max_backoff=1.0), 0, rng) == 10.0


def test_the_exponent_stops_at_sixteen() -> None:
    cfg = _cfg(interval=1.0)
    rng = _Rng(0.5)
    assert loop.next_delay(cfg, 16, rng) == 2.0**16
    assert loop.next_delay(cfg, 17, rng) == 2.0**16
    assert loop.next_delay(cfg, 15, rng) == 2.0**15


def test_jitter_spreads_the_delay_by_its_fraction_both_ways() -> None:
    cfg = _cfg(jitter=0.25)
    low, high = _Rng(0.0), _Rng(1.0)
    assert loop.next_delay(cfg, 0, low) == pytest.approx(7.5)
    assert loop.next_delay(cfg, 0, high) == pytest.approx(12.5)
    assert low.asked == [(-0.25, 0.25)]
    assert loop.next_delay(cfg, 1, high) == pytest.approx(25.0)


def test_a_jitter_past_one_never_gives_a_negative_delay() -> None:
    assert loop.next_delay(_cfg(jitter=2.0), 0, _Rng(0.0)) == 0.0
    assert loop.next_delay(_cfg(jitter=1.0), 0, _Rng(0.0)) == 0.0


@dataclass
class _Outcome:
    result: Result


@dataclass
class _Runners:
    closed: int = 0

    def close(self) -> None:
        self.closed += 1


@dataclass
class _Reconciler:
    script: Sequence[Result]
    runners: _Runners | None = field(default_factory=_Runners)
    calls: int = 0

    def run_once(self) -> _Outcome:
        result = self.script[self.calls]
        self.calls += 1
        if result is Result.PREEMPTED and self.calls == len(self.script):
            raise KeyboardInterrupt
        return _Outcome(result)


def _patch(monkeypatch: pytest.MonkeyPatch, script: Sequence[Result], runners: bool = True) -> list[_Reconciler]:
    made: list[_Reconciler] = []

    def factory(cfg: AgentConfig) -> _Reconciler:
        r = _Reconciler(script, _Runners() if runners else None)
        made.append(r)
        return r

    monkeypatch.setattr(loop, "Reconciler", factory)
    monkeypatch.setattr(loop.random, "Random", lambda: _Rng(0.5))
    return made


def test_failures_back_off_and_any_other_result_resets_the_count(monkeypatch: pytest.MonkeyPatch) -> None:
    script = [
        Result.FETCH_FAILED, Result.FAILED, Result.FETCH_FAILED, Result.APPLIED,
        Result.FAILED, Result.UNCHANGED, Result.REFUSED, Result.ROLLED_BACK, Result.REJECTED,
        Result.REPAIRED, Result.PREEMPTED, Result.UNCHANGED,
    ]  # fmt: skip
    made = _patch(monkeypatch, script)
    slept: list[float] = []
    reported: list[Result] = []
    out = loop.run(_cfg(), sleep=slept.append, cycles=len(script), report=lambda o: reported.append(o.result))
    assert out.result is Result.UNCHANGED
    assert reported == script
    assert slept == [20.0, 40.0, 80.0, 10.0, 20.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0]
    assert made[0].calls == len(script)
    assert made[0].runners is not None and made[0].runners.closed == 1


def test_once_runs_exactly_one_cycle_and_never_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    made = _patch(monkeypatch, [Result.FAILED, Result.APPLIED])
    slept: list[float] = []
    out = loop.run(_cfg(), once=True, sleep=slept.append)
    assert out.result is Result.FAILED
    assert slept == []
    assert made[0].calls == 1
    assert made[0].runners is not None and made[0].runners.closed == 1


def test_cycles_stops_at_its_exact_count(monkeypatch: pytest.MonkeyPatch) -> None:
    made = _patch(monkeypatch, [Result.APPLIED, Result.UNCHANGED, Result.REPAIRED, Result.FAILED])
    slept: list[float] = []
    out = loop.run(_cfg(), sleep=slept.append, cycles=3)
    assert out.result is Result.REPAIRED
    assert made[0].calls == 3
    assert slept == [10.0, 10.0]


def test_the_runners_stop_when_the_loop_is_interrupted(monkeypatch: pytest.MonkeyPatch) -> None:
    made = _patch(monkeypatch, [Result.APPLIED, Result.PREEMPTED])
    slept: list[float] = []
    with pytest.raises(KeyboardInterrupt):
        loop.run(_cfg(), sleep=slept.append)
    assert slept == [10.0]
    assert made[0].runners is not None and made[0].runners.closed == 1


def test_no_runner_control_is_nothing_to_close(monkeypatch: pytest.MonkeyPatch) -> None:
    made = _patch(monkeypatch, [Result.APPLIED], runners=False)
    assert loop.run(_cfg(), once=True, sleep=lambda s: None).result is Result.APPLIED
    assert made[0].runners is None


def test_the_loop_options_are_keyword_only(monkeypatch: pytest.MonkeyPatch) -> None:
    made = _patch(monkeypatch, [Result.APPLIED])
    with pytest.raises(TypeError):
        loop.run(_cfg(), True)  # type: ignore[misc]
    assert made == []
