"""Robustness of the build side against hostile or absurd spec input: refused with a location, never a crash."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.signing import keygen
from compiler.validate.pipeline import validate
from tests.conftest import ROOT, copy_example

PROJECT = "apiVersion: takt/v1\nkind: Project\nmetadata: {name: x}\nspec: {}\n"


def _takt(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process: a crash of a C extension must show as a signal, not kill pytest."""
    return subprocess.run(
        [sys.executable, "-m", "compiler.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "PYTHONPATH": str(ROOT)},
        timeout=300,
    )


NESTINGS = {
    "flow-seq": lambda n: "a: " + "[" * n + "]" * n + "\n",
    "flow-map": lambda n: "a: " + "{a: " * n + "1" + "}" * n + "\n",
    "block-seq": lambda n: "a:\n" + "- " * n + "x\n",
    "mixed": lambda n: "a:\n" + "- " * (n // 2) + "[" * (n // 2) + "]" * (n // 2) + "\n",
}


@pytest.mark.slow  # a CLI process each: a crash must show as a signal, not kill pytest
@pytest.mark.parametrize("depth", [600, 30_000])
@pytest.mark.parametrize("shape", sorted(NESTINGS))
def test_deep_nesting_is_refused_before_any_parser_runs(tmp_path: Path, shape: str, depth: int):
    (tmp_path / "takt.yaml").write_text(PROJECT)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "deep.yaml").write_text(NESTINGS[shape](depth))
    r = _takt("validate", str(tmp_path), "--format", "json")
    assert r.returncode == 1, (r.returncode, r.stderr[-500:])
    found = [d for d in json.loads(r.stdout)["diagnostics"] if d["severity"] == "error"]
    assert [d["code"] for d in found] == ["TAKT0012"]
    assert found[0]["file"].endswith("specs/deep.yaml") and found[0]["line"] >= 1


def test_moderate_nesting_still_reads(tmp_path: Path):
    (tmp_path / "takt.yaml").write_text(PROJECT)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "ok.yaml").write_text(NESTINGS["flow-seq"](100))
    codes = {d.code for d in validate(tmp_path).diagnostics}
    assert "TAKT0012" not in codes and "TAKT1001" in codes  # read, then judged as a document


@pytest.fixture
def example(tmp_path: Path) -> Path:
    dst = tmp_path / "spec"
    copy_example("press-line-anomaly", dst)
    return dst


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cpu", ".inf"),
        ("cpu", "-.inf"),
        ("cpu", ".nan"),
        ("cpu", "1.0e+308"),
        ("cpu", "5000"),
        ("memory", "1.0e+308"),
        ("memory", "9999999999Ti"),
    ],
)
def test_absurd_resources_are_located_errors_and_build_never_starts(example: Path, field: str, value: str, cli_run):
    dep = example / "specs/deployment.yaml"
    text = dep.read_text()
    old = text.split(f"{field}: ")[1].split(",")[0].split("}")[0]
    dep.write_text(text.replace(f"{field}: {old}", f"{field}: {value}", 1))
    hits = [d for d in validate(example).diagnostics if d.path == f"spec.resources.{field}"]
    assert hits and hits[0].code in ("TAKT1007", "TAKT1009")
    code, out = cli_run("build", str(example), "--out", str(example.parent / "out"), "--no-progress")
    assert code == 1 and "internal error" not in out and "fix the spec errors" in out


@pytest.mark.parametrize("window", [".inf", ".nan", "1.0e+308"])
def test_absurd_durations_are_refused(example: Path, window: str):
    dep = example / "specs/deployment.yaml"
    dep.write_text(dep.read_text() + "")
    src = example / "specs/datasources.yaml"
    text = src.read_text()
    old = text.split("samplingInterval: ")[1].split("\n")[0]
    src.write_text(text.replace(f"samplingInterval: {old}", f"samplingInterval: {window}", 1))
    assert any(d.code == "TAKT1007" and "samplingInterval" in d.path for d in validate(example).diagnostics)


LITERALS = ["hunter2", "s3cr3t-P4ssw0rd-that-is-long", "admin:letmein", "https://u:p4ss@historian.local/x"]


@pytest.mark.parametrize("secret", LITERALS)
@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github", "junit"])
def test_threat_a_literal_secret_in_a_ref_field_is_never_echoed(example: Path, secret: str, fmt: str, cli_run):
    src = example / "specs/datasources.yaml"
    text = src.read_text()
    assert "credentialsRef: " in text
    old = text.split("credentialsRef: ")[1].split("\n")[0]
    src.write_text(text.replace(f"credentialsRef: {old}", f'credentialsRef: "{secret}"', 1))
    code, out = cli_run("validate", str(example), "--format", fmt)
    assert code == 1 and "TAKT1010" in out
    assert secret not in out


def test_keygen_force_over_a_world_readable_key_leaves_the_new_one_private(tmp_path: Path):
    private, _, _ = keygen(tmp_path)
    private.chmod(0o644)
    old = private.read_bytes()
    private2, _, _ = keygen(tmp_path, force=True)
    assert private2 == private and private.read_bytes() != old
    assert private.stat().st_mode & 0o777 == 0o600


def test_keygen_force_never_writes_through_a_link(tmp_path: Path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep\n")
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "takt-signing.key").symlink_to(victim)
    private, _, _ = keygen(keys, force=True)
    assert victim.read_text() == "keep\n"
    assert not private.is_symlink() and private.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "where", [".takt-cache", ".takt-cache/build", ".takt-cache/build/models", ".takt-cache/build/bundles"]
)
def test_threat_a_committed_link_in_the_build_output_never_writes_or_deletes_elsewhere(
    example: Path, where: str, cli_run
):
    host = example.parent / "host"
    host.mkdir()
    (host / "id_ed25519").write_text("keep\n")
    link = example / where
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(host)
    code, out = cli_run(
        "build", str(example), "--out", str(example / ".takt-cache/build"), "--no-progress", "--skip-gates"
    )
    assert code == 2 and "symbolic link" in out
    assert sorted(p.name for p in host.iterdir()) == ["id_ed25519"]


def test_threat_a_committed_digest_cache_link_is_never_written_through(example: Path):
    host = example.parent / "host"
    host.mkdir()
    (example / ".takt-cache").symlink_to(host)
    validate(example)
    assert list(host.iterdir()) == []


@pytest.mark.parametrize(
    "key_ref", ["-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n", "a\nb"]
)
def test_key_material_given_as_a_reference_is_never_echoed(key_ref: str):
    from compiler.signing import KeyError_, load_private_key

    with pytest.raises(KeyError_) as err:
        load_private_key(key_ref)
    assert "MC4CAQ" not in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "entry", [{"digest": "a" * 64, "mac": "é" * 64}, {"digest": "\udcff", "mac": "0" * 64}, {"digest": 1, "mac": None}]
)
def test_a_crafted_build_cache_entry_misses_and_never_crashes(tmp_path: Path, entry: dict):
    from compiler.build_cache import BuildCache

    (tmp_path / "cache.json").write_text(json.dumps({"version": 2, "entries": {"\udcff" * 3: entry, "b" * 64: entry}}))
    assert BuildCache.load(tmp_path / "cache.json", b"s" * 32).entries == {}
