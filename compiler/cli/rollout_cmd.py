"""`takt rollout status|promote`: thin — the decisions are compiler.rollout's, the reports compiler.fleet's.

Exit codes: 0 read or decided (including nothing to decide, and a promote that another job beat
to the branch: it changed nothing); 1 spec errors or the deploy repo / reports cannot be read or
written; 2 usage (keys, options); 3 promote aborted a rollout in this run (a canary or shadow
failed its gate: CI goes red once).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:  # the commands import these when they run, not for --help
    from compiler.fleet.reports import FleetReports, Ignored
    from compiler.fleet.seen import Seen
    from compiler.rollout.gate import Decision
    from compiler.rollout.promote import Reports

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ABORTED = 0, 1, 2, 3


def _setup(path: Path, repo_url: str | None, branch: str | None, key_ref: str | None) -> tuple[str, str, str, Reports]:
    """(url, branch, key ref, reports callable) from the options and takt.yaml; exits on errors."""
    from compiler.cli.main import _consoles, _validated
    from compiler.fleet.reports import declared_keys, read_reports

    _, err = _consoles()
    result = _validated(path, "rollout")
    project = result.project.spec if result.project else None
    repo_base = Path.cwd() if repo_url else result.root
    url = repo_url or (project.deploy.repo if project and project.deploy else None)
    branch = branch or (project.deploy.branch if project and project.deploy else "deploy")
    key_ref = key_ref or (project.signing.key_ref if project and project.signing else None)
    if not url or not key_ref:
        err.print("[red]error:[/red] give --deploy-repo and --key (or spec.deploy / spec.signing in takt.yaml)")
        sys.exit(EXIT_USAGE)
    if "://" not in url and not url.startswith("git@") and not Path(url).is_absolute():
        url = str((repo_base / url).resolve())
    keys = declared_keys(d.model for d in result.index.valid("Device"))
    return url, branch, key_ref, lambda seen: read_reports(url, keys, seen=seen)


_common = [
    click.argument("path", type=click.Path(exists=True, path_type=Path), default=Path(".")),
    click.option("--deploy-repo", "repo_url", help="URL or path of the deploy repository (default: takt.yaml)."),
    click.option("--branch", help="Deploy branch (default: takt.yaml, else 'deploy')."),
    click.option("--key", "key_ref", help="Publishing key: a file, file:PATH or env:VAR (default: takt.yaml keyRef)."),
    click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True),
]


def _options(fn: Callable[..., None]) -> Callable[..., None]:
    for deco in reversed(_common):
        fn = deco(fn)
    return fn


@click.group("rollout")
def rollout_group() -> None:
    """Canary and shadow rollouts: their phase from the devices' reports, and the decision that follows."""


@rollout_group.command("status")
@_options
def status_cmd(path: Path, repo_url: str | None, branch: str | None, key_ref: str | None, fmt: str) -> None:
    """Each rollout's phase and its step devices' health and agreement (read only)."""
    from compiler.fleet.gitread import FleetReadError
    from compiler.publish import PublishError
    from compiler.rollout.promote import status
    from compiler.signing import KeyError_, load_private_key

    url, branch, key_ref, reports = _setup(path, repo_url, branch, key_ref)
    try:
        key = load_private_key(key_ref)
        ignored: list[Ignored] = []

        def reading(seen: Seen) -> FleetReports:
            fleet = reports(seen)
            ignored.extend(fleet.ignored)
            return fleet

        decisions = status(url, branch, key.public_key(), reading, datetime.now(UTC))
    except KeyError_ as exc:
        _fail(str(exc), EXIT_USAGE)
    except (PublishError, FleetReadError) as exc:
        _fail(str(exc), EXIT_FAILED)
    _render(fmt, decisions, ignored)


@rollout_group.command("promote")
@_options
@click.option("--validity-days", type=click.IntRange(1, 365), default=7, show_default=True)
def promote_cmd(
    path: Path, repo_url: str | None, branch: str | None, key_ref: str | None, fmt: str, validity_days: int
) -> None:
    """Promote, advance or abort each rollout whose step has decided; one commit per decision."""
    from compiler.fleet.gitread import FleetReadError
    from compiler.publish import PublishError
    from compiler.rollout.gate import Action
    from compiler.rollout.promote import promote
    from compiler.signing import KeyError_, load_private_key

    url, branch, key_ref, reports = _setup(path, repo_url, branch, key_ref)
    ignored: list[Ignored] = []

    def reading(seen: Seen) -> FleetReports:
        fleet = reports(seen)
        ignored.extend(fleet.ignored)
        return fleet

    try:
        key = load_private_key(key_ref)
        res = promote(url, branch, key, reading, datetime.now(UTC), validity=timedelta(days=validity_days))
    except KeyError_ as exc:
        _fail(str(exc), EXIT_USAGE)
    except (PublishError, FleetReadError) as exc:
        _fail(str(exc), EXIT_FAILED)
    _render(fmt, res.decisions, ignored, {"commits": res.commits, "lostRace": res.lost_race})
    if res.lost_race:
        click.echo("another promote moved the branch first: this run changed nothing", err=True)
    elif res.commits:
        click.echo(f"committed {len(res.commits)} decision(s) to {branch}: {', '.join(c[:12] for c in res.commits)}",
                   err=True)  # fmt: skip
    else:
        click.echo("nothing to decide: no commit", err=True)
    if not res.lost_race and any(d.action == Action.ABORT for d in res.decisions):
        sys.exit(EXIT_ABORTED)


def _render(
    fmt: str, decisions: Sequence[Decision], ignored: Sequence[Ignored], extra: dict[str, Any] | None = None
) -> None:
    from compiler.rollout.render import RENDERERS, as_json

    click.echo(as_json(decisions, ignored, extra) if fmt == "json" else RENDERERS[fmt](decisions, ignored), nl=False)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"takt rollout: error: {message}", err=True)
    sys.exit(code)
