"""agent/releases.py step by step, without a Git server: staging, the release's own verification, preflight,
pruning and the clean-up at start. The agent tests reach these only through whole cycles, where a weakened
check (an off-by-one in the disk reserve, a stray entry no longer flagged, a release pruned while current)
left them green; each test here names the exact outcome, so such a mutant fails it."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

import agent.releases as releases
from agent.reasons import Reason
from agent.releases import (
    CURRENT,
    RELEASES,
    StageError,
    activate,
    clean_staging,
    current_release,
    preflight,
    prune,
    release_id_of,
    release_meta,
    stage,
    verify_release,
)
from compiler.bundle import MANIFEST, BundleRef, DesiredState, FileEntry, Manifest, ShadowOf, write_bundle
from compiler.bundle.activation import Activation

RID = "ab" * 32


def _bundles(work: Path) -> tuple[DesiredState, dict[str, Manifest]]:
    files = {"runner.json": b'{"x": 1}\n', "bin/start": b"#!/bin/sh\n", "model/model.onnx": b"\0" * 100}
    m1 = write_bundle(work / "bundles", "line/edge", "edge-pc", files, {"arch": "x86_64"}, frozenset({"bin/start"}))
    m2 = write_bundle(work / "bundles", "press/edge", "edge-pc", {"runner.json": b"{}\n"}, {})
    desired = DesiredState(
        "dev-1", 7, datetime(2030, 1, 1, tzinfo=UTC), (BundleRef(m1.name, m1.digest), BundleRef(m2.name, m2.digest))
    )
    return desired, {m1.digest: m1, m2.digest: m2}


def _staged(tmp_path: Path, rid: str = RID) -> tuple[Path, Path, DesiredState]:
    desired, manifests = _bundles(tmp_path / "work")
    state = tmp_path / "state"
    return state, stage(state, tmp_path / "work", desired, manifests, rid, reserve=0), desired


def test_stage_writes_a_whole_release_that_verifies_with_exact_modes(tmp_path: Path) -> None:
    state, release, desired = _staged(tmp_path)
    assert release == state / RELEASES / f"{RID}.1"
    assert verify_release(release) == []
    assert release_id_of(release) == RID
    assert release_meta(release) == {
        "releaseId": RID, "device": "dev-1", "generation": 7, "bundles": [b.to_json() for b in desired.bundles]
    }
    b = release / "bundles" / desired.bundles[0].digest
    assert (b / "bin/start").stat().st_mode & 0o777 == 0o755
    assert (b / "runner.json").stat().st_mode & 0o777 == 0o644
    assert (b / MANIFEST).stat().st_mode & 0o777 == 0o644
    assert (b / "model").stat().st_mode & 0o777 == 0o755
    assert release.stat().st_mode & 0o777 == 0o755
    assert not [p for p in (state / RELEASES).iterdir() if p.name.startswith(".staging-")]


def test_each_staging_takes_the_next_sequence_number(tmp_path: Path) -> None:
    desired, manifests = _bundles(tmp_path / "work")
    state = tmp_path / "state"
    (state / RELEASES / f"{'cd' * 32}.4").mkdir(parents=True)
    (state / RELEASES / "not-a-release.9").mkdir()
    first = stage(state, tmp_path / "work", desired, manifests, RID, reserve=0)
    second = stage(state, tmp_path / "work", desired, manifests, RID, reserve=0)
    assert (first.name, second.name) == (f"{RID}.5", f"{RID}.6")


def test_a_file_beside_the_manifest_is_never_copied(tmp_path: Path) -> None:
    desired, manifests = _bundles(tmp_path / "work")
    digest = desired.bundles[0].digest
    (tmp_path / "work" / "bundles" / digest / "extra.sh").write_text("evil")
    release = stage(tmp_path / "state", tmp_path / "work", desired, manifests, RID, reserve=0)
    assert not (release / "bundles" / digest / "extra.sh").exists()
    assert verify_release(release) == []


def test_the_disk_check_counts_files_and_a_block_per_bundle_plus_the_reserve(tmp_path, monkeypatch) -> None:
    desired, manifests = _bundles(tmp_path / "work")
    need = sum(sum(f.size for f in m.files) + 4096 for m in manifests.values())

    class Usage:
        free = need + 1000

    monkeypatch.setattr("agent.releases.shutil.disk_usage", lambda _p: Usage)
    state = tmp_path / "state"
    with pytest.raises(StageError) as err:
        stage(state, tmp_path / "work", desired, manifests, RID, reserve=1001)
    assert err.value.reason is Reason.INSUFFICIENT_DISK
    assert f"needs {need:,} bytes plus a reserve of 1,001; {need + 1000:,} are free" in err.value.message
    assert stage(state, tmp_path / "work", desired, manifests, RID, reserve=1000).is_dir()  # exactly enough


def test_a_copy_that_differs_is_staging_corrupt_and_leaves_nothing(tmp_path, monkeypatch) -> None:
    desired, manifests = _bundles(tmp_path / "work")
    monkeypatch.setattr("agent.releases.verify_release", lambda _r: ["runner.json: content differs"])
    state = tmp_path / "state"
    with pytest.raises(StageError) as err:
        stage(state, tmp_path / "work", desired, manifests, RID, reserve=0)
    assert err.value.reason is Reason.STAGING_CORRUPT
    assert "the release differs after copying: runner.json: content differs" in err.value.message
    assert list((state / RELEASES).iterdir()) == []


def test_a_missing_source_file_is_staging_failed_and_leaves_nothing(tmp_path: Path) -> None:
    desired, manifests = _bundles(tmp_path / "work")
    (tmp_path / "work" / "bundles" / desired.bundles[1].digest / "runner.json").unlink()
    state = tmp_path / "state"
    with pytest.raises(StageError) as err:
        stage(state, tmp_path / "work", desired, manifests, RID, reserve=0)
    assert err.value.reason is Reason.STAGING_FAILED
    assert err.value.message.startswith("cannot stage the release: ")
    assert list((state / RELEASES).iterdir()) == []


def test_a_linked_source_file_is_staging_failed(tmp_path: Path) -> None:
    desired, manifests = _bundles(tmp_path / "work")
    src = tmp_path / "work" / "bundles" / desired.bundles[1].digest / "runner.json"
    (tmp_path / "twin").write_bytes(src.read_bytes())
    src.unlink()
    src.symlink_to(tmp_path / "twin")
    with pytest.raises(StageError) as err:
        stage(tmp_path / "state", tmp_path / "work", desired, manifests, RID, reserve=0)
    assert err.value.reason is Reason.STAGING_FAILED


def test_an_interrupt_while_staging_leaves_nothing_and_is_not_swallowed(tmp_path, monkeypatch) -> None:
    desired, manifests = _bundles(tmp_path / "work")

    def boom(*_a: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("agent.releases.write_links", boom)
    state = tmp_path / "state"
    with pytest.raises(KeyboardInterrupt):
        stage(state, tmp_path / "work", desired, manifests, RID, reserve=0)
    assert list((state / RELEASES).iterdir()) == []


def test_a_shadow_release_verifies(tmp_path: Path) -> None:
    desired, manifests = _bundles(tmp_path / "work")
    a, b = desired.bundles
    shadowed = DesiredState(desired.device, 8, desired.expires, (a, BundleRef("line/edge", b.digest, ShadowOf(0.5))))
    release = stage(tmp_path / "state", tmp_path / "work", shadowed, manifests, RID, reserve=0)
    assert verify_release(release) == []
    assert release_meta(release)["bundles"][1]["shadow"] == {"tolerance": 0.5}


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda r, d: (r / "stray").write_text("x"), "stray: unexpected entry"),
        (lambda r, d: (r / "stray").mkdir(), "stray: unexpected entry"),
        (lambda r, d: (r / "bundles" / ("ef" * 32)).mkdir(), f"bundles/{'ef' * 32}: unexpected entry"),
        (lambda r, d: (r / "bundles" / d / "runner.json").write_text("{}"), "line/edge: runner.json: "),
        (lambda r, d: (r / "bundles" / d / "bin/start").chmod(0o644), "line/edge: bin/start: "),
    ],
)
def test_verify_release_names_every_drift(tmp_path: Path, damage, problem: str) -> None:
    _, release, desired = _staged(tmp_path)
    damage(release, desired.bundles[0].digest)
    problems = verify_release(release)
    assert problems and problems[0].startswith(problem), problems


def test_a_linked_release_json_or_bundles_dir_is_unexpected(tmp_path: Path) -> None:
    _, release, _ = _staged(tmp_path)
    (release / "bundles").rename(tmp_path / "elsewhere")
    (release / "bundles").symlink_to(tmp_path / "elsewhere")
    assert "bundles: unexpected entry" in verify_release(release)


@pytest.mark.parametrize("text", ["", "[]", '{"bundles": [{"name": "x"}]}', '{"bundles": 5}', '{"bundles": [3]}'])
def test_an_unreadable_release_json_is_one_problem(tmp_path: Path, text: str) -> None:
    _, release, _ = _staged(tmp_path)
    (release / "release.json").write_text(text)
    problems = verify_release(release)
    assert len(problems) == 1 and problems[0].startswith("release.json unreadable: ")


def test_a_missing_release_json_is_one_problem(tmp_path: Path) -> None:
    _, release, _ = _staged(tmp_path)
    (release / "release.json").unlink()
    assert verify_release(release)[0].startswith("release.json unreadable: ")
    assert release_meta(release) == {}
    assert release_meta(None) == {}


def test_release_meta_of_a_non_object_is_empty(tmp_path: Path) -> None:
    (tmp_path / "release.json").write_text("[1]")
    assert release_meta(tmp_path) == {}
    (tmp_path / "release.json").write_text("{bad")
    assert release_meta(tmp_path) == {}


def _manifest(arch: str | None, model: int, activation: Activation = Activation.RUN) -> Manifest:
    files = (FileEntry("model/model.onnx", model, "0" * 64), FileEntry("runner.json", 10**6, "1" * 64))
    return Manifest("d/t", "edge-pc", files, {"arch": arch} if arch else {}, activation=activation)


def test_preflight_refuses_another_architecture_only_for_what_runs_here() -> None:
    with pytest.raises(StageError) as err:
        preflight([_manifest("aarch64", 10)], "x86_64", None)
    assert err.value.reason is Reason.WRONG_ARCHITECTURE
    assert err.value.message == "bundle d/t is built for aarch64; this machine is x86_64"
    preflight([_manifest("aarch64", 10, Activation.FLASH)], "x86_64", None)
    preflight([_manifest("x86_64", 10), _manifest(None, 10)], "x86_64", None)


def test_preflight_counts_three_times_the_model_bytes_of_every_bundle() -> None:
    two = [_manifest(None, 100), _manifest(None, 50)]
    preflight(two, "x86_64", 450)  # exactly enough: the runner.json megabyte is not a model
    with pytest.raises(StageError) as err:
        preflight(two, "x86_64", 449)
    assert err.value.reason is Reason.INSUFFICIENT_MEMORY
    assert err.value.message == "models of 150 bytes need about 450 bytes of memory; 449 are available"
    preflight(two, "x86_64", None)  # unknown memory: no refusal


def test_current_release_follows_only_a_link_to_a_directory(tmp_path: Path) -> None:
    state, release, _ = _staged(tmp_path)
    assert current_release(state) is None
    activate(state, release)
    assert os.readlink(state / CURRENT) == f"{RELEASES}/{release.name}"
    assert current_release(state) == release.resolve()
    os.replace(state / CURRENT, state / "gone")
    (state / CURRENT).symlink_to("releases/none.1")
    assert current_release(state) is None
    (state / CURRENT).unlink()
    (state / CURRENT).mkdir()
    assert current_release(state) is None


@pytest.mark.parametrize(("name", "rid"), [(f"{RID}.3", RID), (f"{RID}.x", None), (f"{RID[:-1]}.3", None)])
def test_release_id_of(name: str, rid: str | None) -> None:
    assert release_id_of(Path("/s/releases") / name) == rid
    assert release_id_of(None) is None


def test_prune_keeps_current_and_the_kept_and_what_is_not_a_release(tmp_path: Path) -> None:
    state = tmp_path / "state"
    names = [f"{RID}.1", f"{RID}.2", f"{RID}.3", f"{RID}.4"]
    for n in [*names, "other", ".staging-x"]:
        (state / RELEASES / n).mkdir(parents=True)
    activate(state, state / RELEASES / names[1])
    prune(state, keep=[names[2]])
    assert sorted(p.name for p in (state / RELEASES).iterdir()) == sorted([".staging-x", "other", *names[1:3]])
    (state / CURRENT).unlink()
    prune(state, keep=[])
    assert sorted(p.name for p in (state / RELEASES).iterdir()) == [".staging-x", "other"]
    prune(tmp_path / "empty", keep=[])  # no releases directory: nothing to do, no error


def test_clean_staging_removes_only_staging_and_switch_leftovers(tmp_path: Path) -> None:
    state = tmp_path / "state"
    for n in (".staging-a.1", ".staging-b.2", f"{RID}.1"):
        (state / RELEASES / n).mkdir(parents=True)
    (state / ".current.tmp-99").symlink_to("releases/x")
    (state / ".current.keep").write_text("x")
    clean_staging(state)
    assert [p.name for p in (state / RELEASES).iterdir()] == [f"{RID}.1"]
    assert sorted(p.name for p in state.iterdir()) == [".current.keep", RELEASES]
    clean_staging(tmp_path / "fresh")  # no releases directory yet


def test_a_staging_leftover_that_is_not_a_directory_never_stops_the_clean_up(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / RELEASES).mkdir(parents=True)
    (state / RELEASES / ".staging-junk").write_text("x")  # rmtree cannot remove it: ignored, not raised
    (state / RELEASES / ".staging-b.2").mkdir()
    clean_staging(state)
    assert [p.name for p in (state / RELEASES).iterdir()] == [".staging-junk"]


@pytest.mark.parametrize(
    ("text", "free"),
    [
        ("MemTotal:       16384 kB\nMemFree:  1024 kB\nMemAvailable:    2048 kB\nBuffers: 8 kB\n", 2048 * 1024),
        ("MemTotal:       16384 kB\nMemFree:  1024 kB\n", None),  # an old kernel: unknown, not zero
        ("MemTotal:       16384 kB\nMemAvailable: lots kB\n", None),
        ("MemTotal:       16384 kB\nMemAvailable:\n", None),
        (None, None),  # no /proc
    ],
)
def test_free_memory_is_the_kernel_s_mem_available_in_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str | None, free: int | None
) -> None:
    meminfo = tmp_path / "meminfo"
    if text is not None:
        meminfo.write_text(text)
    monkeypatch.setattr(releases, "Path", lambda p: meminfo if p == "/proc/meminfo" else Path(p))
    assert releases.mem_available() == free


def test_a_bundle_file_nested_in_directories_no_other_file_creates_is_staged(tmp_path: Path) -> None:
    m = write_bundle(tmp_path / "work" / "bundles", "deep/edge", "edge-pc", {"model/a/b/weights.bin": b"w"}, {})
    desired = DesiredState("dev-1", 1, datetime(2030, 1, 1, tzinfo=UTC), (BundleRef(m.name, m.digest),))
    release = stage(tmp_path / "state", tmp_path / "work", desired, {m.digest: m}, RID, reserve=0)
    assert (release / "bundles" / m.digest / "model/a/b/weights.bin").read_bytes() == b"w"
    assert verify_release(release) == []


def test_every_directory_of_a_release_is_0755_whatever_the_agent_s_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)  # directories would be made 0700: a runner under another user could not enter them
    try:
        _, release, _ = _staged(tmp_path)
    finally:
        os.umask(old)
    dirs = [release, *(p for p in release.rglob("*") if p.is_dir() and not p.is_symlink())]
    assert len(dirs) > 4
    assert {str(p.relative_to(release)): p.stat().st_mode & 0o777 for p in dirs} == {
        str(p.relative_to(release)): 0o755 for p in dirs
    }


@pytest.mark.parametrize("kind", ["missing", "a file"])
def test_a_release_without_its_bundles_directory_is_drift_not_a_crash(tmp_path: Path, kind: str) -> None:
    _, release, desired = _staged(tmp_path)
    shutil.rmtree(release / "bundles")
    if kind == "a file":
        (release / "bundles").write_text("x")
    problems = verify_release(release)
    assert problems and all(b.name in " ".join(problems) for b in desired.bundles)
    assert ("bundles: unexpected entry" in problems) is (kind == "a file")


def test_a_file_whose_mode_changed_in_a_release_is_drift(tmp_path: Path) -> None:
    _, release, desired = _staged(tmp_path)
    (release / "bundles" / desired.bundles[0].digest / "runner.json").chmod(0o600)
    assert [p for p in verify_release(release) if "runner.json" in p]


def test_a_staging_that_differs_after_copying_names_its_first_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    desired, manifests = _bundles(tmp_path / "work")
    monkeypatch.setattr(releases, "verify_release", lambda release: ["first: bad", "second: bad"])
    with pytest.raises(StageError) as exc:
        stage(tmp_path / "state", tmp_path / "work", desired, manifests, RID, reserve=0)
    assert (exc.value.reason, exc.value.message) == (
        Reason.STAGING_CORRUPT, "the release differs after copying: first: bad"
    )


def test_junk_where_the_staging_directory_goes_is_a_staging_failure_not_a_crash(tmp_path: Path) -> None:
    desired, manifests = _bundles(tmp_path / "work")
    state = tmp_path / "state"
    (state / RELEASES).mkdir(parents=True)
    (state / RELEASES / f".staging-{RID}.{os.getpid()}").write_text("x")  # neither removable nor a directory
    with pytest.raises(StageError) as exc:
        stage(state, tmp_path / "work", desired, manifests, RID, reserve=0)
    assert exc.value.reason is Reason.STAGING_FAILED


def test_an_interrupt_before_the_staging_directory_exists_is_the_interrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    desired, manifests = _bundles(tmp_path / "work")
    real = Path.mkdir

    def mkdir(self: Path, *a, **kw) -> None:
        if self.name == "bundles" and self.parent.name.startswith(".staging-"):
            raise KeyboardInterrupt
        real(self, *a, **kw)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    with pytest.raises(KeyboardInterrupt):
        stage(tmp_path / "state", tmp_path / "work", desired, manifests, RID, reserve=0)


def test_a_file_named_like_a_release_never_stops_pruning(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / RELEASES).mkdir(parents=True)
    (state / RELEASES / f"{RID}.1").write_text("x")  # rmtree cannot remove a file: ignored, not raised
    (state / RELEASES / f"{RID}.2").mkdir()
    prune(state, keep=[])
    assert [p.name for p in (state / RELEASES).iterdir()] == [f"{RID}.1"]


def test_a_shadow_release_with_its_own_window_verifies(tmp_path: Path) -> None:
    """The signed window is the staged entry's; the release's own check reads it back from release.json."""
    desired, manifests = _bundles(tmp_path / "work")
    a, b = desired.bundles
    challenger = BundleRef("line/edge", b.digest, ShadowOf(0.5, 120.0))
    shadowed = DesiredState(desired.device, 8, desired.expires, (a, challenger))
    release = stage(tmp_path / "state", tmp_path / "work", shadowed, manifests, RID, reserve=0)  # it checks itself
    assert verify_release(release) == []
    assert release_meta(release)["bundles"][1]["shadow"] == {"tolerance": 0.5, "window": 120.0}
