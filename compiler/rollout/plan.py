"""What `takt publish` gives each device while a Deployment rolls out.

For every Deployment with a rollout strategy, the build's new bundles are compared with what each
device's highest signed state names. A change starts a rollout record; a record whose new bundles
are what the build made again keeps its phase (so publishing the same specs twice never widens a
rollout); its phase then says who gets the new bundles, who keeps the previous ones, and who runs
the new one as a shadow challenger. A Deployment no device ran before goes out at once: there is
no previous model to protect. All pure: publish and the tests feed it plain data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from compiler.bundle.desired import BundleRef, DesiredState, ShadowOf
from compiler.rollout.state import DeviceBundles, RolloutSpec, RolloutState


def deployment_of(bundle_name: str) -> str:
    """Bundles are named `<deployment>/<target>`."""
    return bundle_name.partition("/")[0]


@dataclass
class Plan:
    refs: dict[str, tuple[BundleRef, ...]]  # device → bundles to sign
    records: dict[str, RolloutState] = field(default_factory=dict)  # deployment → record to write
    started: list[str] = field(default_factory=list)  # deployments whose rollout began with this publish


def plan(
    wanted: Mapping[str, tuple[BundleRef, ...]],
    rollouts: Mapping[str, RolloutSpec],
    previous: Mapping[str, DesiredState],
    records: Mapping[str, RolloutState],
    now: datetime,
    source_commit: str | None,
) -> Plan:
    refs = {dev: tuple(r for r in bundles) for dev, bundles in wanted.items()}
    out = Plan(refs)
    for deployment, spec in sorted(rollouts.items()):
        new = {dev: r for dev, bundles in wanted.items() for r in bundles if deployment_of(r.name) == deployment}
        old = {dev: _serving(previous.get(dev), deployment) for dev in new}
        record = _continued(records.get(deployment), new, old)
        if record is None:
            if all((was := old[d]) is not None and was.digest == r.digest for d, r in new.items()):
                continue  # nothing changed (or a change was reverted): no rollout
            if all(o is None for o in old.values()):
                continue  # a new Deployment: nothing to protect, it goes out at once
            record = RolloutState(
                deployment,
                spec.first_phase(),
                spec,
                {d: DeviceBundles(old[d], r) for d, r in new.items()},
                now,
                reason="a changed Deployment: new bundles to the first step's devices",
                source_commit=source_commit,
            )
            out.started.append(deployment)
        out.records[deployment] = record
        for dev in new:
            refs[dev] = assign(refs[dev], deployment, record, dev)
    return out


def assign(bundles: tuple[BundleRef, ...], deployment: str, record: RolloutState, device: str) -> tuple[BundleRef, ...]:
    """`bundles` with this deployment's entries replaced by what the record's phase gives `device`."""
    serve, challenger = record.assignment(device)
    kept = [b for b in bundles if deployment_of(b.name) != deployment]
    if serve is not None:
        kept.append(BundleRef(serve.name, serve.digest))
    if challenger is not None and record.spec.shadow is not None:
        shadow = ShadowOf(record.spec.shadow.tolerance, record.spec.shadow.window or None)
        kept.append(BundleRef(challenger.name, challenger.digest, shadow))
    return tuple(sorted(kept, key=lambda b: (b.name, b.shadow is not None)))


def with_generations(record: RolloutState, states: Mapping[str, DesiredState]) -> RolloutState:
    """The record with the generation each step device was first given in this phase (kept once set)."""
    gens = dict(record.generations)
    for dev in record.step_devices():
        if dev not in gens and dev in states:
            gens[dev] = states[dev].generation
    return record if gens == dict(record.generations) else replace(record, generations=gens)


def _serving(state: DesiredState | None, deployment: str) -> BundleRef | None:
    if state is None:
        return None
    return next((BundleRef(b.name, b.digest) for b in state.serving if deployment_of(b.name) == deployment), None)


def _continued(
    record: RolloutState | None, new: Mapping[str, BundleRef], old: Mapping[str, BundleRef | None]
) -> RolloutState | None:
    """The record again when the build made the same new bundles (devices joining or leaving the
    Deployment are added with what they ran, or dropped); None when a new rollout must begin."""
    if record is None:
        return None
    common = set(record.devices) & set(new)
    if not common or any(record.devices[d].new != new[d] for d in common):
        return None
    devices = {d: record.devices[d] if d in record.devices else DeviceBundles(old[d], new[d]) for d in new}
    if devices == dict(record.devices):
        return record
    return replace(record, devices=devices)
