"""`takt rollout status|promote`: thin — requests are compiler.commands.rollout's (which also decides
the exit codes: 0 read or decided, 1 spec errors or an unreadable deploy repo, 2 usage, 3 promote
aborted a rollout in this run), the decisions compiler.rollout's, the renderers compiler.report.rollout's.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

_common = [
    click.argument("path", type=click.Path(exists=True, path_type=Path), default=Path(".")),
    click.option("--deploy-repo", "repo_url", help="URL or path of the deploy repository (default: takt.yaml)."),
    click.option("--branch", help="Deploy branch (default: takt.yaml, else 'deploy')."),
    click.option("--key", "key_ref", help="Publishing key: a file, file:PATH or env:VAR (default: takt.yaml keyRef)."),
    click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True),
]


def _options(fn: Any) -> Any:
    for deco in reversed(_common):
        fn = deco(fn)
    return fn


@click.group("rollout")
def rollout_group() -> None:
    """Canary and shadow rollouts: their phase from the devices' reports, and the decision that follows."""


def _request(path: Path, repo_url: str | None, branch: str | None, key_ref: str | None, validity_days: int = 7) -> Any:
    from compiler.commands.locations import DeployOptions
    from compiler.commands.rollout import RolloutRequest

    return RolloutRequest(path, Path.cwd(), datetime.now(UTC), DeployOptions(repo_url, branch, key_ref), validity_days)


@rollout_group.command("status")
@_options
def status_cmd(path: Path, repo_url: str | None, branch: str | None, key_ref: str | None, fmt: str) -> None:
    """Each rollout's phase and its step devices' health and agreement (read only)."""
    from compiler.cli.main import _consoles, _failing
    from compiler.commands.rollout import run_rollout_status

    _, err = _consoles()
    with _failing(err, "takt rollout: "):
        outcome = run_rollout_status(_request(path, repo_url, branch, key_ref))
    _render(fmt, outcome)
    sys.exit(outcome.exit_code)


@rollout_group.command("promote")
@_options
@click.option("--validity-days", type=click.IntRange(1, 365), default=7, show_default=True)
def promote_cmd(
    path: Path, repo_url: str | None, branch: str | None, key_ref: str | None, fmt: str, validity_days: int
) -> None:
    """Promote, advance or abort each rollout whose step has decided; one commit per decision."""
    from compiler.cli.main import _consoles, _failing
    from compiler.commands.rollout import run_promote

    _, err = _consoles()
    with _failing(err, "takt rollout: "):
        outcome = run_promote(_request(path, repo_url, branch, key_ref, validity_days))
    _render(fmt, outcome)
    if outcome.lost_race:
        click.echo("another promote moved the branch first: this run changed nothing", err=True)
    elif outcome.commits:
        shown = ", ".join(c[:12] for c in outcome.commits)
        click.echo(f"committed {len(outcome.commits)} decision(s) to {outcome.branch}: {shown}", err=True)
    else:
        click.echo("nothing to decide: no commit", err=True)
    sys.exit(outcome.exit_code)


def _render(fmt: str, outcome: Any) -> None:
    from compiler.report.rollout import RENDERERS, as_json

    decisions, ignored = outcome.decisions, outcome.ignored
    text = as_json(decisions, ignored, outcome.extra()) if fmt == "json" else RENDERERS[fmt](decisions, ignored)
    click.echo(text, nl=False)
