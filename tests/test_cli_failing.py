"""The CLI renders each library error by its type: publish's BuildBlocked names every blocked deployment, though
`takt build` no longer imports the publish module (and GitPython with it) just to catch it."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from compiler.build import BuildResult
from compiler.cli.main import _failing
from compiler.commands.errors import ExitCode
from compiler.commands.publish import BuildBlocked
from compiler.validate.pipeline import validate
from tests.conftest import EXAMPLES


def _console() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=200, no_color=True), buf


def test_a_blocked_publish_names_each_blocked_deployment_and_exits_with_findings(tmp_path: Path):
    result = validate(EXAMPLES / "press-line-anomaly", cache_dir=tmp_path)
    built = BuildResult(blocked=[("press-anomaly", "gate lab failed: latency over budget")])
    console, buf = _console()
    with pytest.raises(SystemExit) as exc, _failing(console):
        raise BuildBlocked(result, built)
    assert exc.value.code == ExitCode.FINDINGS
    out = buf.getvalue()
    assert "blocked press-anomaly: gate lab failed: latency over budget" in out
    assert "nothing published" in out
    assert "error:" not in out  # not rendered as a generic command error


def test_any_other_command_error_is_one_error_line_with_its_exit_code():
    from compiler.build import BuildError

    console, buf = _console()
    with pytest.raises(SystemExit) as exc, _failing(console, "takt build: "):
        raise BuildError("out is a symbolic link")
    assert exc.value.code == ExitCode.USAGE
    assert buf.getvalue().strip() == "takt build: error: out is a symbolic link"
