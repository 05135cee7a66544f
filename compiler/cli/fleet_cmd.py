"""`takt fleet status`: parse, read the fleet (compiler.fleet.status), render (compiler/report/fleet_*)."""

from __future__ import annotations

import hashlib
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
    from compiler.build_cache import user_cache_dir
    from compiler.cli.main import EXIT_USAGE, _consoles, _validated, write_atomic
    from compiler.fleet.reports import declared_keys
    from compiler.fleet.seen import load_seen_file, save_seen_file
    from compiler.fleet.status import FleetReadError, load_fleet
    from compiler.report.fleet_html import render_fleet_html
    from compiler.report.fleet_json import render_fleet_json
    from compiler.report.fleet_markdown import render_fleet_markdown
    from compiler.report.fleet_text import render_fleet_text
    from compiler.spec.deployment import Deployment
    from compiler.spec.device import Device

    _, err = _consoles()
    result = _validated(path, "fleet status")
    deploy = result.project.spec.deploy if result.project else None
    repo_url = repo_url or (deploy.repo if deploy else None)
    branch = branch or (deploy.branch if deploy else "deploy")
    if not repo_url:
        err.print("[red]error:[/red] give --deploy-repo (or spec.deploy.repo in takt.yaml)")
        sys.exit(EXIT_USAGE)
    if "://" not in repo_url and not repo_url.startswith("git@") and not Path(repo_url).is_absolute():
        repo_url = str(
            ((Path.cwd() if deploy is None or repo_url != deploy.repo else result.root) / repo_url).resolve()
        )
    devices = [d.model for d in result.documents if isinstance(d.model, Device)]  # kind Device's class
    deployments = [d.model for d in result.documents if isinstance(d.model, Deployment)]
    memory = user_cache_dir() / "fleet" / f"{hashlib.sha256(f'{repo_url}#{branch}'.encode()).hexdigest()[:24]}.json"
    try:
        if mqtt_url:
            from compiler.fleet.mqtt import read_mqtt_reports  # aiomqtt only when a broker is asked for
        mqtt = read_mqtt_reports(mqtt_url, declared_keys(devices)) if mqtt_url else None
        status = load_fleet(devices, deployments, repo_url, branch, datetime.now(UTC),
                            seen=load_seen_file(memory), mqtt=mqtt, stale_after=stale_after)  # fmt: skip
    except FleetReadError as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(EXIT_USAGE)
    try:
        save_seen_file(memory, status.seen)
    except OSError as exc:
        err.print(f"[yellow]warning:[/yellow] cannot keep the report memory in {memory}: {exc}")
    render = {"json": render_fleet_json, "markdown": render_fleet_markdown, "html": render_fleet_html}
    text = render.get(fmt, render_fleet_text)(status)
    if output:
        write_atomic(output, text)
    else:
        click.echo(text, nl=False)
    sys.exit(0 if all(d.state == "Ready" and not d.stale for d in status.devices) else 1)
