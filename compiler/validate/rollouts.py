"""Which rollout sections fit which strategy, each mistake at the key that makes it one.

Kept apart from the structure stage: pydantic can only say "spec.rollout is invalid", while a
reviewer needs the line of the `shadow:` that is ignored or the `then:` that has nothing to go to.
One check per code.
"""

from __future__ import annotations

from collections.abc import Iterator

from compiler.diagnostics import Diagnostic
from compiler.spec.deployment import Deployment, Rollout
from compiler.validate.checks import Check, run_checks
from compiler.validate.document import SpecDocument
from compiler.validate.index import SpecIndex
from compiler.validate.semantics import select_devices

_ROLLOUT = ("spec", "rollout")


def check_rollouts(index: SpecIndex) -> list[Diagnostic]:
    return run_checks(CHECKS, index)


def _rollouts(index: SpecIndex) -> Iterator[tuple[SpecDocument, Deployment, Rollout]]:
    for doc in index.valid("Deployment"):
        yield doc, doc.model, doc.model.spec.rollout


def strategy_has_its_sections(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT4041: a strategy (or `then`) has the section it reads."""
    for doc, _, r in _rollouts(index):
        if r.strategy == "canary" and r.canary is None:
            yield doc.diag("TAKT4041", "strategy canary needs a canary section", (*_ROLLOUT, "strategy"))
        if r.strategy == "shadow" and r.shadow is None:
            yield doc.diag("TAKT4041", "strategy shadow needs a shadow section", (*_ROLLOUT, "strategy"))
        if r.strategy == "shadow" and r.then is None:
            yield doc.diag(
                "TAKT4041",
                "strategy shadow needs `then: canary` or `then: all-at-once` (what follows the shadow step)",
                (*_ROLLOUT, "strategy"),
            )
        if r.then == "canary" and r.canary is None:
            yield doc.diag("TAKT4041", "then: canary needs a canary section", (*_ROLLOUT, "then"))


def sections_fit_the_strategy(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT4040: no section the strategy would ignore."""
    for doc, _, r in _rollouts(index):
        canary_step = r.strategy == "canary" or (r.strategy == "shadow" and r.then == "canary")
        if r.canary is not None and not canary_step:
            yield doc.diag(
                "TAKT4040",
                f"strategy {r.strategy} has no canary step: this canary section would be ignored",
                (*_ROLLOUT, "canary"),
                key=True,
            )
        if r.shadow is not None and r.strategy != "shadow":
            yield doc.diag(
                "TAKT4040",
                f"strategy {r.strategy} has no shadow step: this shadow section would be ignored",
                (*_ROLLOUT, "shadow"),
                key=True,
            )
        if r.then is not None and r.strategy != "shadow":
            yield doc.diag("TAKT4040", "only strategy shadow has a `then` step", (*_ROLLOUT, "then"), key=True)


def steps_select_one_way(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT4042: a canary or shadow step selects by exactly one of selector and percentage."""
    for doc, _, r in _rollouts(index):
        for section in ("canary", "shadow"):
            part = getattr(r, section)
            if part is not None and (part.selector is None) == (part.percentage is None):
                yield doc.diag(
                    "TAKT4042",
                    f"a {section} selects devices by exactly one of selector and percentage",
                    (*_ROLLOUT, section),
                    key=True,
                )


def shadow_selects_devices(index: SpecIndex) -> Iterator[Diagnostic]:
    """TAKT4043: a shadow selector matches some of the deployment's devices."""
    for doc, dep, r in _rollouts(index):
        part = r.shadow
        if part is None or part.selector is None or part.percentage is not None:
            continue  # no selector to judge, or TAKT4042
        selected = select_devices(index, dep)
        if selected and not any(part.selector.matches(d.labels) for d in selected):
            yield doc.diag(
                "TAKT4043",
                "the shadow selector matches none of the deployment's devices",
                (*_ROLLOUT, "shadow", "selector"),
                key=True,
            )


CHECKS: tuple[Check[SpecIndex, Diagnostic], ...] = (
    Check("TAKT4041", strategy_has_its_sections),
    Check("TAKT4040", sections_fit_the_strategy),
    Check("TAKT4042", steps_select_one_way),
    Check("TAKT4043", shadow_selects_devices),
)
