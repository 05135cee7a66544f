"""The fleet at scale: what a device's fetch transfers beside thousands of status refs, and what
`takt fleet status` costs over 500 and 5,000 devices' reports.

Run: `python bench/bench_fleet.py [--quick]`. Everything is generated in a temp dir: a deploy repo
whose status refs are written in one `git fast-import` (each device a chain of signed reports),
served by a real `git daemon` behind a byte-counting TCP relay, and a spec repo declaring the
devices with their keys.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.gitsync import remote_head, sync
from agent.verify import state_paths
from compiler.bundle.report import Condition, RunnerHealth, StatusReport, openssh_public_key, seal
from tests.agentkit import GitDaemon, free_port

REPORTS_PER_DEVICE = 3
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class CountingRelay:
    """127.0.0.1:port → the daemon, counting the bytes each way (what the network carries)."""

    def __init__(self, target_port: int) -> None:
        self.target, self.port = target_port, free_port()
        self.down = self.up = 0
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    async def _start(self) -> None:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", self.port)

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter, down: bool) -> None:
        try:
            while data := await r.read(65536):
                if down:
                    self.down += len(data)
                else:
                    self.up += len(data)
                w.write(data)
                await w.drain()
        finally:
            w.close()

    async def _client(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        tr, tw = await asyncio.open_connection("127.0.0.1", self.target)
        await asyncio.gather(self._pipe(r, tw, False), self._pipe(tr, w, True), return_exceptions=True)

    def reset(self) -> None:
        self.down = self.up = 0

    def url(self, repo: str = "deploy.git") -> str:
        return f"git://127.0.0.1:{self.port}/{repo}"


def _git(*args: str, cwd: Path | None = None, stdin: bytes | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, check=True).stdout.decode()


def make_deploy_repo(
    root: Path, devices: int, keys: list[Ed25519PrivateKey] | None = None, branch_devices: int | None = None
) -> Path:
    """A bare deploy repo: a branch with the desired.json of `branch_devices` (default: all), and
    `devices` status refs, each a chain of REPORTS_PER_DEVICE signed reports (one fast-import stream)."""
    repo = root / "srv" / "deploy.git"
    repo.parent.mkdir(parents=True)
    _git("init", "-q", "--bare", str(repo))
    _git("config", "uploadpack.allowFilter", "true", cwd=repo)
    out = bytearray()

    def data(b: bytes) -> None:
        out.extend(b"data %d\n" % len(b) + b + b"\n")

    out += b"commit refs/heads/deploy\ncommitter publish <p@t> 1764590400 +0000\n"
    data(b"publish")
    for i in range(devices if branch_devices is None else branch_devices):
        desired = json.dumps({"version": 1, "device": f"dev-{i:05d}", "generation": 4, "bundles": []}).encode()
        out += f"M 100644 inline devices/dev-{i:05d}/desired.json\n".encode()
        data(desired)
    out += b"\n"
    for i in range(devices):
        name = f"dev-{i:05d}"
        key = keys[i] if keys else Ed25519PrivateKey.generate()
        for seq in range(1, REPORTS_PER_DEVICE + 1):
            report = StatusReport(
                name, seq, T0 + timedelta(minutes=5 * seq), 4, 4,
                conditions=(Condition("Ready", True, "Applied", "generation 4 is running"),),
                runners=(RunnerHealth("press", "a" * 64, ready=True, frames=1000 * seq, inferences=1000 * seq,
                                      error_rate=0.001 * seq, inference_p99_ms=1.2, drift_psi_max=0.02 * seq),),
            )  # fmt: skip
            out += f"commit refs/takt/status/{name}\ncommitter {name} <{name}@t> {1764590400 + seq} +0000\n".encode()
            data(f"status {name} sequence {seq}".encode())
            out += b"M 100644 inline status.json\n"
            data(seal(report, key))
            out += b"\n"
    _git("fast-import", "--quiet", cwd=repo, stdin=bytes(out))
    return repo


def device_fetch_bytes(refs: int, work: Path) -> dict[str, int]:
    """Bytes one device's own check and fetch move (protocol v2), and a v0 listing for contrast.
    The branch is the same at every size (50 devices): only the number of status refs changes."""
    repo = make_deploy_repo(work, refs, branch_devices=50)
    daemon = GitDaemon(repo.parent).start()
    relay = CountingRelay(daemon.port)
    try:
        url = relay.url()
        head = remote_head(url, "deploy", 60)
        check = relay.down + relay.up
        relay.reset()
        sync(url, "deploy", work / "device" / "repo", head, state_paths("dev-00000"), 60)
        fetch = relay.down + relay.up
        relay.reset()
        subprocess.run(["git", "-c", "protocol.version=0", "ls-remote", url], capture_output=True, check=True)
        v0 = relay.down + relay.up
        relay.reset()
        subprocess.run(["git", "-c", "protocol.version=2", "ls-remote", url], capture_output=True, check=True)
        v2_all = relay.down + relay.up
    finally:
        daemon.stop()
    return {"check": check, "fetch": fetch, "v0_listing": v0, "v2_listing_all": v2_all}


def _spec_repo(root: Path, keys: list[Ed25519PrivateKey]) -> Path:
    spec = root / "spec"
    (spec / "specs").mkdir(parents=True)
    (spec / "takt.yaml").write_text(
        "apiVersion: takt/v1\nkind: Project\nmetadata: {name: fleet}\nspec:\n  specs: ['specs/**/*.yaml']\n"
    )
    (spec / "specs" / "target.yaml").write_text(
        "apiVersion: takt/v1\nkind: Target\nmetadata: {name: ipc-x86}\nspec:\n  class: edge-pc\n  arch: x86_64\n"
        "  os: linux\n  memory: 8Gi\n  runtime: {onnxruntime: '1.20', executionProviders: [CPUExecutionProvider]}\n"
    )
    docs = [
        f"apiVersion: takt/v1\nkind: Device\nmetadata:\n  name: dev-{i:05d}\n  labels: {{plant: p{i % 4}, "
        f"line: l{i % 10}}}\nspec:\n  target: ipc-x86\n  publicKey: {openssh_public_key(k.public_key())}\n"
        for i, k in enumerate(keys)
    ]
    for start in range(0, len(docs), 500):  # a spec file is at most 1 MiB
        (spec / "specs" / f"devices-{start // 500:03d}.yaml").write_text("---\n".join(docs[start : start + 500]))
    return spec


def fleet_status_cost(devices: int, work: Path) -> dict[str, float]:
    """Wall time and peak memory of `takt fleet status --format html` as a process, over a git daemon."""
    keys = [Ed25519PrivateKey.generate() for _ in range(devices)]
    repo = make_deploy_repo(work, devices, keys)
    spec = _spec_repo(work, keys)
    daemon = GitDaemon(repo.parent).start()
    try:
        out = str(work / "fleet.html")
        cmd = [sys.executable, "-m", "compiler.cli.main", "fleet", "status", str(spec), "--deploy-repo",
               daemon.url, "--format", "html", "--output", out, "--stale-after", "2592000"]  # fmt: skip
        env = {**os.environ, "XDG_CACHE_HOME": str(work / "cache")}
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    finally:
        daemon.stop()
    if proc.returncode not in (0, 1) or not (work / "fleet.html").is_file():
        raise SystemExit(f"takt fleet status failed ({proc.returncode}): {proc.stderr[-2000:]}")
    page = (work / "fleet.html").read_text()
    assert page.count("data-device=") == devices, "the page must name every device"
    return {"wall_s": wall, "peak_mb": peak_kb / 1024}


def measure(quick: bool = False) -> dict[str, dict]:
    small, large = (20, 200) if quick else (50, 5000)  # quick: sizes that fit bench/run's two minutes
    s_small, s_large = (20, 100) if quick else (500, 5000)
    got: dict[str, dict] = {}
    for n in (small, large):
        with tempfile.TemporaryDirectory(prefix="takt-bench-fleet-") as tmp:
            got[f"fetch_{n}"] = device_fetch_bytes(n, Path(tmp))
    for n in (s_small, s_large):
        with tempfile.TemporaryDirectory(prefix="takt-bench-fleet-") as tmp:
            # each size in its own process, so the peak memory is that size's alone
            code = (f"import sys, json; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
                    f"from bench_fleet import fleet_status_cost; from pathlib import Path; "
                    f"print(json.dumps(fleet_status_cost({n}, Path({tmp!r}))))")  # fmt: skip
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit(f"fleet status over {n} devices failed:\n{out.stderr[-3000:]}")
            got[f"status_{n}"] = json.loads(out.stdout.strip().splitlines()[-1])
    got["sizes"] = {"fetch": [small, large], "status": [s_small, s_large]}
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    m = measure(ap.parse_args().quick)
    small, large = m["sizes"]["fetch"]
    a, b = m[f"fetch_{small}"], m[f"fetch_{large}"]
    print(
        f"{'a device fetch beside N status refs (bytes on the wire)':<58}{f'{small:,} refs':>12}{f'{large:,} refs':>12}"
    )
    print(f"{'  branch check (ls-remote, v2 ref prefix)':<58}{a['check']:>12,}{b['check']:>12,}")
    print(f"{'  its own state: clone + sparse checkout (v2)':<58}{a['fetch']:>12,}{b['fetch']:>12,}")
    print(f"{'  for contrast: a v0 client listing every ref':<58}{a['v0_listing']:>12,}{b['v0_listing']:>12,}")
    print(
        f"{'  for contrast: v2 listing every ref (no prefix)':<58}{a['v2_listing_all']:>12,}{b['v2_listing_all']:>12,}"
    )
    s_small, s_large = m["sizes"]["status"]
    x, y = m[f"status_{s_small}"], m[f"status_{s_large}"]
    print(f"{'takt fleet status --format html (whole process)':<58}{f'{s_small:,} dev':>12}{f'{s_large:,} dev':>12}")
    print(f"{'  wall time':<58}{x['wall_s']:>11.2f}s{y['wall_s']:>11.2f}s")
    print(f"{'  peak resident memory':<58}{x['peak_mb']:>10.0f}MB{y['peak_mb']:>10.0f}MB")
    print(f"  growth x{s_large / s_small:.0f} devices: time x{y['wall_s'] / x['wall_s']:.1f}, "
          f"memory x{y['peak_mb'] / x['peak_mb']:.1f} ({REPORTS_PER_DEVICE} signed reports per device)")  # fmt: skip


if __name__ == "__main__":
    main()
