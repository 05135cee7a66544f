"""`takt rollout promote` and `takt rollout status`: judge each rollout from the reports, commit each decision.

Every decision is one commit on the deploy branch (promote, advance, abort), so the branch's log
is the audit trail. The branch moves by one fast-forward push from the head that was read: when
two jobs decide at once, Git accepts the first and refuses the second, which then changes nothing
and says so (compare-and-swap, with the remote's ref as the only lock). Desired states of the
devices a decision moves get a generation above any publish ever signed for them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import git
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from compiler.bundle import DESIRED, SIGNATURE, DesiredState, sign
from compiler.bundle.report import StatusReport
from compiler.fleet.reports import FleetReports
from compiler.fleet.seen import MAX_SEEN_BYTES, SEEN_PATH, Seen, SeenReport, merge, parse_seen, seen_to_bytes
from compiler.publish import (
    _AUTHOR,
    PublishError,
    _Blob,
    _blob,
    _clone,
    _git_error,
    _plumb,
    _rollout_records,
    _signed_history,
    _tree,
    _write_tree,
)
from compiler.rollout.gate import Action, Decision, decide
from compiler.rollout.plan import assign, with_generations
from compiler.rollout.state import RolloutState, sealed, signature_path, state_path
from compiler.spec.addresses import redact_url

Reports = Callable[[Seen], FleetReports]
"""The fleet reader bound to its URL and declared keys, given the branch's memory of seen reports."""


@dataclass
class PromoteResult:
    decisions: list[Decision] = field(default_factory=list)
    commits: list[str] = field(default_factory=list)  # one per decision that changed something, oldest first
    lost_race: bool = False  # another job moved the branch first: nothing was changed


def status(url: str, branch: str, trusted: Ed25519PublicKey, reports: Reports, now: datetime) -> list[Decision]:
    """What promote would decide now, per rollout (read only)."""
    with tempfile.TemporaryDirectory(prefix="takt-rollout-") as tmp:
        repo, head = _clone(url, branch, Path(tmp) / "deploy.git", False)
        records = _records(repo, head, trusted)
        fleet = reports(_seen(repo, _tree(repo, head)) if head else {})
        return [decide(r, _histories(fleet), now) for _, r in sorted(records.items())]


def promote(
    url: str,
    branch: str,
    key: Ed25519PrivateKey,
    reports: Reports,
    now: datetime,
    *,
    validity: timedelta = timedelta(days=7),
) -> PromoteResult:
    now = now.replace(microsecond=0)
    result = PromoteResult()
    with tempfile.TemporaryDirectory(prefix="takt-rollout-") as tmp:
        repo, head = _clone(url, branch, Path(tmp) / "deploy.git", False)
        if head is None:  # _clone without create returns a head or raises; kept as a value all the same
            raise PublishError(f"branch {branch!r} does not exist")
        tree = _tree(repo, head)
        records = {d: r[0] for d, r in _rollout_records(repo, tree, key.public_key()).items()}
        highest = _signed_history(repo, head, branch, tree, key)
        fleet = reports(_seen(repo, tree))
        got = _histories(fleet)
        parent = head
        entries: dict[str, tuple[str, bytes | Path | _Blob]] = {p: (b.mode, b) for p, b in tree.items()}
        for _, record in sorted(records.items()):
            decision = decide(record, got, now)
            result.decisions.append(decision)
            if decision.action in (Action.NONE, Action.WAIT):
                continue
            changed = _apply(record, decision, highest, entries, key, now, validity)
            entries[SEEN_PATH] = ("100644", seen_to_bytes(fleet.seen))  # what this decision believed
            scratch = Path(tmp) / f"scratch-{len(result.commits)}"
            scratch.mkdir()
            tree_id, _ = _write_tree(repo, entries, scratch)
            message = _message(decision, changed)
            parent = _plumb(repo, ["commit-tree", tree_id, "-p", parent, "-F", "-"], message.encode(), _AUTHOR)
            parent = parent.decode().strip()
            result.commits.append(parent)
        if not result.commits:
            return result
        try:
            repo.git.push("origin", f"{parent}:refs/heads/{branch}")
        except git.GitCommandError as exc:
            if _moved(url, branch, head):
                return PromoteResult(result.decisions, [], lost_race=True)
            raise PublishError(f"push to {redact_url(url)} {branch} was refused: {_git_error(exc)}") from exc
        return result


def _apply(
    record: RolloutState,
    decision: Decision,
    highest: dict[str, DesiredState],
    entries: dict[str, tuple[str, bytes | Path | _Blob]],
    key: Ed25519PrivateKey,
    now: datetime,
    validity: timedelta,
) -> list[str]:
    """Write the decision into `entries`: moved devices' states (re-signed, generation + 1) and the record."""
    moved = record.advanced(decision.phase, now, decision.reason)
    changed = []
    states: dict[str, DesiredState] = {}
    for dev in sorted(record.devices):
        previous = highest.get(dev)
        current = previous.bundles if previous is not None else ()
        refs = assign(current, record.deployment, moved, dev)
        if previous is not None and refs == previous.bundles:
            continue
        generation = (previous.generation + 1) if previous else 1
        source = previous.source_commit if previous else record.source_commit
        state = DesiredState(dev, generation, now + validity, refs, source)
        data = state.to_bytes()
        entries[f"devices/{dev}/{DESIRED}"] = ("100644", data)
        entries[f"devices/{dev}/{SIGNATURE}"] = ("100644", sign(data, key))
        highest[dev] = states[dev] = state
        changed.append(dev)
    moved = with_generations(moved, states)
    data, sig = sealed(moved, key)
    entries[state_path(record.deployment)] = ("100644", data)
    entries[signature_path(record.deployment)] = ("100644", sig)
    return changed


def _message(decision: Decision, changed: list[str]) -> str:
    verb = {Action.PROMOTE: "promote", Action.ADVANCE: "advance", Action.ABORT: "abort"}[decision.action]
    title = f"takt rollout {verb} {decision.deployment}: {decision.phase.value}, {len(changed)} device(s)"
    lines = [title, "", decision.reason]
    lines += ["", "Devices whose desired state changed:", *(f"  {d}" for d in changed[:200])] if changed else []
    if len(changed) > 200:
        lines.append(f"  … and {len(changed) - 200} more")
    return "\n".join(lines) + "\n"


def _records(repo: git.Repo, head: str | None, trusted: Ed25519PublicKey) -> dict[str, RolloutState]:
    return {d: r[0] for d, r in _rollout_records(repo, _tree(repo, head), trusted).items()} if head else {}


def _histories(fleet: FleetReports) -> dict[str, tuple[StatusReport, ...]]:
    out = {d: tuple(h) for d, h in fleet.history.items()}
    for device, latest in fleet.latest.items():  # a transport without history: its current report alone
        if not out.get(device) or out[device][-1].sequence < latest.sequence:
            out[device] = (*out.get(device, ()), latest)
    return out


def _seen(repo: git.Repo, tree: dict[str, _Blob]) -> dict[str, SeenReport]:
    """The branch's memory of believed sequences; unreadable memory is none (it only ever adds refusals)."""
    data = _blob(repo, tree.get(SEEN_PATH), MAX_SEEN_BYTES)
    try:
        return merge(parse_seen(data)) if data is not None else {}
    except (ValueError, KeyError, TypeError):
        return {}


def _moved(url: str, branch: str, head: str) -> bool:
    try:
        line = str(git.cmd.Git().ls_remote("--heads", url, f"refs/heads/{branch}"))
    except git.GitCommandError:
        return False
    return bool(line.strip()) and line.split()[0] != head
