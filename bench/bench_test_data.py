"""`takt test` at plant scale: the press-line example with its datasets resampled to N rows.

For each N and format (Parquet, CSV) it prints, side by side: `takt test` (wall time, rows per
second, peak RSS of the process) and a plain script that reads the same files with pyarrow and
computes the same statistics with numpy and onnxruntime (recall counts, data checks, PSI, noise
flips). With `--old DIR` it also runs `takt test` from another checkout (e.g. `git worktree add
/tmp/old <commit>`) on the CSV files, for before/after figures.

Run: `python bench/bench_test_data.py [N ...] [--old DIR] [--memory 256MiB,1GiB] [--formats parquet,csv]`
(default N: 1000000 10000000; files go to a temp dir). Several budgets show whether the peak RSS of
the whole process (interpreter, pyarrow, onnxruntime and the buffers) follows `--memory`, not only
the data buffers. The latency test is gating: on a loaded machine its p99 budget may fail (exit 1,
said in `result`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "press-line-anomaly"
FEATURES = ["vib_x", "vib_y", "vib_z", "pressure", "oil_temp"]
OLD_MAX_ROWS = 2_000_000  # the whole-in-memory reader needs ~0.7 kB a row: 10⁷ rows would take ~7 GB


def _resampled(src: Path, n: int, seed: int) -> dict[str, np.ndarray]:
    import pyarrow.csv as pacsv

    table = pacsv.read_csv(src)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, table.num_rows, n)
    cols = {}
    for name in table.column_names:
        v = table.column(name).to_numpy()[idx]
        cols[name] = v if name == "label" else v + rng.normal(0, 0.01, n)
    return cols


def _write(cols: dict[str, np.ndarray], stem: Path) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    table = pa.table(cols)
    pq.write_table(table, stem.with_suffix(".parquet"))
    pacsv.write_csv(table, stem.with_suffix(".csv"))


def _project(tmp: Path, n: int) -> Path:
    """The resampled project, made by a child process: Linux keeps a process's peak RSS across fork and
    exec, so children spawned by a parent that once held the data would report the parent's peak."""
    subprocess.run([sys.executable, __file__, "--make", str(tmp), str(n)], check=True)
    return tmp / f"press-{n}"


def _make(tmp: Path, n: int) -> Path:
    dst = tmp / f"press-{n}"
    shutil.copytree(EXAMPLE, dst, ignore=shutil.ignore_patterns(".takt-cache"))
    for name, seed in (("reference", 1), ("candidate", 2)):
        _write(_resampled(EXAMPLE / f"data/{name}.csv", n, seed), dst / f"data/{name}")
    spec = dst / "specs/tests.yaml"
    spec.write_text("".join(line for line in spec.read_text().splitlines(True) if "sha256:" not in line))
    return dst


def _use(project: Path, fmt: str) -> None:
    spec = project / "specs/tests.yaml"
    text = spec.read_text()
    for other in ("csv", "parquet"):
        text = text.replace(f"data/reference.{other}", f"data/reference.{fmt}")
        text = text.replace(f"data/candidate.{other}", f"data/candidate.{fmt}")
    spec.write_text(text)


def _measure(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int, str]:
    """(wall seconds, peak RSS in MB, exit code, last line on stderr) of a child process."""
    with tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        lines = err.read().decode("utf-8", "replace").strip().splitlines()
    return wall, usage.ru_maxrss / 1024, proc.returncode, lines[-1][:90] if lines else ""


def _takt(project: Path, pythonpath: Path | None = None, memory: str | None = None) -> tuple[float, float, int, str]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    code = "import sys; from compiler.cli.main import main; sys.argv = ['takt'] + sys.argv[1:]; main()"
    extra = ["--memory", memory] if memory else []
    return _measure(
        [sys.executable, "-c", code, "test", str(project), "--format", "json", "--no-progress", *extra], env
    )


def plain(project: Path, fmt: str) -> None:
    """The same statistics without takt: pyarrow reads, numpy computes, onnxruntime predicts."""
    import onnxruntime as ort
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    def read(name: str) -> dict[str, np.ndarray]:
        path = project / f"data/{name}.{fmt}"
        table = pq.read_table(path) if fmt == "parquet" else pacsv.read_csv(path)
        return {c: table.column(c).to_numpy().astype(np.float64) for c in table.column_names}

    ref, cand = read("reference"), read("candidate")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    model = next((project / "models").glob("*.onnx"))
    sess = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    x = np.clip(np.stack([ref[f] for f in ("vib_x", "vib_y", "vib_z")], axis=1), 0, 50).astype(np.float32)
    inputs = [i.name for i in sess.get_inputs()]

    def predict(vib: np.ndarray) -> np.ndarray:
        out = []
        for s in range(0, len(vib), 65_536):
            feeds = {inputs[0]: vib[s : s + 65_536]}
            if len(inputs) > 1:
                feeds[inputs[1]] = np.stack([ref[f][s : s + 65_536] for f in ("pressure", "oil_temp")], 1).astype(
                    np.float32
                )
            out.append(np.asarray(sess.run(["is_anomaly"], feeds)[0]).reshape(-1))
        return np.concatenate(out)

    pred = predict(x).astype(np.int64)
    truth = ref["label"].astype(np.int64)
    _recall = np.sum((pred == 1) & (truth == 1)) / max(1, np.sum(truth == 1))
    _checks = {f: (np.mean(~np.isfinite(ref[f])), np.mean((ref[f] < 0) | (ref[f] > 50))) for f in FEATURES}
    for f in ("pressure", "oil_temp"):
        q = np.unique(np.quantile(ref[f], np.linspace(0, 1, 11)))
        edges = np.concatenate(([-np.inf], q[1:-1], [np.inf]))
        r = np.histogram(ref[f], edges)[0] / ref[f].size
        c = np.histogram(cand[f], edges)[0] / cand[f].size
        r, c = np.where(r == 0, 1e-4, r), np.where(c == 0, 1e-4, c)
        _psi = float(np.sum((c - r) * np.log(c / r)))
    rng = np.random.default_rng(0)
    for _ in range(5):
        _flips = np.sum(predict(np.clip(x + rng.normal(0, 0.05, x.shape), 0, 50).astype(np.float32)) != pred)


def main() -> None:
    args = sys.argv[1:]
    if args and args[0] == "--plain":
        plain(Path(args[1]), args[2])
        return
    if args and args[0] == "--make":
        _make(Path(args[1]), int(args[2]))
        return
    old = None
    if "--old" in args:
        i = args.index("--old")
        old = Path(args[i + 1])
        del args[i : i + 2]
    memories: list[str | None] = [None]
    if "--memory" in args:  # passed to takt test (its default is 1GiB); a list runs each, side by side
        i = args.index("--memory")
        memories = list(args[i + 1].split(","))
        del args[i : i + 2]
    formats = ("parquet", "csv")
    if "--formats" in args:
        i = args.index("--formats")
        formats = tuple(args[i + 1].split(","))
        del args[i : i + 2]
    sizes = [int(float(a)) for a in args] or [1_000_000, 10_000_000]
    head = ("rows", "format", "what", "wall s", "rows/s", "peak RSS MB", "exit")
    print("{:>11} {:>8} {:>12} {:>8} {:>11} {:>12} {:>5}  result".format(*head))
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            project = _project(Path(tmp), n)
            for fmt in formats:
                _use(project, fmt)
                runs = [(f"takt {memory or '1GiB'}", _takt(project, memory=memory)) for memory in memories]
                plain_argv = [sys.executable, __file__, "--plain", str(project), fmt]
                runs.append(("plain", _measure(plain_argv)))
                if old is not None and fmt == "csv" and n <= OLD_MAX_ROWS:
                    runs.append(("takt (old)", _takt(project, old)))
                for what, (wall, rss, code, last) in runs:
                    row = f"{n:>11,} {fmt:>8} {what:>12} {wall:>8.1f} {n / wall:>11,.0f} {rss:>12.0f} {code:>5}"
                    print(f"{row}  {last}")
                sys.stdout.flush()
            shutil.rmtree(project)


if __name__ == "__main__":
    main()
