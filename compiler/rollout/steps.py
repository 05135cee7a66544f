"""A Deployment's `rollout` with its steps' devices chosen: what the build records in index.json."""

from __future__ import annotations

from collections.abc import Mapping

from compiler.rollout.select import pick
from compiler.rollout.state import CanaryStep, RolloutSpec, ShadowStep
from compiler.spec.deployment import Deployment


def rollout_spec(dep: Deployment, devices: Mapping[str, Mapping[str, str]]) -> RolloutSpec | None:
    """None for `all-at-once`. `devices`: the Deployment's device ids → labels."""
    r = dep.spec.rollout
    name = dep.metadata.name
    if r.strategy == "all-at-once":
        return None
    canary = shadow = None
    if r.canary is not None and (r.strategy == "canary" or r.then == "canary"):
        c = r.canary
        canary = CanaryStep(
            pick(name, devices, c.selector, c.percentage), c.health_gate.window, c.health_gate.max_error_rate
        )
    if r.shadow is not None and r.strategy == "shadow":
        s = r.shadow
        shadow = ShadowStep(pick(name, devices, s.selector, s.percentage), s.window, s.min_agreement, s.tolerance)
    return RolloutSpec(r.strategy, r.then if r.strategy == "shadow" else None, canary, shadow)
