"""`takt rollout promote` and `takt rollout status`: judge each rollout from the reports, commit each decision.

Every decision is one commit on the deploy branch (promote, advance, abort), so the branch's log
is the audit trail. The branch moves by one fast-forward push from the head that was read: when
two jobs decide at once, Git accepts the first and refuses the second, which then changes nothing
and says so (compare-and-swap, with the remote's ref as the only lock). Desired states of the
devices a decision moves get a generation above any publish ever signed for them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import git
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from compiler.bundle import DESIRED, SIGNATURE, Activation, BundleRef, DesiredState, sign
from compiler.bundle.report import StatusReport
from compiler.clusters import ClusterSource, public_url
from compiler.deployrepo import (
    AUTHOR,
    CLUSTERS,
    FILE_MODES,
    Blob,
    Entries,
    PublishError,
    branch_manifest,
    clone,
    cluster_entries,
    git_error,
    plumb,
    read_blob,
    rollout_records,
    signed_history,
    tree_of,
    write_tree,
)
from compiler.fleet.reports import FleetReports
from compiler.fleet.seen import MAX_SEEN_BYTES, SEEN_PATH, Seen, SeenReport, merge, parse_seen, seen_to_bytes
from compiler.rollout.gate import Action, Decision, decide
from compiler.rollout.plan import assign, with_generations
from compiler.rollout.state import TERMINAL, RolloutState, sealed, signature_path, state_path
from compiler.spec.addresses import redact_url

Reports = Callable[[Seen, Collection[str]], FleetReports]
"""The fleet reader bound to its URL and declared keys, given the branch's memory of seen reports
and the devices whose reports decide (the running rollouts' step devices: only those are read)."""


@dataclass
class PromoteResult:
    decisions: list[Decision] = field(default_factory=list)
    commits: list[str] = field(default_factory=list)  # one per decision that changed something, oldest first
    lost_race: bool = False  # another job moved the branch first: nothing was changed


def status(url: str, branch: str, trusted: Ed25519PublicKey, reports: Reports, now: datetime) -> list[Decision]:
    """What promote would decide now, per rollout (read only)."""
    with tempfile.TemporaryDirectory(prefix="takt-rollout-") as tmp:
        repo, head = clone(url, branch, Path(tmp) / "deploy.git", False)
        records = _records(repo, head, trusted)
        fleet = reports(_seen(repo, tree_of(repo, head)) if head else {}, _step_devices(records))
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
        repo, head = clone(url, branch, Path(tmp) / "deploy.git", False)
        if head is None:  # _clone without create returns a head or raises; kept as a value all the same
            raise PublishError(f"branch {branch!r} does not exist")
        tree = tree_of(repo, head)
        records = {d: r[0] for d, r in rollout_records(repo, tree, key.public_key()).items()}
        highest = signed_history(repo, head, branch, tree, key)
        fleet = reports(_seen(repo, tree), _step_devices(records))
        got = _histories(fleet)
        parent = head
        entries: Entries = {p: (b.mode, b) for p, b in tree.items()}
        clusters = _Clusters(repo, tree, ClusterSource(public_url(url), branch))
        for _, record in sorted(records.items()):
            decision = decide(record, got, now)
            result.decisions.append(decision)
            if decision.action in (Action.NONE, Action.WAIT):
                continue
            changed = _apply(record, decision, highest, entries, key, now, validity)
            for dev in changed:
                clusters.rewrite(entries, dev, highest[dev].bundles)
            entries[SEEN_PATH] = ("100644", seen_to_bytes(fleet.seen))  # what this decision believed
            scratch = Path(tmp) / f"scratch-{len(result.commits)}"
            scratch.mkdir()
            tree_id, _ = write_tree(repo, entries, scratch)
            message = _message(decision, changed)
            parent = plumb(repo, ["commit-tree", tree_id, "-p", parent, "-F", "-"], message.encode(), AUTHOR)
            parent = parent.decode().strip()
            result.commits.append(parent)
        if not result.commits:
            return result
        try:
            repo.git.push("origin", f"{parent}:refs/heads/{branch}")
        except git.GitCommandError as exc:
            if _moved(url, branch, head):
                return PromoteResult(result.decisions, [], lost_race=True)
            raise PublishError(f"push to {redact_url(url)} {branch} was refused: {git_error(exc)}") from exc
        return result


def _step_devices(records: Mapping[str, RolloutState]) -> frozenset[str]:
    """The devices whose reports judge a running rollout; nobody else's report changes a decision."""
    return frozenset(d for r in records.values() if r.phase not in TERMINAL for d in r.step_devices())


class _Clusters:
    """A moved cluster device's `clusters/<device>/` files, written as publish writes them.

    Publish's `--cluster-url` is not known here, so a device's bootstrap manifests (which depend
    only on where the cluster pulls from, never on its bundles) stay as publish last wrote them;
    only a device that has none yet gets them for the deploy URL itself."""

    def __init__(self, repo: git.Repo, tree: Mapping[str, Blob], source: ClusterSource) -> None:
        self.repo, self.tree, self.source = repo, tree, source
        self.activations: dict[str, Activation] = {}
        self.paths: dict[str, set[str]] = {}  # device → its paths under clusters/ (one pass, not one per device)
        for path in tree:
            parts = path.split("/", 2)
            if len(parts) == 3 and parts[0] == CLUSTERS:
                self.paths.setdefault(parts[1], set()).add(path)

    def rewrite(self, entries: Entries, device: str, refs: tuple[BundleRef, ...]) -> None:
        for ref in refs:
            if ref.digest not in self.activations:
                self.activations[ref.digest] = branch_manifest(self.repo, self.tree, ref.digest)[0].activation
        files = cluster_entries(device, refs, self.activations, self.source)
        for path in self.paths.get(device, set()) - set(files):
            entries.pop(path, None)  # no bundle of cluster activation left (or stray data): publish writes none
        self.paths[device] = set(files)
        for path, data in files.items():
            old = entries.get(path)
            ours = old is not None and isinstance(old[1], Blob) and old[0] in FILE_MODES.values()
            if not (ours and "/bootstrap/" in path):
                entries[path] = ("100644", data)


def _apply(
    record: RolloutState,
    decision: Decision,
    highest: dict[str, DesiredState],
    entries: Entries,
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
    return {d: r[0] for d, r in rollout_records(repo, tree_of(repo, head), trusted).items()} if head else {}


def _histories(fleet: FleetReports) -> dict[str, tuple[StatusReport, ...]]:
    out = {d: tuple(h) for d, h in fleet.history.items()}
    for device, latest in fleet.latest.items():  # a transport without history: its current report alone
        if not out.get(device) or out[device][-1].sequence < latest.sequence:
            out[device] = (*out.get(device, ()), latest)
    return out


def _seen(repo: git.Repo, tree: dict[str, Blob]) -> dict[str, SeenReport]:
    """The branch's memory of believed sequences; unreadable memory is none (it only ever adds refusals)."""
    data = read_blob(repo, tree.get(SEEN_PATH), MAX_SEEN_BYTES)
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
