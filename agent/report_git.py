"""The Git transport of status reports: this device's own ref, `refs/takt/status/<device>`, only.

Each report is a commit whose tree holds the signed envelope as `status.json` and whose parent
is the previous report, kept in a private bare repository in the state directory. The commit is
made locally first and then pushed, so a push that fails (network, server) loses nothing: the
next push carries every report since. The chain is bounded: once it reaches twice `keep`, the
newest `keep` reports are re-chained from a new root (one forced push), so a device that reports
every few minutes for years still pushes and stores a few dozen commits.
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from compiler.bundle.gitcred import git_remote
from compiler.bundle.gitmessage import summary
from compiler.bundle.report import REPORT_FILE, STATUS_REF_PREFIX

STATUS_REPO = "status.git"  # in the agent's state directory
KEEP_REPORTS = 32  # what the fleet reader reads back (compiler.fleet.reports.MAX_HISTORY)


class ReportPushError(Exception):
    """The report could not be pushed now; it stays in the local chain and goes with the next push."""


def _git(repo: Path, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None,
         timeout: float = 60.0) -> str:  # fmt: skip
    cmd = ["git", "-c", "gc.auto=0", "-c", "protocol.version=2", f"--git-dir={repo}", *args]
    full_env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", **(env or {})}
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, env=full_env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ReportPushError(f"git {args[0]} failed: {exc}") from None
    if proc.returncode != 0:  # the cause, never a URL's password: the message goes into status.json
        raise ReportPushError(f"git {args[0]}: {summary(proc.stderr.decode(errors='replace')) or 'git failed'}")
    return proc.stdout.decode().strip()


def _identity(device: str, when: datetime) -> dict[str, str]:
    stamp = f"{int(when.timestamp())} +0000"
    who = {"NAME": f"takt-agent {device}", "EMAIL": f"{device}@takt.invalid", "DATE": stamp}
    return {f"GIT_{role}_{k}": v for role in ("AUTHOR", "COMMITTER") for k, v in who.items()}


def commit_report(state: Path, device: str, envelope: bytes, sequence: int, when: datetime,
                  keep: int = KEEP_REPORTS) -> str:  # fmt: skip
    """Add the report to the local chain of `refs/takt/status/<device>`; returns the new commit."""
    repo = state / STATUS_REPO
    if not (repo / "HEAD").is_file():
        repo.mkdir(parents=True, exist_ok=True)
        _git(repo, "init", "-q", "--bare")
    ref = f"{STATUS_REF_PREFIX}{device}"
    blob = _git(repo, "hash-object", "-w", "--stdin", stdin=envelope)
    tree = _git(repo, "mktree", stdin=f"100644 blob {blob}\t{REPORT_FILE}\n".encode())
    try:
        parent: str | None = _git(repo, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}")
    except ReportPushError:
        parent = None
    if parent is not None and int(_git(repo, "rev-list", "--count", f"--max-count={2 * keep}", parent)) >= 2 * keep:
        parent = _rechain(repo, device, parent, keep - 1)
    args = ["commit-tree", tree, *(["-p", parent] if parent else []), "-m", f"status {device} sequence {sequence}"]
    commit = _git(repo, *args, env=_identity(device, when))
    _git(repo, "update-ref", ref, commit)
    return commit


def _rechain(repo: Path, device: str, tip: str, count: int) -> str | None:
    """The newest `count` reports of the chain as a new chain from a root: same trees, messages, times."""
    out = _git(repo, "log", "--first-parent", f"--max-count={count}", "--reverse", "--format=%T %ct %s", tip)
    parent: str | None = None
    for line in out.splitlines():
        tree, stamp, message = line.split(" ", 2)
        env = _identity(device, datetime.fromtimestamp(int(stamp), UTC))
        parent = _git(repo, "commit-tree", tree, *(["-p", parent] if parent else []), "-m", message, env=env)
    return parent


def push_report(state: Path, url: str, device: str, timeout: float) -> None:
    """Push the local chain to the deploy repo's `refs/takt/status/<device>`, and nothing else.

    Forced, so that a re-chained history replaces the old one; the reader's sequence memory, not
    the ref's history, is what refuses a report older than one already seen."""
    ref = f"{STATUS_REF_PREFIX}{device}"
    remote = git_remote(url)  # its password by the environment, never in `ps`
    _git(state / STATUS_REPO, "push", "-q", "--no-verify", remote.url, f"+{ref}:{ref}", env=dict(remote.env),
         timeout=timeout)  # fmt: skip
