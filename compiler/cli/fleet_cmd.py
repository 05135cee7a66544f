"""`takt fleet status`: parse, read the fleet (compiler.fleet.status), render (compiler/report/fleet_*)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

FLEET_FORMATS = ("text", "json", "markdown", "html")


@click.group("fleet")
def fleet_group() -> None:
    """What the devices report: desired vs applied generation, health, drift, stale devices."""


@fleet_group.command("status")
@click.argument("path", type=click.Path(exists=True, path_type=Path), default=Path("."))
@click.option(
    "--deploy-repo", "repo_url", help="Deploy repository URL or path (default: spec.deploy.repo of takt.yaml)."
)
@click.option("--branch", help="Deploy branch (default: spec.deploy.branch, else deploy).")
@click.option("--format", "-f", "fmt", type=click.Choice(FLEET_FORMATS), default="text", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write here (atomically).")
@click.option("--stale-after", type=click.FloatRange(1, 30 * 86400), default=900, show_default=True,
              help="Seconds without a report after which a device is flagged stale.")  # fmt: skip
@click.option(
    "--mqtt", "mqtt_url", metavar="URL", help="Also read retained reports from this broker (mqtt://host:port)."
)
def status_cmd(
    path: Path, repo_url: str | None, branch: str | None, fmt: str, output: Path | None, stale_after: float,
    mqtt_url: str | None,
) -> None:  # fmt: skip
    """Per device: desired and applied generation, rollout phase, Ready/Degraded/Stalled with the reason,
    runner health and drift, and the age of its last report. Exit 0; 1 when a device is not Ready or
    is stale, or the specs have errors; 2 when the deploy repo cannot be read."""
    from compiler.cli.main import _consoles, _failing, write_atomic
    from compiler.commands.fleet import FleetStatusRequest, run_fleet_status
    from compiler.commands.locations import DeployOptions
    from compiler.report.fleet_html import render_fleet_html
    from compiler.report.fleet_json import render_fleet_json
    from compiler.report.fleet_markdown import render_fleet_markdown
    from compiler.report.fleet_text import render_fleet_text

    _, err = _consoles()
    request = FleetStatusRequest(
        path, Path.cwd(), datetime.now(UTC), DeployOptions(repo_url, branch), stale_after, mqtt_url
    )
    with _failing(err):
        outcome = run_fleet_status(request)
    if outcome.memory_error is not None:
        err.print(
            f"[yellow]warning:[/yellow] cannot keep the report memory in {outcome.memory}: {outcome.memory_error}"
        )
    status = outcome.status
    render = {"json": render_fleet_json, "markdown": render_fleet_markdown, "html": render_fleet_html}
    text = render.get(fmt, render_fleet_text)(status)
    if output:
        write_atomic(output, text)
    else:
        click.echo(text, nl=False)
    sys.exit(outcome.exit_code)
