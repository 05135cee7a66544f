"""The CLI contract users' CI scripts rely on: commands, flags, formats, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BASE, EXAMPLE_DIRS, EXAMPLES, ROOT, copy_example, write_repo


def takt(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed console script's code path, in a fresh process."""
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "compiler.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    files = dict(BASE)
    files["deploy.yaml"] = BASE["deploy.yaml"].replace("source: plc", "source: plcc")
    files["sources.yaml"] = BASE["sources.yaml"].replace('"nsu=urn:x;s=T"', '"ns=2;s=T"')
    return write_repo(tmp_path / "broken", files)


def test_exit_0_on_clean_example(cli_run):
    code, out = cli_run("validate", str(EXAMPLE_DIRS[0]))
    assert code == 0, out
    assert "0 errors" in out


def test_exit_1_on_errors_and_fail_level(cli_run, broken: Path):
    code, out = cli_run("validate", str(broken))
    assert code == 1
    assert "TAKT3001" in out and "TAKT2002" in out
    code, _ = cli_run("validate", str(broken), "--ignore", "TAKT3001")
    assert code == 0  # only a warning is left
    code, _ = cli_run("validate", str(broken), "--ignore", "TAKT3001", "--fail-level", "warning")
    assert code == 1
    code, _ = cli_run("validate", str(broken), "-i", "TAKT3001,TAKT2002", "--fail-level", "info")
    assert code == 0


def test_exit_2_on_usage_errors(broken: Path):
    r = takt("validate", str(broken), "--format", "xml", cwd=broken)
    assert r.returncode == 2 and "Invalid value" in r.stderr
    r = takt("validate", str(broken / "nope"), cwd=broken)
    assert r.returncode == 2 and "does not exist" in r.stderr
    r = takt("frobnicate", cwd=broken)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_real_process_exit_codes_and_no_traceback(broken: Path, tmp_path: Path):
    r = takt("validate", ".", cwd=broken)
    assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr
    assert "deploy.yaml:7:" in r.stdout
    r = takt("validate", str(EXAMPLE_DIRS[0]), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("fmt", ["json", "sarif", "junit", "github"])
def test_every_format_from_the_cli(cli_run, broken: Path, fmt: str):
    code, out = cli_run("validate", str(broken), "--format", fmt, cwd=broken)
    assert code == 1
    if fmt == "json":
        assert {d["code"] for d in json.loads(out)["diagnostics"]} == {"TAKT3001", "TAKT2002"}
    elif fmt == "sarif":
        assert json.loads(out)["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"][
            "uri"
        ] in ("deploy.yaml", "sources.yaml")
    elif fmt == "junit":
        assert out.startswith("<?xml") and "<failure" in out
    else:
        assert out.startswith("::")


def test_output_file_is_written_whole(cli_run, broken: Path, tmp_path: Path):
    target = tmp_path / "reports" / "takt.sarif"
    code, _ = cli_run("validate", str(broken), "-f", "sarif", "-o", str(target))
    assert code == 1
    assert json.loads(target.read_text())["version"] == "2.1.0"
    assert [p.name for p in target.parent.iterdir()] == ["takt.sarif"]  # no temp file left behind


def test_files_as_arguments_restrict_the_report_but_resolve_references(cli_run, broken: Path):
    code, out = cli_run("validate", "sources.yaml", "--format", "json", cwd=broken)
    assert code == 0  # sources.yaml has only a warning; deploy.yaml's error is not reported
    assert [d["code"] for d in json.loads(out)["diagnostics"]] == ["TAKT2002"]


def test_schema_check_detects_drift(cli_run, tmp_path: Path):
    code, _ = cli_run("schema", "--out", str(tmp_path))
    assert code == 0
    assert cli_run("schema", "--check", "--out", str(tmp_path))[0] == 0
    (tmp_path / "model.json").write_text("{}")
    code, out = cli_run("schema", "--check", "--out", str(tmp_path))
    assert code == 1 and "model.json" in out


def test_schema_markdown_writes_the_reference_and_checks_its_drift(cli_run, tmp_path: Path):
    ref = tmp_path / "docs" / "spec-reference.md"
    ref.parent.mkdir()
    code, _ = cli_run("schema", "--out", str(tmp_path / "s"), "--markdown", str(ref))
    assert code == 0 and "| `wordOrder` |" in ref.read_text(encoding="utf-8")
    assert cli_run("schema", "--check", "--out", str(tmp_path / "s"), "--markdown", str(ref))[0] == 0
    ref.write_text(ref.read_text(encoding="utf-8").replace("wordOrder", "wordorder"), encoding="utf-8")
    code, out = cli_run("schema", "--check", "--out", str(tmp_path / "s"), "--markdown", str(ref))
    assert code == 1 and "spec-reference.md" in out


def test_init_scaffolds_a_valid_repo(cli_run, tmp_path: Path):
    code, out = cli_run("init", str(tmp_path / "new"))
    assert code == 0, out
    assert cli_run("validate", str(tmp_path / "new"))[0] == 0
    assert cli_run("init", str(tmp_path / "new"))[0] == 2  # not empty any more
    from compiler.validate.pipeline import validate

    kinds = {d.kind for d in validate(tmp_path / "new").documents}
    assert kinds == {"DataSource", "Model", "TestSuite", "Target", "Device", "Deployment", "Policy"}  # one of each
    dep = tmp_path / "new/specs/deployment.yaml"
    dep.write_text(dep.read_text().replace("labels: {owner: process-engineering}", "labels: {}"))
    assert "ORG001" in {d.code for d in validate(tmp_path / "new").diagnostics}  # the policy really applies


def test_rules_lists_every_code(cli_run):
    code, out = cli_run("rules", "--format", "json")
    assert code == 0
    ids = [r["code"] for r in json.loads(out)]
    assert ids == sorted(ids) and "TAKT1004" in ids


def test_version(cli_run):
    from compiler import __version__

    assert cli_run("--version")[1].strip() == f"takt, version {__version__}"


def test_console_script_is_installed():
    exe = Path(sys.executable).parent / "takt"
    assert exe.exists()
    r = subprocess.run([str(exe), "--help"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 0 and "validate" in r.stdout


def test_report_files_get_the_users_umask(cli_run, tmp_path: Path):
    old = os.umask(0o022)
    try:
        code, _ = cli_run(
            "validate", str(EXAMPLES / "press-line-anomaly"), "-f", "sarif", "-o", str(tmp_path / "r.sarif")
        )
        assert code == 0
        assert (tmp_path / "r.sarif").stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        cli_run("validate", str(EXAMPLES / "press-line-anomaly"), "-f", "json", "-o", str(tmp_path / "r.json"))
        assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_pin_rewrites_only_stale_digests_and_check_reports_them(cli_run, tmp_path: Path):

    spec = tmp_path / "spec"
    copy_example("press-line-anomaly", spec)
    code, out = cli_run("pin", str(spec), "--check")
    assert code == 0 and "matches" in out
    with (spec / "data/reference.csv").open("a") as fh:
        fh.write("0.1,0.2,0.3,0.4,0.5,0\n")  # one more row (all six columns: a short row is TAKT5020)
    model = spec / "models/press_anomaly.onnx"
    model.write_bytes(model.read_bytes() + b"")  # unchanged bytes: not stale
    tests_yaml = spec / "specs/tests.yaml"
    before = tests_yaml.read_text()
    code, out = cli_run("pin", str(spec), "--check")
    assert code == 1 and "stale" in out and "dataset data/reference.csv" in out
    assert tests_yaml.read_text() == before  # --check changes nothing
    code, out = cli_run("pin", str(spec))
    assert code == 0 and "1 digest pinned" in out
    after = tests_yaml.read_text()
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b]
    assert len(changed) == 1 and "sha256:" in changed[0][1]  # one line, comments and quoting kept
    code, out = cli_run("validate", str(spec))
    assert code == 0, out


def _pydantic_plugin(site: Path, marker: Path) -> None:
    """A pydantic plugin installed beside takt (entry point group `pydantic`) that refuses every spec document."""
    (site / "spy_plugin.py").write_text(
        "from pathlib import Path\n"
        f"Path({str(marker)!r}).write_text('loaded')\n"
        "class _Refuse:\n"
        "    def on_enter(self, *a, **k):\n"
        "        raise ValueError('refused by an installed plugin')\n"
        "class Plugin:\n"
        "    def new_schema_validator(self, *a, **k):\n"
        "        return _Refuse(), None, None\n"
        "plugin = Plugin()\n"
    )
    dist = site / "spy_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: spy-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[pydantic]\nspy = spy_plugin:plugin\n")


def test_an_installed_pydantic_plugin_never_takes_part_in_validation(tmp_path: Path):
    site, marker = tmp_path / "site", tmp_path / "plugin-loaded"
    site.mkdir()
    _pydantic_plugin(site, marker)
    root = write_repo(tmp_path / "spec", dict(BASE))
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(site)}
    env.pop("PYDANTIC_DISABLE_PLUGINS", None)
    probe = subprocess.run(  # the plugin is real: a plain process that builds a model loads it
        [sys.executable, "-c", "import pydantic\nclass M(pydantic.BaseModel):\n    x: int = 0\n"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0 and marker.read_text() == "loaded", probe.stderr
    marker.unlink()
    run = subprocess.run(
        [sys.executable, "-m", "compiler.cli.main", "validate", str(root), "--no-progress"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert not marker.exists()
