"""Datasets through Arrow: every format reads the same columns, schemas are checked where the suite names them."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from compiler.models.digest import DigestCache
from compiler.testing.datasets import load_dataset
from tests.conftest import BASE, copy_example, load_free_latency, only


def _table(rng: np.random.Generator, n: int) -> pa.Table:
    temp = rng.normal(20, 3, n)
    temp[rng.random(n) < 0.05] = np.nan
    return pa.table(
        {
            "temp": pa.array(temp, from_pandas=True),  # NaN → null, read back as NaN
            "pres": pa.array(rng.integers(0, 9, n), pa.int32()),
            "part": pa.array([f"p{i % 7}" for i in range(n)]),
        }
    )


def _write(table: pa.Table, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        pq.write_table(table, path, row_group_size=97)  # several row groups: batches cross them
    elif fmt == "feather":
        feather.write_feather(table, path, chunksize=113)
    elif fmt == "arrow":
        with ipc.new_file(path, table.schema) as w:
            for b in table.to_batches(max_chunksize=50):
                w.write_batch(b)
    elif fmt == "arrows":  # the IPC stream format under an .arrow name
        with ipc.new_stream(path, table.schema) as w:
            w.write_table(table)
    else:
        pacsv.write_csv(table, path)


@pytest.mark.parametrize(
    ("fmt", "suffix"),
    [("parquet", "parquet"), ("feather", "feather"), ("arrow", "arrow"), ("arrows", "arrow"), ("csv", "csv")],
)
def test_every_format_reads_the_generated_columns(tmp_path: Path, fmt: str, suffix: str):
    rng = np.random.default_rng(7)
    table = _table(rng, 1000)
    _write(table, tmp_path / f"d.{suffix}", fmt)
    ds = load_dataset(tmp_path, "d", f"d.{suffix}", None, DigestCache.load(tmp_path / "c.json"))
    assert not isinstance(ds, str), ds
    assert ds.rows == 1000
    want_temp = table.column("temp").to_numpy(zero_copy_only=False).astype(np.float64)
    np.testing.assert_array_equal(ds.columns["temp"], want_temp)  # NaN in the same places
    assert ds.columns["pres"].dtype == np.float64
    np.testing.assert_array_equal(ds.columns["pres"], table.column("pres").to_numpy().astype(np.float64))
    assert ds.columns["part"].dtype == object and list(ds.columns["part"]) == table.column("part").to_pylist()


def test_declared_format_wins_over_the_suffix_and_unknown_suffixes_are_refused(tmp_path: Path):
    table = _table(np.random.default_rng(1), 10)
    _write(table, tmp_path / "d.bin", "parquet")
    cache = DigestCache.load(tmp_path / "c.json")
    assert load_dataset(tmp_path, "d", "d.bin", "parquet", cache).rows == 10
    why = load_dataset(tmp_path, "d", "d.bin", None, cache)
    assert isinstance(why, str) and "unknown format 'bin'" in why


def test_csv_reads_as_the_hand_written_reader_did(tmp_path: Path):
    """Numbers as float64 (integers too), NA/NaN/empty as NaN, a text column as strings, 'true' as text."""
    (tmp_path / "d.csv").write_text("a,b,c,d\n1,2.5,x,true\nNA,,y,false\nnan,NaN,,true\n")
    ds = load_dataset(tmp_path, "d", "d.csv", None, DigestCache.load(tmp_path / "c.json"))
    np.testing.assert_array_equal(ds.columns["a"], [1.0, np.nan, np.nan])
    np.testing.assert_array_equal(ds.columns["b"], [2.5, np.nan, np.nan])
    assert list(ds.columns["c"]) == ["x", "y", ""] and list(ds.columns["d"]) == ["true", "false", "true"]


def _suite(dataset: str, fmt: str = "") -> str:
    return (
        textwrap.dedent(BASE["tests.yaml"])
        .replace("datasets: {ref: {path: data/ref.csv}}", f"datasets: {{ref: {{path: {dataset}{fmt}}}}}")
        .replace("dataset: ref}", "dataset: ref, source: plc}")
    )


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


def test_truncated_parquet_is_located_at_the_dataset_path(repo, tmp_path: Path):
    buf = io.BytesIO()
    pq.write_table(_table(np.random.default_rng(0), 500), buf)
    suite = _suite("data/ref.parquet")
    res = repo({"tests.yaml": suite, "data/ref.parquet": buf.getvalue()[:-300]})
    d = only(res, "TAKT5020")
    assert "data/ref.parquet is not a readable parquet file" in d.message
    assert d.location.file.endswith("tests.yaml") and d.location.line == _line_of(suite, "datasets:")


def test_strings_where_the_field_is_numeric_are_located_at_the_source(repo):
    suite = _suite("data/ref.csv")
    res = repo({"tests.yaml": suite, "data/ref.csv": "temp,pres\nwarm,1.2\ncold,1.3\n"})
    d = only(res, "TAKT5021")
    assert "column 'temp' holds strings" in d.message and "float32" in d.message
    assert d.location.line == _line_of(suite, "source: plc")


def test_a_unit_in_the_file_that_differs_from_the_field(repo):
    schema = pa.schema([pa.field("temp", pa.float64(), metadata={"unit": "degF"}), pa.field("pres", pa.float64())])
    buf = io.BytesIO()
    pq.write_table(pa.table({"temp": [68.0], "pres": [1.0]}, schema=schema), buf)
    suite = _suite("data/ref.parquet")
    res = repo({"tests.yaml": suite, "data/ref.parquet": buf.getvalue()})
    d = only(res, "TAKT5022")
    assert "'degF'" in d.message and "'degC'" in d.message and d.location.line == _line_of(suite, "source: plc")
    buf = io.BytesIO()  # the same unit passes
    pq.write_table(
        pa.table(
            {"temp": [68.0], "pres": [1.0]}, schema=schema.set(0, schema.field(0).with_metadata({"unit": "degC"}))
        ),
        buf,
    )
    assert "TAKT5022" not in [
        d.code for d in repo({"tests.yaml": suite, "data/ref.parquet": buf.getvalue()}).diagnostics
    ]


@pytest.mark.parametrize(("rel", "content"), [("data/ref.csv", b"temp,pres\n"), ("data/ref.parquet", None)])
def test_zero_rows_are_located(repo, rel: str, content: bytes | None):
    if content is None:
        buf = io.BytesIO()
        pq.write_table(pa.table({"temp": pa.array([], pa.float64()), "pres": pa.array([], pa.float64())}), buf)
        content = buf.getvalue()
    suite = _suite(rel)
    d = only(repo({"tests.yaml": suite, rel: content}), "TAKT5023")
    assert f"{rel} has no rows" in d.message and d.location.line == _line_of(suite, "datasets:")


def test_takt_test_exits_1_on_an_unreadable_dataset_without_a_traceback(repo, cli_run, tmp_path: Path):
    repo({"tests.yaml": _suite("data/ref.parquet"), "data/ref.parquet": b"PAR1 not really"})
    code, out = cli_run("test", str(tmp_path), "--no-progress")
    assert code == 1 and "TAKT5020" in out and "Traceback" not in out


@pytest.mark.parametrize("fmt", ["parquet", "feather"])
def test_the_example_gives_the_same_results_from_arrow_files(cli_run, tmp_path: Path, fmt: str):
    press = load_free_latency(copy_example("press-line-anomaly", tmp_path / "press"))
    spec = press / "specs/tests.yaml"
    text = spec.read_text()
    for name in ("reference", "candidate"):
        table = pacsv.read_csv(press / f"data/{name}.csv")
        path = press / f"data/{name}.{fmt}"
        pq.write_table(table, path) if fmt == "parquet" else feather.write_feather(table, path)
        lines = text.splitlines()
        at = next(i for i, line in enumerate(lines) if f"path: data/{name}.csv" in line)
        lines[at] = lines[at].replace(".csv", f".{fmt}")
        del lines[at + 1]  # its sha256 is the CSV's
        text = "\n".join(lines) + "\n"
    spec.write_text(text)

    def results(root: Path) -> list[dict]:
        code, out = cli_run("test", str(root), "--format", "json", "--no-progress")
        assert code == 0, out
        tests = json.loads(out[: out.rindex("}") + 1])["suites"][0]["tests"]
        return [{k: v for k, v in t.items() if k != "seconds"} for t in tests if t["type"] != "latency"]

    assert results(press) == results(load_free_latency(copy_example("press-line-anomaly", tmp_path / "csv")))


@pytest.mark.slow
@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_csv_column_types_are_pyarrows_inference_from_the_first_mib(tmp_path: Path, line_end: str):
    """takt infers a CSV's types from its first 1 MiB block alone (pyarrow's own reader would read 32 blocks
    ahead) and reads the rest in small blocks: for a string in a number column at each row around the
    block's end, the types, and whether the rows read, are those of pyarrow's reader with 1 MiB blocks."""
    from compiler.testing.formats import DatasetError, DatasetFile, _csv_convert

    rows = [f"{i / 7:.6f},{i},x{i}" for i in range(60_000)]
    body = ("a,b,c" + line_end + line_end.join(rows) + line_end).encode()
    outcomes = set()
    for shift in range(-48, 48, 4):
        start = body.rfind(line_end.encode(), 0, (1 << 20) + shift) + len(line_end)
        data = body[:start] + b"warm" + body[body.index(b",", start) :]
        read = pacsv.ReadOptions(block_size=1 << 20, use_threads=False)
        reader = pacsv.open_csv(io.BytesIO(data), read_options=read, convert_options=_csv_convert(None))
        want = [(f.name, str(f.type)) for f in reader.schema]
        try:
            want_rows = sum(b.num_rows for b in reader)
        except pa.ArrowInvalid:
            want_rows = None
        (tmp_path / "d.csv").write_bytes(data)
        file = DatasetFile(tmp_path / "d.csv", "csv", "d.csv")
        got = [(c.name, c.type) for c in file.probe().columns]
        try:
            got_rows = sum(len(b["a"]) for b in file.batches(["a", "b"]))
        except DatasetError:
            got_rows = None
        assert (got, got_rows) == (want, want_rows), shift
        outcomes.add((want[0][1], want_rows))
    assert outcomes == {("string", 60_000), ("double", None)}  # both sides of the block's end were tried


@pytest.mark.slow
def test_a_csv_is_read_a_few_blocks_ahead_of_its_rows_not_32_mib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from compiler.testing import formats

    path = tmp_path / "d.csv"
    path.write_text("a,b\n" + "".join(f"{i / 3:.9f},{i}\n" for i in range(1_500_000)))  # ~29 MB
    opened: list = []
    real = formats.open_file
    monkeypatch.setattr(formats, "open_file", lambda *a: opened.append(real(*a)) or opened[-1])
    file = formats.DatasetFile(path, "csv", "d.csv")
    file.probe()
    batches = file.batches(["a"], 4096)
    first = next(batches)
    ahead = opened[-1].tell()  # what the reader has taken from the file for its first 4,096 rows
    assert len(first["a"]) == 4096 and ahead <= 32 * formats.CSV_READ_BLOCK + (1 << 20) < path.stat().st_size // 4
    assert sum(len(b["a"]) for b in batches) == 1_500_000 - 4096


_BIG = 2**53


@pytest.mark.parametrize(
    ("values", "type_"),
    [
        ([1.5, None, -0.0, float("inf"), float("nan")], pa.float64()),
        ([1.5, None, 3.25, float("nan")], pa.float32()),
        ([1.5, None, 2.0], pa.float16()),
        ([-128, None, 127], pa.int8()),
        ([-(2**31), 2**31 - 1], pa.int32()),
        ([0, None, 2**32 - 1], pa.uint32()),
        ([-_BIG, 0, _BIG], pa.int64()),
        ([-_BIG - 1, 0], pa.int64()),  # Arrow's safe cast refuses it, so must the column
        ([_BIG + 1], pa.uint64()),
        ([2**63 - 1, None], pa.int64()),
        ([1, None, 3], pa.int64()),
        ([0, _BIG], pa.uint64()),
        ([True, False, True], pa.bool_()),
        ([True, None, False], pa.bool_()),
        ([], pa.int64()),
        ([], pa.float32()),
        (["1.25", "2"], pa.decimal128(5, 2)),
    ],
)
def test_numeric_columns_are_the_float64_of_arrows_cast(values: list[object], type_: pa.DataType):
    """`to_numpy` makes numbers float64 without Arrow's cast where numpy gives the same values (the cast
    would load pyarrow.compute): the same array, NaN where null, and the cast's error where it refuses."""
    from decimal import Decimal

    from compiler.testing.formats import to_numpy

    if pa.types.is_decimal(type_):
        values = [Decimal(str(v)) for v in values]
    arr = pa.array(values, type=type_)
    for col in (arr, pa.chunked_array([arr[:1], arr[1:]], type=type_), pa.chunked_array([], type=type_)):
        try:
            want = np.asarray(col.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
        except pa.ArrowInvalid as refused:
            with pytest.raises(pa.ArrowInvalid, match="not in range") as got:
                to_numpy(col)
            assert str(got.value) == str(refused)
            continue
        got_arr = to_numpy(col)
        assert got_arr.dtype == np.float64 and got_arr.shape == want.shape
        np.testing.assert_array_equal(got_arr, want)
        assert np.array_equal(np.signbit(got_arr), np.signbit(want))
    tensor = pa.FixedSizeListArray.from_arrays(pa.array([0, 1, 2, 3], type=pa.int32()), 2)
    np.testing.assert_array_equal(to_numpy(tensor), [[0.0, 1.0], [2.0, 3.0]])
