"""`takt rules`: every diagnostic code with its severity and meaning, as text or JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable

from compiler.codes import Rule


def rules_json(rules: Iterable[Rule]) -> str:
    return json.dumps(
        [
            {"code": r.code, "severity": r.severity.label, "title": r.title, "help": r.help}
            | ({"splitFrom": r.split_from} if r.split_from else {})
            for r in rules
        ],
        indent=2,
    )


def rules_text(rules: Iterable[Rule]) -> list[str]:
    """One line per code; a split code names the one it was split from."""
    return [
        f"{r.code}  {r.severity.label:<7}  {r.title}" + (f"  (split from {r.split_from})" if r.split_from else "")
        for r in rules
    ]
