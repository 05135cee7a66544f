"""The library side of the CLI (compiler/commands): defaults, paths and exit codes, decided without a terminal."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from compiler.build import BuildError
from compiler.commands.errors import CommandError, ExitCode, SpecErrors, UsageError
from compiler.commands.locations import DeployOptions, resolve_deploy, resolve_key_ref, resolve_location
from compiler.diff import DiffError, RevisionHasErrors
from compiler.project import Project
from compiler.signing import KeyError_, keygen
from tests.conftest import copy_example, immediate_rollout, load_free_latency


def _project(repo: str | None, key_ref: str | None, branch: str = "deploy") -> Project:
    spec: dict = {}
    if repo:
        spec["deploy"] = {"repo": repo, "branch": branch}
    if key_ref:
        spec["signing"] = {"keyRef": key_ref}
    return Project.model_validate({"apiVersion": "takt/v1", "kind": "Project", "metadata": {"name": "p"}, "spec": spec})


def test_command_line_paths_are_relative_to_the_working_directory(tmp_path: Path):
    root, cwd = tmp_path / "repo", tmp_path / "elsewhere"
    where = resolve_deploy(
        DeployOptions("./deploy.git", "main", "keys/k.pem"), _project("../d.git", "file:k"), root, cwd, need_key=True
    )
    assert where.url == str((cwd / "deploy.git").resolve())
    assert where.key_ref == str((cwd / "keys/k.pem").resolve())
    assert where.branch == "main"


def test_takt_yaml_paths_are_relative_to_the_project_root(tmp_path: Path):
    root, cwd = tmp_path / "repo", tmp_path / "elsewhere"
    where = resolve_deploy(DeployOptions(), _project("../d.git", "file:keys/k", "prod"), root, cwd, need_key=True)
    assert where.url == str((tmp_path / "d.git").resolve())
    assert where.key_ref == "file:" + str((root / "keys/k").resolve())
    assert where.branch == "prod"


@pytest.mark.parametrize(
    "location", ["https://git.example/deploy.git", "ssh://git@host/deploy.git", "git@host:org/deploy.git"]
)
def test_urls_are_taken_as_given(tmp_path: Path, location: str):
    assert resolve_location(location, tmp_path) == location


def test_an_environment_key_reference_is_not_a_path(tmp_path: Path):
    assert resolve_key_ref("env:TAKT_SIGNING_KEY", tmp_path) == "env:TAKT_SIGNING_KEY"


def test_the_branch_defaults_to_deploy(tmp_path: Path):
    where = resolve_deploy(DeployOptions("d.git"), None, tmp_path, tmp_path, need_key=False)
    assert where.branch == "deploy" and where.key_ref is None


@pytest.mark.parametrize(
    ("options", "project", "missing"),
    [
        (DeployOptions(), None, "--deploy-repo and --key"),
        (DeployOptions("d.git"), None, "--key"),
        (DeployOptions(key_ref="env:K"), None, "--deploy-repo"),
    ],
)
def test_missing_settings_are_a_usage_error(tmp_path: Path, options, project, missing):
    with pytest.raises(UsageError, match=f"give {missing} ") as info:
        resolve_deploy(options, project, tmp_path, tmp_path, need_key=True)
    assert info.value.exit_code == ExitCode.USAGE == 2


def test_every_library_error_carries_its_exit_code():
    assert KeyError_("x").exit_code == BuildError("x").exit_code == DiffError("x").exit_code == ExitCode.USAGE
    assert RevisionHasErrors("x").exit_code == ExitCode.FINDINGS
    assert issubclass(SpecErrors, CommandError) and SpecErrors.exit_code == ExitCode.FINDINGS


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout


def test_publish_takes_takt_yaml_paths_from_the_project_root_wherever_it_runs(tmp_path: Path, cli_run):
    """deploy.repo `../press-shop-deploy.git` and keyRef `file:../keys/…` in takt.yaml mean beside the
    spec repo, also when `takt publish` runs from another folder."""
    spec = load_free_latency(immediate_rollout(copy_example("press-line-anomaly", tmp_path / "work" / "spec")))
    remote = tmp_path / "work" / "press-shop-deploy.git"
    _git("init", "-q", "--bare", str(remote))
    keygen(tmp_path / "work" / "keys")
    project = spec / "takt.yaml"
    project.write_text(project.read_text().replace("env:TAKT_SIGNING_KEY", "file:../keys/takt-signing.key"))
    elsewhere = tmp_path / "ci"
    elsewhere.mkdir()
    code, out = cli_run("publish", str(spec), "--create-branch", "--build-dir", "build", cwd=elsewhere)
    assert code == 0, out
    assert _git("--git-dir", str(remote), "ls-tree", "--name-only", "deploy").split() == ["bundles", "devices"]
    assert (elsewhere / "build" / "index.json").is_file(), "--build-dir is relative to the working directory"
    assert not (elsewhere / "press-shop-deploy.git").exists()


def test_publish_without_a_deploy_repo_exits_2_with_what_to_give(tmp_path: Path, cli_run):
    spec = copy_example("press-line-anomaly", tmp_path / "spec")
    project = spec / "takt.yaml"
    text = project.read_text()
    project.write_text(text[: text.index("  deploy:")])
    code, out = cli_run("publish", str(spec), cwd=tmp_path)
    assert code == 2
    assert "give --deploy-repo and --key (or spec.deploy / spec.signing in takt.yaml)" in out


def test_init_refuses_a_directory_that_is_not_empty_and_resolves_against_cwd(tmp_path: Path):
    from compiler.commands.init import InitRequest, run_init

    cwd = tmp_path / "work"
    (cwd / "repo").mkdir(parents=True)
    (cwd / "repo" / "notes.txt").write_text("mine\n")
    with pytest.raises(UsageError) as exc:
        run_init(InitRequest(Path("repo"), cwd))
    assert exc.value.exit_code is ExitCode.USAGE and "repo is not empty" in str(exc.value)
    assert [p.name for p in (cwd / "repo").iterdir()] == ["notes.txt"]  # nothing written
    outcome = run_init(InitRequest(Path("repo"), cwd, force=True))
    assert Path("repo/takt.yaml") in outcome.written and (cwd / "repo" / "takt.yaml").is_file()
    assert all(not p.is_absolute() and (cwd / p).exists() for p in outcome.written)  # as the user named them


def test_schema_check_names_stale_files_and_writes_nothing(tmp_path: Path):
    from compiler.commands.schema import SchemaRequest, run_schema

    written = run_schema(SchemaRequest(tmp_path, Path("s"), Path("ref.md")))
    assert written.exit_code is ExitCode.OK and Path("ref.md") in written.files
    assert run_schema(SchemaRequest(tmp_path, Path("s"), Path("ref.md"), check=True)).stale == []
    first = written.files[0]
    (tmp_path / first).write_text("{}\n")
    (tmp_path / "ref.md").unlink()
    checked = run_schema(SchemaRequest(tmp_path, Path("s"), Path("ref.md"), check=True))
    assert checked.exit_code is ExitCode.FINDINGS and checked.stale == [first, Path("ref.md")]
    assert (tmp_path / first).read_text() == "{}\n" and not (tmp_path / "ref.md").exists()


def test_pin_exit_codes_come_from_the_outcome(tmp_path: Path):
    from compiler.commands.pin import PinRequest, run_pin

    copy_example("press-line-anomaly", tmp_path / "spec")
    assert run_pin(PinRequest(Path("spec"), tmp_path, check=True)).exit_code is ExitCode.OK
    with (tmp_path / "spec/data/reference.csv").open("a") as fh:
        fh.write("0.1,0.2,0.3,0.4,0.5,0\n")
    stale = run_pin(PinRequest(Path("spec"), tmp_path, check=True))
    assert stale.exit_code is ExitCode.FINDINGS and len(stale.pins) == 1 and stale.problems == []
    pinned = run_pin(PinRequest(Path("spec"), tmp_path))
    assert pinned.exit_code is ExitCode.OK and len(pinned.pins) == 1
    assert run_pin(PinRequest(Path("spec"), tmp_path, check=True)).pins == []
