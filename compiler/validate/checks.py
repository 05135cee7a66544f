"""One rule, one check (cfn-lint's model): each code is produced by one small function, registered
in its stage's `CHECKS` with the code it yields.

A stage's checks share one subject: the spec index for the cross-document stages (references,
protocols, Modbus outputs, semantics), one document for the structure stage's envelope, the model
artifacts for the model stage, one model on one runtime for the compatibility checks (which yield
`Problem`s, placed by their callers, instead of located diagnostics).
Adding a check is one function, one line in a `CHECKS` tuple and one case in tests/test_rules.py;
tests/test_rules_audit.py fails when a code has no check, more than one, or no located test.
Severities come from the rule table (compiler/codes.py) through `SpecDocument.diag`; a check never
states one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Check(Generic[T, R]):
    code: str
    """The one code this check yields (tests/test_rules.py holds it to that)."""
    run: Callable[[T], Iterable[R]]

    @property
    def name(self) -> str:
        return self.run.__name__


def run_checks(checks: Sequence[Check[T, R]], subject: T) -> list[R]:
    out: list[R] = []
    for check in checks:
        out.extend(check.run(subject))
    return out
