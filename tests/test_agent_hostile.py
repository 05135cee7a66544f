"""Hostile pushes by someone without the signing key: unsigned input that is huge, deep, a link to a
device, beside the signed files or with other modes — each refused as a typed reason (or ignored),
never a crash, an exhausted agent, a full disk or a broken journal; and the checks a signed but
misplaced state must meet (device binding, reused generation)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from agent.loop import run
from agent.reconcile import Reconciler
from agent.releases import current_release, verify_release
from agent.status import verify_journal
from compiler.bundle import BundleRef, DesiredState, canonical_json
from tests.agentkit import World, condition, in_days, journal_events, read_status, served_world

DEVICE = "ipc-press-1"


@pytest.fixture
def world(tmp_path: Path):
    with served_world(tmp_path) as w:
        yield w


def _applied(world: World, state: Path, **kw) -> Path:
    out = Reconciler(world.config(state, fast=True, **kw)).run_once()
    assert out.result == "applied", out
    return current_release(state)


def _desired(work: Path, device: str = DEVICE) -> DesiredState:
    return DesiredState.parse((work / "devices" / device / "desired.json").read_bytes())


def _bundle_dir(work: Path) -> Path:
    return work / "bundles" / _desired(work).bundles[0].digest


def _refused_over_cycles(world: World, state: Path, reason: str, cycles: int = 3) -> None:
    """Several cycles of the loop itself: each refuses with `reason`, the loop goes on, the live
    release stays whole, and status and journal say why."""
    before = current_release(state)
    seen = []
    last = run(world.config(state, fast=True), cycles=cycles, sleep=lambda _s: None, report=seen.append)
    assert [(o.result, o.reason) for o in seen] == [("refused", reason)] * cycles, seen
    assert last.reason == reason
    assert current_release(state) == before and (before is None or verify_release(before) == [])
    assert condition(state, "Ready")["status"] == "False"
    assert condition(state, "Stalled")["reason"] == reason
    refusals = [e for e in journal_events(state) if e["event"] == "refused"]
    assert len(refusals) >= cycles and refusals[-1]["details"]["reason"] == reason
    assert verify_journal(state / "journal.log")[0]


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _replace(path: Path, data: bytes | None = None, link: str | None = None) -> None:
    path.unlink()
    if link is not None:
        os.symlink(link, path)
    else:
        path.write_bytes(data)


# Unsigned input: what replaces which file, and the reason it must be refused with.
UNSIGNED = {
    "desired-nested-100k": ("desired.json", _nested(100_000), None, "SignatureInvalid"),
    "desired-nested-2k-objects": ("desired.json", b'{"a":' * 2000 + b"1" + b"}" * 2000, None, "SignatureInvalid"),
    "desired-2MiB": ("desired.json", b" " * (2 << 20) + b"{}", None, "DesiredStateInvalid"),
    "desired-to-dev-zero": ("desired.json", None, "/dev/zero", "DesiredStateInvalid"),
    "desired-to-proc-environ": ("desired.json", None, "/proc/self/environ", "DesiredStateInvalid"),
    "desired-climbing-out": ("desired.json", None, "../../../../../../../../etc/hostname", "DesiredStateInvalid"),
    "sig-nested-100k": ("desired.json.sig", _nested(100_000), None, "SignatureInvalid"),
    "sig-nested-1k": ("desired.json.sig", _nested(1_000), None, "SignatureInvalid"),
    "sig-to-dev-zero": ("desired.json.sig", None, "/dev/zero", "SignatureInvalid"),
    "sig-to-dev-urandom": ("desired.json.sig", None, "/dev/urandom", "SignatureInvalid"),
    "manifest-nested-100k": ("MANIFEST.json", _nested(100_000), None, "BundleInvalid"),
    "manifest-nested-50": ("MANIFEST.json", _nested(50), None, "BundleInvalid"),
    "manifest-to-dev-zero": ("MANIFEST.json", None, "/dev/zero", "BundleInvalid"),
}


@pytest.mark.parametrize("case", list(UNSIGNED))
def test_threat_unsigned_input_is_refused_by_size_depth_and_kind_and_the_loop_goes_on(
    world: World, tmp_path: Path, case: str
):
    name, data, link, reason = UNSIGNED[case]
    state = tmp_path / "state"
    _applied(world, state)
    work = world.checkout()
    target = _bundle_dir(work) / name if name == "MANIFEST.json" else work / "devices" / DEVICE / name
    _replace(target, data, link)
    world.push(work)
    _refused_over_cycles(world, state, reason)
    assert (state / "status.json").stat().st_size < 64 << 10


@pytest.mark.parametrize("length", [200 << 10, 20 << 20])
def test_threat_a_huge_key_id_neither_fills_status_nor_journal(world: World, tmp_path: Path, length: int):
    state = tmp_path / "state"
    _applied(world, state)
    work = world.checkout()
    sig = work / "devices" / DEVICE / "desired.json.sig"
    doc = json.loads(sig.read_text())
    sig.write_text(json.dumps({**doc, "keyId": "f" * length}))
    world.push(work)
    journal_before = (state / "journal.log").stat().st_size
    _refused_over_cycles(world, state, "SignatureInvalid", cycles=3)
    assert (state / "status.json").stat().st_size < 16 << 10
    assert (state / "journal.log").stat().st_size - journal_before < 3 * 2048


def _blob_missing(repo: Path, path: str) -> bool:
    """True when the local clone never received the blob at `path` (a partial clone leaves it on the server)."""
    blob = subprocess.run(
        ["git", "rev-parse", f"HEAD:{path}"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    missing = subprocess.run(
        ["git", "rev-list", "--objects", "--missing=print", "HEAD"], cwd=repo, capture_output=True, text=True
    ).stdout
    return f"?{blob}" in missing.split()


def test_threat_files_the_signed_state_does_not_name_are_never_checked_out(world: World, tmp_path: Path):
    state = tmp_path / "state"
    first = _applied(world, state)
    work = world.checkout()
    bundle = _bundle_dir(work).relative_to(work).as_posix()
    extras = {  # generated: beside the state, deeper, inside the bundle, of several sizes
        f"devices/{DEVICE}/huge.bin": 3 << 20,
        f"devices/{DEVICE}/desired.json.d/x/y.bin": 1 << 20,
        f"devices/{DEVICE}/desired.json.bak": 10,
        f"{bundle}/extra.bin": 2 << 20,
        f"{bundle}/model/extra.onnx": 4096,
    }
    for rel, size in extras.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_bytes(os.urandom(size))
    world.push(work)
    out = Reconciler(world.config(state, fast=True)).run_once()
    assert (out.result, out.reason) == ("unchanged", "UpToDate")
    repo = state / "repo"
    for rel in extras:
        assert not (repo / rel).exists(), rel
        assert _blob_missing(repo, rel), f"{rel} was fetched"
    assert current_release(state) == first and verify_release(first) == []


@pytest.mark.parametrize("rel", ["runner.json", "model/model.onnx", "takt-runner.service"])
def test_threat_an_executable_bit_the_manifest_does_not_grant_is_refused(world: World, tmp_path: Path, rel: str):
    state = tmp_path / "state"
    _applied(world, state)
    work = world.checkout()
    old = _desired(work)
    (_bundle_dir(work) / rel).chmod(0o755)
    world.signed_state(work, DEVICE, DesiredState(old.device, old.generation + 1, in_days(7), old.bundles))
    world.push(work)
    _refused_over_cycles(world, state, "BundleInvalid", cycles=1)
    assert "executable bit" in read_status(state)["lastError"]


@pytest.mark.parametrize("mode", [0o755, 0o600, 0o664, 0o4644])
def test_threat_a_changed_mode_of_a_live_file_is_drift_and_is_repaired(world: World, tmp_path: Path, mode: int):
    state = tmp_path / "state"
    first = _applied(world, state)
    live = next((first / "bundles").iterdir()) / "runner.json"
    os.chmod(live, mode)
    assert verify_release(first)
    out = Reconciler(world.config(state, fast=True)).run_once()
    assert out.result == "applied"
    now = current_release(state)
    assert now != first and verify_release(now) == []
    assert (next((now / "bundles").iterdir()) / "runner.json").stat().st_mode & 0o7777 == 0o644
    assert any(e["event"] == "drift" for e in journal_events(state))


@pytest.mark.parametrize("umask", [0o077, 0o027, 0o002])
def test_staging_sets_the_manifests_modes_whatever_the_umask(world: World, tmp_path: Path, umask: int):
    old = os.umask(umask)
    try:
        release = _applied(world, tmp_path / "state")
    finally:
        os.umask(old)
    bundle = next((release / "bundles").iterdir())
    manifest = json.loads((bundle / "MANIFEST.json").read_text())
    for entry in manifest["files"]:
        assert (bundle / entry["path"]).stat().st_mode & 0o7777 == int(entry["mode"], 8), entry["path"]
    assert (bundle / "MANIFEST.json").stat().st_mode & 0o777 == 0o644
    assert all(d.stat().st_mode & 0o777 == 0o755 for d in [release, bundle, *bundle.rglob("*")] if d.is_dir())


# Device binding and reused generations: signed by the trusted key, but not for this place.


@pytest.mark.parametrize("other", ["ipc-press-2", "ipc-press-10", "IPC-PRESS-1", "ipc-press-1 ", "ipc-press"])
def test_threat_a_state_signed_for_another_device_is_refused(world: World, tmp_path: Path, other: str):
    state = tmp_path / "state"
    _applied(world, state)
    work = world.checkout()
    old = _desired(work)
    # "run nothing", the most damaging state to apply on the wrong device
    world.signed_state(work, DEVICE, DesiredState(other, old.generation + 1, in_days(7), ()))
    world.push(work)
    _refused_over_cycles(world, state, "WrongDevice", cycles=1)


def test_another_devices_own_files_copied_onto_a_fresh_device_are_refused(world: World, tmp_path: Path):
    work = world.checkout()
    for name in ("desired.json", "desired.json.sig"):
        shutil.copy(work / "devices/ipc-press-2" / name, work / "devices" / DEVICE / name)
    world.push(work)
    _refused_over_cycles(world, tmp_path / "fresh", "WrongDevice", cycles=1)


@pytest.mark.parametrize("bundles", ["other-device", "none"])
def test_threat_a_reused_generation_with_other_bundles_is_refused(world: World, tmp_path: Path, bundles: str):
    state = tmp_path / "state"
    _applied(world, state)
    work = world.checkout()
    old = _desired(work)
    refs = _desired(work, "ipc-press-3").bundles if bundles == "other-device" else ()
    world.signed_state(work, DEVICE, DesiredState(old.device, old.generation, in_days(7), refs))
    world.push(work)
    _refused_over_cycles(world, state, "GenerationReused", cycles=1)


# Symlinks to identical bytes: only the link itself can be what refuses them.


def _signed_bundle(world: World, work: Path, files: dict[str, bytes]) -> Path:
    """A bundle whose manifest is self-consistent and that a newer signed state names."""
    body = {
        "version": 1,
        "name": "evil/ipc-x86",
        "targetClass": "edge-pc",
        "provenance": {},
        "files": [
            {"path": p, "size": len(b), "sha256": hashlib.sha256(b).hexdigest(), "mode": "0644"}
            for p, b in sorted(files.items())
        ],
    }
    digest = hashlib.sha256(canonical_json(body)).hexdigest()
    d = work / "bundles" / digest
    for p, b in files.items():
        (d / p).parent.mkdir(parents=True, exist_ok=True)
        (d / p).write_bytes(b)
    (d / "MANIFEST.json").write_bytes(canonical_json({**body, "digest": digest}))
    old = _desired(work)
    refs = (BundleRef("evil/ipc-x86", digest),)
    world.signed_state(work, DEVICE, DesiredState(old.device, old.generation + 1, in_days(7), refs))
    return d


def _link_to_identical(world: World, work: Path, outside: Path, how: str) -> None:
    if how.startswith("twin-in-bundle"):  # both paths listed, same bytes; one is a link to the other
        depth = int(how.rsplit("-", 1)[1])
        rel = "/".join(["d"] * depth + ["b.bin"])
        d = _signed_bundle(world, work, {"a.bin": b"same bytes\n", rel: b"same bytes\n"})
        (d / rel).unlink()
        os.symlink("../" * depth + "a.bin", d / rel)
        return
    bundle = _bundle_dir(work)
    outside.mkdir(parents=True, exist_ok=True)
    if how == "model-dir":
        shutil.copytree(bundle / "model", outside / "model")
        shutil.rmtree(bundle / "model")
        os.symlink(outside / "model", bundle / "model")
        return
    rel = {"runner-absolute": "runner.json", "runner-relative": "runner.json", "deep": "model/model.onnx"}[how]
    copy = outside / rel.replace("/", "_")
    copy.write_bytes((bundle / rel).read_bytes())
    (bundle / rel).unlink()
    target = str(copy) if how == "runner-absolute" else os.path.relpath(copy, (bundle / rel).parent)
    os.symlink(target, bundle / rel)


@pytest.mark.parametrize(
    "how", ["runner-absolute", "runner-relative", "deep", "model-dir", "twin-in-bundle-0", "twin-in-bundle-2"]
)
def test_threat_a_bundle_symlink_to_identical_bytes_is_refused(world: World, tmp_path: Path, how: str):
    state = tmp_path / "state"
    _applied(world, state)
    work = world.checkout()
    old = _desired(work)
    world.signed_state(work, DEVICE, DesiredState(old.device, old.generation + 1, in_days(7), old.bundles))
    _link_to_identical(world, work, tmp_path / "outside", how)
    world.push(work)
    _refused_over_cycles(world, state, "BundleInvalid", cycles=1)


# Layout for the runner: deployments/<deployment> -> ../bundles/<digest>, and nothing else.


def test_each_deployment_is_linked_to_its_bundle(world: World, tmp_path: Path):
    release = _applied(world, tmp_path / "state")
    meta = json.loads((release / "release.json").read_text())
    links = sorted((release / "deployments").iterdir())
    assert [p.name for p in links] == [b["name"].split("/")[0] for b in meta["bundles"]] == ["press-anomaly-muc"]
    assert os.readlink(links[0]) == f"../bundles/{meta['bundles'][0]['digest']}"
    unit_path = tmp_path / "state/current/deployments/press-anomaly-muc/runner.json"
    assert unit_path.read_bytes() == (release / "bundles" / meta["bundles"][0]["digest"] / "runner.json").read_bytes()


def _tamper_layout(release: Path, how: str) -> None:
    links = release / "deployments"
    (link,) = links.iterdir()
    digest = os.readlink(link).rsplit("/", 1)[1]
    if how == "extra-link":
        os.symlink(f"../bundles/{digest}", links / "second")
    elif how == "retargeted-absolute":
        link.unlink()
        os.symlink(release / "bundles" / digest, link)  # the same directory, by another spelling
    elif how == "retargeted-dotted":
        link.unlink()
        os.symlink(f"../bundles/./{digest}", link)
    elif how == "copied-dir":
        link.unlink()
        shutil.copytree(release / "bundles" / digest, link)
    elif how == "missing":
        link.unlink()
    elif how == "top-level-link":
        os.symlink("/etc", release / "etc")
    elif how == "bundle-dir-link":
        os.rename(release / "bundles" / digest, release / f"moved-{digest}")
        os.symlink(f"../moved-{digest}", release / "bundles" / digest)
    elif how == "extra-bundle":
        shutil.copytree(release / "bundles" / digest, release / "bundles" / ("0" * 64))


@pytest.mark.parametrize(
    "how",
    [
        "extra-link",
        "retargeted-absolute",
        "retargeted-dotted",
        "copied-dir",
        "missing",
        "top-level-link",
        "bundle-dir-link",
        "extra-bundle",
    ],
)
def test_only_the_deployment_links_are_accepted_and_other_layouts_are_repaired(world: World, tmp_path: Path, how: str):
    state = tmp_path / "state"
    first = _applied(world, state)
    _tamper_layout(first, how)
    assert verify_release(first), how
    out = Reconciler(world.config(state, fast=True)).run_once()
    assert out.result == "applied"
    now = current_release(state)
    assert now != first and verify_release(now) == []


@pytest.mark.parametrize(
    "names",
    [
        ["../evil/ipc"],
        ["./ipc"],
        ["noslash"],
        ["dep/"],
        ["a b/ipc"],
        ["-x/ipc"],
        ["dep/ipc-x86", "dep/ipc-arm"],
    ],
)
def test_bundle_names_that_make_no_safe_deployment_link_are_refused(world: World, tmp_path: Path, names):
    state = tmp_path / "state"
    _applied(world, state)
    work = world.checkout()
    old = _desired(work)
    digests = [b.digest for b in (*old.bundles, *_desired(work, "ipc-press-3").bundles)]
    refs = tuple(BundleRef(n, d) for n, d in zip(names, digests, strict=False))
    world.signed_state(work, DEVICE, DesiredState(old.device, old.generation + 1, in_days(7), refs))
    world.push(work)
    _refused_over_cycles(world, state, "DesiredStateInvalid", cycles=1)


def test_threat_an_unsafe_path_in_a_signed_manifest_is_never_a_sparse_pattern(world: World, tmp_path: Path):
    """A manifest naming `*` or `!x` must not widen what is checked out."""
    state = tmp_path / "state"
    _applied(world, state)
    work = world.checkout()
    body = {
        "version": 1,
        "name": "evil/ipc-x86",
        "targetClass": "edge-pc",
        "provenance": {},
        "files": [{"path": p, "size": 1, "sha256": "0" * 64, "mode": "0644"} for p in ("*", "!x", "a/**")],
    }
    digest = hashlib.sha256(canonical_json(body)).hexdigest()
    (work / "bundles" / digest).mkdir()
    (work / "bundles" / digest / "MANIFEST.json").write_bytes(canonical_json({**body, "digest": digest}))
    (work / "bundles" / digest / "secret.bin").write_bytes(b"x" * 4096)
    old = _desired(work)
    world.signed_state(
        work, DEVICE, DesiredState(old.device, old.generation + 1, in_days(7), (BundleRef("evil/ipc-x86", digest),))
    )
    world.push(work)
    _refused_over_cycles(world, state, "BundleInvalid", cycles=1)
    assert not (state / "repo/bundles" / digest / "secret.bin").exists()
