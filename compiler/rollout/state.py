"""A rollout's record on the deploy branch: `rollouts/<deployment>.json`, signed like a desired state.

It says which step the rollout is in, which devices that step holds, each device's previous and
new bundle, the generation each step device was given and when the step began, so a publish of
the same specs keeps the rollout where it is and `takt rollout promote` knows what to judge. The
deploy branch is writable by people without the publishing key, so the record is only believed
when its signature verifies with that key and it names its own deployment; anything else is
refused (a forged record could otherwise widen a rollout to the whole fleet).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from compiler.bundle.boundedjson import clip, loads_bounded
from compiler.bundle.desired import BundleRef, sign, verify_signature
from compiler.bundle.manifest import canonical_json

ROLLOUTS = "rollouts"
MAX_STATE_BYTES = 16 << 20  # ~60,000 devices; a larger record was not written by publish
_MAX_DEPTH = 8
_TIME = "%Y-%m-%dT%H:%M:%SZ"


class Phase(enum.StrEnum):
    SHADOW = "shadow"  # the challenger runs beside the current bundle on the shadow devices
    CANARY = "canary"  # the canary devices run the new bundles
    PROMOTED = "promoted"  # every device runs the new bundles
    ABORTED = "aborted"  # every device is back on (or stayed on) its previous bundles


TERMINAL = (Phase.PROMOTED, Phase.ABORTED)


@dataclass(frozen=True)
class CanaryStep:
    devices: tuple[str, ...]
    window: float  # seconds
    max_error_rate: float


@dataclass(frozen=True)
class ShadowStep:
    devices: tuple[str, ...]
    window: float
    min_agreement: float
    tolerance: float


@dataclass(frozen=True)
class RolloutSpec:
    """What the Deployment declares, with its steps' devices already chosen (by the build)."""

    strategy: str  # canary | shadow
    then: str | None = None  # after shadow: canary | all-at-once
    canary: CanaryStep | None = None
    shadow: ShadowStep | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"strategy": self.strategy, "then": self.then, "canary": None, "shadow": None}
        if self.canary is not None:
            c = self.canary
            out["canary"] = {"devices": list(c.devices), "window": c.window, "maxErrorRate": c.max_error_rate}
        if self.shadow is not None:
            s = self.shadow
            out["shadow"] = {
                "devices": list(s.devices),
                "window": s.window,
                "minAgreement": s.min_agreement,
                "tolerance": s.tolerance,
            }
        return out

    @classmethod
    def from_json(cls, d: Any) -> RolloutSpec:
        strategy = d["strategy"]
        if strategy not in ("canary", "shadow") or d.get("then") not in (None, "canary", "all-at-once"):
            raise ValueError(f"unknown strategy {clip(strategy)} or then {clip(d.get('then'))}")
        c, s = d.get("canary"), d.get("shadow")
        spec = cls(
            strategy,
            d.get("then"),
            None if c is None else CanaryStep(_devices(c), _num(c, "window"), _num(c, "maxErrorRate")),
            None
            if s is None
            else ShadowStep(_devices(s), _num(s, "window"), _num(s, "minAgreement"), _num(s, "tolerance")),
        )
        if (strategy == "canary" or spec.then == "canary") and spec.canary is None:
            raise ValueError("a canary step without its canary section")
        if strategy == "shadow" and spec.shadow is None:
            raise ValueError("a shadow rollout without its shadow section")
        return spec

    def first_phase(self) -> Phase:
        return Phase.SHADOW if self.strategy == "shadow" else Phase.CANARY


@dataclass(frozen=True)
class DeviceBundles:
    old: BundleRef | None  # what the device ran when the rollout began (None: nothing of this deployment)
    new: BundleRef


@dataclass(frozen=True)
class RolloutState:
    deployment: str
    phase: Phase
    spec: RolloutSpec
    devices: Mapping[str, DeviceBundles]
    started: datetime  # when the current phase began
    generations: Mapping[str, int] = field(default_factory=dict)  # step device → generation given at `started`
    reason: str = ""  # why the last decision was taken
    source_commit: str | None = None

    def step_devices(self) -> tuple[str, ...]:
        if self.phase == Phase.SHADOW and self.spec.shadow is not None:
            return self.spec.shadow.devices
        if self.phase == Phase.CANARY and self.spec.canary is not None:
            return self.spec.canary.devices
        return ()

    def assignment(self, device: str) -> tuple[BundleRef | None, BundleRef | None]:
        """(serving bundle, shadow challenger) of this deployment that the device gets in this phase."""
        bundles = self.devices.get(device)
        if bundles is None:
            return None, None
        if self.phase == Phase.PROMOTED:
            return bundles.new, None
        if self.phase == Phase.ABORTED:
            return bundles.old, None
        in_step = device in self.step_devices()
        if self.phase == Phase.CANARY:
            return (bundles.new if in_step else bundles.old), None
        if in_step and bundles.old is not None and bundles.old.digest != bundles.new.digest:
            return bundles.old, bundles.new
        return bundles.old, None

    def advanced(self, phase: Phase, now: datetime, reason: str) -> RolloutState:
        return replace(self, phase=phase, started=now, generations={}, reason=reason)

    def to_bytes(self) -> bytes:
        return canonical_json(
            {
                "version": 1,
                "deployment": self.deployment,
                "phase": self.phase.value,
                "spec": self.spec.to_json(),
                "devices": {
                    d: {"old": None if b.old is None else _ref_json(b.old), "new": _ref_json(b.new)}
                    for d, b in sorted(self.devices.items())
                },
                "started": self.started.astimezone(UTC).strftime(_TIME),
                "generations": dict(sorted(self.generations.items())),
                "reason": self.reason[:1000],
                "sourceCommit": self.source_commit,
            }
        )

    @classmethod
    def parse(cls, data: bytes) -> RolloutState:
        """Raises ValueError (only) naming the problem."""
        doc = loads_bounded(data, max_bytes=MAX_STATE_BYTES, max_depth=_MAX_DEPTH, what="rollout state")
        if not isinstance(doc, dict) or doc.get("version") != 1:
            raise ValueError("unsupported rollout state version")
        try:
            gens = doc["generations"]
            if not isinstance(gens, dict) or not all(_is_count(v) for v in gens.values()):
                raise ValueError("generations must map devices to non-negative integers")
            source = doc.get("sourceCommit")
            return cls(
                deployment=_text(doc, "deployment"),
                phase=Phase(doc["phase"]),
                spec=RolloutSpec.from_json(doc["spec"]),
                devices={
                    str(d): DeviceBundles(None if b["old"] is None else _ref(b["old"]), _ref(b["new"]))
                    for d, b in _mapping(doc, "devices").items()
                },
                started=datetime.strptime(_text(doc, "started"), _TIME).replace(tzinfo=UTC),
                generations={str(k): v for k, v in gens.items()},
                reason=_text(doc, "reason"),
                source_commit=source if isinstance(source, str) else None,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"missing or mistyped field ({clip(exc)})") from None


def state_path(deployment: str) -> str:
    return f"{ROLLOUTS}/{deployment}.json"


def signature_path(deployment: str) -> str:
    return f"{ROLLOUTS}/{deployment}.json.sig"


def sealed(state: RolloutState, key: Ed25519PrivateKey) -> tuple[bytes, bytes]:
    data = state.to_bytes()
    return data, sign(data, key)


def verified(data: bytes, signature: bytes, deployment: str, trusted: Ed25519PublicKey) -> RolloutState:
    """The record, if the publishing key signed it and it is this deployment's; ValueError otherwise."""
    verify_signature(data, signature, [trusted])
    state = RolloutState.parse(data)
    if state.deployment != deployment:
        raise ValueError(f"the record at {state_path(deployment)} is for {clip(state.deployment)}")
    return state


def _ref_json(r: BundleRef) -> dict[str, str]:
    return {"name": r.name, "digest": r.digest}


def _ref(d: Any) -> BundleRef:
    name, digest = d["name"], d["digest"]
    if not isinstance(name, str) or not isinstance(digest, str) or len(digest) != 64:
        raise ValueError("a bundle reference needs a name and a 64-digit digest")
    return BundleRef(name, digest)


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _text(d: Any, k: str) -> str:
    v = d[k]
    if not isinstance(v, str):
        raise ValueError(f"{k} must be a string")
    return v


def _mapping(d: Any, k: str) -> dict[str, Any]:
    v = d[k]
    if not isinstance(v, dict):
        raise ValueError(f"{k} must be a mapping")
    return v


def _devices(d: Any) -> tuple[str, ...]:
    v = d["devices"]
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ValueError("devices must be a list of device ids")
    return tuple(v)


def _num(d: Any, k: str) -> float:
    v = d[k]
    if not isinstance(v, int | float) or isinstance(v, bool) or not 0 <= v < float("inf"):
        raise ValueError(f"{k} must be a finite non-negative number")
    return float(v)
