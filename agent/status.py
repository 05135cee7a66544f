"""What the agent remembers and reports: its memory, status.json with kstatus-style conditions,
Prometheus metrics, and an append-only, hash-chained journal of every transition."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from agent.reasons import Event, Reason
from compiler.bundle import canonical_json
from compiler.bundle.atomic import write_atomic
from compiler.bundle.boundedjson import load_bounded

MEMORY, STATUS, JOURNAL, METRICS = "agent.json", "status.json", "journal.log", "metrics.prom"
GENESIS = "0" * 64
# What status and journal record is bounded: their texts quote repository content, which nobody
# signed (a 20 MiB key id must not become a 20 MiB status file or journal entry).
MAX_TEXT, MAX_ITEMS, MAX_ENTRY = 1024, 64, 16 << 10
MAX_STATUS_ITEMS = 5000  # as many bundles as a desired state can name
# The agent's own state files are read back bounded too: a full disk, a bad restore or another
# process may have left anything there, and a reader must not be the one that exhausts memory.
MAX_STATE_BYTES, MAX_STATE_DEPTH = 32 << 20, 64


def read_state_json(path: Path) -> Any:
    """One of the agent's state documents (status, memory, release.json); OSError or ValueError."""
    return load_bounded(path, max_bytes=MAX_STATE_BYTES, max_depth=MAX_STATE_DEPTH)


def bounded(value: Any, items: int = MAX_ITEMS, depth: int = 6) -> Any:
    """`value` with every string cut to MAX_TEXT characters and every list or object to `items`."""
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else f"{value[:MAX_TEXT]}… ({len(value):,} characters)"
    if depth == 0 and isinstance(value, dict | list | tuple):
        return "…"
    if isinstance(value, dict):
        return {bounded(str(k)): bounded(v, items, depth - 1) for k, v in list(value.items())[:items]}
    if isinstance(value, list | tuple):
        return [bounded(v, items, depth - 1) for v in value[:items]]
    return value


class MemoryUnreadable(ValueError):
    """agent.json is there but is not a memory the agent saved: the agent accepts nothing until it
    is restored (or removed, which forgets the accepted generation on purpose)."""


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
        """The memory saved last; a fresh one only where there is none. Anything else at agent.json
        (damaged, truncated, oversized, a link, no accepted generation) is MemoryUnreadable: taking
        it for a fresh memory would forget the accepted generation and re-open replays."""
        path = state / MEMORY
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            return cls()
        except OSError as exc:
            raise MemoryUnreadable(f"{path}: {exc}") from exc
        if not stat.S_ISREG(mode):
            raise MemoryUnreadable(f"{path} is not a regular file")
        try:
            data = read_state_json(path)
        except (OSError, ValueError) as exc:
            raise MemoryUnreadable(f"{path}: {exc}") from exc
        generation = data.get("accepted_generation") if isinstance(data, dict) else None
        if type(generation) is not int or generation < 0:
            raise MemoryUnreadable(f"{path} holds no accepted generation")
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def save(self, state: Path) -> None:
        write_atomic(state / MEMORY, canonical_json(asdict(self)))


def _ts(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _line_start(fh: BinaryIO, end: int, block: int = 65536) -> int:
    """The offset just after the last newline before `end` (0 if none), read backwards in blocks."""
    pos = end
    while pos > 0:
        start = max(0, pos - block)
        fh.seek(start)
        i = fh.read(pos - start).rfind(b"\n")
        if i >= 0:
            return start + i + 1
        pos = start
    return 0


def _tail(path: Path) -> str:
    """The hash of the last complete entry, whatever its length; a torn last line (a kill
    mid-append) is cut off first."""
    if not path.is_file():
        return GENESIS
    with path.open("rb+") as fh:
        size = _line_start(fh, fh.seek(0, os.SEEK_END))  # just after the last newline: a torn line is cut
        fh.truncate(size)
        fh.seek(_line_start(fh, size - 1))
        last = fh.read()  # b"" in an empty journal
    try:
        digest = json.loads(last)["hash"]
    except (ValueError, KeyError, TypeError):
        return GENESIS
    return digest if isinstance(digest, str) else GENESIS


def journal(state: Path, now: datetime, event: Event, **details: Any) -> None:
    """Append one entry whose hash covers the previous one: a rewritten past breaks the chain.

    The chain head is read from the file itself, so a kill between this append and saving the
    memory cannot fork the chain. Details are bounded: an entry stays small whatever it quotes.
    """
    path = state / JOURNAL
    details = bounded(details)
    if len(shown := canonical_json(details)) > MAX_ENTRY:
        details = {"truncated": bounded(shown.decode())}
    entry = {"time": _ts(now), "event": str(event), "details": details, "prev": _tail(path)}
    digest = hashlib.sha256(canonical_json(entry)).hexdigest()
    with path.open("ab") as fh:
        fh.write(canonical_json({**entry, "hash": digest}))


def verify_journal(path: Path) -> tuple[bool, int]:
    prev, n = GENESIS, 0
    if not path.is_file():
        return True, 0
    for line in path.read_bytes().splitlines():  # a blank line is no entry: the next append restarts the chain
        try:
            entry = json.loads(line)
        except ValueError:
            return False, n
        claimed = entry.pop("hash", None)
        if entry.get("prev") != prev or hashlib.sha256(canonical_json(entry)).hexdigest() != claimed:
            return False, n
        prev, n = claimed, n + 1
    return True, n


def condition(
    kind: str, ok: bool, reason: Reason, message: str, now: datetime, old: list[dict[str, Any]]
) -> dict[str, Any]:
    status = "True" if ok else "False"
    prior = next((c for c in old if c.get("type") == kind), None)
    since = prior["lastTransitionTime"] if prior and prior.get("status") == status else _ts(now)
    return {"type": kind, "status": status, "reason": str(reason), "message": message, "lastTransitionTime": since}


def write_status(
    state: Path,
    now: datetime,
    *,
    ready: bool,
    reconciling: bool,
    stalled: bool,
    degraded: bool,
    reason: Reason,
    message: str,
    fields: dict[str, Any],
    degraded_by: tuple[Reason, str] | None = None,  # Degraded's own reason when the cycle itself succeeded
) -> dict[str, Any]:
    try:
        old = read_state_json(state / STATUS).get("conditions", [])
    except (OSError, ValueError, AttributeError):
        old = []
    message = bounded(message)
    doc = {
        "apiVersion": "takt/agent/v1",
        "observedAt": _ts(now),
        **bounded(fields, items=MAX_STATUS_ITEMS),  # lists of signed bundles: only strings are cut
        "conditions": [
            condition("Ready", ready, reason if not ready else Reason.APPLIED, message, now, old),
            condition("Reconciling", reconciling, reason, message if reconciling else "", now, old),
            condition(
                "Stalled", stalled, reason if stalled else Reason.PROGRESSING, message if stalled else "", now, old
            ),
            condition(
                "Degraded",
                degraded,
                (degraded_by[0] if degraded_by else reason) if degraded else Reason.HEALTHY,
                bounded(degraded_by[1]) if degraded_by and degraded else message if degraded else "",
                now,
                old,
            ),
        ],
    }
    write_atomic(state / STATUS, json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n")
    return doc


def write_metrics(state: Path, memory: Memory, status: dict[str, Any], extra: Path | None = None) -> None:
    cond = {c["type"]: c["status"] == "True" for c in status["conditions"]}
    reason = status.get("reason")
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
        "# HELP takt_agent_reason 1 for the reason of the last cycle.",
        "# TYPE takt_agent_reason gauge",
        *([f'takt_agent_reason{{reason="{reason}"}} 1'] if reason in set(Reason) else []),
        *_runner_lines(status),
    ]
    data = ("\n".join(lines) + "\n").encode()
    write_atomic(state / METRICS, data)
    if extra is not None:
        extra.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(extra, data)


def _label(value: Any) -> str:
    """A Prometheus label value: backslash, quote and newline escaped, bounded."""
    text = str(value)[:200]
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _runner_lines(status: dict[str, Any]) -> list[str]:
    """Each runner's state (from status.json's `runners`) and the last runner-gate finding."""
    runners = [r for r in status.get("runners") or [] if isinstance(r, dict)]
    if not runners and not status.get("runnerGate"):
        return []
    lines = []
    for name, key, kind in (
        ("takt_agent_runner_ready", "ready", "gauge"),
        ("takt_agent_runner_live", "live", "gauge"),
        ("takt_agent_runner_frames", "frames", "gauge"),
        ("takt_agent_runner_inferences", "inferences", "gauge"),
        ("takt_agent_runner_inference_errors", "errors", "gauge"),
        ("takt_agent_runner_error_rate", "errorRate", "gauge"),
    ):
        lines.append(f"# TYPE {name} {kind}")
        for r in runners:
            value = r.get(key)
            if isinstance(value, bool):
                value = int(value)
            if isinstance(value, int | float):
                lines.append(f'{name}{{deployment="{_label(r.get("deployment"))}"}} {value}')
    gate = status.get("runnerGate")
    if isinstance(gate, dict):
        labels = ",".join(f'{k}="{_label(gate.get(k) or "")}"' for k in ("deployment", "gate", "reason", "source"))
        lines += [
            "# HELP takt_agent_runner_gate 1 for the last runner-gate finding (its figure is in status.json).",
            "# TYPE takt_agent_runner_gate gauge",
            f"takt_agent_runner_gate{{{labels}}} 1",
        ]
    return lines
