"""The CI templates users copy into their spec repos: linted, and every takt command in them exists."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from ruamel.yaml import YAML

from compiler.cli.main import cli
from tests.conftest import ROOT, copy_example

CI = ROOT / "examples" / "ci"
GITHUB, GITLAB, HOOKS = CI / "github-takt.yml", CI / "gitlab-takt.yml", ROOT / ".pre-commit-hooks.yaml"


def _actionlint() -> str | None:
    local = Path(sys.executable).parent / "actionlint"
    return str(local) if local.exists() else shutil.which("actionlint")


def test_the_github_workflow_passes_actionlint():
    tool = _actionlint()
    if tool is None:
        pytest.skip("actionlint is not installed (pip install the test extra)")
    proc = subprocess.run([tool, "-no-color", str(GITHUB)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _takt_commands(text: str) -> list[list[str]]:
    """Every `takt …` invocation in a text: a shell line, a YAML `run:`/`entry:`, or a README synopsis.

    Synopsis brackets (`[--jobs N]`) are read as optional parts; `a|b` values and redirects are cut.
    """
    out = []
    for line in text.splitlines():
        line = re.split(r"(?:^|\s)#", line)[0]  # comments are prose
        for m in re.finditer(r"(?:^|[\s:\"'`(])(takt\s[^#\n]*)", line):
            for part in re.split(r"\s(?:&&|\|\||;)\s|\s\|\s|\s>", m.group(1)):
                if part.startswith("takt "):
                    out.append(shlex.split(part.replace("[", " ").replace("]", " ").rstrip("`\"'")))
    return out


def _check(argv: list[str]) -> None:
    """The sub-command exists and every --option belongs to it (a renamed flag fails here first)."""
    command: click.Command = cli
    args = argv[1:]
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        sub = command.get_command(click.Context(command), args[0])
        if sub is None:
            break
        command, args = sub, args[1:]
    assert command is not cli, f"no such takt command: {' '.join(argv)}"
    known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)} | {"--help", "-h"}
    for token in args:
        if token.startswith("-") and not re.fullmatch(r"-\d.*", token):
            assert token.split("=")[0] in known, f"{' '.join(argv)}: {token} is not an option of {command.name}"


@pytest.mark.parametrize("path", [GITHUB, GITLAB, HOOKS], ids=lambda p: p.name)
def test_every_takt_command_in_the_templates_exists(path: Path):
    commands = _takt_commands(path.read_text())
    assert commands, "the template runs takt"
    for argv in commands:
        _check(argv)


def test_every_takt_command_in_the_readme_exists():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:sh|bash|yaml)\n(.*?)```", readme, flags=re.S)
    commands = [c for b in blocks for c in _takt_commands(b)]
    assert len(commands) >= 10
    for argv in commands:
        _check(argv)


def test_the_gitlab_pipeline_is_well_formed():
    doc = YAML(typ="safe").load(GITLAB.read_text())
    stages = doc["stages"]
    jobs = {k: v for k, v in doc.items() if isinstance(v, dict) and "script" in v}
    assert set(jobs) == {"takt-validate", "takt-test", "takt-diff", "takt-publish"}
    assert all(j["stage"] in stages for j in jobs.values())
    assert jobs["takt-test"]["artifacts"]["reports"]["junit"] == "takt-test.xml"


def test_the_pre_commit_hook_validates_the_files_it_is_given(cli_run, tmp_path: Path):
    hooks = {h["id"]: h for h in YAML(typ="safe").load(HOOKS.read_text())}
    entry = shlex.split(hooks["takt-validate"]["entry"])
    spec = tmp_path / "spec"
    copy_example("press-line-anomaly", spec)
    files = [
        str(p) for p in sorted((spec / "specs").glob("*.yaml")) if re.search(hooks["takt-validate"]["files"], p.name)
    ]
    code, out = cli_run(*entry[1:], *files)
    assert code == 0, out
    (spec / "specs/devices.yaml").write_text((spec / "specs/devices.yaml").read_text().replace("target:", "targt:", 1))
    code, out = cli_run(*entry[1:], *files)
    assert code == 1 and "TAKT" in out
    code, out = cli_run(*shlex.split(hooks["takt-pin-check"]["entry"])[1:], str(spec))
    assert code in (0, 1)  # spec errors stop it like every command; it exists and runs


@pytest.mark.parametrize("line", ["takt publish --no-such-flag", "takt deploy now", "takt agent run --repoo x"])
def test_the_command_check_refuses_what_does_not_exist(line: str):
    (argv,) = _takt_commands(line)
    with pytest.raises(AssertionError):
        _check(argv)
