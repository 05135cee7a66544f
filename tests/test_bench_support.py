"""The benchmark's generator makes valid repos of every target class, and the cheap commands stay cheap
in what they import (behaviour, not timing: the figures themselves come from bench/run)."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from compiler.validate.pipeline import validate
from tests.conftest import EXAMPLES

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from generate import generate


def test_the_generator_makes_a_clean_repo_with_all_three_target_classes(tmp_path: Path):
    docs = generate(
        tmp_path, 30, lines=3, plants=2, models=2, devices_per_cell=2, it_server_every=10, embedded_every=15
    )
    result = validate(tmp_path, use_cache=False)
    assert [d for d in result.diagnostics if d.severity.label == "error"] == []
    assert len(result.documents) == docs
    kinds = Counter(d.kind for d in result.documents)
    assert kinds["Deployment"] == 30 and kinds["Model"] == 2 and kinds["DataSource"] == 3
    assert kinds["Device"] == 30 * 2 + 2 + 2  # edge PCs, one cluster per plant, two embedded nodes
    classes = {t.class_ for t in result.index.resolved_targets.values()}
    assert classes == {"edge-pc", "it-server", "embedded"}
    assert len({(tmp_path / "models" / f"m{i}.onnx").read_bytes() for i in range(2)}) == 2


def _imported_by(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint(' '.join(sorted(m for m in sys.modules if '.' not in m)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_help_never_imports_the_model_or_template_libraries():
    code = "from compiler.cli.main import cli\ntry:\n    cli(['--help'])\nexcept SystemExit:\n    pass"
    assert not _imported_by(code) & {"onnx", "onnxruntime", "jinja2", "numpy"}


def test_validate_never_imports_onnxruntime_or_jinja2():
    example = str(EXAMPLES / "press-line-anomaly")
    code = f"from pathlib import Path\nfrom compiler.validate.pipeline import validate\nvalidate(Path({example!r}))"
    assert not _imported_by(code) & {"onnxruntime", "jinja2"}


def test_validate_reads_no_field_docstrings_and_the_schema_has_them():
    """Field docstrings are descriptions only in schemas: the validate path builds the models without
    reading their source (pydantic's `use_attribute_docstrings`); `documented()` adds them afterwards,
    and the rebuilt models validate the same documents the same way."""
    example = str(EXAMPLES / "press-line-anomaly")
    code = (
        "import inspect\n"
        "from pathlib import Path\n"
        "read = []\n"
        "_find = inspect.findsource\n"
        "inspect.findsource = lambda obj: read.append(obj) or _find(obj)\n"
        "from compiler.validate.pipeline import validate\n"
        "from compiler.spec.deployment import DeploymentSpec\n"
        f"before = validate(Path({example!r}), use_cache=False)\n"
        "field = DeploymentSpec.model_fields['model']\n"
        "print(len(read), field.description)\n"
        "from compiler.spec.docs import documented\n"
        "documented()\n"
        "print(field.description)\n"
        f"after = validate(Path({example!r}), use_cache=False)\n"
        "print(before.diagnostics == after.diagnostics, len(after.documents))\n"
        "schema = DeploymentSpec.model_json_schema(by_alias=True)\n"
        "print(schema['properties']['selector']['description'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [
        "0 None",
        "A Model name, `name@version`, or {name, version}.",
        "True 13",
        "Devices of the listed targets that run this deployment; omitted: all of them.",
    ]


def _modules_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_only_the_agent_command_imports_the_agent_module():
    example = str(EXAMPLES / "press-line-anomaly")
    run = "from compiler.cli.main import cli\ntry:\n    cli({args!r})\nexcept SystemExit:\n    pass"
    assert "agent.cli" not in _modules_after(run.format(args=["validate", example]))
    assert "agent.cli" in _modules_after(run.format(args=["agent", "status", "--help"]))


def _cli_modules(args: list[str]) -> set[str]:
    run = "from compiler.cli.main import cli\ntry:\n    cli({args!r})\nexcept SystemExit as e:\n    assert e.code == 0"
    return _modules_after(run.format(args=args))


def test_validate_and_test_load_no_signature_code(tmp_path: Path):
    """`cryptography` and the bundle's signature code are loaded by the commands that sign or verify
    (build, publish, rollout, fleet) and by validating a Device with a publicKey, not by validate or test
    of a repo without one, nor the runner.json contract; `compiler.bundle`'s names still load on first use."""
    example = str(EXAMPLES / "press-line-anomaly")
    signing = {"cryptography", "compiler.bundle.desired", "compiler.bundle.report", "compiler.bundle.runner"}
    assert not _cli_modules(["validate", example]) & signing
    assert not _cli_modules(["test", example, "-f", "json", "-o", str(tmp_path / "r.json")]) & signing
    loaded = _modules_after("from compiler.bundle import DESIRED, canonical_json\nprint(DESIRED, canonical_json({}))")
    assert {"compiler.bundle.desired", "compiler.bundle.manifest"} <= loaded


def test_the_lazy_agent_command_is_listed_and_runs(capsys: pytest.CaptureFixture[str]):
    from compiler.cli.main import cli

    with pytest.raises(SystemExit) as listed:
        cli(["--help"])
    assert listed.value.code == 0 and "  agent " in capsys.readouterr().out
    with pytest.raises(SystemExit) as shown:
        cli(["agent", "--help"])
    out = capsys.readouterr().out
    listed_commands = {w.split()[0] for w in out.splitlines() if w.startswith("  ")}
    assert shown.value.code == 0 and {"run", "status", "keygen"} <= listed_commands


def test_target_classes_load_without_their_renderers():
    """Validation needs a class's profile and rules; its renderer (and numpy, pyarrow, jinja2) only a render."""
    loaded = _modules_after("from compiler.render.plugins import target_classes\nprint(sorted(target_classes()))")
    assert {"targets.edge_pc", "targets.it_server", "targets.embedded"} <= loaded
    assert not {m for m in loaded if m.endswith(".renderer")}
    assert not loaded & {"jinja2", "pyarrow", "numpy"}


@pytest.mark.slow
def test_a_no_change_build_renders_nothing_and_loads_no_renderer_or_git_library(tmp_path: Path):
    generate(tmp_path / "repo", 4, lines=2, models=2)
    out, cache = tmp_path / "out", tmp_path / "cache"
    code = (
        "import os\n"
        f"os.environ['XDG_CACHE_HOME'] = {str(cache)!r}\n"
        "from compiler.cli.main import cli\n"
        "try:\n"
        f"    cli(['build', {str(tmp_path / 'repo')!r}, '--out', {str(out)!r}, '--skip-gates', '--no-progress'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
    )
    first = _modules_after(code)
    assert "targets.edge_pc.renderer" in first and "jinja2" in first  # the probe sees a render when there is one
    again = _modules_after(code)
    assert not {m for m in again if m.endswith(".renderer")}
    assert not again & {"jinja2", "git", "compiler.publish"}


def _bench_run_module():
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.SourceFileLoader("bench_run", str(Path(__file__).parent.parent / "bench" / "run"))
    spec = importlib.util.spec_from_loader("bench_run", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_every_row_of_a_merged_table_says_when_and_at_what_load_it_was_measured():
    """A merged results table holds rows of several runs: each row carries its own run's date and load, and
    the header gives the latest run's load, never the worst of all the merged runs."""
    bench = _bench_run_module()
    info = {"cpus": 2, "machine": "x86_64", "system": "Linux", "python": "3.11", "kapitan": "0.36.3",
            "quick": False, "loadavg_start": [0.3, 1.0, 2.0], "loadavg_end": [1.4, 1.0, 2.0],
            "total_seconds": 10.0, "cpu_seconds": 12.0}  # fmt: skip
    rows = [
        {
            "name": "new",
            "unit": "s",
            "takt": 1.5,
            "runs": [1.5],
            "measured": {"date": "2026-12-02", "load": [0.3, 1.4]},
        },
        {"name": "old", "unit": "s", "takt": 2.0, "runs": [2.0, 2.1, 1.9]},
    ]
    text = bench.markdown(rows, info, merged=True)
    header, _, head, _, new, old = text.splitlines()
    assert "latest run" in header and "[0.3, 1.0, 2.0] at the start, [1.4, 1.0, 2.0] at the end" in header
    assert head.endswith("| measured (date, 1-min load at its run's start and end) |")
    assert new == "| new (one run) | 1.5 s |  |  | 2026-12-02, 0.3–1.4 |"
    assert old.endswith("| before figures were stamped |")


def test_takt_test_of_csv_data_loads_neither_pyarrow_compute_nor_parquet(tmp_path: Path):
    """Arrow's cast (the only use of pyarrow.compute on this path) is skipped where numpy makes the same
    float64 column: the example's float and int64 CSV columns; pyarrow.parquet is for Parquet datasets."""
    example = str(EXAMPLES / "press-line-anomaly")
    loaded = _cli_modules(["test", example, "-f", "json", "-o", str(tmp_path / "r.json")])
    assert "pyarrow.csv" in loaded and "onnxruntime" in loaded  # the probe sees the datasets read, the model run
    assert not loaded & {"pyarrow.compute", "pyarrow.parquet"}


def test_the_progress_bar_loads_rich_progress_only_when_it_appears():
    example = str(EXAMPLES / "press-line-anomaly")
    assert "rich.progress" not in _cli_modules(["validate", example])
    code = (
        "import io\n"
        "from rich.console import Console\n"
        "from compiler.cli.progress import DelayedProgress\n"
        "out = io.StringIO()\n"
        "console = Console(file=out, force_terminal=True, width=60)\n"
        "with DelayedProgress(console, 'validating', enabled=True, delay=0) as bar:\n"
        "    bar(1, 4)\n"
        "    bar(4, 4)\n"
        "assert 'validating' in out.getvalue() and '4/4' in out.getvalue(), out.getvalue()\n"
    )
    assert "rich.progress" in _modules_after(code)


def test_a_validation_from_the_document_cache_builds_few_spec_models():
    """The spec models are built on first use (pydantic `defer_build`): a warm validation unpickles the
    kinds' documents without building their validators; validating without the cache builds them, with
    the same result."""
    example = str(EXAMPLES / "press-line-anomaly")
    warm = (
        f"from pathlib import Path\nfrom compiler.validate.pipeline import validate\nrepo = Path({example!r})\n"
        "validate(repo)"
    )
    subprocess.run([sys.executable, "-c", warm], check=True)
    code = (
        f"{warm}\n"
        "from compiler.spec.kinds import KINDS\n"
        "cached = validate(repo)\n"
        "print(sorted(k for k, cls in KINDS.items() if cls.__pydantic_complete__))\n"
        "fresh = validate(repo, use_cache=False)\n"
        "print(fresh.diagnostics == cached.diagnostics, len(fresh.documents), len(cached.documents))\n"
        "print(sorted(k for k, cls in KINDS.items() if cls.__pydantic_complete__))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    built_warm, same, built_fresh = out.splitlines()
    assert built_warm == "[]" and same == "True 13 13"
    assert built_fresh == str(sorted(["DataSource", "Deployment", "Device", "Model", "Policy", "Target", "TestSuite"]))


def test_the_bench_times_both_csv_readers_on_the_same_file_and_they_read_the_same_rows(tmp_path: Path):
    """`old reader` and `takt reader` rows compare the same work: every row of every file, read once."""
    bench = Path(__file__).resolve().parent.parent / "bench"
    data = tmp_path / "d.csv"
    data.write_text("a,b\n" + "".join(f"{i},{i * 0.5}\n" for i in range(3000)))
    subprocess.run([sys.executable, str(bench / "baseline_csv_reader.py"), str(data)], check=True)
    new = subprocess.run([sys.executable, str(bench / "bench_test_data.py"), "--takt-reader", str(data)],
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert new.stderr.strip() == "d.csv: 3000 rows, 2 columns"
