"""The agent's state files as a test reads them, without agentkit's deploy world (its build and
servers are seconds of imports: the step-by-step tests that `make mutation` runs once per mutant
import only this)."""

from __future__ import annotations

import json
from pathlib import Path


def read_status(state: Path) -> dict:
    return json.loads((state / "status.json").read_text())


def journal_events(state: Path) -> list[dict]:
    path = state / "journal.log"
    return [json.loads(line) for line in path.read_bytes().splitlines()] if path.is_file() else []
