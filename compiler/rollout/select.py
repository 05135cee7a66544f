"""Which devices a canary or shadow step takes: by label selector, or a deterministic percentage.

A percentage ranks devices by sha256(deployment/device), so the same devices are chosen on every
publish and on every machine, a device joining the fleet moves no other one out of the step,
and two deployments with the same percentage do not all pick the same unlucky devices.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Protocol


class Selector(Protocol):
    """A label selector (compiler.spec.types.LabelSelector)."""

    def matches(self, labels: dict[str, str]) -> bool: ...


def pick(
    deployment: str,
    devices: Mapping[str, Mapping[str, str]],
    selector: Selector | None = None,
    percentage: int | None = None,
) -> tuple[str, ...]:
    """The chosen device ids, sorted. `devices`: id → labels; `selector` has `.matches(labels)`."""
    if selector is not None:
        return tuple(sorted(d for d, labels in devices.items() if selector.matches(dict(labels))))
    if percentage is None or not devices:
        return ()
    ranked = sorted(devices, key=lambda d: hashlib.sha256(f"{deployment}/{d}".encode()).hexdigest())
    return tuple(sorted(ranked[: max(1, math.ceil(len(ranked) * percentage / 100))]))
