"""One rule, one check (cfn-lint's model): each cross-document code is produced by one small
function over the spec index, registered in its stage's `CHECKS` with the code it yields.

Adding a check is one function, one line in a `CHECKS` tuple and one case in tests/test_rules.py.
Severities come from the rule table (compiler/codes.py) through `SpecDocument.diag`; a check never
states one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from compiler.diagnostics import Diagnostic
from compiler.validate.index import SpecIndex

CheckFn = Callable[[SpecIndex], Iterable[Diagnostic]]


@dataclass(frozen=True)
class Check:
    code: str
    """The one code this check yields (tests/test_rules.py holds it to that)."""
    run: CheckFn

    @property
    def name(self) -> str:
        return self.run.__name__


def run_checks(checks: Sequence[Check], index: SpecIndex) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for check in checks:
        out.extend(check.run(index))
    return out
