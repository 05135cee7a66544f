"""Validation throughput at scale, with the loading alternatives side by side.

Run: `make bench` (or `python bench/bench_validate.py`). Figures are wall-clock on this
machine; compare columns within one run, not across machines.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ruamel.yaml import YAML

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate

from compiler.validate.pipeline import validate


def _best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _load_all(root: Path, typ: str, pure: bool, compose: bool) -> None:
    yaml = YAML(typ=typ, pure=pure)
    for f in sorted((root / "specs").glob("*.yaml")):
        text = f.read_text()
        list(yaml.compose_all(text) if compose else yaml.load_all(text))


def main() -> None:
    print(f"{'scenario':<34}{'documents':>10}{'validate s':>12}{'docs/s':>10}{'CLI s':>9}{'findings':>10}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, deployments, lines in (("1,000 documents", 465, 20), ("1,000 deployments (fleet)", 1000, 50)):
            root = Path(tmp) / label.split()[0].replace(",", "")
            docs = generate(root, deployments, lines=lines)
            result = validate(root)
            secs = _best(lambda r=root: validate(r))
            t = time.perf_counter()
            cli = subprocess.run(
                [sys.executable, "-m", "compiler.cli.main", "validate", str(root), "--no-progress"],
                capture_output=True,
                text=True,
            )
            cli_secs = time.perf_counter() - t
            assert cli.returncode == 0, cli.stdout[-2000:]
            print(
                f"{label:<34}{docs:>10}{secs:>12.2f}{docs / secs:>10.0f}{cli_secs:>9.2f}{len(result.diagnostics):>10}"
            )
            rows.append((root, docs))

        root, docs = rows[-1]
        print(f"\nloading {docs} documents only (no validation), best of 3:")
        print(f"{'loader':<46}{'s':>8}{'ms/doc':>9}")
        for name, typ, pure, compose in (
            ("C composer with marks (takt's path)", "safe", False, True),
            ("pure-Python composer with marks", "safe", True, True),
            ("round-trip load (comments, for rewriting)", "rt", True, False),
        ):
            secs = _best(lambda n=(typ, pure, compose): _load_all(root, *n), repeat=3 if not pure else 1)
            print(f"{name:<46}{secs:>8.2f}{secs / docs * 1000:>9.2f}")

        stages = []
        for _ in range(3):
            t = time.perf_counter()
            validate(root)
            stages.append(time.perf_counter() - t)
        print(f"\nfleet validate: median {statistics.median(stages):.2f} s over 3 runs")


if __name__ == "__main__":
    main()
