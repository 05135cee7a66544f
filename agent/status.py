"""What the agent remembers and reports: its memory, status.json with kstatus-style conditions,
Prometheus metrics, and an append-only, hash-chained journal of every transition."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from compiler.bundle import canonical_json
from compiler.bundle.atomic import write_atomic

MEMORY, STATUS, JOURNAL, METRICS = "agent.json", "status.json", "journal.log", "metrics.prom"
GENESIS = "0" * 64


@dataclass
class Memory:
    """Persistent across restarts; written atomically after every decision."""

    accepted_generation: int = 0
    accepted_release: str | None = None
    last_known_good: str | None = None  # release directory name
    good: list[str] = field(default_factory=list)  # newest last
    quarantine: dict[str, int] = field(default_factory=dict)  # release id → generation it failed at
    pending_health: str | None = None  # activated but not yet confirmed healthy (a kill can land here)
    reconciles: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, state: Path) -> Memory:
        try:
            data = json.loads((state / MEMORY).read_text())
            return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        except (OSError, ValueError, TypeError):
            return cls()

    def save(self, state: Path) -> None:
        write_atomic(state / MEMORY, canonical_json(asdict(self)))


def _ts(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _tail(path: Path) -> str:
    """The hash of the last complete entry; a torn last line (a kill mid-append) is cut off first."""
    if not path.is_file():
        return GENESIS
    with path.open("rb+") as fh:
        size = fh.seek(0, 2)
        fh.seek(max(0, size - 65536))
        chunk = fh.read()
        if chunk and not chunk.endswith(b"\n"):
            keep = size - (len(chunk) - (chunk.rfind(b"\n") + 1))
            fh.truncate(keep)
            chunk = chunk[: chunk.rfind(b"\n") + 1]
        lines = chunk.splitlines()
    try:
        return json.loads(lines[-1])["hash"] if lines else GENESIS
    except (ValueError, KeyError):
        return GENESIS


def journal(state: Path, now: datetime, event: str, **details: Any) -> None:
    """Append one entry whose hash covers the previous one: a rewritten past breaks the chain.

    The chain head is read from the file itself, so a kill between this append and saving the
    memory cannot fork the chain.
    """
    path = state / JOURNAL
    entry = {"time": _ts(now), "event": event, "details": details, "prev": _tail(path)}
    digest = hashlib.sha256(canonical_json(entry)).hexdigest()
    with path.open("ab") as fh:
        fh.write(canonical_json({**entry, "hash": digest}))


def verify_journal(path: Path) -> tuple[bool, int]:
    prev, n = GENESIS, 0
    if not path.is_file():
        return True, 0
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            return False, n
        claimed = entry.pop("hash", None)
        if entry.get("prev") != prev or hashlib.sha256(canonical_json(entry)).hexdigest() != claimed:
            return False, n
        prev, n = claimed, n + 1
    return True, n


def condition(kind: str, ok: bool, reason: str, message: str, now: datetime, old: list[dict]) -> dict:
    status = "True" if ok else "False"
    prior = next((c for c in old if c.get("type") == kind), None)
    since = prior["lastTransitionTime"] if prior and prior.get("status") == status else _ts(now)
    return {"type": kind, "status": status, "reason": reason, "message": message, "lastTransitionTime": since}


def write_status(
    state: Path,
    now: datetime,
    *,
    ready: bool,
    reconciling: bool,
    stalled: bool,
    degraded: bool,
    reason: str,
    message: str,
    fields: dict[str, Any],
) -> dict[str, Any]:
    try:
        old = json.loads((state / STATUS).read_text()).get("conditions", [])
    except (OSError, ValueError, AttributeError):
        old = []
    doc = {
        "apiVersion": "takt/agent/v1",
        "observedAt": _ts(now),
        **fields,
        "conditions": [
            condition("Ready", ready, reason if not ready else "Applied", message, now, old),
            condition("Reconciling", reconciling, reason, message if reconciling else "", now, old),
            condition("Stalled", stalled, reason if stalled else "Progressing", message if stalled else "", now, old),
            condition("Degraded", degraded, reason if degraded else "Healthy", message if degraded else "", now, old),
        ],
    }
    write_atomic(state / STATUS, json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n")
    return doc


def write_metrics(state: Path, memory: Memory, status: dict[str, Any], extra: Path | None = None) -> None:
    cond = {c["type"]: c["status"] == "True" for c in status["conditions"]}
    lines = [
        "# HELP takt_agent_ready 1 when the device runs its desired, healthy release.",
        "# TYPE takt_agent_ready gauge",
        f"takt_agent_ready {int(cond.get('Ready', False))}",
        "# TYPE takt_agent_degraded gauge",
        f"takt_agent_degraded {int(cond.get('Degraded', False))}",
        "# TYPE takt_agent_desired_generation gauge",
        f"takt_agent_desired_generation {status.get('desiredGeneration') or 0}",
        "# TYPE takt_agent_applied_generation gauge",
        f"takt_agent_applied_generation {status.get('appliedGeneration') or 0}",
        "# TYPE takt_agent_reconcile_seconds gauge",
        f"takt_agent_reconcile_seconds {status.get('timings', {}).get('totalSeconds', 0)}",
        "# TYPE takt_agent_reconciles_total counter",
        *(f'takt_agent_reconciles_total{{result="{k}"}} {v}' for k, v in sorted(memory.reconciles.items())),
    ]
    data = ("\n".join(lines) + "\n").encode()
    write_atomic(state / METRICS, data)
    if extra is not None:
        extra.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(extra, data)
