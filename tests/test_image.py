"""The runner image (targets/it_server/image/build.sh): two builds give the same manifest digest, and
its root filesystem, unpacked, runs takt-runner as user 10001 on a replayed file.

Builds a Debian root twice (minutes, network to the apt mirror and the package index): marked
`image`, it runs with `make image-test`, not in `make test` (-m "not image"); it needs root for debootstrap/chroot.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from tests.runnerkit import RunnerProcess, config_for, expected, free_port, write_bundle

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "targets" / "it_server" / "image" / "build.sh"


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "debootstrap and chroot need root"
    if not shutil.which("debootstrap"):
        return "debootstrap is not installed (apt-get install debootstrap)"
    return None


pytestmark = [pytest.mark.image, pytest.mark.slow, pytest.mark.skipif(_why_not() is not None, reason=_why_not() or "")]


def _build(out: Path) -> tuple[str, float]:
    start = time.monotonic()
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(BUILD), str(out)], capture_output=True, text=True, env=env, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1], time.monotonic() - start


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, str]]:
    made = []
    for n in ("a", "b"):
        out = tmp_path_factory.mktemp(f"image-{n}")
        digest, seconds = _build(out)
        size = sum(p.stat().st_size for p in (out / "layout").rglob("*") if p.is_file())
        print(f"image build {n}: {digest} in {seconds:.0f} s, layout {size / 2**20:.1f} MiB")
        made.append((out, digest))
    return made


def _blob(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest.removeprefix("sha256:")


def _manifest(layout: Path) -> dict:
    index = json.loads((layout / "index.json").read_text())
    return json.loads(_blob(layout, index["manifests"][0]["digest"]).read_text())


def test_two_builds_have_the_same_digest(builds):
    (a, da), (b, db) = builds
    assert da.startswith("sha256:") and len(da) == 71
    assert (a / "debian-packages.txt").read_text() == (b / "debian-packages.txt").read_text()
    ma, mb = _manifest(a / "layout"), _manifest(b / "layout")
    assert ma["layers"] == mb["layers"], "the root filesystems differ"
    assert ma == mb
    assert da == db
    assert (a / "reference").read_text().strip().endswith("@" + da)


def test_the_config_runs_takt_runner_as_10001_without_a_shell(builds):
    layout = builds[0][0] / "layout"
    config = json.loads(_blob(layout, _manifest(layout)["config"]["digest"]).read_text())
    assert config["config"]["User"] == "10001:10001"
    assert config["config"]["Entrypoint"] == ["/usr/local/bin/takt-runner"]
    assert "Cmd" not in config["config"]
    assert config["created"] == _manifest(layout)["annotations"]["org.opencontainers.image.created"]


def _unpack(layout: Path, dest: Path) -> Path:
    """The root filesystem: by umoci where installed (a reader that is not ours), else by tarfile."""
    if shutil.which("umoci"):
        tag = json.loads((layout / "index.json").read_text())["manifests"][0]["annotations"]
        bundle = dest / "bundle"
        subprocess.run(["umoci", "unpack", "--image", f"{layout}:{tag['org.opencontainers.image.ref.name']}",
                        str(bundle)], check=True, capture_output=True)  # fmt: skip
        return bundle / "rootfs"
    root = dest / "rootfs"
    with tarfile.open(_blob(layout, _manifest(layout)["layers"][0]["digest"])) as tar:
        tar.extractall(root, filter="fully_trusted")
    return root


def test_the_root_filesystem_runs_the_runner(builds, tmp_path: Path):
    root = _unpack(builds[0][0] / "layout", tmp_path)
    (root / "dev" / "null").unlink(missing_ok=True)
    os.mknod(root / "dev" / "null", 0o20666, os.makedev(1, 3))  # what a container runtime mounts
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    help_ = subprocess.run([chroot, str(root), "/usr/local/bin/takt-runner", "--help"], capture_output=True,
                           text=True, timeout=60)  # fmt: skip
    assert help_.returncode == 0, help_.stderr
    assert "usage: takt-runner" in help_.stdout

    # a bundle on the file source, replayed by the image's python as user 10001
    from compiler.bundle import runner as contract

    bundle = root / "srv" / "bundle"
    bundle.mkdir(parents=True)
    rows = [(float(i), 0.5 * i) for i in range(5)]
    (bundle / "data.csv").write_text("timestamp,a,b\n" + "".join(f"{i * 0.01:.2f},{a},{b}\n" for i, (a, b) in
                                                                 enumerate(rows)))  # fmt: skip
    src = contract.FileSource(path="data.csv", format="csv", fields=(
        contract.FileField(name="a", dtype="float32", address=contract.FileAddress(column="a")),
        contract.FileField(name="b", dtype="float32", address=contract.FileAddress(column="b")),
    ))  # fmt: skip
    write_bundle(bundle, config_for("replay", src))
    port = free_port()
    cmd = [chroot, "--userspec=10001:10001", str(root), "/usr/local/bin/takt-runner",
           "--config", "/srv/bundle/runner.json", "--http-port", str(port), "--http-host", "127.0.0.1"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={"PATH": "/usr/bin"})
    rp = RunnerProcess(proc, port)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the runner in the image did not answer in 60 s"
            try:
                if rp.get("/v2/health/live")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        rp.wait_ready()
        deadline = time.monotonic() + 30
        while rp.metric("takt_runner_inferences_total") < len(rows):
            assert time.monotonic() < deadline, "the replayed rows were not all inferred"
            time.sleep(0.1)
        body = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [3.0, 4.0]}]}
        code, res = rp.post("/v2/models/m/infer", body)
        assert code == 200 and res["outputs"][0]["data"] == pytest.approx([expected(3.0, 4.0)])
        status = Path(f"/proc/{proc.pid}/status").read_text()  # chroot execs the runner: the same process
        assert next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:] == ["10001"] * 4
    finally:
        code, err = rp.stop()
    assert code == 0, err
