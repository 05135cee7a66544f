"""`takt rollout status|promote` as requests: locations resolved here, decisions compiler.rollout's.

Exit codes: 0 read or decided (including nothing to decide, and a promote that another job beat to
the branch); 1 spec errors or the deploy repo / reports cannot be read or written; 2 usage (keys,
options); 3 promote aborted a rollout in this run (a canary or shadow failed its gate: CI goes red once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compiler.commands.errors import ExitCode, Failed
from compiler.commands.locations import DeployLocation, DeployOptions, resolve_deploy
from compiler.commands.validated import validated

if TYPE_CHECKING:
    from compiler.fleet.reports import FleetReports, Ignored
    from compiler.fleet.seen import Seen
    from compiler.rollout.gate import Decision


@dataclass(frozen=True)
class RolloutRequest:
    path: Path
    cwd: Path
    now: datetime
    deploy: DeployOptions = field(default_factory=DeployOptions)
    validity_days: int = 7


@dataclass
class RolloutOutcome:
    branch: str
    decisions: list[Decision]
    ignored: list[Ignored] = field(default_factory=list)
    commits: list[str] = field(default_factory=list)
    lost_race: bool = False
    promoted: bool = False
    """True for a promote run (its JSON says what it committed)."""

    @property
    def exit_code(self) -> ExitCode:
        from compiler.rollout.gate import Action

        aborted = self.promoted and not self.lost_race and any(d.action == Action.ABORT for d in self.decisions)
        return ExitCode.ABORTED if aborted else ExitCode.OK

    def extra(self) -> dict[str, Any] | None:
        return {"commits": self.commits, "lostRace": self.lost_race} if self.promoted else None


def _setup(request: RolloutRequest) -> tuple[DeployLocation, Callable[[Seen], FleetReports]]:
    from compiler.fleet.reports import declared_keys, read_reports

    result = validated(request.cwd / request.path, "rollout")
    where = resolve_deploy(request.deploy, result.project, result.root, request.cwd, need_key=True)
    keys = declared_keys(d.model for d in result.index.valid("Device"))  # type: ignore[misc]
    return where, lambda seen: read_reports(where.url, keys, seen=seen)


def _recording(reports: Callable[[Seen], FleetReports], ignored: list[Ignored]) -> Callable[[Seen], FleetReports]:
    def reading(seen: Seen) -> FleetReports:
        fleet = reports(seen)
        ignored.extend(fleet.ignored)
        return fleet

    return reading


def run_rollout_status(request: RolloutRequest) -> RolloutOutcome:
    """Each rollout's phase and what promote would decide now (read only)."""
    from compiler.fleet.gitread import FleetReadError
    from compiler.publish import PublishError
    from compiler.rollout.promote import status
    from compiler.signing import load_private_key

    where, reports = _setup(request)
    assert where.key_ref is not None
    key = load_private_key(where.key_ref)  # KeyError_: exit 2
    ignored: list[Ignored] = []
    try:
        decisions = status(where.url, where.branch, key.public_key(), _recording(reports, ignored), request.now)
    except (PublishError, FleetReadError) as exc:
        raise Failed(str(exc)) from exc
    return RolloutOutcome(where.branch, decisions, ignored)


def run_promote(request: RolloutRequest) -> RolloutOutcome:
    """Promote, advance or abort each rollout whose step has decided; one commit per decision."""
    from compiler.fleet.gitread import FleetReadError
    from compiler.publish import PublishError
    from compiler.rollout.promote import promote
    from compiler.signing import load_private_key

    where, reports = _setup(request)
    assert where.key_ref is not None
    key = load_private_key(where.key_ref)
    ignored: list[Ignored] = []
    try:
        res = promote(where.url, where.branch, key, _recording(reports, ignored), request.now,
                      validity=timedelta(days=request.validity_days))  # fmt: skip
    except (PublishError, FleetReadError) as exc:
        raise Failed(str(exc)) from exc
    return RolloutOutcome(where.branch, res.decisions, ignored, res.commits, res.lost_race, promoted=True)
