"""The ignore lists (`--ignore`, takt.yaml `spec.ignore`): every code they name is one takt or a Policy has,
so a typo cannot silence everything."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from compiler.codes import all_rules, located
from compiler.diagnostics import Diagnostic, Location
from compiler.validate.checks import Check, run_checks
from compiler.validate.discover import display_path
from compiler.validate.index import SpecIndex


@dataclass(frozen=True)
class IgnoreList:
    codes: frozenset[str]
    index: SpecIndex
    root: Path


def ignored_codes_known(ignores: IgnoreList) -> Iterator[Diagnostic]:
    """TAKT9004: a code (not a glob) in an ignore list is in the rule table or a Policy's id."""
    policy_ids = {d.model.spec.rule_id for d in ignores.index.valid("Policy")}
    known = all_rules()
    for code in sorted(ignores.codes):
        if "*" in code or "?" in code or code in known or code in policy_ids:
            continue
        yield located(
            "TAKT9004",
            f"ignore list names unknown code {code!r}",
            Location(display_path(ignores.root / "takt.yaml")),
        )


CHECKS: tuple[Check[IgnoreList, Diagnostic], ...] = (Check("TAKT9004", ignored_codes_known),)


def check_ignores(codes: set[str], index: SpecIndex, root: Path) -> list[Diagnostic]:
    return run_checks(CHECKS, IgnoreList(frozenset(codes), index, root))
