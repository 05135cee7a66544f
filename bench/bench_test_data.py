"""`takt test` at plant scale: the press-line example with its datasets resampled to N rows.

For each N and format (Parquet, CSV) it prints, side by side: `takt test` (wall time, CPU time, rows
per second, peak RSS of the process) and a plain script that reads the same files with pyarrow and
computes the same statistics with numpy and onnxruntime (recall counts, data checks, PSI, noise
flips), streaming as takt does. The first row is the fixed baseline: the same suite on 10⁴ rows, where
no budget is reached. On CSV up to 2·10⁶ rows it also times the hand-written CSV reader takt had
before pyarrow (`bench/baseline_csv_reader.py`, read only: each dataset whole, once), and with `--old
DIR` or `--old git:REV` (extracted by `git archive`, e.g. `git:92b0b6f^`, the last takt with that
reader) the whole `takt test` of that checkout, for before/after figures. Beside the old reader it
times takt's own reader on the same files (`takt reader`: each file once, in numpy batches, as takt test
reads it).

Run: `python bench/bench_test_data.py [N ...] [--memory 64MiB,1GiB] [--formats parquet,csv]
[--csv-max 1e7] [--plain-max N] [--data DIR] [--old DIR|git:REV]` (default N: 1000000 10000000).
`--data` keeps the generated files (10⁸ rows of Parquet are ~8 GB, made once in chunks) for later
runs; without it they go to a temp dir. CSV runs only up to `--csv-max` rows. Several budgets show
whether the peak RSS of the whole process follows `--memory`. The latency test is gating: on a loaded
machine its p99 budget may fail (exit 1, said in `result`). Every child runs with a bytecode cache in
the run's temp dir, filled by unmeasured warm-up runs of takt and the plain script on 10⁴ rows.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "press-line-anomaly"
FEATURES = ["vib_x", "vib_y", "vib_z", "pressure", "oil_temp"]
OLD_MAX_ROWS = 2_000_000  # the whole-in-memory reader needs ~0.7 kB a row: 10⁷ rows would take ~7 GB
BASELINE_READER = Path(__file__).resolve().parent / "baseline_csv_reader.py"


def takt_reader(files: list[Path]) -> None:
    """Each file read once through takt's own dataset reader (`compiler.testing.formats`: pyarrow, in record
    batches, every column decoded to numpy), as `takt test` reads it: streamed, never whole. The CSV path
    alone, beside the old reader's, apart from the statistics, the file's digest and takt's start."""
    from compiler.testing.datasets import open_dataset

    for file in files:
        rows, columns = 0, 0
        for batch in open_dataset(file.parent, file.name, None).batches():
            rows += len(next(iter(batch.values())))
            columns = len(batch)
        print(f"{file.name}: {rows} rows, {columns} columns", file=sys.stderr)


CHUNK = 1_000_000  # rows generated and written at a time: 10⁸ rows never sit in this process's memory


def _resampled(src: Path, n: int, seed: int) -> Iterator[dict[str, np.ndarray]]:
    """The source's rows drawn with replacement, plus a little noise, `CHUNK` rows at a time."""
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(src)
    rng = np.random.default_rng(seed)
    source = {name: table.column(name).to_numpy() for name in table.column_names}
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        idx = rng.integers(0, table.num_rows, m)
        yield {k: v[idx] if k == "label" else v[idx] + rng.normal(0, 0.01, m) for k, v in source.items()}


def _write(chunks: Iterator[dict[str, np.ndarray]], stem: Path, formats: tuple[str, ...]) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    writers: dict[str, Any] = {}
    try:
        for cols in chunks:
            table = pa.table(cols)
            if "parquet" in formats:
                if "parquet" not in writers:  # one writer: a second one would truncate the file under the first
                    writers["parquet"] = pq.ParquetWriter(stem.with_suffix(".parquet"), table.schema)
                writers["parquet"].write_table(table, row_group_size=CHUNK)
            if "csv" in formats:
                if "csv" not in writers:
                    writers["csv"] = pacsv.CSVWriter(stem.with_suffix(".csv"), table.schema)
                writers["csv"].write_table(table)
    finally:
        for w in writers.values():
            w.close()


def _project(data: Path, n: int, formats: tuple[str, ...]) -> Path:
    """The resampled project, made once under `data` (kept for later runs) by a child process: Linux keeps a
    process's peak RSS across fork and exec, so children spawned by a parent that once held the data would
    report the parent's peak."""
    dst = data / f"press-{n}"
    if not all((dst / f"data/{name}.{fmt}").is_file() for name in ("reference", "candidate") for fmt in formats):
        subprocess.run([sys.executable, __file__, "--make", str(data), str(n), ",".join(formats)], check=True)
    return dst


def _make(data: Path, n: int, formats: tuple[str, ...]) -> Path:
    dst = data / f"press-{n}"
    part = data / f".press-{n}.part"  # complete or absent: a killed generation is never mistaken for data
    shutil.rmtree(part, ignore_errors=True)
    if dst.exists():
        shutil.copytree(dst, part)
    else:
        shutil.copytree(EXAMPLE, part, ignore=shutil.ignore_patterns(".takt-cache", "reference.csv", "candidate.csv"))
    for name, seed in (("reference", 1), ("candidate", 2)):
        todo = tuple(f for f in formats if not (part / f"data/{name}.{f}").is_file())
        if todo:
            _write(_resampled(EXAMPLE / f"data/{name}.csv", n, seed), part / f"data/{name}", todo)
    spec = part / "specs/tests.yaml"
    spec.write_text("".join(line for line in spec.read_text().splitlines(True) if "sha256:" not in line))
    shutil.rmtree(dst, ignore_errors=True)
    part.rename(dst)
    return dst


def _use(project: Path, fmt: str) -> None:
    spec = project / "specs/tests.yaml"
    text = spec.read_text()
    for other in ("csv", "parquet"):
        text = text.replace(f"data/reference.{other}", f"data/reference.{fmt}")
        text = text.replace(f"data/candidate.{other}", f"data/candidate.{fmt}")
    spec.write_text(text)


PYCACHE: dict[str, str] = {}  # the children's bytecode cache (set in main), for takt and the plain script alike


def _child_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a measured child: bytecode cached in `PYCACHE`'s directory. With
    PYTHONDONTWRITEBYTECODE set and no .pyc installed (uv installs without them), every child compiled
    each module it imports from source: ~2 CPU s of takt's start and ~0.5 s of the plain script's, a
    cost neither has where the packages were installed with their bytecode."""
    out = dict(os.environ if env is None else env)
    out.pop("PYTHONDONTWRITEBYTECODE", None)
    out.update(PYCACHE)
    return out


def _measure(
    argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[float, float, float, int, str]:
    """(wall seconds, CPU seconds user+sys, peak RSS in MB, exit code, last line on stderr) of a child."""
    with tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=_child_env(env), cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        lines = err.read().decode("utf-8", "replace").strip().splitlines()
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss / 1024, proc.returncode, lines[-1][:90] if lines else ""


def _takt(
    project: Path, pythonpath: Path | None = None, memory: str | None = None
) -> tuple[float, float, float, int, str]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    code = "import sys; from compiler.cli.main import main; sys.argv = ['takt'] + sys.argv[1:]; main()"
    extra = ["--memory", memory] if memory else []
    argv = [sys.executable, "-c", code, "test", str(project), "--format", "json", "--no-progress", *extra]
    return _measure(argv, env, cwd=pythonpath)  # `-c` puts the working directory first on the path


PLAIN_BATCH = 65_536
PLAIN_SAMPLE = 1_600_000  # rows of the noise test: as many as takt's invariance sample at 1 GiB


def plain(project: Path, fmt: str) -> None:
    """The same statistics without takt: pyarrow reads, numpy computes, onnxruntime predicts. It streams
    (10⁸ rows would not fit whole) and reads only the two drift columns of the reference whole, for exact
    quantiles; the noise test runs on a seeded sample of rows, as takt's does."""
    import onnxruntime as ort
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    def batches(name: str, columns: list[str] | None = None) -> Iterator[dict[str, np.ndarray]]:
        path = project / f"data/{name}.{fmt}"
        if fmt == "parquet":
            reader: Any = pq.ParquetFile(path).iter_batches(batch_size=PLAIN_BATCH, columns=columns)
        else:
            convert = pacsv.ConvertOptions(include_columns=columns) if columns else None
            reader = pacsv.open_csv(path, convert_options=convert)
        for b in reader:
            yield {c: b.column(c).to_numpy().astype(np.float64) for c in b.schema.names}

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    model = next((project / "models").glob("*.onnx"))
    sess = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    inputs = [i.name for i in sess.get_inputs()]

    def predict(cols: dict[str, np.ndarray]) -> np.ndarray:
        vib = np.clip(np.stack([cols[f] for f in ("vib_x", "vib_y", "vib_z")], axis=1), 0, 50).astype(np.float32)
        feeds = {inputs[0]: vib}
        if len(inputs) > 1:
            feeds[inputs[1]] = np.stack([cols[f] for f in ("pressure", "oil_temp")], 1).astype(np.float32)
        return np.asarray(sess.run(["is_anomaly"], feeds)[0]).reshape(-1).astype(np.int64)

    tp = positives = rows = 0
    missing = dict.fromkeys(FEATURES, 0)
    outside = dict.fromkeys(FEATURES, 0)
    rng = np.random.default_rng(0)
    kept: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []  # (keys, rows) of the noise sample
    for cols in batches("reference"):
        pred, truth = predict(cols), cols["label"].astype(np.int64)
        tp += int(np.sum((pred == 1) & (truth == 1)))
        positives += int(np.sum(truth == 1))
        rows += len(truth)
        for f in FEATURES:
            missing[f] += int(np.sum(~np.isfinite(cols[f])))
            outside[f] += int(np.sum((cols[f] < 0) | (cols[f] > 50)))
        keys = rng.random(len(truth))
        kept.append((keys, cols))
        if sum(k.size for k, _ in kept) > 2 * PLAIN_SAMPLE:
            allk = np.concatenate([k for k, _ in kept])
            sel = np.argpartition(allk, PLAIN_SAMPLE - 1)[:PLAIN_SAMPLE]
            merged = {c: np.concatenate([r[c] for _, r in kept])[sel] for c in cols}
            kept = [(allk[sel], merged)]
    _recall = tp / max(1, positives)
    for f in ("pressure", "oil_temp"):
        ref = pq.read_table(project / f"data/reference.{fmt}", columns=[f]) if fmt == "parquet" else None
        ref_col = (
            ref.column(f).to_numpy() if ref is not None else np.concatenate([b[f] for b in batches("reference", [f])])
        )
        q = np.unique(np.quantile(ref_col, np.linspace(0, 1, 11)))
        edges = np.concatenate(([-np.inf], q[1:-1], [np.inf]))
        r = np.histogram(ref_col, edges)[0] / ref_col.size
        del ref, ref_col
        counts = np.zeros(len(edges) - 1)
        for b in batches("candidate", [f]):
            counts += np.histogram(b[f], edges)[0]
        c = counts / counts.sum()
        r, c = np.where(r == 0, 1e-4, r), np.where(c == 0, 1e-4, c)
        _psi = float(np.sum((c - r) * np.log(c / r)))
    sample = {c: np.concatenate([r[c] for _, r in kept]) for c in kept[0][1]} if kept else {}
    if sample:
        allk = np.concatenate([k for k, _ in kept])
        sel = np.sort(np.argpartition(allk, min(PLAIN_SAMPLE, allk.size) - 1)[:PLAIN_SAMPLE])
        sample = {c: v[sel] for c, v in sample.items()}
        clean = predict(sample)
        for _ in range(5):
            noisy = dict(sample)
            for f in ("vib_x", "vib_y", "vib_z"):
                noisy[f] = sample[f] + rng.normal(0, 0.05, sample[f].shape)
            _flips = int(np.sum(predict(noisy) != clean))


def _option(args: list[str], name: str, default: str | None = None) -> str | None:
    if name not in args:
        return default
    i = args.index(name)
    value = args[i + 1]
    del args[i : i + 2]
    return value


def main() -> None:
    args = sys.argv[1:]
    if args and args[0] == "--plain":
        plain(Path(args[1]), args[2])
        return
    if args and args[0] == "--takt-reader":
        takt_reader([Path(a) for a in args[1:]])
        return
    if args and args[0] == "--make":
        _make(Path(args[1]), int(args[2]), tuple(args[3].split(",")))
        return
    old = _option(args, "--old")
    # passed to takt test (its default is 1GiB); a list runs each, side by side
    memories: list[str | None] = list(m.split(",")) if (m := _option(args, "--memory")) else [None]
    formats = tuple(_option(args, "--formats", "parquet,csv").split(","))  # type: ignore[union-attr]
    csv_max = int(float(_option(args, "--csv-max", "1e7")))  # type: ignore[arg-type]
    plain_max = int(float(_option(args, "--plain-max", "1e9")))  # type: ignore[arg-type]
    keep = _option(args, "--data")  # generated files kept here (made once, reused); else a temp dir
    old_dir = tempfile.TemporaryDirectory() if old and old.startswith("git:") else None
    if old_dir is not None and old is not None:  # the old checkout's files, never a worktree of this repo
        tree = subprocess.run(["git", "-C", str(ROOT), "archive", old[4:]], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", old_dir.name], input=tree, check=True)
        old = old_dir.name
    sizes = [int(float(a)) for a in args] or [1_000_000, 10_000_000]
    print(f"load before: {os.getloadavg()[0]:.1f} (1 min), {os.cpu_count()} cores")
    head = ("rows", "format", "what", "wall s", "CPU s", "rows/s", "peak RSS MB", "exit")
    print("{:>11} {:>8} {:>12} {:>8} {:>8} {:>11} {:>12} {:>5}  result".format(*head))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(keep) if keep else Path(tmp)
        data.mkdir(parents=True, exist_ok=True)
        PYCACHE["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        warm = _project(data, 10_000, formats)  # unmeasured runs that fill the bytecode cache
        _takt(warm)
        _measure([sys.executable, __file__, "--plain", str(warm), formats[0]])
        if old is not None:
            _takt(warm, Path(old))
        # the fixed baseline: the same suite on 10⁴ rows, where no budget is reached
        for n in [10_000, *sizes]:
            fmts = tuple(f for f in formats if f != "csv" or n <= csv_max)
            project = _project(data, n, fmts)
            for fmt in fmts:
                _use(project, fmt)
                what = "baseline" if n == 10_000 else "takt"
                runs = [(f"{what} {memory or '1GiB'}", _takt(project, memory=memory)) for memory in memories]
                if 10_000 < n <= plain_max:
                    runs.append(("plain", _measure([sys.executable, __file__, "--plain", str(project), fmt])))
                if fmt == "csv" and 10_000 < n <= OLD_MAX_ROWS:
                    files = [str(project / f"data/{name}.csv") for name in ("reference", "candidate")]
                    runs.append(("old reader", _measure([sys.executable, str(BASELINE_READER), *files])))
                    runs.append(("takt reader", _measure([sys.executable, __file__, "--takt-reader", *files])))
                if old is not None and fmt == "csv" and 10_000 < n <= OLD_MAX_ROWS:
                    runs.append(("takt (old)", _takt(project, Path(old))))
                for label, (wall, cpu, rss, code, last) in runs:
                    row = f"{n:>11,} {fmt:>8} {label:>12} {wall:>8.1f} {cpu:>8.1f} {n / wall:>11,.0f}"
                    row += f" {rss:>12.0f} {code:>5}"
                    print(f"{row}  {last}")
                sys.stdout.flush()
            if not keep:
                shutil.rmtree(project)
    print(f"load after: {os.getloadavg()[0]:.1f} (1 min)")
    if old_dir is not None:
        old_dir.cleanup()


if __name__ == "__main__":
    main()
