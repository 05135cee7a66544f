"""takt diff: per device, which bundles and which lines change between two revisions."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import copy_example


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=a", "-c", "user.email=a@b", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """A Git repo whose spec repo lives in a subdirectory, with two commits."""
    top = tmp_path / "repo"
    spec = top / "plants" / "muc"
    copy_example("press-line-anomaly", spec)
    _git(top, "init", "-q", "-b", "main")
    _git(top, "add", "-A")
    _git(top, "commit", "-q", "-m", "base")
    targets = spec / "specs/targets.yaml"
    targets.write_text(targets.read_text().replace("memory: 4Gi", "memory: 6Gi"))  # ipc-arm: no rendered change
    dep = spec / "specs/deployment.yaml"
    dep.write_text(
        dep.read_text().replace("resources: {cpu: 500m, memory: 256Mi}", "resources: {cpu: 750m, memory: 256Mi}")
    )
    _git(top, "commit", "-qam", "head")
    return spec


def test_diff_shows_changed_lines_per_device(cli_run, history: Path):
    code, out = cli_run("diff", "HEAD~1", "HEAD", str(history), "--format", "json")
    assert code == 0, out
    doc = json.loads(out)
    assert set(doc["devices"]) == {"ipc-press-1", "ipc-press-2", "ipc-press-3"}
    change = doc["devices"]["ipc-press-1"][0]
    assert change["change"] == "changed" and change["name"] == "press-anomaly-muc/ipc-x86"
    unit = next(f for f in change["files"] if f["path"] == "takt-runner.service")
    assert "-CPUQuota=50%" in unit["diff"] and "+CPUQuota=75%" in unit["diff"]


def test_no_change_and_markdown(cli_run, history: Path):
    code, out = cli_run("diff", "HEAD", "HEAD", str(history), "--format", "markdown")
    assert code == 0 and "No device receives a different bundle." in out
    code, out = cli_run("diff", "HEAD~1", "HEAD", str(history), "--format", "markdown")
    assert "#### device `ipc-press-3`" in out and "```diff" in out


def test_bad_revisions_and_broken_specs(cli_run, history: Path, tmp_path: Path):
    assert cli_run("diff", "nope", "HEAD", str(history))[0] == 2
    dep = history / "specs/deployment.yaml"
    dep.write_text(dep.read_text().replace("model: press-anomaly@1.3.0", "model: press-anomaly@9.9.9"))
    _git(history.parent.parent, "commit", "-qam", "broken")
    code, out = cli_run("diff", "HEAD~1", "HEAD", str(history))
    assert code == 1 and "spec error" in out
    outside = tmp_path / "plain"
    outside.mkdir()
    assert cli_run("diff", "HEAD~1", "HEAD", str(outside))[0] == 2


@pytest.mark.parametrize("link", ["/etc/hostname", "../../../../outside.txt", "specs/deployment.yaml"])
def test_a_revision_with_links_is_diffed_without_following_them(cli_run, history: Path, tmp_path: Path, link: str):
    """A link in the repo (absolute, climbing out, or inside) never crashes diff nor is followed out."""
    (tmp_path / "outside.txt").write_text("host file\n")
    (history / "notes.txt").symlink_to(link)
    _git(history.parent.parent, "add", "-A")
    _git(history.parent.parent, "commit", "-qm", "a link")
    code, out = cli_run("diff", "HEAD~1", "HEAD", str(history), "--format", "json")
    assert code == 0, out
    assert json.loads(out)["devices"] == {}


def test_a_revision_whose_model_links_out_is_a_spec_error(cli_run, history: Path):
    model = history / "models/press_anomaly.onnx"
    model.unlink()
    model.symlink_to("/etc/hostname")
    _git(history.parent.parent, "commit", "-qam", "model is a link out")
    code, out = cli_run("diff", "HEAD~1", "HEAD", str(history))
    assert code == 1 and "spec error" in out and "leaves the project" in out


def test_devices_that_share_a_bundle_change_are_shown_once(cli_run, history: Path):
    code, out = cli_run("diff", "HEAD~1", "HEAD", str(history), "--format", "markdown")
    assert code == 0
    assert out.count("+CPUQuota=75%") == out.count("#### ") == 2  # one diff per group of devices, not per device
    assert "#### 2 devices `ipc-press-1`, `ipc-press-2`" in out and "#### device `ipc-press-3`" in out
    code, text = cli_run("diff", "HEAD~1", "HEAD", str(history))
    assert "2 devices ipc-press-1, ipc-press-2" in text and text.count("CPUQuota=75%") == 2  # x86 group and arm
