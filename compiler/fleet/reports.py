"""The fleet's status reports, read back from the deploy repo and believed only when verified.

Every device pushes one ref, `refs/takt/status/<device>`: a chain of commits whose tree holds
the signed envelope (`status.json`), each commit's parent the device's previous report. The
reader lists those refs (protocol v2 ref prefix), fetches only the refs of declared devices, at
most `history` commits deep, and checks each report against the key the Device spec declares
for that device (compiler.bundle.report.open_envelope). What it does not believe is listed with
a typed reason, never dropped silently:

- a ref of no declared device (UnknownDevice), a declared device without `publicKey` (NoDeclaredKey);
- a report not signed by the device's key (BadSignature), or naming another device than its ref
  (WrongDevice), or unreadable (Malformed);
- a report whose sequence is not above the one before it in the chain, or below the highest the
  reader already believed for that device (Replayed): a ref reset to an older, genuinely signed
  report. The reader's memory of sequences is compiler.fleet.seen.

The newest believed report of each device is its current one; the believed chain, oldest first
with strictly growing sequences, is its history (what the fleet page charts).
"""

from __future__ import annotations

import tempfile
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from compiler.bundle.boundedjson import clip
from compiler.bundle.deviceid import is_device_id
from compiler.bundle.report import (
    MAX_ENVELOPE_BYTES,
    MQTT_TOPIC_PREFIX,
    REPORT_FILE,
    STATUS_REF_PREFIX,
    Rejected,
    ReportRejected,
    StatusReport,
    load_device_public_key,
    open_envelope,
)
from compiler.fleet.gitread import FleetReadError, RefStore, list_refs
from compiler.fleet.seen import Seen, SeenReport, envelope_digest, merge
from compiler.spec.device import Device

MAX_STATUS_REFS = 100_000  # refs listed under refs/takt/status/ before the read is refused
MAX_HISTORY = 32  # reports read per device (the charts' window); the agent keeps its chain near this

__all__ = [
    "MAX_HISTORY",
    "MAX_STATUS_REFS",
    "FleetReadError",
    "FleetReports",
    "Ignored",
    "declared_keys",
    "mqtt_source",
    "read_reports",
    "verify_chain",
]


@dataclass(frozen=True)
class Ignored:
    """A report the reader did not believe, and why."""

    source: str  # refs/takt/status/<name>[@<commit>] or mqtt:takt/status/<name>
    device: str  # the device the transport names (ref or topic), as given
    reason: Rejected
    message: str
    sequence: int | None = None  # when the report parsed

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "device": self.device,
            "reason": str(self.reason),
            "message": self.message,
            "sequence": self.sequence,
        }


@dataclass(frozen=True)
class FleetReports:
    latest: Mapping[str, StatusReport] = field(default_factory=dict)  # device → newest believed report
    history: Mapping[str, tuple[StatusReport, ...]] = field(default_factory=dict)  # oldest first
    ignored: tuple[Ignored, ...] = ()
    seen: Mapping[str, SeenReport] = field(default_factory=dict)  # the memory to keep after this read
    sources: Mapping[str, str] = field(default_factory=dict)  # device → where its latest report came from

    def merged(self, other: FleetReports) -> FleetReports:
        """Reports from two transports (Git and MQTT): per device the higher sequence wins."""
        latest, sources = dict(self.latest), dict(self.sources)
        for device, report in other.latest.items():
            if device not in latest or report.sequence > latest[device].sequence:
                latest[device], sources[device] = report, other.sources.get(device, "")
        history = {d: _merge_history(self.history.get(d, ()), other.history.get(d, ())) for d in latest}
        return FleetReports(latest, history, (*self.ignored, *other.ignored), merge(self.seen, other.seen), sources)


def _merge_history(a: tuple[StatusReport, ...], b: tuple[StatusReport, ...]) -> tuple[StatusReport, ...]:
    by_seq = {r.sequence: r for r in (*a, *b)}
    return tuple(by_seq[s] for s in sorted(by_seq))


def declared_keys(devices: Iterable[Device]) -> dict[str, Ed25519PublicKey | None]:
    """device id → the key its spec declares (None: declared without `publicKey`).

    Validation already refused a key that does not load; one that still fails here counts as none."""
    keys: dict[str, Ed25519PublicKey | None] = {}
    for device in devices:
        key = None
        if device.spec.public_key:
            try:
                key = load_device_public_key(device.spec.public_key)
            except ValueError:
                key = None
        keys[device.device_id] = key
    return keys


def verify_chain(
    device: str,
    source: str,
    envelopes: Sequence[tuple[str, bytes | None, str]],
    keys: Mapping[str, Ed25519PublicKey | None],
    seen: SeenReport | None,
) -> tuple[StatusReport | None, tuple[StatusReport, ...], list[Ignored], SeenReport | None]:
    """Judge one device's chain, oldest first: (id, envelope bytes or None, why not) per report.

    Returns the current report (or None), the believed history, what was ignored, and the memory
    to keep for the device.
    """
    ignored: list[Ignored] = []
    believed: list[tuple[StatusReport, str]] = []
    for ident, data, problem in envelopes:
        where = f"{source}@{ident[:12]}" if ident else source
        if data is None:
            ignored.append(Ignored(where, device, Rejected.MALFORMED, problem))
            continue
        try:
            report = open_envelope(data, keys, device)
        except ReportRejected as exc:
            ignored.append(Ignored(where, device, exc.reason, str(exc)))
            continue
        if believed and report.sequence <= believed[-1][0].sequence:
            ignored.append(
                Ignored(
                    where,
                    device,
                    Rejected.REPLAYED,
                    f"sequence {report.sequence} does not follow {believed[-1][0].sequence} earlier in the chain",
                    report.sequence,
                )
            )
            continue
        believed.append((report, envelope_digest(data)))
    if not believed:
        return None, (), ignored, seen
    newest, digest = believed[-1]
    if seen is not None and seen.covers(newest.sequence, digest):
        ignored.append(
            Ignored(
                source,
                device,
                Rejected.REPLAYED,
                f"sequence {newest.sequence} is not above {seen.sequence}, already seen for {device} "
                "(the ref was reset to an older report)",
                newest.sequence,
            )
        )
        return None, tuple(r for r, _ in believed), ignored, seen
    return newest, tuple(r for r, _ in believed), ignored, SeenReport(newest.sequence, digest)


def read_reports(
    url: str,
    keys: Mapping[str, Ed25519PublicKey | None],
    *,
    seen: Seen | None = None,
    history: int = MAX_HISTORY,
    only: Collection[str] | None = None,
    workdir: Path | None = None,
    timeout: float = 300.0,
) -> FleetReports:
    """Every status ref of the deploy repo at `url`, verified against `keys` (see the module doc).

    `only`: read just these devices' refs (what a rollout decision needs: its step devices); the
    refs of other declared devices are then neither fetched nor judged, and their memory is kept.

    Raises FleetReadError when the repository cannot be read at all; a bad report is never an error.
    """
    seen = dict(seen or {})
    listed = list_refs(url, STATUS_REF_PREFIX, MAX_STATUS_REFS, timeout)
    ignored: list[Ignored] = []
    wanted: dict[str, str] = {}  # refname → device
    tips = dict(listed)
    for ref, _oid in listed:
        name = ref.removeprefix(STATUS_REF_PREFIX)
        if not is_device_id(name):
            ignored.append(Ignored(ref, clip(name, 64), Rejected.MALFORMED, "the ref does not name a device id"))
        elif name not in keys:
            ignored.append(Ignored(ref, name, Rejected.UNKNOWN_DEVICE, f"no Device spec declares {name}"))
        elif only is None or name in only:
            wanted[ref] = name
    with tempfile.TemporaryDirectory(prefix="takt-fleet-", dir=workdir) as tmp:
        store = RefStore(Path(tmp) / "status.git", timeout)
        store.fetch(url, sorted({tips[ref] for ref in wanted}), history)
        chains, problems = _chains(store, {ref: (device, tips[ref]) for ref, device in wanted.items()}, history)
    latest: dict[str, StatusReport] = {}
    hist: dict[str, tuple[StatusReport, ...]] = {}
    sources: dict[str, str] = {}
    for ref, device in sorted(wanted.items()):
        if ref in problems:
            ignored.append(Ignored(ref, device, Rejected.MALFORMED, problems[ref]))
            continue
        report, believed, bad, kept = verify_chain(device, ref, chains.get(ref, []), keys, seen.get(device))
        ignored += bad
        if believed:
            hist[device] = believed
        if report is not None:
            latest[device], sources[device] = report, ref
        if kept is not None:
            seen[device] = kept
    return FleetReports(latest, hist, tuple(ignored), seen, sources)


def _chains(
    store: RefStore, wanted: Mapping[str, tuple[str, str]], depth: int
) -> tuple[dict[str, list[tuple[str, bytes | None, str]]], dict[str, str]]:
    """Each wanted ref's chain of envelopes, oldest first, read in three batched git calls.
    `wanted`: refname → (device, the tip the listing gave)."""
    kinds = store.sizes(sorted({tip for _, tip in wanted.values()}))
    problems: dict[str, str] = {}
    commit_tips = {}
    for ref, (_, tip) in wanted.items():
        kind = kinds.get(tip)
        if kind is None:
            problems[ref] = "the ref's commit did not arrive with the fetch"
        elif kind[1] != "commit":
            problems[ref] = f"the ref points at a {kind[1]}, not a commit"
        else:
            commit_tips[ref] = tip
    commits = store.commits(commit_tips.values())
    walks: dict[str, list[str]] = {}
    for ref, tip in commit_tips.items():
        walk: list[str] = []
        oid: str | None = tip
        while oid is not None and oid in commits and len(walk) < depth:
            walk.append(oid)
            oid = commits[oid].parent
        walks[ref] = walk[::-1]
    names = sorted({f"{c}:{REPORT_FILE}" for walk in walks.values() for c in walk})
    sizes = store.sizes(names)
    readable = sorted({v[0] for v in sizes.values() if v and v[1] == "blob" and v[2] <= MAX_ENVELOPE_BYTES})
    contents = store.read(readable)
    chains: dict[str, list[tuple[str, bytes | None, str]]] = {}
    for ref, walk in walks.items():
        chain: list[tuple[str, bytes | None, str]] = []
        for commit in walk:
            info = sizes.get(f"{commit}:{REPORT_FILE}")
            if info is None:
                chain.append((commit, None, f"the commit holds no {REPORT_FILE}"))
            elif info[1] != "blob":
                chain.append((commit, None, f"{REPORT_FILE} is a {info[1]}, not a file"))
            elif info[2] > MAX_ENVELOPE_BYTES:
                chain.append((commit, None, f"{REPORT_FILE} is {info[2]:,} bytes, over {MAX_ENVELOPE_BYTES:,}"))
            else:
                chain.append((commit, contents[info[0]], ""))
        chains[ref] = chain
    return chains, problems


def mqtt_source(device: str) -> str:
    return f"mqtt:{MQTT_TOPIC_PREFIX}{device}"
