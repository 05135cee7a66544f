"""`takt agent run` and `takt agent status` (also `python -m agent`)."""

from __future__ import annotations

import json
import shlex
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console

from agent.config import AgentConfig
from compiler.bundle.deviceid import device_id_problem

if TYPE_CHECKING:
    from agent.cycle import Outcome  # imported by the loop when it runs, not for --help


def _device_id(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """Refused before anything is read or written: the id names a folder and a Git ref."""
    problem = device_id_problem(value)
    if problem is not None:
        raise click.BadParameter(f"{value!r}: {problem}")
    return value


@click.group("agent")
def agent_group() -> None:
    """The device agent: pull, verify, activate, health-check, roll back."""


@agent_group.command("run")
@click.option("--repo", required=True, help="Deploy repository: file, git://, https:// or ssh URL, or a path.")
@click.option("--branch", required=True)
@click.option(
    "--device", "device", required=True, callback=_device_id, help="This device's id (devices/<id>/ on the branch)."
)
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option(
    "--trust",
    "trust",
    multiple=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Public key(s) whose signatures are accepted. Repeatable.",
)
@click.option("--once", is_flag=True, help="One reconcile; exit 0 when the device runs its desired release.")
@click.option("--interval", type=click.FloatRange(1, 86400), default=60, show_default=True, help="Seconds.")
@click.option("--activate-hook", help="Command run after each switch (TAKT_RELEASE_DIR is set).")
@click.option("--post-check", help="Command that must succeed after activation, besides the built-in check.")
@click.option("--keep-releases", type=click.IntRange(1, 100), default=3, show_default=True)
@click.option("--health-timeout", type=click.FloatRange(1, 3600), default=60, show_default=True)
@click.option(
    "--metrics-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write Prometheus metrics here (node_exporter textfile collector).",
)
@click.option("--metrics-port", type=click.IntRange(1, 65535), help="Serve Prometheus metrics at :PORT/metrics.")
@click.option("--metrics-address", default="127.0.0.1", show_default=True, help="Address --metrics-port binds.")
@click.option(
    "--report-interval",
    type=click.FloatRange(10, 86400),
    default=300,
    show_default=True,
    help="Seconds: a signed status report at least this often, besides one after every transition.",
)
@click.option(
    "--report-git/--no-report-git",
    default=True,
    show_default=True,
    help="Push status reports to refs/takt/status/<device> of the deploy repo.",
)
@click.option(
    "--report-mqtt", metavar="URL", help="Also publish reports retained on takt/status/<device> (mqtt://host:port)."
)
@click.option(
    "--report-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The device key that signs reports (default: device-key.pem in --state-dir; takt agent keygen).",
)
@click.option("--supervise", is_flag=True, help="Run each deployment's takt-runner as a supervised child process.")
@click.option(
    "--unit-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Install each bundle's systemd unit here and restart it after a switch (e.g. /etc/systemd/system).",
)
@click.option("--systemctl", "systemctl", default="systemctl", show_default=True, help="The systemctl command.")
@click.option("--runner-command", default="takt-runner", show_default=True, help="The runner program (--supervise).")
def run_cmd(
    repo: str,
    branch: str,
    device: str,
    state_dir: Path,
    trust: tuple[Path, ...],
    once: bool,
    interval: float,
    activate_hook: str | None,
    post_check: str | None,
    keep_releases: int,
    health_timeout: float,
    metrics_file: Path | None,
    metrics_port: int | None,
    metrics_address: str,
    report_interval: float,
    report_git: bool,
    report_mqtt: str | None,
    report_key: Path | None,
    supervise: bool,
    unit_dir: Path | None,
    systemctl: str,
    runner_command: str,
) -> None:
    """Reconcile this device with its desired state on the deploy branch, forever (or --once)."""
    from agent.loop import run

    if "://" not in repo and not repo.startswith("git@"):
        repo = str(Path(repo).resolve())
    cfg = AgentConfig(
        repo=repo,
        branch=branch,
        device=device,
        state_dir=state_dir.resolve(),
        trusted_keys=tuple(p.resolve() for p in trust),
        interval=interval,
        activate_hook=activate_hook,
        post_check=post_check,
        keep_releases=keep_releases,
        health_timeout=health_timeout,
        metrics_file=metrics_file.resolve() if metrics_file else None,
        report_interval=report_interval,
        report_git=report_git,
        report_mqtt=report_mqtt,
        report_key=report_key.resolve() if report_key else None,
        supervise=supervise,
        unit_dir=unit_dir.resolve() if unit_dir and not supervise else None,
        systemctl=tuple(shlex.split(systemctl)),
        runner_command=tuple(shlex.split(runner_command)),
    )
    if supervise:  # SIGTERM unwinds the loop, which stops the children (SIGTERM, then SIGKILL)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    console = Console(stderr=True, highlight=False, soft_wrap=True)

    def report(outcome: Outcome) -> None:
        style = "green" if outcome.ready else "red"
        mark = "✔" if outcome.ready else "✖"
        console.print(f"[{style}]{mark}[/{style}] {outcome.message} ({outcome.result}; reason {outcome.reason})")

    if metrics_port:
        from agent.metrics_http import serve_metrics
        from agent.status import METRICS

        try:
            serve_metrics(cfg.state_dir / METRICS, metrics_address, metrics_port)
        except OSError as exc:
            console.print(f"[red]error:[/red] cannot serve metrics on {metrics_address}:{metrics_port}: {exc}")
            sys.exit(2)
    outcome = run(cfg, once=once, report=report)
    sys.exit(0 if outcome.ready else 1)


@agent_group.command("status")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--format", "-f", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def status_cmd(state_dir: Path, fmt: str) -> None:
    """Show the agent's status. Exit 0 when Ready, 1 when not, 2 when there is no status yet."""
    from agent.status import JOURNAL, STATUS, read_state_json, verify_journal

    try:
        doc = read_state_json(state_dir / STATUS)
    except (OSError, ValueError):
        Console(stderr=True).print(f"no status in {state_dir} (has the agent run?)")
        sys.exit(2)
    ok, entries = verify_journal(state_dir / JOURNAL)
    doc["journal"] = {"entries": entries, "intact": ok}
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in doc["conditions"])
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
    else:
        out = Console(highlight=False, soft_wrap=True)
        out.print(
            f"device {doc.get('device')}: generation {doc.get('appliedGeneration') or '—'} applied, "
            f"{doc.get('desiredGeneration') or '—'} desired"
        )
        for c in doc["conditions"]:
            state = {"True": "yes", "False": "no"}.get(c["status"], c["status"])
            detail = f"{c['reason']}: {c['message']}" if c.get("message") else c["reason"]
            out.print(f"  {c['type']:<12} {state:<4} {detail}")
        if doc.get("lastKnownGood"):
            out.print(
                f"  release      {doc['lastKnownGood']} (last known good; a release is named for the signed "
                "list of bundles it holds, each bundle for its own content digest)"
            )
        applied = doc.get("appliedBundles") or []
        for b in applied:
            out.print(f"  bundle       {b.get('name')}  {str(b.get('digest'))[:16]}…  (running)")
        for b in doc.get("desiredBundles") or []:
            if b not in applied:  # after a rollback: what was asked for, and is not what runs
                out.print(f"  desired      {b.get('name')}  {str(b.get('digest'))[:16]}…  (not applied)")
        for r in doc.get("runners") or []:
            state = "ready" if r.get("ready") else f"not ready: {r.get('reason')}"
            rate = r.get("errorRate")
            figures = f"{r.get('inferences', 0)} inferences" + (f", error rate {rate:.4f}" if rate is not None else "")
            out.print(f"  runner       {r.get('deployment')}: {state} ({figures})", markup=False)
        out.print(f"  journal      {entries} entries, {'intact' if ok else '[red]BROKEN CHAIN[/red]'}")
    sys.exit(0 if ready else 1)


@agent_group.command("keygen")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--force", is_flag=True, help="Replace an existing device key.")
def keygen_cmd(state_dir: Path, force: bool) -> None:
    """Make this device's report key (ed25519, 0600, in --state-dir) and print the public line for its Device spec."""
    from agent.devicekey import DEVICE_KEY, DeviceKeyError, keygen

    try:
        line = keygen(state_dir, force=force)
    except (DeviceKeyError, OSError) as exc:
        Console(stderr=True, highlight=False).print(f"[red]error:[/red] {exc}")
        sys.exit(2)
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"wrote {state_dir / DEVICE_KEY}; put this line into the Device spec as spec.publicKey:"
    )
    click.echo(line)
