"""Dataset files through Arrow: Parquet, Arrow IPC/Feather and CSV read by pyarrow, NPZ by numpy.

Every file is opened through `compiler.bundle.tree` (inside the project, O_NOFOLLOW, a regular
file) and pyarrow reads the file object it returns. `probe` reads only what the schema needs
(a Parquet footer, an IPC schema message, the first CSV block); `batches` streams the rows as
named numpy columns, batch by batch. A file that is unreadable, truncated or changes while it is
read raises `DatasetError` with the reason in the user's terms, never a pyarrow traceback.

Parsing CSV text is most of what a pass over a CSV file costs, and a suite reads its reference
dataset several times (metric, data, drift, invariance): `DatasetFile.take_snapshot` parses a CSV
once, with the options of every direct pass (so each column's type, values and missing ones are
those a direct pass gives), into an Arrow IPC file that the later passes stream. The snapshot is an
anonymous temporary file (unlinked from the start: nothing is left behind, not even after kill -9).
A CSV that cannot be parsed whole, or a disk without room for it, gets no snapshot: its passes read
the CSV directly and report what they find exactly as without one.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc

from compiler.bundle.tree import TreeError, open_file
from compiler.testing.dataset_types import FORMATS as FORMATS  # re-exported: readers import them from here
from compiler.testing.dataset_types import SUFFIXES as SUFFIXES
from compiler.testing.dataset_types import Column as Column
from compiler.testing.dataset_types import DatasetError as DatasetError
from compiler.testing.dataset_types import Probe as Probe
from compiler.testing.dataset_types import infer_format as infer_format

CSV_NULLS = ["", "NA", "NaN", "nan"]  # what the CSV reader of takt ≤ 0.1 read as missing
BATCH_ROWS = 65_536
CSV_BLOCK = 1 << 20  # a CSV's column types are pyarrow's inference from its first block of this many bytes
CSV_READ_BLOCK = 128 << 10  # then it is read in blocks of this many (pyarrow reads up to 32 blocks ahead)
READ_BUFFER = 1 << 20  # bytes of a Parquet column chunk read at a time, per column (`Budget.read_buffer`)


def _kind(t: pa.DataType) -> str:
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_null(t):
        return "number"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        return "string"
    if pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t):
        return "tensor"
    return "other"


def _np_kind(a: np.ndarray) -> str:
    if a.dtype == np.bool_:
        return "bool" if a.ndim <= 1 else "tensor"
    if np.issubdtype(a.dtype, np.number):
        return "number" if a.ndim <= 1 else "tensor"
    if a.dtype.kind in "USO":
        return "string"
    return "other"


def _columns_of(schema: pa.Schema) -> tuple[Column, ...]:
    out = []
    for f in schema:
        meta = f.metadata or {}
        unit = meta.get(b"unit")
        out.append(Column(f.name, _kind(f.type), str(f.type), unit.decode("utf-8", "replace") if unit else None))
    return tuple(out)


def _arrow_reason(exc: Exception) -> str:
    text = " ".join(str(exc).split())[:300]
    return text or type(exc).__name__


_ARROW_ERRORS = (pa.ArrowException, OSError, ValueError, EOFError, zipfile.BadZipFile, UnicodeDecodeError)


class DatasetFile:
    """One dataset file, opened afresh for each pass (the stat at the first open is the identity
    every later pass must still see)."""

    def __init__(self, path: Path, fmt: str, display: str) -> None:
        if fmt not in FORMATS:
            raise DatasetError(f"unknown format {fmt!r} ({', '.join(FORMATS)})")
        self.path, self.format, self.display = path, fmt, display
        self._identity: tuple[int, int, int] | None = None
        self._snapshot: BinaryIO | None = None  # the CSV's rows as Arrow IPC (`take_snapshot`)
        self._snapshot_names: frozenset[str] | None = None  # its columns; None: every column of the CSV
        self._head: _CsvHead | None = None  # the CSV's columns and types from its first block

    def _open(self) -> BinaryIO:
        try:
            fh = open_file(self.path, self.display)
        except TreeError as exc:
            raise DatasetError(exc.reason) from None
        except OSError as exc:
            raise DatasetError(f"cannot be read: {exc.strerror or exc}") from None
        self._check_identity(fh)
        return fh

    def _check_identity(self, fh: BinaryIO) -> None:
        st = os.fstat(fh.fileno())
        ident = (st.st_size, st.st_mtime_ns, st.st_ino)
        if self._identity is None:
            self._identity = ident
        elif ident != self._identity:
            raise DatasetError("changed while it was read (size, time or inode differ between passes)")

    def check_unchanged(self) -> None:
        """DatasetError when the file at the path is no longer the one first opened (size, time, inode)."""
        with self._open():
            pass

    # --- the schema --------------------------------------------------------------------------------

    def probe(self) -> Probe:
        with self._open() as fh:
            try:
                if self.format == "parquet":
                    import pyarrow.parquet as pq  # here: a CSV or Arrow dataset never loads it (0.01-0.03 s)

                    meta = pq.ParquetFile(fh)
                    return Probe(self.format, _columns_of(meta.schema_arrow), meta.metadata.num_rows)
                if self.format in ("arrow", "feather"):
                    try:
                        return Probe(self.format, _columns_of(ipc.open_file(fh).schema), None)
                    except pa.ArrowInvalid:
                        fh.seek(0)
                        return Probe(self.format, _columns_of(ipc.open_stream(fh).schema), None)
                if self.format == "csv":
                    head = self._csv_head(fh)
                    if head is not None:
                        return Probe(self.format, _columns_of(head.schema), 0 if head.rows == 0 else None)
                    reader = self._csv_reader(fh)
                    try:
                        first: int | None = reader.read_next_batch().num_rows
                    except StopIteration:
                        first = 0
                    return Probe(self.format, _columns_of(reader.schema), 0 if first == 0 else None)
                cols = self._npz(fh)
                rows = max((len(v) if v.ndim else 1 for v in cols.values()), default=0)
                return Probe(self.format, tuple(Column(k, _np_kind(v), str(v.dtype)) for k, v in cols.items()), rows)
            except DatasetError:
                raise
            except _ARROW_ERRORS as exc:
                raise DatasetError(f"is not a readable {self.format} file ({_arrow_reason(exc)})") from None

    # --- a CSV parsed once -----------------------------------------------------------------------------

    @property
    def snapshotted(self) -> bool:
        return self._snapshot is not None

    def take_snapshot(
        self, rows: int = BATCH_ROWS, directory: str | None = None, names: list[str] | None = None
    ) -> bool:
        """CSV only: parse the file once into an anonymous Arrow IPC file (in `directory`, else the temp
        dir) of batches of `rows` rows, which every later `batches` streams. Only the columns `names`
        where given (a column no test reads is not converted); a later pass that wants another column
        reads the CSV itself. False, and no snapshot, for another format, a file that does not parse
        whole or changes meanwhile, or no room on the disk."""
        if self.format != "csv" or self._snapshot is not None:
            return self._snapshot is not None
        try:
            fh = self._open()
        except DatasetError:
            return False  # the direct pass says what is wrong, where it always did
        with fh:
            try:
                if shutil.disk_usage(directory or tempfile.gettempdir()).free < os.fstat(fh.fileno()).st_size:
                    return False  # float64 columns take about what their text does
                scratch = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 - kept open: it is the snapshot
            except OSError:
                return False
            try:
                self._write_snapshot(fh, scratch, rows, names)
                self._check_identity(fh)
            except (DatasetError, *_ARROW_ERRORS):  # OSError: e.g. the disk filled meanwhile
                scratch.close()
                return False
        self._snapshot = scratch
        self._snapshot_names = None if names is None else frozenset(names)
        return True

    def _write_snapshot(self, fh: BinaryIO, scratch: BinaryIO, rows: int, names: list[str] | None) -> None:
        reader = self._csv_reader(fh, names)
        with ipc.new_file(scratch, reader.schema) as writer:
            for batch in _joined(reader, rows):  # CSV blocks of 128 KiB, joined into batches of `rows`
                writer.write_batch(batch)

    def release(self) -> None:
        """Drop the snapshot (its disk space is freed as the file closes); later passes read the CSV."""
        if self._snapshot is not None:
            self._snapshot.close()
            self._snapshot = None
            self._snapshot_names = None

    # --- the rows ----------------------------------------------------------------------------------

    def batches(
        self, names: list[str] | None = None, rows: int = BATCH_ROWS, buffer: int = READ_BUFFER
    ) -> Iterator[dict[str, np.ndarray]]:
        """The rows in batches of at most `rows`, as numpy columns (numbers as float64, missing as NaN;
        strings as object arrays; fixed-size lists as 2-D arrays). Only `names` where given; a Parquet
        file is read `buffer` bytes of a column at a time."""
        with self._open() as fh:
            try:
                if self.format == "npz":
                    cols = self._npz(fh)
                    cols = {k: v for k, v in cols.items() if names is None or k in names}
                    n = max((len(v) if v.ndim else 1 for v in cols.values()), default=0)
                    for start in range(0, n, rows):
                        yield {k: v[start : start + rows] for k, v in cols.items()}
                    return
                for batch in self._record_batches(fh, names, rows, buffer):
                    yield {f.name: to_numpy(batch.column(i)) for i, f in enumerate(batch.schema)}
            except DatasetError:
                raise
            except _ARROW_ERRORS as exc:
                raise DatasetError(f"is not a readable {self.format} file ({_arrow_reason(exc)})") from None
            self._check_identity(fh)

    def _record_batches(
        self, fh: BinaryIO, names: list[str] | None, rows: int, buffer: int
    ) -> Iterator[pa.RecordBatch]:
        if self.format == "parquet":
            # pages are read through a buffer, not a whole row group's column chunks at once (pre_buffer): a
            # row group is as large as its writer chose (1 Mi rows by default), the buffer is ours
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(fh, page_checksum_verification=True, pre_buffer=False, buffer_size=buffer)
            have = set(pf.schema_arrow.names)
            cols = [n for n in names if n in have] if names is not None else None
            for group in range(pf.num_row_groups):  # one row group at a time: iter_batches over all reads ahead
                yield from pf.iter_batches(batch_size=rows, row_groups=[group], columns=cols, use_threads=False)
            return
        if self.format == "csv" and self._snapshot is not None and self._in_snapshot(fh, names):
            # fh, the CSV, is open for its identity
            snap = self._snapshot
            fields = ipc.open_file(snap).schema.names
            keep = [i for i, n in enumerate(fields) if names is None or n in names]
            f = ipc.open_file(snap, options=ipc.IpcReadOptions(included_fields=keep))
            reader = (f.get_batch(i) for i in range(f.num_record_batches))
        elif self.format == "csv":
            reader = _joined(self._csv_reader(fh, names), rows)
        else:
            try:
                f = ipc.open_file(fh)
                reader = (f.get_batch(i) for i in range(f.num_record_batches))
            except pa.ArrowInvalid:
                fh.seek(0)
                reader = ipc.open_stream(fh)
        for batch in reader:
            if names is not None:
                batch = batch.select([n for n in names if n in batch.schema.names])
            for start in range(0, batch.num_rows, rows):
                yield batch.slice(start, rows)

    def _in_snapshot(self, fh: BinaryIO, names: list[str] | None) -> bool:
        """Whether the snapshot holds every column of the CSV that `names` asks for (None: all)."""
        if self._snapshot_names is None:
            return True
        if names is None:
            return False
        head = self._csv_head(fh)
        have = set(head.names) if head is not None else None
        return all(n in self._snapshot_names for n in names if have is None or n in have)

    def _csv_reader(self, fh: BinaryIO, names: list[str] | None = None) -> pacsv.CSVStreamingReader:
        """The CSV's rows with the column types pyarrow infers from its first 1 MiB block, read in blocks of
        `CSV_READ_BLOCK` (pyarrow's reader reads up to 32 blocks ahead: 4 MiB, where 1 MiB blocks held 32)."""
        head = self._csv_head(fh)
        convert = _csv_convert(names if head is None or names is None else [n for n in names if n in head.names])
        if head is None:  # no line ends in the first block: pyarrow infers the types as it reads
            if names is not None:
                header = pacsv.open_csv(fh, read_options=pacsv.ReadOptions(block_size=1 << 16)).schema.names
                fh.seek(0)
                convert.include_columns = [n for n in names if n in header]
            read = pacsv.ReadOptions(block_size=CSV_BLOCK, use_threads=False)
            return pacsv.open_csv(fh, read_options=read, convert_options=convert)
        convert.column_types = {f.name: f.type for f in head.schema}
        read = pacsv.ReadOptions(block_size=CSV_READ_BLOCK, use_threads=False)
        return pacsv.open_csv(fh, read_options=read, convert_options=convert)

    def _csv_head(self, fh: BinaryIO) -> _CsvHead | None:
        """The columns and types of the CSV as pyarrow infers them from its first block (`CSV_BLOCK` bytes,
        cut at the last line end, as pyarrow's chunker cuts it), parsed from that block alone; None when
        the block holds no line end. `fh` is at the start after."""
        if self._head is None:
            fh.seek(0)
            block = fh.read(CSV_BLOCK)
            whole = len(block) < CSV_BLOCK or not fh.read(1)
            fh.seek(0)
            if not whole:
                end = max(block.rfind(b"\n"), block.rfind(b"\r"))
                if end < 0:
                    return None
                block = block[: end + 1]
            read = pacsv.ReadOptions(block_size=CSV_BLOCK, use_threads=False)
            table = pacsv.read_csv(io.BytesIO(block), read_options=read, convert_options=_csv_convert(None))
            self._head = _CsvHead(table.schema, table.num_rows if whole else None)
        return self._head

    def _npz(self, fh: BinaryIO) -> dict[str, np.ndarray]:
        try:
            with np.load(fh, allow_pickle=False) as npz:
                cols = {k: npz[k] for k in npz.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise DatasetError(f"not a readable NPZ file ({type(exc).__name__}: {str(exc)[:120]})") from None
        if len({len(v) if v.ndim else 1 for v in cols.values()}) > 1:
            raise DatasetError("the arrays of the NPZ file have different lengths along their first axis")
        return cols


@dataclass(frozen=True)
class _CsvHead:
    schema: pa.Schema
    rows: int | None  # rows of the file when its first block is the whole file

    @property
    def names(self) -> list[str]:
        return list(self.schema.names)


def _csv_convert(names: list[str] | None) -> pacsv.ConvertOptions:
    return pacsv.ConvertOptions(
        null_values=CSV_NULLS,
        strings_can_be_null=False,
        true_values=[],  # booleans were never inferred from CSV: "true" stays a string
        false_values=[],
        include_columns=names,
        include_missing_columns=False,
    )


def _joined(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """Record batches joined into batches of at least `rows` rows (the last may hold fewer)."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        pending.append(batch)
        held += batch.num_rows
        if held >= rows:
            yield from pa.Table.from_batches(pending).combine_chunks().to_batches()
            pending, held = [], 0
    if pending:
        yield from pa.Table.from_batches(pending).combine_chunks().to_batches()


_SMALL_INTEGERS = frozenset((pa.int8(), pa.int16(), pa.int32(), pa.uint8(), pa.uint16(), pa.uint32()))


_FLOAT64_INTEGERS = 2**53  # every integer of at most this size is exact in float64, as Arrow's safe cast checks


def _exact_in_float64(t: pa.DataType, nulls: int) -> bool:
    """Whether numpy makes the same float64 column as Arrow's cast, without the cast: floats, integers of
    at most 32 bits (exact in float64; with nulls Arrow's to_numpy gives float64 with NaN already) and
    booleans without nulls. The cast would load `pyarrow.compute` (0.03-0.1 s of CPU at every `takt test`).
    64-bit integers go without it when every value is within ±2**53; otherwise the cast refuses them."""
    return pa.types.is_floating(t) or t in _SMALL_INTEGERS or (pa.types.is_boolean(t) and nulls == 0)


def _float64(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """`col` cast to float64 as numpy, the values and errors of Arrow's safe cast."""
    t = col.type
    if _exact_in_float64(t, col.null_count):
        return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
    if t in (pa.int64(), pa.uint64()) and col.null_count == 0:
        ints = col.to_numpy(zero_copy_only=False)
        if ints.size == 0 or (int(ints.min()) >= -_FLOAT64_INTEGERS and int(ints.max()) <= _FLOAT64_INTEGERS):
            return np.asarray(ints, dtype=np.float64)
    return np.asarray(col.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def to_numpy(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """One Arrow column as numpy: numbers and booleans float64 (null → NaN), strings object, fixed-size
    lists of numbers 2-D float64."""
    t = col.type
    kind = _kind(t)
    if kind in ("number", "bool"):
        if pa.types.is_null(t):
            return np.full(len(col), np.nan)
        return _float64(col)
    if kind == "string":
        if pa.types.is_dictionary(t):
            col = col.cast(pa.string())
        return np.array(col.to_pylist(), dtype=object)
    if pa.types.is_fixed_size_list(t):
        flat = (
            col.flatten()
            if isinstance(col, pa.Array)
            else pa.concat_arrays([c.flatten() for c in col.chunks])
            if col.num_chunks
            else pa.array([], t.value_type)
        )
        return _float64(flat).reshape(len(col), t.list_size)
    return np.array(col.to_pylist(), dtype=object)
