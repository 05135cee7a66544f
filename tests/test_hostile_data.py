"""Hostile datasets: each is a clear message naming the dataset and file, a non-zero exit, never a traceback."""

from __future__ import annotations

import errno
import io
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from compiler.stores.objects import Disk, ObjectStore, StoreError
from compiler.testing.formats import DatasetError, DatasetFile
from tests.conftest import BASE

SUITE = (
    BASE["tests.yaml"]
    .replace("data/ref.csv", "data/ref.DATA")
    .replace(
        "            - {name: dat, type: data, dataset: ref}\n",
        "            - {name: dat, type: data, dataset: ref}\n"
        "            - {name: drift, type: drift, reference: ref, candidate: ref, method: psi, threshold: 1}\n",
    )
)


def _tests(cli_run, root: Path) -> tuple[int, str, dict]:
    code, out = cli_run("test", str(root), "--format", "json", "--no-progress")
    assert "Traceback" not in out
    doc = json.loads(out[: out.rindex("}") + 1]) if "{" in out else {"suites": [{"tests": []}]}
    return code, out, {t["name"]: t for t in doc["suites"][0]["tests"]}


def test_a_corrupt_page_behind_an_intact_footer_is_an_error_result(repo, cli_run, tmp_path: Path):
    buf = io.BytesIO()
    n = 50_000
    table = pa.table({"temp": np.linspace(0, 1, n), "pres": np.linspace(1, 2, n)})
    pq.write_table(table, buf, write_page_checksum=True, compression="none")
    data = bytearray(buf.getvalue())
    data[len(data) // 3] ^= 0xFF  # inside the first column's pages; the footer still reads
    repo({"tests.yaml": SUITE.replace("DATA", "parquet"), "data/ref.parquet": bytes(data), "data/ref.csv": None})
    code, _, tests = _tests(cli_run, tmp_path)
    assert code == 1
    for name in ("dat", "drift"):
        assert tests[name]["status"] == "error"
        assert "dataset 'ref': data/ref.parquet is not a readable parquet file" in tests[name]["summary"]
        assert "CRC checksum verification failed" in tests[name]["summary"]


def test_strings_past_the_first_csv_block_name_their_row(repo, cli_run, tmp_path: Path):
    rows = "".join(f"{i / 7:.6f},{i / 11:.6f}\n" for i in range(120_000))  # > 1 MiB: types come from block 1
    csv = "temp,pres\n" + rows + "warm,1.0\n"
    repo({"tests.yaml": SUITE.replace("DATA", "csv"), "data/ref.csv": csv})
    code, _, tests = _tests(cli_run, tmp_path)
    assert code == 1
    summary = tests["dat"]["summary"]
    assert tests["dat"]["status"] == "error" and "dataset 'ref': data/ref.csv" in summary
    assert "Row #120002" in summary and "'warm'" in summary


def test_a_schema_that_says_string_where_the_field_is_a_number(repo, cli_run, tmp_path: Path):
    buf = io.BytesIO()  # numbers written as text: the file's schema says string
    pq.write_table(pa.table({"temp": ["20.5", "21.0"], "pres": [1.2, 1.3]}), buf)
    suite = SUITE.replace("DATA", "parquet").replace("dataset: ref}", "dataset: ref, source: plc}")
    repo({"tests.yaml": suite, "data/ref.parquet": buf.getvalue(), "data/ref.csv": None})
    code, out = cli_run("test", str(tmp_path), "--no-progress")
    assert code == 1 and "Traceback" not in out
    assert "TAKT5021 dataset 'ref' against DataSource 'plc': column 'temp' holds strings (string)" in out


def test_zero_rows_stop_the_run(repo, cli_run, tmp_path: Path):
    repo({"tests.yaml": SUITE.replace("DATA", "csv"), "data/ref.csv": "temp,pres\n"})
    code, out = cli_run("test", str(tmp_path), "--no-progress")
    assert code == 1 and "TAKT5023" in out and "Traceback" not in out


def _csv(path: Path, n: int) -> None:
    path.write_text("temp,pres\n" + "".join(f"{i},{i}\n" for i in range(n)))


def test_a_file_that_grows_while_it_is_read(tmp_path: Path):
    path = tmp_path / "d.csv"
    _csv(path, 200_000)
    file = DatasetFile(path, "csv", "d.csv")
    file.probe()
    batches = file.batches(["temp"], 1024)
    next(batches)
    with path.open("a") as fh:
        fh.write("1,1\n")
    with pytest.raises(DatasetError, match="changed while it was read"):
        for _ in batches:
            pass


def test_a_file_replaced_between_passes(tmp_path: Path):
    path = tmp_path / "d.csv"
    _csv(path, 10)
    file = DatasetFile(path, "csv", "d.csv")
    file.probe()
    assert sum(len(b["temp"]) for b in file.batches(["temp"])) == 10
    other = tmp_path / "e.csv"
    _csv(other, 10)
    os.replace(other, path)  # same size, another inode
    with pytest.raises(DatasetError, match="changed while it was read"):
        next(file.batches(["temp"]))


def test_threat_a_truncated_parquet_file_is_located_at_its_dataset(repo, cli_run, tmp_path: Path):
    buf = io.BytesIO()
    pq.write_table(pa.table({"temp": np.linspace(0, 1, 10_000), "pres": np.linspace(1, 2, 10_000)}), buf)
    cut = buf.getvalue()[: len(buf.getvalue()) // 2]  # the footer (schema, row groups) is gone
    result = repo({"tests.yaml": SUITE.replace("DATA", "parquet"), "data/ref.parquet": cut, "data/ref.csv": None})
    found = [d for d in result.diagnostics if d.code == "TAKT5020"]
    assert len(found) == 1 and "dataset 'ref': data/ref.parquet is not a readable parquet file" in found[0].message
    line = next(i for i, t in enumerate((tmp_path / "tests.yaml").read_text().splitlines(), 1) if "ref.parquet" in t)
    assert found[0].location.line == line and found[0].location.file.endswith("tests.yaml")
    code, out = cli_run("test", str(tmp_path), "--no-progress")
    assert code == 1 and "TAKT5020" in out and "Traceback" not in out


class _FullDisk(Disk):
    """A disk with `free` bytes left: the free-space check sees it, and writes past it fail as the kernel's would."""

    def __init__(self, free: int, report: int | None = None) -> None:
        self.free, self.report, self.written = free, report, 0

    def free_bytes(self, directory: Path) -> int:
        return self.report if self.report is not None else self.free

    def write(self, fh, data: bytes) -> None:
        if self.written + len(data) > self.free:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.written += len(data)
        fh.write(data)


def _left_in(store: ObjectStore) -> list[str]:
    folder = store.root / "sha256"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_threat_a_fetch_larger_than_the_free_space_is_refused_before_a_byte(tmp_path: Path):
    store = ObjectStore(tmp_path / "objects", _FullDisk(free=10 << 20))
    with pytest.raises(StoreError, match=r"needs 209715200 bytes but .* has 10485760 free"):
        store.put(iter([b"x" * 1024]), size=200 << 20)
    assert _left_in(store) == []


def test_threat_a_disk_that_fills_mid_fetch_leaves_no_partial_entry(tmp_path: Path):
    store = ObjectStore(tmp_path / "objects", _FullDisk(free=3 << 20, report=1 << 40))  # the check is fooled
    chunks = (bytes([i]) * (1 << 20) for i in range(8))
    with pytest.raises(StoreError, match=r"the disk of .* is full \(nothing partial was kept\)"):
        store.put(chunks, size=8 << 20)
    assert _left_in(store) == []  # neither the object nor its temporary file
    path, sha = ObjectStore(tmp_path / "objects").put(iter([b"ok"]))
    assert _left_in(store) == [sha] and store.get(sha) == path and path.read_bytes() == b"ok"


def test_threat_a_damaged_store_entry_is_never_served(tmp_path: Path):
    store = ObjectStore(tmp_path / "objects")
    path, sha = store.put(iter([b"model bytes"]))
    path.chmod(0o644)
    path.write_bytes(b"other bytes")
    assert store.get(sha) is None and not path.exists()
