"""Which rollout sections fit which strategy, each mistake at the key that makes it one.

Kept apart from the structure stage: pydantic can only say "spec.rollout is invalid", while a
reviewer needs the line of the `shadow:` that is ignored or the `then:` that has nothing to go to.
"""

from __future__ import annotations

from compiler.diagnostics import Diagnostic
from compiler.spec.deployment import Deployment
from compiler.validate.index import SpecIndex
from compiler.validate.semantics import select_devices

_ROLLOUT = ("spec", "rollout")


def check_rollouts(index: SpecIndex) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for doc in index.valid("Deployment"):
        dep: Deployment = doc.model
        r = dep.spec.rollout
        canary_step = r.strategy == "canary" or (r.strategy == "shadow" and r.then == "canary")
        if r.strategy == "canary" and r.canary is None:
            out.append(doc.diag("TAKT4041", "strategy canary needs a canary section", (*_ROLLOUT, "strategy")))
        if r.strategy == "shadow" and r.shadow is None:
            out.append(doc.diag("TAKT4041", "strategy shadow needs a shadow section", (*_ROLLOUT, "strategy")))
        if r.strategy == "shadow" and r.then is None:
            out.append(
                doc.diag(
                    "TAKT4041",
                    "strategy shadow needs `then: canary` or `then: all-at-once` (what follows the shadow step)",
                    (*_ROLLOUT, "strategy"),
                )
            )
        if r.then == "canary" and r.canary is None:
            out.append(doc.diag("TAKT4041", "then: canary needs a canary section", (*_ROLLOUT, "then")))
        if r.canary is not None and not canary_step:
            out.append(
                doc.diag(
                    "TAKT4040",
                    f"strategy {r.strategy} has no canary step: this canary section would be ignored",
                    (*_ROLLOUT, "canary"),
                    key=True,
                )
            )
        if r.shadow is not None and r.strategy != "shadow":
            out.append(
                doc.diag(
                    "TAKT4040",
                    f"strategy {r.strategy} has no shadow step: this shadow section would be ignored",
                    (*_ROLLOUT, "shadow"),
                    key=True,
                )
            )
        if r.then is not None and r.strategy != "shadow":
            out.append(doc.diag("TAKT4040", "only strategy shadow has a `then` step", (*_ROLLOUT, "then"), key=True))
        selected = select_devices(index, dep)
        for section in ("canary", "shadow"):
            part = getattr(r, section)
            if part is None:
                continue
            if (part.selector is None) == (part.percentage is None):
                out.append(
                    doc.diag(
                        "TAKT4042",
                        f"a {section} selects devices by exactly one of selector and percentage",
                        (*_ROLLOUT, section),
                        key=True,
                    )
                )
            elif (
                section == "shadow"
                and selected
                and part.selector is not None
                and not any(part.selector.matches(d.labels) for d in selected)
            ):
                out.append(
                    doc.diag(
                        "TAKT4043",
                        "the shadow selector matches none of the deployment's devices",
                        (*_ROLLOUT, "shadow", "selector"),
                        key=True,
                    )
                )
    return out
