"""The bundle format: deterministic, content-addressed, and refusing every kind of tampering."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.bundle import MANIFEST, Manifest, verify_bundle, write_bundle

FILES = {"model/model.onnx": b"\x08\x08onnx-bytes", "runner.json": b'{"a": 1}\n', "bin/start": b"#!/bin/sh\n"}
PROV = {"sourceCommit": "a" * 40, "compiler": "0.1.0"}


def _bundle(tmp: Path) -> tuple[Manifest, Path]:
    m = write_bundle(tmp, "press/ipc", "edge-pc", FILES, PROV, executable=frozenset({"bin/start"}))
    return m, tmp / m.digest


def test_identical_input_gives_identical_bytes(tmp_path: Path):
    a, da = _bundle(tmp_path / "a")
    b, db = _bundle(tmp_path / "b")
    assert a.digest == b.digest and da.name == a.digest
    for rel in [*FILES, MANIFEST]:
        assert (da / rel).read_bytes() == (db / rel).read_bytes()
    assert oct((da / "bin/start").stat().st_mode & 0o777) == "0o755"
    assert verify_bundle(da, a.digest) == (a, [])


def test_any_change_changes_the_digest(tmp_path: Path):
    base = write_bundle(tmp_path, "n", "edge-pc", FILES, PROV).digest
    assert write_bundle(tmp_path, "n", "edge-pc", {**FILES, "runner.json": b"{}"}, PROV).digest != base
    assert write_bundle(tmp_path, "n", "edge-pc", FILES, {**PROV, "sourceCommit": "b" * 40}).digest != base
    assert write_bundle(tmp_path, "n", "it-server", FILES, PROV).digest != base


def test_the_agent_side_imports_only_the_standard_library():
    code = (
        "import sys, compiler.bundle; bad = [m for m in ('pydantic', 'jinja2', 'onnx', 'ruamel', 'numpy') "
        "if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "a/../../x", "a//b", "a/./b", "", "a\\b", "a/b\n", MANIFEST])
def test_unsafe_paths_are_never_written(tmp_path: Path, path: str):
    with pytest.raises(ValueError):
        write_bundle(tmp_path, "n", "edge-pc", {path: b"x"}, PROV)


def _tamper_cases():
    def flip_byte(d: Path) -> None:
        p = d / "runner.json"
        b = bytearray(p.read_bytes())
        b[0] ^= 1
        p.write_bytes(bytes(b))

    def grow(d: Path) -> None:
        with (d / "runner.json").open("ab") as fh:
            fh.write(b" ")

    def extra_file(d: Path) -> None:
        (d / "evil.sh").write_bytes(b"rm -rf /")

    def symlink(d: Path) -> None:
        (d / "runner.json").unlink()
        os.symlink("/etc/passwd", d / "runner.json")

    def missing(d: Path) -> None:
        (d / "model/model.onnx").unlink()

    def manifest_edit(d: Path) -> None:
        m = (d / MANIFEST).read_text().replace('"press/ipc"', '"other"')
        (d / MANIFEST).write_text(m)

    def fifo(d: Path) -> None:
        (d / "runner.json").unlink()
        os.mkfifo(d / "runner.json")

    return [flip_byte, grow, extra_file, symlink, missing, manifest_edit, fifo]


@pytest.mark.parametrize("tamper", _tamper_cases(), ids=lambda f: f.__name__)
def test_tampering_is_detected(tmp_path: Path, tamper):
    m, d = _bundle(tmp_path)
    tamper(d)
    _, problems = verify_bundle(d, m.digest)
    assert problems


def test_a_valid_manifest_of_another_bundle_is_refused(tmp_path: Path):
    m, d = _bundle(tmp_path)
    other = write_bundle(tmp_path, "x", "edge-pc", {"a": b"1"}, PROV)
    (d / MANIFEST).write_bytes((tmp_path / other.digest / MANIFEST).read_bytes())
    _, problems = verify_bundle(d, m.digest)
    assert problems and "expected" in problems[0]


def test_manifest_lies_about_paths_and_sizes(tmp_path: Path):
    import hashlib
    import json

    d = tmp_path / "b"
    d.mkdir()
    body = {
        "version": 1,
        "name": "n",
        "targetClass": "edge-pc",
        "provenance": {},
        "files": [{"path": "../escape", "size": 1, "sha256": "0" * 64, "mode": "0644"}],
    }
    from compiler.bundle.manifest import canonical_json

    digest = hashlib.sha256(canonical_json(body)).hexdigest()
    (d / MANIFEST).write_text(json.dumps({**body, "digest": digest}))
    _, problems = verify_bundle(d)
    assert problems == ["unsafe path '../escape'"]
    body["files"] = [{"path": "a", "size": 2**40, "sha256": "0" * 64, "mode": "0644"}]
    (d / MANIFEST).write_text(json.dumps(body))
    _, problems = verify_bundle(d)
    assert "impossible size" in problems[0]
    (d / MANIFEST).write_bytes(b"\xff\xfe")
    assert "invalid" in verify_bundle(d)[1][0]


def _link_cases():
    """Symlinks whose target has exactly the listed bytes: only the link itself can refuse them."""

    def absolute_outside(d: Path, outside: Path, rel: str) -> None:
        copy = outside / rel.replace("/", "_")
        copy.write_bytes((d / rel).read_bytes())
        (d / rel).unlink()
        os.symlink(copy, d / rel)

    def relative_outside(d: Path, outside: Path, rel: str) -> None:
        copy = outside / rel.replace("/", "_")
        copy.write_bytes((d / rel).read_bytes())
        (d / rel).unlink()
        os.symlink(os.path.relpath(copy, (d / rel).parent), d / rel)

    def inside_twin(d: Path, outside: Path, rel: str) -> None:
        twin = d / "twin" / rel  # an identical copy inside the bundle, itself not listed
        twin.parent.mkdir(parents=True)
        twin.write_bytes((d / rel).read_bytes())
        (d / rel).unlink()
        os.symlink(os.path.relpath(twin, (d / rel).parent), d / rel)

    def directory_link(d: Path, outside: Path, rel: str) -> None:
        top = rel.split("/")[0] if "/" in rel else None
        if top is None:  # a top-level file: link the file itself
            return absolute_outside(d, outside, rel)
        copy = outside / "dir"
        copy.mkdir()
        for f in (d / top).rglob("*"):
            (copy / f.relative_to(d / top)).write_bytes(f.read_bytes())
        import shutil

        shutil.rmtree(d / top)
        os.symlink(copy, d / top)

    return [absolute_outside, relative_outside, inside_twin, directory_link]


@pytest.mark.parametrize("rel", ["runner.json", "model/model.onnx", "bin/start"])
@pytest.mark.parametrize("link", _link_cases(), ids=lambda f: f.__name__)
def test_a_symlink_to_identical_bytes_is_refused(tmp_path: Path, rel: str, link):
    m, d = _bundle(tmp_path / "b")
    outside = tmp_path / "outside"
    outside.mkdir()
    link(d, outside, rel)
    _, problems = verify_bundle(d, m.digest)
    assert problems and all("content differs" not in p and "bytes, manifest says" not in p for p in problems)
    assert any("symbolic link" in p or "symlink" in p or "not a regular file" in p for p in problems)


def test_a_bundle_directory_that_is_a_symlink_is_refused(tmp_path: Path):
    m, d = _bundle(tmp_path / "b")
    os.symlink(d, tmp_path / "alias")
    assert verify_bundle(tmp_path / "alias", m.digest)[1] == ["the bundle directory is a symbolic link"]


@pytest.mark.parametrize(
    ("rel", "mode"),
    [("runner.json", 0o755), ("model/model.onnx", 0o744), ("bin/start", 0o644), ("runner.json", 0o4644)],
)
def test_modes_are_verified(tmp_path: Path, rel: str, mode: int):
    m, d = _bundle(tmp_path / "b")
    assert verify_bundle(d, m.digest, exact_modes=True)[1] == []
    os.chmod(d / rel, mode)
    _, problems = verify_bundle(d, m.digest, exact_modes=True)
    assert problems == [f"{rel}: mode {mode:04o}, manifest says {dict((e.path, e.mode) for e in m.files)[rel]:04o}"]
    flips_x = bool(mode & 0o100) != (rel == "bin/start")
    assert bool(verify_bundle(d, m.digest)[1]) == flips_x  # a Git work tree: only the executable bit counts


def test_a_git_work_tree_under_any_umask_verifies(tmp_path: Path):
    m, d = _bundle(tmp_path / "b")
    for rel, mode in (("runner.json", 0o600), ("model/model.onnx", 0o664), ("bin/start", 0o700)):
        os.chmod(d / rel, mode)
    assert verify_bundle(d, m.digest)[1] == []
    assert len(verify_bundle(d, m.digest, exact_modes=True)[1]) == 3


@pytest.mark.parametrize("depth", [33, 5_000, 100_000])
def test_a_deeply_nested_manifest_is_a_problem_not_a_crash(tmp_path: Path, depth: int):
    m, d = _bundle(tmp_path / "b")
    (d / MANIFEST).write_bytes(b"[" * depth + b"]" * depth)
    manifest, problems = verify_bundle(d, m.digest)
    assert manifest is None and "levels deep" in problems[0]


def test_an_unsafe_path_is_reported_clipped(tmp_path: Path):
    import hashlib
    import json

    from compiler.bundle.manifest import canonical_json

    d = tmp_path / "b"
    d.mkdir()
    body = {
        "version": 1,
        "name": "n",
        "targetClass": "edge-pc",
        "provenance": {},
        "files": [{"path": "../" * 100_000, "size": 1, "sha256": "0" * 64, "mode": "0644"}],
    }
    digest = hashlib.sha256(canonical_json(body)).hexdigest()
    (d / MANIFEST).write_text(json.dumps({**body, "digest": digest}))
    _, problems = verify_bundle(d)
    assert len(problems) == 1 and problems[0].startswith("unsafe path '../") and len(problems[0]) < 200
