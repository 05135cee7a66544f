"""A CSV read by several tests is parsed once per run (an anonymous Arrow IPC snapshot the later passes
stream): the results are those of streaming the CSV directly, a CSV that changes is still a located
error, and no file is left behind, also when the run fails or the disk has no room."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow.csv as pacsv
import pytest

from compiler.testing import formats
from compiler.testing.formats import DatasetError, DatasetFile
from compiler.testing.runner import SuiteRunner
from tests.test_streaming import RANGED, SUITE, _generated

CSV_SUITE = SUITE.replace("data/ref.parquet", "data/ref.csv")  # ref: data, acc, rec, psi, ks (5 whole passes)


def _csv_text(cols: dict[str, np.ndarray]) -> str:
    names = list(cols)
    lines = [",".join(names)]
    for row in zip(*(cols[n] for n in names), strict=True):
        lines.append(",".join("" if isinstance(v, float) and np.isnan(v) else repr(v.item()) for v in row))
    return "\n".join(lines) + "\n"


@pytest.fixture
def csv_repo(repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The streaming suite with its reference as a CSV of 40,000 rows (several batches at 16 MiB), and an
    empty scratch directory as the process's temp dir."""
    ref, cand = _generated(40_000, 1), _generated(30_000, 2, shift=1.0)
    repo(
        {
            "tests.yaml": CSV_SUITE,
            "sources.yaml": RANGED,
            "data/ref.csv": _csv_text(ref),
            "data/cand.csv": _csv_text({"temp": cand["temp"], "pres": cand["pres"]}),
        }
    )
    scratch = tmp_path.parent / f"{tmp_path.name}-scratch"
    scratch.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch))
    return scratch


def _results(cli_run, root: Path, memory: str = "16MiB") -> tuple[int, dict[str, dict]]:
    code, out = cli_run("test", str(root), "--format", "json", "--no-progress", "--memory", memory)
    assert "Traceback" not in out
    return code, {t["name"]: t for t in json.loads(out[: out.rindex("}") + 1])["suites"][0]["tests"]}


def _count_parses(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """CSV readers opened on a file (its types come from its first block, parsed apart), per file name."""
    opened: dict[str, int] = {}
    real = pacsv.open_csv

    def counting(source, read_options=None, **kw):
        if read_options is not None and read_options.block_size == formats.CSV_READ_BLOCK:
            name = Path(os.readlink(f"/proc/self/fd/{source.fileno()}")).name
            opened[name] = opened.get(name, 0) + 1
        return real(source, read_options=read_options, **kw)

    monkeypatch.setattr(formats.pacsv, "open_csv", counting)
    return opened


def _open_scratch_files(scratch: Path) -> list[str]:
    fds = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(scratch)):
            fds.append(target)
    return fds


@pytest.mark.slow
def test_a_csv_read_by_several_tests_is_parsed_once_with_the_results_of_streaming_it(
    csv_repo: Path, cli_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    parses = _count_parses(monkeypatch)
    code, once = _results(cli_run, tmp_path)
    assert code == 0
    # ref is read whole by five tests, cand by two (psi, ks): each is parsed for its schema, then once
    assert parses["ref.csv"] == parses["cand.csv"] >= 1
    schema_reads = parses["cand.csv"] - 1
    parses.clear()
    monkeypatch.setattr(DatasetFile, "take_snapshot", lambda self, rows=0, directory=None, names=None: False)
    code, direct = _results(cli_run, tmp_path)
    assert code == 0 and parses["ref.csv"] == schema_reads + 6  # five tests and latency's first rows parse it
    assert parses["cand.csv"] == schema_reads + 2
    assert once.keys() == direct.keys() == {"dat", "acc", "rec", "psi", "ks", "lat"}
    for name in once.keys() - {"lat"}:  # latency is a timing
        a, b = once[name], direct[name]
        assert a["status"] == b["status"] and a["status"] in ("passed", "failed"), a
        assert (a["value"], a["bound"], a["details"]) == (b["value"], b["bound"], b["details"])
    assert once["dat"]["details"]["rows"] == 40_000 and once["psi"]["details"]["computation"]["reference"] == {
        "rows": 40_000,
        "method": "exact",
    }
    assert not list(csv_repo.iterdir()) and not _open_scratch_files(csv_repo)


def test_a_snapshot_of_some_columns_converts_only_those_and_a_pass_wanting_another_reads_the_csv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = tmp_path / "d.csv"
    path.write_text("a,b,c\n" + "".join(f"{i},{'' if i % 5 == 0 else i / 7},x{i}\n" for i in range(30_000)))
    file = DatasetFile(path, "csv", "d.csv")
    file.probe()
    direct = {n: np.concatenate([b[n] for b in file.batches([n], 4096)]) for n in ("a", "b", "c")}
    parses = _count_parses(monkeypatch)
    assert file.take_snapshot(rows=10_000, directory=str(tmp_path), names=["b", "zz"])
    assert parses == {"d.csv": 1}
    snap = ipc_names(file)
    assert snap == ["b"]  # neither a nor c was converted
    b = np.concatenate([x["b"] for x in file.batches(["b", "zz"], 4096)])  # zz: no such column, as before
    assert parses == {"d.csv": 1} and np.array_equal(b, direct["b"], equal_nan=True)
    both = list(file.batches(["c", "b"], 4096))  # c is not in the snapshot: the CSV is read again
    assert parses == {"d.csv": 2} and list(both[0]) == ["c", "b"]
    assert np.array_equal(np.concatenate([x["c"] for x in both]), direct["c"])
    assert sum(len(x["a"]) for x in file.batches(None, 4096)) == 30_000 and parses == {"d.csv": 3}
    file.release()


def ipc_names(file: DatasetFile) -> list[str]:
    import pyarrow.ipc as ipc

    assert file._snapshot is not None
    return list(ipc.open_file(file._snapshot).schema.names)


def test_the_snapshot_has_the_columns_of_a_direct_pass_in_batches_of_its_rows(tmp_path: Path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,c\n" + "".join(f"{i},{'' if i % 7 == 0 else i / 3},x{i}\n" for i in range(50_000)))
    file = DatasetFile(path, "csv", "d.csv")
    file.probe()
    direct = list(file.batches(["c", "b"], 4096))
    assert file.take_snapshot(rows=10_000, directory=str(tmp_path)) and file.snapshotted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]  # the snapshot has no name
    snap = list(file.batches(["c", "b"], 4096))
    assert max(len(b["b"]) for b in snap) == 4096
    for name in ("b", "c"):
        whole = np.concatenate([b[name] for b in direct])
        again = np.concatenate([b[name] for b in snap])
        assert whole.dtype == again.dtype and list(snap[0]) == ["c", "b"]
        assert np.array_equal(whole, again, equal_nan=whole.dtype != object)
    file.release()
    assert not file.snapshotted and sum(len(b["a"]) for b in file.batches(["a"])) == 50_000


def test_a_csv_that_changes_during_its_snapshot_is_read_directly_and_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = tmp_path / "d.csv"
    path.write_text("temp,pres\n" + "".join(f"{i},{i}\n" for i in range(200_000)))
    file = DatasetFile(path, "csv", "d.csv")
    file.probe()
    real = DatasetFile._write_snapshot

    def growing(self, fh, scratch, rows, names=None):
        real(self, fh, scratch, rows, names)
        with path.open("a") as out:
            out.write("1,1\n")

    monkeypatch.setattr(DatasetFile, "_write_snapshot", growing)
    assert not file.take_snapshot(directory=str(tmp_path)) and not file.snapshotted
    assert not _open_scratch_files(tmp_path)
    with pytest.raises(DatasetError, match="changed while it was read"):
        next(file.batches(["temp"]))


@pytest.mark.slow
def test_a_csv_that_changes_after_its_snapshot_is_a_located_error(
    csv_repo: Path, cli_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    real = DatasetFile.take_snapshot

    def then_replaced(self, rows=formats.BATCH_ROWS, directory=None, names=None):
        taken = real(self, rows, directory, names)
        text = self.path.read_text()
        other = self.path.with_name("other.csv")
        other.write_text(text.replace("\n1", "\n2", 1))  # same size, another inode
        os.replace(other, self.path)
        return taken

    monkeypatch.setattr(DatasetFile, "take_snapshot", then_replaced)
    code, tests = _results(cli_run, tmp_path)
    assert code == 1
    for name in ("dat", "acc", "rec", "psi", "ks"):
        assert tests[name]["status"] == "error", tests[name]
        assert tests[name]["summary"] == "dataset 'ref': data/ref.csv changed while it was read " + (
            "(size, time or inode differ between passes)"
        )
    assert not _open_scratch_files(csv_repo)


@pytest.mark.slow
@pytest.mark.parametrize("failure", ["no room", "disk fills"])
def test_a_disk_without_room_for_the_snapshot_gives_the_same_results_read_directly(
    csv_repo: Path, cli_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str
):
    _, before = _results(cli_run, tmp_path)
    if failure == "no room":
        monkeypatch.setattr(formats.shutil, "disk_usage", lambda path: SimpleNamespace(free=1024, total=1 << 30))
    else:

        def filling(self, fh, scratch, rows, names=None):
            scratch.write(b"\0" * 4096)
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(DatasetFile, "_write_snapshot", filling)
    parses = _count_parses(monkeypatch)
    code, after = _results(cli_run, tmp_path)
    assert code == 0 and parses["ref.csv"] == parses["cand.csv"] + 4  # 6 direct passes, not cand's 2
    for name in after.keys() - {"lat"}:
        assert (after[name]["value"], after[name]["details"]) == (before[name]["value"], before[name]["details"])
    assert not list(csv_repo.iterdir()) and not _open_scratch_files(csv_repo)


class Abort(BaseException):
    """What no test handler turns into an error result (as a crash of the process would not be)."""


@pytest.mark.slow
def test_threat_a_run_that_fails_midway_leaves_no_snapshot_behind(
    csv_repo: Path, cli_run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    held: list[list[str]] = []

    def interrupted(self, test):
        held.append(_open_scratch_files(csv_repo))
        raise Abort  # escapes every handler's error result: the run itself fails

    monkeypatch.setattr(SuiteRunner, "drift", interrupted)
    with pytest.raises(Abort):
        cli_run("test", str(tmp_path), "--format", "json", "--no-progress", "--memory", "16MiB")
    assert len(held) == 1 and len(held[0]) == 1  # the snapshot was open (and nameless) when the run broke off
    assert not list(csv_repo.iterdir()) and not _open_scratch_files(csv_repo)
