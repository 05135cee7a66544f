"""The agent's loop: reconcile, then wait the interval with jitter; transient faults (and defects
of a step, which a cycle reports as `failed`) back off exponentially (with jitter) while the last
known good keeps running. Nothing a repository holds ends the loop."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from agent.config import AgentConfig
from agent.reasons import Result
from agent.reconcile import Outcome, Reconciler


def next_delay(cfg: AgentConfig, failures: int, rng: random.Random) -> float:
    base = cfg.interval if failures == 0 else min(cfg.max_backoff, cfg.interval * 2 ** min(failures, 16))
    return max(0.0, base * (1 + rng.uniform(-cfg.jitter, cfg.jitter)))


def run(
    cfg: AgentConfig,
    *,
    once: bool = False,
    report: Callable[[Outcome], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    cycles: int | None = None,
) -> Outcome:
    reconciler = Reconciler(cfg)  # one runner control for the whole loop: it owns the runners
    rng = random.Random()
    failures, n = 0, 0
    try:
        while True:
            outcome = reconciler.run_once()
            n += 1
            if report:
                report(outcome)
            if once or (cycles is not None and n >= cycles):
                return outcome
            failures = failures + 1 if outcome.result in (Result.FETCH_FAILED, Result.FAILED) else 0
            sleep(next_delay(cfg, failures, rng))
    finally:
        if reconciler.runners is not None:
            reconciler.runners.close()  # supervised children stop with the agent (SIGTERM, then SIGKILL)
