"""The target-class plugin contract: built-in classes satisfy it, an installed third-party package
(tests/plugins/takt-jetson) is a class through validate, build and publish, and how a device
activates a bundle crosses to it in the manifest."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent.reasons import Reason
from agent.releases import StageError, preflight
from compiler.bundle import MANIFEST, Activation, Manifest, write_bundle
from compiler.render.plugins import TargetClassPlugin, target_classes
from tests.conftest import copy_example, only

JETSON_SOURCE = Path(__file__).parent / "plugins" / "takt-jetson"
TAKT = Path(sys.executable).with_name("takt")
PIP_INSTALL = (sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index")

JETSON_TARGETS = """\
---
apiVersion: takt/v1
kind: Target
metadata: {name: jetson-orin}
spec:
  class: jetson
  arch: aarch64
  os: linux
  memory: 8Gi
  runtime: {onnxruntime: "1.20", executionProviders: [CUDAExecutionProvider, CPUExecutionProvider]}
---
apiVersion: takt/v1
kind: Target
metadata: {name: jetson-cpu}
spec:
  class: jetson
  arch: aarch64
  os: linux
  memory: 8Gi
  runtime: {onnxruntime: "1.20"}
"""
JETSON_DEVICE = """\
---
apiVersion: takt/v1
kind: Device
metadata: {name: jetson-1, labels: {plant: muc, line: press, cell: "4"}}
spec: {target: jetson-orin}
"""


def test_builtin_classes_satisfy_the_protocol():
    classes = target_classes()
    assert {"edge-pc", "it-server", "embedded"} <= set(classes)
    for tc in classes.values():
        assert isinstance(tc.plugin, TargetClassPlugin)
    assert classes["embedded"].plugin.activation is Activation.FLASH
    assert classes["it-server"].plugin.activation is Activation.CLUSTER
    assert classes["edge-pc"].plugin.activation is Activation.RUN
    assert classes["embedded"].plugin.model_in_flash and classes["it-server"].plugin.model_by_reference


def _manifest(tmp_path: Path, activation: Activation) -> Manifest:
    files = {"model/m.onnx": b"x" * 10}
    return write_bundle(tmp_path, "d/t", "any", files, {"arch": "cortex-m7"}, activation=activation)


def test_a_flashed_bundle_is_never_refused_for_this_machines_architecture(tmp_path: Path):
    """The agent on an x86 gateway stages a Cortex-M bundle for its flash hook; a runnable one it refuses."""
    preflight([_manifest(tmp_path, Activation.FLASH)], "x86_64", None)
    with pytest.raises(StageError) as exc:
        preflight([_manifest(tmp_path, Activation.RUN)], "x86_64", None)
    assert exc.value.reason is Reason.WRONG_ARCHITECTURE


def test_activation_round_trips_through_the_manifest(tmp_path: Path):
    flash = _manifest(tmp_path, Activation.FLASH)
    parsed = Manifest.parse((tmp_path / flash.digest / MANIFEST).read_bytes())
    assert parsed.activation is Activation.FLASH and parsed.digest == flash.digest
    run = _manifest(tmp_path, Activation.RUN)
    assert "activation" not in json.loads((tmp_path / run.digest / MANIFEST).read_bytes())  # RUN is the default


def test_threat_a_manifest_naming_an_unknown_activation_is_refused(tmp_path: Path):
    import hashlib

    from compiler.bundle import canonical_json

    body = {**_manifest(tmp_path, Activation.FLASH).body(), "activation": "apply-as-root"}
    # the digest binds the field, so an attacker recomputes it: the value itself must be refused
    data = canonical_json({**body, "digest": hashlib.sha256(canonical_json(body)).hexdigest()})
    with pytest.raises(ValueError, match="unknown activation"):
        Manifest.parse(data)


def test_an_unknown_class_is_located_and_lists_the_known_ones(repo):
    target = """\
        apiVersion: takt/v1
        kind: Target
        metadata: {name: t}
        spec: {class: jetsn, arch: aarch64, os: linux, memory: 1Gi, runtime: {onnxruntime: "1.20"}}
        """
    d = only(repo({"t.yaml": target}), "TAKT4034")
    assert d.message == "unknown target class 'jetsn'" and d.path == "spec.class"
    assert (d.location.file, d.location.line, d.location.column) == ("t.yaml", 4, 15)
    assert "installed: edge-pc, embedded, it-server" in d.hint


# --- a real installed third-party class ---------------------------------------------------------


@pytest.fixture(scope="module")
def jetson_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """takt-jetson installed as a user would (pip, its own pyproject and entry point), into a directory
    only the subprocesses below put on their path: this process never sees the class."""
    tmp = tmp_path_factory.mktemp("jetson")
    source = tmp / "src"
    shutil.copytree(JETSON_SOURCE, source)  # setuptools writes build/ and egg-info beside the sources
    site = tmp / "site"
    subprocess.run(
        [*PIP_INSTALL, "-t", str(site), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert (site / "takt_jetson" / "__init__.py").is_file()
    return site


def _takt(site: Path, home: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.defpath, "HOME": str(home), "PYTHONPATH": str(site), "XDG_CACHE_HOME": str(home / "cache")}
    env |= {"GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C.UTF-8"}
    return subprocess.run([str(TAKT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def _jetson_repo(root: Path) -> Path:
    copy_example("press-line-anomaly", root)
    with (root / "specs" / "targets.yaml").open("a") as f:
        f.write(JETSON_TARGETS)
    with (root / "specs" / "devices.yaml").open("a") as f:
        f.write(JETSON_DEVICE)
    tests = root / "specs" / "tests.yaml"  # this test is about the class: a loaded machine must not fail its gate
    tests.write_text(tests.read_text().replace("budget: {p50: 2ms, p99: 10ms}", "budget: {p50: 2s, p99: 10s}"))
    dep = root / "specs" / "deployment.yaml"
    dep.write_text(dep.read_text().replace("targets: [ipc-x86, ipc-arm]", "targets: [ipc-x86, ipc-arm, jetson-orin]"))
    return root


@pytest.mark.slow
def test_an_installed_class_validates_builds_and_publishes(jetson_site: Path, tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    spec = _jetson_repo(tmp_path / "spec")

    # validate: the class is known only where the package is installed; its own rule fires at its line
    without = subprocess.run(
        [str(TAKT), "validate", ".", "--format", "json", "--no-progress"],
        cwd=spec,
        env={"PATH": os.defpath, "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert without.returncode == 1
    unknown = [d for d in json.loads(without.stdout)["diagnostics"] if d["code"] == "TAKT4034"]
    lines = [_line(spec, "class: jetson", 1), _line(spec, "class: jetson", 2)]
    assert [(d["file"], d["line"]) for d in unknown] == [("specs/targets.yaml", n) for n in lines]
    run = _takt(jetson_site, home, "validate", ".", "--format", "json", "--no-progress", cwd=spec)
    assert run.returncode == 0, run.stdout + run.stderr
    found = json.loads(run.stdout)["diagnostics"]
    own = [d for d in found if d["code"] == "JETSON001"]
    assert [(d["severity"], d["file"], d["line"]) for d in own] == [
        ("warning", "specs/targets.yaml", _line(spec, 'runtime: {onnxruntime: "1.20"}', 1))
    ]
    assert not [d for d in found if d["code"] == "TAKT4034"]
    rules = _takt(jetson_site, home, "rules", cwd=tmp_path)
    assert "JETSON001  warning  Jetson target without a GPU execution provider" in rules.stdout

    # build: the class renders its bundle; the manifest carries its class and (default) activation
    out = tmp_path / "out"
    run = _takt(jetson_site, home, "build", str(spec), "--out", str(out), "--skip-gates", "--no-progress", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    warned = [ln for ln in (run.stdout + run.stderr).splitlines() if "TAKT6003" in ln]  # the class's warnings hook
    deployment_line = next(
        n
        for n, text in enumerate((spec / "specs/deployment.yaml").read_text().splitlines(), start=1)
        if "jetson-orin" in text
    )
    assert len(warned) == 1 and f"deployment.yaml:{deployment_line}:" in warned[0] and "power mode MAXN" in warned[0]
    index = json.loads((out / "index.json").read_text())
    jetson = [b for b in index["bundles"] if b["target"] == "jetson-orin"]
    assert len(jetson) == 1
    bundle = out / "bundles" / jetson[0]["digest"]
    manifest = Manifest.parse((bundle / MANIFEST).read_bytes())
    assert manifest.target_class == "jetson" and manifest.activation is Activation.RUN
    assert (bundle / "jetson.env").read_text().splitlines()[1] == "NVPMODEL=MAXN"

    # publish: the device's signed desired state names the jetson bundle on the deploy branch
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "deploy.git")], check=True)
    run = _takt(jetson_site, home, "keygen", "--out", str(tmp_path / "keys"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    run = _takt(
        jetson_site,
        home,
        "publish",
        str(spec),
        "--deploy-repo",
        "deploy.git",
        "--branch",
        "deploy",
        "--key",
        str(tmp_path / "keys" / "takt-signing.key"),
        "--build-dir",
        str(out),
        "--create-branch",
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    desired = subprocess.run(
        ["git", "--git-dir", str(tmp_path / "deploy.git"), "show", "deploy:devices/jetson-1/desired.json"],
        check=True,
        capture_output=True,
    ).stdout
    assert [b["digest"] for b in json.loads(desired)["bundles"]] == [jetson[0]["digest"]]


def _line(root: Path, text: str, nth: int) -> int:
    """The line of the nth occurrence of `text` in specs/targets.yaml."""
    lines = (root / "specs" / "targets.yaml").read_text().splitlines()
    hits = [n for n, line in enumerate(lines, start=1) if text in line]
    return hits[nth - 1]
