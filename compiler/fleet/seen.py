"""The reader's memory of reports: the highest sequence it believed per device (`fleet/seen.json`).

A status ref is the device's own to push, but anyone with push access to the deploy repo can
reset it to an older, genuinely signed report. Only a reader that remembers what it already
believed can tell: a report below the remembered sequence is a replay. The memory lives in
two places, merged by taking the higher sequence: `fleet/seen.json` on the deploy branch (written
with every rollout decision, so CI jobs on fresh clones share it and its history is audited) and
a per-user cache that `takt fleet status` keeps between its own runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from compiler.bundle.atomic import write_atomic
from compiler.bundle.boundedjson import loads_bounded
from compiler.bundle.manifest import canonical_json

SEEN_PATH = "fleet/seen.json"  # on the deploy branch
SEEN_VERSION = "takt/fleet-seen/v1"
MAX_SEEN_BYTES = 16 << 20  # 100,000 devices at ~120 bytes each


@dataclass(frozen=True)
class SeenReport:
    sequence: int
    envelope_sha256: str  # which report had that sequence: a different one with the same number is a replay

    def covers(self, sequence: int, envelope_sha256: str) -> bool:
        """True when a report is not newer than this one (so it is the same one or a replay)."""
        return sequence < self.sequence or (sequence == self.sequence and envelope_sha256 != self.envelope_sha256)


Seen = Mapping[str, SeenReport]


def envelope_digest(envelope: bytes) -> str:
    return hashlib.sha256(envelope).hexdigest()


def merge(*memories: Seen) -> dict[str, SeenReport]:
    """The highest sequence per device across memories (on a tie the first memory's report wins)."""
    out: dict[str, SeenReport] = {}
    for memory in memories:
        for device, seen in memory.items():
            if device not in out or seen.sequence > out[device].sequence:
                out[device] = seen
    return out


def parse_seen(data: bytes) -> dict[str, SeenReport]:
    """Parse a seen file; ValueError naming the problem (a damaged memory must not pass silently)."""
    doc = loads_bounded(data, max_bytes=MAX_SEEN_BYTES, max_depth=4, what=SEEN_PATH)
    if not isinstance(doc, dict) or doc.get("version") != SEEN_VERSION or not isinstance(doc.get("devices"), dict):
        raise ValueError(f"not a {SEEN_VERSION} document")
    out = {}
    for device, entry in doc["devices"].items():
        seq, digest = (entry.get("sequence"), entry.get("envelopeSha256")) if isinstance(entry, dict) else (None, None)
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0 or not isinstance(digest, str):
            raise ValueError(f"devices.{device[:64]}: needs a sequence and an envelopeSha256")
        out[device] = SeenReport(seq, digest)
    return out


def seen_to_bytes(seen: Seen) -> bytes:
    devices = {d: {"sequence": s.sequence, "envelopeSha256": s.envelope_sha256} for d, s in sorted(seen.items())}
    return canonical_json({"version": SEEN_VERSION, "devices": devices})


def load_seen_file(path: Path) -> dict[str, SeenReport]:
    """A local memory file; missing or damaged reads as empty (the branch's copy still holds)."""
    try:
        return parse_seen(path.read_bytes())
    except (OSError, ValueError):
        return {}


def save_seen_file(path: Path, seen: Seen) -> None:
    write_atomic(path, seen_to_bytes(seen))
