"""Threat: a spec-repo writer commits links that make the build host read (and ship) its own files.

Every path a spec names and every file discovery reads must resolve inside the repository;
/proc, /dev and FIFOs are never read, whatever the link or the spec says.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from compiler.build import build
from compiler.validate.pipeline import validate
from tests.conftest import copy_example

SECRET = "TAKT_SIGNING_KEY=-----BEGIN PRIVATE KEY----- very secret"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    dst = tmp_path / "spec"
    copy_example("press-line-anomaly", dst)
    (tmp_path / "host-secret.txt").write_text(SECRET + "\n")
    return dst


def _replace_with_link(repo: Path, rel: str, target: str) -> None:
    (repo / rel).unlink()
    (repo / rel).symlink_to(target)


def _host_target(repo: Path, kind: str) -> str:
    return {
        "absolute": str(repo.parent / "host-secret.txt"),
        "relative": "../../host-secret.txt",
        "proc": "/proc/self/environ",
        "dev": "/dev/zero",
    }[kind]


LINKED = [
    ("data/golden.npz", "TAKT5019", "spec.tests[0].samples"),
    ("data/reference.csv", "TAKT5019", "spec.datasets.reference.path"),
    ("models/press_anomaly.onnx", "TAKT5019", "spec.artifact.path"),
]


@pytest.mark.parametrize("kind", ["absolute", "relative", "proc", "dev"])
@pytest.mark.parametrize(("rel", "code", "where"), LINKED, ids=[r for r, _, _ in LINKED])
def test_threat_a_spec_path_linking_out_of_the_repo_is_refused_at_its_location(
    repo: Path, rel: str, code: str, where: str, kind: str
):
    _replace_with_link(repo, rel, _host_target(repo, kind))
    result = validate(repo)
    hits = [d for d in result.diagnostics if d.code == code]
    assert hits, [f"{d.code} {d.message}" for d in result.diagnostics]
    assert hits[0].path == where and "leaves the project" in hits[0].message
    assert all(SECRET not in d.message for d in result.diagnostics)


def test_threat_a_model_link_with_a_matching_digest_is_still_refused(repo: Path):
    """The digest pin is no defence: an attacker can pin the host file's own sha256."""
    secret = repo.parent / "host-secret.txt"
    _replace_with_link(repo, "models/press_anomaly.onnx", str(secret))
    model_yaml = repo / "specs/model.yaml"
    text = model_yaml.read_text()
    old = text.split('sha256: "')[1].split('"')[0]
    model_yaml.write_text(text.replace(old, hashlib.sha256(secret.read_bytes()).hexdigest()))
    codes = {d.code for d in validate(repo).diagnostics}
    assert "TAKT5019" in codes and "TAKT5002" not in codes


def test_threat_the_environment_never_reaches_a_bundle(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TAKT_TEST_SIGNING_KEY", SECRET)
    _replace_with_link(repo, "data/golden.npz", "/proc/self/environ")
    result = validate(repo)
    assert any(d.code == "TAKT5019" for d in result.diagnostics)
    out = tmp_path / "out"
    build(result, out, run_gates=False)  # even when a caller skips validation's verdict
    shipped = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert SECRET.encode() not in shipped


def test_a_fifo_in_the_repo_is_refused_without_blocking(repo: Path):
    (repo / "data/reference.csv").unlink()
    os.mkfifo(repo / "data/reference.csv")
    hits = [d for d in validate(repo).diagnostics if d.code == "TAKT5019"]
    assert hits and "FIFO" in hits[0].message


@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_threat_a_spec_file_linking_out_is_refused_and_never_echoed(repo: Path, kind: str):
    outside = repo.parent / "outside.yaml"
    outside.write_text(f"apiVersion: takt/v1\nkind: Nope\nmetadata: {{name: x}}\n# {SECRET}\nspec: [\n")
    target = str(outside) if kind == "absolute" else "../../outside.yaml"
    (repo / "specs/evil.yaml").symlink_to(target)
    result = validate(repo)
    hits = [d for d in result.diagnostics if d.code == "TAKT0011"]
    assert hits and hits[0].location.file.endswith("specs/evil.yaml")
    assert all(SECRET not in s.text for s in result.sources.values())
    assert all(SECRET not in d.message for d in result.diagnostics)


def test_threat_the_project_file_linking_out_is_refused(repo: Path):
    outside = repo.parent / "takt.yaml"
    shutil.move(repo / "takt.yaml", outside)
    (repo / "takt.yaml").symlink_to(outside)
    result = validate(repo)
    assert any(d.code == "TAKT0011" for d in result.diagnostics)


def test_links_that_stay_inside_the_repo_are_followed(repo: Path):
    (repo / "data/golden.npz").rename(repo / "data/golden-v1.npz")
    (repo / "data/golden.npz").symlink_to("golden-v1.npz")
    (repo / "shared").mkdir()
    (repo / "specs/model.yaml").rename(repo / "shared/model.yaml")
    (repo / "specs/model.yaml").symlink_to("../shared/model.yaml")
    result = validate(repo)
    assert result.diagnostics == []
    assert any(d.kind == "Model" for d in result.documents)
