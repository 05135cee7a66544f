"""The agent's footprint: resident memory when idle, CPU of a no-change cycle, commit-to-activation time.

Run: `python bench/bench_agent.py`. Builds a deploy repo from the press-line example in a temp dir.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.reconcile import Reconciler
from tests.agentkit import make_world


def _cpu() -> float:
    self_, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return self_.ru_utime + self_.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        world = make_world(root)
        state = root / "state"
        t = time.perf_counter()
        first = Reconciler(world.config(state)).run_once()
        first_apply = time.perf_counter() - t
        assert first.result == "applied", first
        cpu, wall = [], []
        for _ in range(20):
            c, w = _cpu(), time.perf_counter()
            assert Reconciler(world.config(state)).run_once().result == "unchanged"
            cpu.append(_cpu() - c)
            wall.append(time.perf_counter() - w)
        t = time.perf_counter()
        world.republish(("specs/deployment.yaml", "cpu: 500m", "cpu: 750m"))
        publish_s = time.perf_counter() - t
        t = time.perf_counter()
        assert Reconciler(world.config(state)).run_once().result == "applied"
        activate_s = time.perf_counter() - t

        idle_state = root / "idle"
        proc = subprocess.Popen(
            world.agent_cmd("ipc-press-2", str(idle_state), "--interval", "3600"),
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 120
            while not (idle_state / "status.json").is_file() and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1.0)
            status = json.loads((idle_state / "status.json").read_text())
            rss_kb = int(
                next(
                    ln.split()[1]
                    for ln in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                    if ln.startswith("VmRSS:")
                )
            )
        finally:
            proc.terminate()
            proc.wait()
    print(f"{'agent footprint':<52}{'measured':>12}{'goal':>12}")
    print(f"{'resident memory, idle (after one apply)':<52}{rss_kb / 1024:>10.1f} MB{'<= 40 MB':>12}")
    print(
        f"{'CPU of a no-change cycle (agent + git, median of 20)':<52}{statistics.median(cpu) * 1e3:>10.1f} ms"
        f"{'<= 50 ms':>12}"
    )
    print(f"{'wall time of a no-change cycle (median)':<52}{statistics.median(wall) * 1e3:>10.1f} ms{'':>12}")
    print(f"{'first apply (fetch, verify, stage, health x2)':<52}{first_apply:>11.2f} s{'':>12}")
    print(f"{'publish a change (build + publish)':<52}{publish_s:>11.2f} s{'':>12}")
    print(f"{'new commit -> activated release (one cycle)':<52}{activate_s:>11.2f} s{'':>12}")
    print(f"idle agent status: {status['result']}, generation {status['appliedGeneration']}")


if __name__ == "__main__":
    main()
