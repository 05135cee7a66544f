"""`takt rollout promote` over a fleet's reports: time and peak memory at 500 and 5,000 devices.

Run: `python bench/bench_rollout.py [--sizes 500,5000]`. Each size runs in its own process (so peak
resident memory is that size's alone): a bare deploy repo gets, through one `git fast-import`,
every device's signed desired state, a signed canary rollout record whose canaries (1 %) ran the
new bundle healthily past the window, and every device's signed status report on its own
`refs/takt/status/<device>`. Timed: the library call promote() with the real fleet reader
(list, fetch and verify every report), which promotes the rollout to the whole fleet (writes and
signs every device's new state) in one commit and pushes it.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from compiler.bundle import MANIFEST, BundleRef, DesiredState, sign
from compiler.bundle.manifest import Manifest
from compiler.bundle.report import REPORT_FILE, STATUS_REF_PREFIX, Condition, RunnerHealth, StatusReport, seal
from compiler.fleet.reports import read_reports
from compiler.rollout.promote import promote
from compiler.rollout.state import (
    CanaryStep,
    DeviceBundles,
    Phase,
    RolloutSpec,
    RolloutState,
    sealed,
    signature_path,
    state_path,
)

DEP = "press"
# two real (empty) bundles on the branch, as publish leaves them: promote reads their manifests
MANIFESTS = [Manifest(f"{DEP}/ipc", "edge-pc", (), {"release": r}) for r in ("old", "new")]
OLD, NEW = (m.digest for m in MANIFESTS)
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _fast_import(repo: Path, files: dict[str, bytes], refs: dict[str, bytes]) -> None:
    """One commit on refs/heads/deploy with `files`, and one single-file commit per status ref."""
    out = bytearray()

    def blob(mark: int, data: bytes) -> None:
        out.extend(b"blob\nmark :%d\ndata %d\n" % (mark, len(data)) + data + b"\n")

    mark = 1
    marks = {}
    for path, data in files.items():
        blob(mark, data)
        marks[path] = mark
        mark += 1
    stamp = b"takt <takt@localhost> 1764590400 +0000"
    out.extend(b"commit refs/heads/deploy\ncommitter " + stamp + b"\ndata 7\npublish\n")
    for path, m in marks.items():
        out.extend(b"M 100644 :%d %s\n" % (m, path.encode()))
    out.extend(b"\n")
    for ref, envelope in refs.items():
        blob(mark, envelope)
        out.extend(b"commit " + ref.encode() + b"\ncommitter " + stamp + b"\ndata 6\nstatus\n")
        out.extend(b"M 100644 :%d %s\n\n" % (mark, REPORT_FILE.encode()))
        mark += 1
    subprocess.run(["git", "--git-dir", str(repo), "fast-import", "--quiet"], input=bytes(out), check=True)


def child(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-rollout-") as tmp:
        repo = Path(tmp) / "deploy.git"
        subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True)
        key = Ed25519PrivateKey.generate()
        devices = [f"ipc-{i:05}" for i in range(n)]
        canaries = tuple(devices[: max(1, n // 100)])
        dkeys = {d: Ed25519PrivateKey.generate() for d in devices}
        name = f"{DEP}/ipc"
        files: dict[str, bytes] = {f"bundles/{m.digest}/{MANIFEST}": m.to_bytes() for m in MANIFESTS}
        gens = {}
        for d in devices:
            canary = d in canaries
            state = DesiredState(
                d, 3 if canary else 2, T0 + timedelta(days=7), (BundleRef(name, NEW if canary else OLD),)
            )
            data = state.to_bytes()
            files[f"devices/{d}/desired.json"], files[f"devices/{d}/desired.json.sig"] = data, sign(data, key)
            gens[d] = state.generation
        record = RolloutState(
            DEP,
            Phase.CANARY,
            RolloutSpec("canary", canary=CanaryStep(canaries, 600.0, 0.01)),
            {d: DeviceBundles(BundleRef(name, OLD), BundleRef(name, NEW)) for d in devices},
            T0,
            {d: 3 for d in canaries},
        )
        files[state_path(DEP)], files[signature_path(DEP)] = sealed(record, key)
        refs = {}
        for d in devices:
            health = RunnerHealth(deployment=DEP, bundle=NEW if d in canaries else OLD, ready=True, frames=900,
                                  inferences=900, errors=0, error_rate=0.0, inference_p99_ms=1.2)  # fmt: skip
            report = StatusReport(d, 7, T0 + timedelta(minutes=20), gens[d], gens[d],
                                  (BundleRef(name, NEW if d in canaries else OLD),),
                                  (Condition("Ready", True, "Applied"),), (health,))  # fmt: skip
            refs[f"{STATUS_REF_PREFIX}{d}"] = seal(report, dkeys[d])
        _fast_import(repo, files, refs)
        keys = {d: k.public_key() for d, k in dkeys.items()}
        t, cpu = time.perf_counter(), _cpu()
        res = promote(str(repo), "deploy", key, lambda seen, only: read_reports(str(repo), keys, seen=seen, only=only),
                      T0 + timedelta(hours=1))  # fmt: skip
        seconds, cpu = time.perf_counter() - t, _cpu() - cpu
        assert len(res.commits) == 1 and res.decisions[0].action.value == "promote", res.decisions
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return {"devices": n, "seconds": seconds, "cpu_s": cpu, "peak_rss_mib": peak_mib}


def _cpu() -> float:
    """User + system time of this process and the git processes it waited for (the local repo's
    upload-pack included: the server's share of the work is counted too)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="500,5000")
    p.add_argument("--child", type=int)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        out = subprocess.run([sys.executable, __file__, "--child", str(n)], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{'takt rollout promote':<24}{'devices':>9}{'wall s':>10}{'CPU s':>10}{'peak RSS MiB':>14}")
    for r in rows:
        print(f"{'':<24}{r['devices']:>9}{r['seconds']:>10.2f}{r['cpu_s']:>10.2f}{r['peak_rss_mib']:>14.1f}")
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        grow = b["devices"] / a["devices"]
        time_x, rss_x = b["seconds"] / a["seconds"], b["peak_rss_mib"] / a["peak_rss_mib"]
        cpu_x = b["cpu_s"] / a["cpu_s"]
        print(f"growth {a['devices']}→{b['devices']} devices (×{grow:.0f}): wall ×{time_x:.1f}, CPU ×{cpu_x:.1f}, "
              f"peak RSS ×{rss_x:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
