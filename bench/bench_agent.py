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


def measure(cycles: int = 20) -> dict[str, float]:
    """Idle memory, no-change cycle CPU and wall, first apply, publish and activation times."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        world = make_world(root)
        state = root / "state"
        t = time.perf_counter()
        first = Reconciler(world.config(state)).run_once()
        first_apply = time.perf_counter() - t
        assert first.result == "applied", first
        cpu, wall = [], []
        for _ in range(cycles):
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
    return {
        "rss_mb": rss_kb / 1024,
        "cycle_cpu_ms": statistics.median(cpu) * 1e3,
        "cycle_wall_ms": statistics.median(wall) * 1e3,
        "first_apply_s": first_apply,
        "publish_s": publish_s,
        "activate_s": activate_s,
        "status": status["result"],
        "generation": status["appliedGeneration"],
    }


def main() -> None:
    m = measure()
    rss_kb, first_apply, publish_s, activate_s = m["rss_mb"] * 1024, m["first_apply_s"], m["publish_s"], m["activate_s"]
    print(f"{'agent footprint':<52}{'measured':>12}{'goal':>12}")
    print(f"{'resident memory, idle (after one apply)':<52}{rss_kb / 1024:>10.1f} MB{'<= 40 MB':>12}")
    print(f"{'CPU of a no-change cycle (agent + git, median of 20)':<52}{m['cycle_cpu_ms']:>10.1f} ms{'<= 50 ms':>12}")
    print(f"{'wall time of a no-change cycle (median)':<52}{m['cycle_wall_ms']:>10.1f} ms{'':>12}")
    print(f"{'first apply (fetch, verify, stage, health x2)':<52}{first_apply:>11.2f} s{'':>12}")
    print(f"{'publish a change (build + publish)':<52}{publish_s:>11.2f} s{'':>12}")
    print(f"{'new commit -> activated release (one cycle)':<52}{activate_s:>11.2f} s{'':>12}")
    print(f"idle agent status: {m['status']}, generation {m['generation']}")


if __name__ == "__main__":
    main()
