"""Datasets and models tracked by DVC, in a real DVC repository with a local remote (made here with DVC's CLI)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.build import build
from compiler.validate.pipeline import validate
from tests.conftest import BASE, write_repo

pytest.importorskip("dvc.repo", reason="the optional extra 'dvc' is not installed")

CSV = "temp,pres\n" + "".join(f"{20 + i / 10:.1f},{1 + i / 100:.2f}\n" for i in range(50))


def _run(root: Path, home: Path, *args: str) -> str:
    """git or dvc in `root`, with an environment of the test's own (never the machine's HOME or git config)."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "a",
        "GIT_AUTHOR_EMAIL": "a@b",
        "GIT_COMMITTER_NAME": "a",
        "GIT_COMMITTER_EMAIL": "a@b",
    }
    cmd = [sys.executable, "-m", "dvc", *args[1:]] if args[0] == "dvc" else list(args)
    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def dvc_repo(tmp_path: Path) -> Path:
    """BASE with data/ref.csv added to DVC and pushed to a local remote, then gone from workspace and cache."""
    root = write_repo(tmp_path / "spec", {**BASE, "data/ref.csv": CSV})
    home = tmp_path / "home"
    home.mkdir()
    _run(root, home, "git", "init", "-q", "-b", "main")
    _run(root, home, "dvc", "init", "-q")
    _run(root, home, "dvc", "add", "-q", "data/ref.csv")
    _run(root, home, "dvc", "remote", "add", "-d", "store", str(tmp_path / "remote"))
    _run(root, home, "dvc", "push", "-q")
    _run(root, home, "git", "add", "-A")
    _run(root, home, "git", "commit", "-q", "-m", "data in DVC")
    (root / "data/ref.csv").unlink()
    shutil.rmtree(root / ".dvc/cache")
    return root


@pytest.mark.slow
def test_a_dvc_tracked_dataset_is_pulled_from_the_remote_checked_and_recorded(dvc_repo: Path, tmp_path: Path):
    result = validate(dvc_repo)
    assert not [d for d in result.diagnostics if d.severity.name == "ERROR"], result.diagnostics
    md5 = hashlib.md5(CSV.encode()).hexdigest()
    assert (dvc_repo / ".dvc/cache/files/md5" / md5[:2] / md5[2:]).is_file()  # fetched into DVC's cache
    assert not (dvc_repo / "data/ref.csv").exists()  # the workspace is left as it was
    rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=dvc_repo, capture_output=True, text=True).stdout.strip()
    assert result.models.lineage["data/ref.csv"] == {
        "dvc": {"path": "data/ref.csv", "md5": md5, "trackedBy": "data/ref.csv.dvc", "rev": rev}
    }
    built = build(result, tmp_path / "out", jobs=1, cache_secret_dir=tmp_path / "secret")
    assert built.bundles, built.blocked
    manifest = json.loads((tmp_path / "out/bundles" / built.bundles[0].digest / "MANIFEST.json").read_text())
    assert manifest["provenance"]["datasetLineage"]["ref"]["dvc"]["md5"] == md5


@pytest.mark.slow
def test_takt_test_reads_the_dvc_cache(dvc_repo: Path, cli_run):
    code, out = cli_run("test", str(dvc_repo), "--format", "json", "--no-progress")
    assert code == 0 and "Traceback" not in out, out
    tests = {t["name"]: t for t in json.loads(out[: out.rindex("}") + 1])["suites"][0]["tests"]}
    assert tests["dat"]["status"] == "passed", tests["dat"]
    assert tests["dat"]["details"]["rows"] == 50


@pytest.mark.slow
def test_threat_a_dvc_cache_entry_that_is_not_its_md5(dvc_repo: Path, tmp_path: Path):
    validate(dvc_repo)  # fetch it
    md5 = hashlib.md5(CSV.encode()).hexdigest()
    cached = dvc_repo / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    cached.chmod(0o644)
    cached.write_text(CSV.replace("20.0", "99.0"))
    result = validate(dvc_repo)
    found = [d for d in result.diagnostics if d.code == "TAKT5025"]
    assert len(found) == 1 and f"not {md5} (data/ref.csv.dvc)" in found[0].message
    line = next(i for i, t in enumerate((dvc_repo / "tests.yaml").read_text().splitlines(), 1) if "data/ref.csv" in t)
    assert found[0].location.file.endswith("spec/tests.yaml") and found[0].location.line == line


@pytest.mark.slow
def test_threat_tracked_but_on_no_remote(dvc_repo: Path, tmp_path: Path):
    shutil.rmtree(tmp_path / "remote")
    result = validate(dvc_repo)
    found = [d for d in result.diagnostics if d.code == "TAKT5025"]
    assert len(found) == 1 and "data/ref.csv" in found[0].message, result.diagnostics


def test_a_dvc_lock_stage_output_beside_the_path_is_tracked(tmp_path: Path):
    from compiler.stores.dvc_files import pointer

    write_repo(tmp_path, {"data/dvc.lock": LOCK, "data/ref.csv": "x\n"}, project=None)
    ptr = pointer(tmp_path, "data/ref.csv")
    assert ptr is not None and ptr.md5 == "401b30e3b8b5d629635a5c613cdb7919"
    assert ptr.tracked_by == "data/dvc.lock stage 'prepare'"
    assert not ptr.legacy
    assert pointer(tmp_path, "data/other.csv") is None


LOCK = """\
schema: '2.0'
stages:
  prepare:
    cmd: python prepare.py
    outs:
    - path: ref.csv
      hash: md5
      md5: 401b30e3b8b5d629635a5c613cdb7919
      size: 2
"""
