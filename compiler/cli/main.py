"""`takt`: exit codes are a contract — 0 clean, 1 spec errors, 2 usage or internal error."""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar

import click
from rich.console import Console

from compiler import __version__
from compiler.cli.fleet_cmd import fleet_group
from compiler.cli.model_cmd import matrix, model_group
from compiler.cli.progress import DelayedProgress
from compiler.cli.rollout_cmd import rollout_group
from compiler.codes import all_rules
from compiler.commands.errors import ExitCode
from compiler.report.formats import FORMATS, Report, render
from compiler.report.text import render_text
from compiler.report.words import plural

if TYPE_CHECKING:  # validation is imported where a command runs it, not for --help
    from compiler.diagnostics import Diagnostic
    from compiler.validate.pipeline import ValidationResult

EXIT_USAGE = ExitCode.USAGE  # what the entry point exits with on click usage errors and crashes


def write_atomic(path: Path, text: str) -> None:
    """Write an output file; imported on use (it loads the bundle and signing modules)."""
    from compiler.commands.files import write_atomic as write

    write(path, text)


def _consoles() -> tuple[Console, Console]:
    no_color = bool(os.environ.get("NO_COLOR"))
    out = Console(highlight=False, no_color=no_color, soft_wrap=True)
    err = Console(stderr=True, highlight=False, no_color=no_color, soft_wrap=True)
    return out, err


def _print_diagnostics(console: Console, diags: list[Diagnostic], result: ValidationResult, command: str) -> None:
    rep = Report(command, diags, result.files, len(result.documents), 0, result.sources)
    console.print(render_text(diags, result.sources, rep.summary()), end="")


def _validated(path: Path, command: str) -> ValidationResult:
    """Validate first: spec errors stop `command` with exit 1, each printed at its location."""
    from compiler.commands.validated import validated

    _, err = _consoles()
    with _failing(err):
        return validated(path, command)


@contextlib.contextmanager
def _failing(err: Console, prefix: str = "") -> Iterator[None]:
    """Render a library CommandError and exit with the code it carries (never by its message text)."""
    from compiler.commands.errors import CommandError, SpecErrors

    try:
        yield
    except SpecErrors as exc:
        _print_diagnostics(err, exc.errors, exc.result, "validate")
        err.print(str(exc))
        sys.exit(exc.exit_code)
    except CommandError as exc:
        # only publish raises BuildBlocked: its module (GitPython with it) is imported when it has been already
        publish = sys.modules.get("compiler.commands.publish")
        if publish is not None and isinstance(exc, publish.BuildBlocked):
            for dep, why in exc.built.blocked:
                err.print(f"[red]blocked[/red] {dep}: {why}")
            _print_diagnostics(err, exc.built.diagnostics, exc.validation, "build")
            err.print(str(exc))
        else:
            err.print(f"{prefix}[red]error:[/red] {exc}")
        sys.exit(exc.exit_code)


@contextlib.contextmanager
def _spinner(console: Console, label: str, enabled: bool) -> Iterator[Callable[[str], None] | None]:
    """A status line on a terminal; yields the callback that names the current step (or None)."""
    status = console.status(label) if enabled and console.is_terminal else None
    if status is None:
        yield None
        return
    status.start()
    try:
        yield lambda name: status.update(f"{label} {name}")
    finally:
        status.stop()


class _LazyGroup(click.Group):
    """Import `takt agent`'s module only when that command runs or help lists it (a build skips ~0.2 s of imports)."""

    lazy: ClassVar[Mapping[str, tuple[str, str]]] = MappingProxyType({"agent": ("agent.cli", "agent_group")})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            import importlib

            module, attr = self.lazy[cmd_name]
            command = getattr(importlib.import_module(module), attr)
            if not isinstance(command, click.Command):
                raise TypeError(f"{module}.{attr} is not a click command")
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="takt")
def cli() -> None:
    """Takt: validate, test, build and publish ML deployments for the factory floor."""


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format", "-f", "fmt", type=click.Choice(FORMATS), default="text", show_default=True, help="Output format."
)
@click.option(
    "--ignore",
    "-i",
    multiple=True,
    metavar="CODE[,CODE]",
    help="Silence diagnostic codes (globs like TAKT20* allowed). Repeatable.",
)
@click.option(
    "--fail-level",
    type=click.Choice(["error", "warning", "info"]),
    default="error",
    show_default=True,
    help="Lowest severity that makes the exit code 1.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report to this file (atomically) instead of stdout.",
)
@click.option("--progress/--no-progress", default=True, help="Show a progress bar on long runs (terminal only).")
def validate(
    paths: tuple[Path, ...], fmt: str, ignore: tuple[str, ...], fail_level: str, output: Path | None, progress: bool
) -> None:
    """Validate the spec repo containing PATH (default: the current directory).

    Several PATHs, or files, restrict the report to them; references still resolve
    across the whole project.
    """
    from compiler.commands.check import ValidateRequest, run_validate

    out, err = _consoles()
    request = ValidateRequest(paths, Path.cwd(), ignore, fail_level)
    with DelayedProgress(err, "validating", enabled=progress) as bar:
        outcome = run_validate(request, bar)
    result = outcome.result
    report = Report(
        "validate", result.diagnostics, result.files, len(result.documents), result.silenced, result.sources
    )
    if output is not None:
        write_atomic(output, render(fmt, report))
        err.print(report.summary().rstrip())
    elif fmt == "text":
        out.print(render_text(report.diagnostics, report.sources, report.summary()), end="")
    else:
        click.echo(render(fmt, report), nl=False)
    sys.exit(outcome.exit_code)


@cli.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("schemas"),
    show_default=True,
    help="Directory for the JSON Schema files.",
)
@click.option("--check", is_flag=True, help="Exit 1 when the files in --out differ from the models (CI drift check).")
@click.option(
    "--markdown",
    "markdown",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write (or with --check compare) the spec reference in Markdown, e.g. docs/spec-reference.md.",
)
def schema(out_dir: Path, check: bool, markdown: Path | None) -> None:
    """Write the JSON Schema of every kind (for editors: `# yaml-language-server: $schema=…`)."""
    from compiler.commands.schema import SchemaRequest, run_schema

    out, err = _consoles()
    outcome = run_schema(SchemaRequest(Path.cwd(), out_dir, markdown, check))
    if outcome.check:
        for path in outcome.stale:
            err.print(f"[red]stale[/red] {path}")
        sys.exit(outcome.exit_code)
    reference = f", the reference to {markdown}" if markdown else ""
    out.print(f"wrote {len(outcome.files)} files: schemas to {out_dir}{reference}")


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Write into a non-empty directory.")
def init(directory: Path, force: bool) -> None:
    """Scaffold a valid spec repo in DIRECTORY: project file, specs, a tiny ONNX model and data."""
    from compiler.commands.init import InitRequest, run_init

    out, err = _consoles()
    with _failing(err):
        outcome = run_init(InitRequest(directory, Path.cwd(), force))
    for path in outcome.written:
        out.print(f"  created {path}")
    out.print(f"next: [bold]takt validate {outcome.directory}[/bold]")


@cli.command()
@click.option("--format", "-f", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def rules(fmt: str) -> None:
    """List every diagnostic code with its severity and meaning."""
    from compiler.report.rules import rules_json, rules_text

    if fmt == "json":
        click.echo(rules_json(all_rules().values()))
        return
    out, _ = _consoles()
    for line in rules_text(all_rules().values()):
        out.print(line)


@cli.command("test")
@click.argument("path", type=click.Path(exists=True, path_type=Path), default=Path("."))
@click.option("--format", "-f", "fmt", type=click.Choice(["text", "json", "junit"]), default="text", show_default=True)
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), help="Also write an HTML report here.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the json/junit result to this file (atomically) instead of stdout.",
)
@click.option("--suite", "suites", multiple=True, help="Run only these TestSuites (repeatable).")
@click.option("--progress/--no-progress", default=True, help="Show progress on a terminal.")
@click.option(
    "--memory",
    default="1GiB",
    show_default=True,
    help="Memory budget for test data (e.g. 512MiB, 4GiB): datasets stream; statistics past it are sketched.",
)
def test_cmd(
    path: Path,
    fmt: str,
    report: Path | None,
    output: Path | None,
    suites: tuple[str, ...],
    progress: bool,
    memory: str,
) -> None:
    """Run the TestSuites with onnxruntime. Exit 1 when a gating test fails or specs have errors."""
    from compiler.commands.suites import TestRequest, run_tests
    from compiler.testing.report import render_html, render_json, render_junit, summary, text_lines

    out, err = _consoles()
    request = TestRequest(path, Path.cwd(), suites, memory, provenance=report is not None)
    with _failing(err), _spinner(err, "running", progress) as step:
        outcome = run_tests(request, step)
    results = outcome.suites
    if report is not None and outcome.provenance is not None:
        write_atomic(report, render_html(results, outcome.provenance))
    text = render_json(results) if fmt == "json" else render_junit(results) if fmt == "junit" else None
    if text is not None and output is not None:
        write_atomic(output, text)
    elif text is not None:
        click.echo(text, nl=False)
    s = summary(results)
    line = (
        f"{plural(s['tests'], 'test')} in {plural(s['suites'], 'suite')}: {s['passed']} passed, {s['failed']} failed, "
        f"{s['errors']} errors; {s['blocking']} blocking"
    )
    if fmt == "text":
        out.print(text_lines(results), end="")
        out.print(("✖ " if s["blocking"] else "✔ ") + line)
    else:
        err.print(line)
    sys.exit(outcome.exit_code)


@cli.command("build")
@click.argument("path", type=click.Path(exists=True, path_type=Path), default=Path("."))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out"),
    show_default=True,
    help="Output directory: bundles/<digest>/ and index.json.",
)
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=None, show_default="cores")
@click.option("--skip-gates", is_flag=True, help="Do not run gating TestSuites (for local iteration only).")
@click.option("--progress/--no-progress", default=True)
def build_cmd(path: Path, out_dir: Path, jobs: int | None, skip_gates: bool, progress: bool) -> None:
    """Render one bundle per (deployment, target), in parallel and incrementally.

    Exit 1 when specs have errors, a bundle cannot be rendered, or a gating test fails (that
    deployment gets no bundle).
    """
    from compiler.commands.build import BuildRequest, run_build

    out, err = _consoles()
    with _failing(err), _spinner(err, "building", progress) as step:
        outcome = run_build(BuildRequest(path, Path.cwd(), out_dir, jobs, not skip_gates), step)
    res, result = outcome.result, outcome.validation
    lines = [  # one print: rich parses markup per call, which cost a fleet-sized build ~0.3 s
        f"  {'[dim]unchanged[/dim]' if b.reused else '[green]rendered[/green]'}  {b.name:<40} {b.digest[:16]}"
        f"  devices: {', '.join(b.devices) or '—'}\n"
        for b in res.bundles
    ]
    if lines:
        out.print("".join(lines), end="")
    for dep, why in res.blocked:
        out.print(f"  [red]blocked[/red]   {dep}: {why}")
    if res.diagnostics:
        _print_diagnostics(out, res.diagnostics, result, "build")
    rendered = sum(not b.reused for b in res.bundles)
    out.print(
        f"{'✖' if res.failed else '✔'} {plural(len(res.bundles), 'bundle')} ({rendered} rendered, "
        f"{len(res.bundles) - rendered} unchanged), {len(res.blocked)} blocked → {out_dir}"
    )
    sys.exit(outcome.exit_code)


@cli.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--force", is_flag=True, help="Replace existing key files.")
def keygen(out_dir: Path, force: bool) -> None:
    """Create an ed25519 signing key pair: the private key for CI, the public key for agents."""
    from compiler.signing import keygen as make_key

    out, err = _consoles()
    with _failing(err):
        private, public, kid = make_key(out_dir, force=force)
    out.print(f"private key {private} (mode 0600: keep it in CI secrets, never in a repo)")
    out.print(f"public key  {public} (give it to agents with --trust)  key id {kid}")


@cli.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path), default=Path("."))
@click.option("--deploy-repo", "repo_url", help="URL or path of the deploy repository (default: takt.yaml).")
@click.option("--branch", help="Deploy branch (default: takt.yaml, else 'deploy').")
@click.option("--key", "key_ref", help="Signing key: a file, file:PATH or env:VAR (default: takt.yaml keyRef).")
@click.option("--build-dir", type=click.Path(file_okay=False, path_type=Path), help="Where to build first.")
@click.option(
    "--validity-days",
    type=click.IntRange(1, 365),
    default=7,
    show_default=True,
    help="How long devices accept the published state without a new publish.",
)
@click.option("--create-branch", is_flag=True, help="Start the deploy branch if it does not exist.")
@click.option(
    "--cluster-repo-url",
    metavar="URL",
    help="Where Kubernetes clusters pull the deploy branch from, for their Argo CD / Flux manifests "
    "(default: --deploy-repo).",
)
@click.option(
    "--sign-commits",
    is_flag=True,
    help="Sign the deploy commit through git (gpg.format and user.signingKey of git's configuration).",
)
@click.option(
    "--ssh-signing-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Sign the deploy commit with this SSH key (implies --sign-commits; Flux verifies it).",
)
@click.option(
    "--model-registry",
    metavar="REGISTRY/REPO",
    help="Push the models that it-server bundles fetch by digest to this OCI registry first "
    "(credentials: TAKT_REGISTRY_USERNAME/TAKT_REGISTRY_PASSWORD or a docker config file).",
)
@click.option(
    "--registry-ca",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="CA bundle that signs the registry's TLS certificate (default: the system's).",
)
def publish(
    path: Path,
    repo_url: str | None,
    branch: str | None,
    key_ref: str | None,
    build_dir: Path | None,
    validity_days: int,
    create_branch: bool,
    cluster_repo_url: str | None,
    sign_commits: bool,
    ssh_signing_key: Path | None,
    model_registry: str | None,
    registry_ca: Path | None,
) -> None:
    """Build, then publish bundles and signed desired states to the deploy branch in one commit."""
    from compiler.commands.locations import DeployOptions
    from compiler.commands.publish import PublishRequest, run_publish

    out, err = _consoles()
    request = PublishRequest(
        path=path,
        cwd=Path.cwd(),
        deploy=DeployOptions(repo_url, branch, key_ref),
        build_dir=build_dir,
        validity_days=validity_days,
        create_branch=create_branch,
        cluster_repo_url=cluster_repo_url,
        sign_commits=sign_commits,
        ssh_signing_key=ssh_signing_key,
        model_registry=model_registry,
        registry_ca=registry_ca,
        environ=dict(os.environ),
    )
    with _failing(err):
        outcome = run_publish(request)
    res, branch = outcome.result, outcome.branch
    if res.commit is None:
        out.print(f"✔ {branch} is up to date: nothing to publish")
    else:
        out.print(
            f"✔ published {res.commit[:12]} to {branch}: {plural(len(res.changed), 'device')} "
            f"({', '.join(res.changed)}), +{len(res.added_bundles)} -{len(res.removed_bundles)} bundles"
        )
    for m in res.pushed_models:
        out.print(f"  {'pushed' if m.uploaded else 'present'}  model {m.reference}")
    if res.repaired:
        shown = ", ".join(repr(p) for p in res.repaired[:5]) + (" …" if len(res.repaired) > 5 else "")
        err.print(
            f"[yellow]warning:[/yellow] {branch} had been changed outside takt: repaired {len(res.repaired)} "
            f"path(s) to equal the build ({shown})"
        )


@cli.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path), default=Path("."))
@click.option("--check", is_flag=True, help="Change nothing; exit 1 when a pinned digest is stale (for CI).")
def pin(path: Path, check: bool) -> None:
    """Write the sha256 of every pinned model artifact and dataset back into its spec (fixes TAKT5002).

    Only the stale digests change; comments, quoting and every other byte of the files stay.
    """
    from compiler.commands.pin import PinRequest, run_pin

    out, err = _consoles()
    with _failing(err):
        outcome = run_pin(PinRequest(path, Path.cwd(), check))
    pins = outcome.pins
    for p in pins:
        verb = "stale" if outcome.check else "pinned"
        out.print(f"  {verb}  {p.file}:{p.line}  {p.what}  {p.old[:12]} → {p.new[:12]}")
    for problem in outcome.problems:
        err.print(f"[red]error:[/red] {problem.file}:{problem.line}: {problem.message}")
    if not pins and not outcome.problems:
        out.print("✔ every pinned digest matches its file")
    elif outcome.check and pins:
        out.print(f"✖ {plural(len(pins), 'digest')} out of date: run `takt pin`")
    elif pins:
        out.print(f"✔ {plural(len(pins), 'digest')} pinned")
    sys.exit(outcome.exit_code)


@cli.command("diff")
@click.argument("base")
@click.argument("head")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path("."))
@click.option(
    "--format",
    "-f",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="markdown suits a bot's pull-request comment.",
)
def diff_cmd(base: str, head: str, path: Path, fmt: str) -> None:
    """Render two Git revisions of the spec repo at PATH and show, per device, what changes.

    Exit 0 when the diff was computed (changes or not), 1 when a revision has spec errors,
    2 for unknown revisions or a PATH outside Git.
    """
    import json

    from compiler.diff import diff
    from compiler.report.diff import render_markdown
    from compiler.report.diff import render_text as diff_text

    _, err = _consoles()
    with _failing(err):
        result = diff(path, base, head)
    if fmt == "json":
        click.echo(json.dumps(result.as_json(), indent=2))
    elif fmt == "markdown":
        click.echo(render_markdown(result), nl=False)
    else:
        click.echo(diff_text(result), nl=False)


cli.add_command(model_group)
cli.add_command(fleet_group)
cli.add_command(matrix)
cli.add_command(rollout_group)


def main() -> None:
    """Entry point: usage errors and crashes exit 2, never with a bare traceback unless asked."""
    # pydantic hooks every plugin installed beside it (the `pydantic` entry points) into the validation of
    # every spec model: what takt accepts must not depend on what else is installed (and the entry point
    # scan costs ~60 ms of each start); an explicit setting is kept
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except click.exceptions.Abort:
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: report our bug, exit 2
        if os.environ.get("TAKT_DEBUG"):
            traceback.print_exc()
        click.echo(f"takt: internal error: {type(exc).__name__}: {exc} (set TAKT_DEBUG=1 for a traceback)", err=True)
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    main()
