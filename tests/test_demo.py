"""The newcomer's path, as a user walks it: `make demo`'s script run with the installed `takt` and
`takt-runner` into a temporary work dir (asserted on the files it keeps and what it prints), and a
fresh `git clone` whose `make` install step builds its `.venv` from requirements.lock."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import copy_example, load_free_latency

pytestmark = pytest.mark.slow  # minutes: the whole demo, a whole venv

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the venv running the tests: its installed console scripts
INDEX = "https://pypi.org/simple/"  # where uv resolves requirements.lock's pins when its cache lacks them


def _env(home: Path, **extra: str) -> dict[str, str]:
    """A user's minimal environment: no variable of the machine's but the PATH to git, bash and make."""
    home.mkdir(parents=True, exist_ok=True)
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8", **extra}


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, str]:
    for tool in ("takt", "takt-runner"):
        if not (BIN / tool).is_file():
            pytest.fail(f"{BIN / tool} is not installed: run the tests from the venv `make` builds")
    work = tmp_path_factory.mktemp("demo")
    # the demo's own files, its example's lab latency budget made load-free: the subject here is the walk
    # through (the rollback is judged by the runner's latency gate, which stays as it is), not the host's load
    repo = work / "repo"
    (repo / "examples").mkdir(parents=True)
    for name in ("demo.sh", "demo_tools.py"):
        shutil.copy2(ROOT / "examples" / name, repo / "examples" / name)
    load_free_latency(copy_example("press-line-anomaly", repo / "examples" / "press-line-anomaly"))
    out = work / "kept"
    env = _env(work / "home", DEMO_DIR=str(out))
    r = subprocess.run(["bash", "examples/demo.sh", str(BIN.parent)], cwd=repo, env=env, capture_output=True,
                       text=True, timeout=600)  # fmt: skip
    text = re.sub(r"\x1b\[[0-9;]*m", "", r.stdout + r.stderr)
    assert r.returncode == 0, text[-4000:]
    return out, text


def test_the_demo_applies_the_first_revision_and_the_bench_runner_serves_predictions(demo):
    out, text = demo
    # the first reconcile: applied, the status Ready/Applied, the release kept where the demo says
    assert "✔ generation 1 is running (applied; reason Applied)" in text
    first = text.split("takt agent run --once   (device", 1)[1].split("takt-runner on the bench", 1)[0]
    assert re.search(r"Ready +yes +Applied: generation 1 is running", first), first
    assert f"Everything the demo made is kept in {out}" in text and (out / "report.html").is_file()
    # predictions from the recorded shift reached the historian through the runner's HTTP outputs
    points = [json.loads(ln) for ln in (out / "historian.jsonl").read_text().splitlines()]
    scores = [p for p in points if p["path"].endswith("press-anomaly-score")]
    alarms = [p["value"] for p in points if p["path"].endswith("press-anomaly-alarm")]
    # (the historian keeps listening while the agent runs 1.4.0's runner and the restored one: their points too)
    first = [p for p in scores if p["version"] == "1.3.0"]
    assert len(first) >= 10 and {p["model"] for p in scores} == {"press-anomaly-bench"}, scores[:3]
    assert {p["version"] for p in scores} <= {"1.3.0", "1.4.0"}
    assert all(isinstance(p["value"], float) and p["quality"] == "good" for p in scores)
    assert True in alarms and False in alarms  # the bearing knock at 2-3 s of the recording, and normal running
    # /metrics as the demo showed it, the infer endpoint, and a clean stop on SIGTERM
    inferences = re.search(r"^  takt_runner_inferences_total (\d+(?:\.\d+)?)$", text, re.M)
    assert inferences and float(inferences.group(1)) > 0, text
    assert re.search(r"^  takt_runner_source_connected\{source=\"press-recording\"\} 1\.0$", text, re.M)
    assert re.search(r"-> score \d+\.\d+, is_anomaly true", text) and re.search(r"is_anomaly false", text)
    assert "the runner delivered what was queued and exited with code 0 (0 = a clean stop)" in text


def test_the_demo_rolls_back_the_second_revision_on_its_latency_gate(demo):
    out, text = demo
    status = json.loads((out / "device" / "status.json").read_text())
    # back on the first release: generation 1 applied, 2 desired and refused, the link on the first release
    assert (status["appliedGeneration"], status["desiredGeneration"]) == (1, 2)
    assert status["lastKnownGood"].endswith(".1") and status["appliedRelease"] == status["lastKnownGood"][:-2]
    assert os.readlink(out / "device" / "current").endswith(status["lastKnownGood"])
    assert (status["result"], status["reason"]) == ("rolled-back", "RolledBack")
    gate = status["runnerGate"]
    assert (gate["gate"], gate["reason"]) == ("latency-p95", "LatencyExceeded")
    assert gate["deployment"] == "press-anomaly-bench"
    p95 = re.match(r"inference latency p95 (\d+\.\d+) ms > maxLatencyP95 5 ms \(estimated from", gate["figure"])
    assert p95 and float(p95.group(1)) > 5, gate["figure"]
    (runner,) = status["runners"]  # the restored runner, checked healthy before "rolled back" was said
    assert runner["ready"] and runner["live"] and runner["inferences"] > 0
    # what the user read: the gate named in the agent's status, the plain-words summary
    assert "latency-p95 gate: inference latency p95" in text and "its runner is healthy again" in text
    assert "The device runs again " in text and ", the first release" in text
    port = int(re.search(r"Its runner will serve on port (\d+)", text).group(1))
    assert not _listening(port)  # the agent stopped the runner it supervised when it exited


def _reachable(url: str) -> str | None:
    try:
        opener = urllib.request.build_opener()  # as pip reaches it: through the machine's proxy, if any
        with opener.open(url, timeout=15) as resp:
            resp.read(1)
    except (OSError, urllib.error.URLError) as exc:
        return str(getattr(exc, "reason", exc))
    return None


def _run_group(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """`cmd` in its own process group, so a timeout stops make and the pip it started, not make alone."""
    import signal

    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"{' '.join(cmd)} did not finish within {timeout:g} s")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.fixture(scope="module")
def machine_caches() -> dict[str, str]:
    """The machine's own uv and pip cache dirs, as a user's `make` would use them (a module fixture: it is made
    before the per-test fixture that points XDG_CACHE_HOME into the test run). Only a speed-up: every file
    installed from them is checked against requirements.lock's hashes all the same."""
    found = {}
    for var, cmd in (("UV_CACHE_DIR", [str(BIN / "uv"), "cache", "dir"]),
                     ("PIP_CACHE_DIR", [sys.executable, "-m", "pip", "cache", "dir"])):  # fmt: skip
        run = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if run.returncode == 0 and run.stdout.strip():
            found[var] = run.stdout.strip()
    return found


def _norm(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def test_a_fresh_clone_installs_from_the_lock_with_make(tmp_path: Path, machine_caches: dict[str, str]):
    """`make test`'s install step (the .venv stamp target) on a clean clone: uv bootstrapped by pip from its
    hashed lock, then requirements.lock by uv, both from the machine's caches where they hold the files."""
    if shutil.which("make") is None:
        pytest.fail("make is not installed: the README's two commands need it")
    unreachable = _reachable(INDEX)
    if unreachable is not None:
        pytest.skip(f"the package registry {INDEX} is unreachable ({unreachable}): cannot install from scratch")
    clone = tmp_path / "takt"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(clone)], check=True, timeout=120)
    env = _env(tmp_path / "home", **machine_caches)
    r = _run_group(["make", ".venv/.takt-installed"], clone, env, timeout=1800)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    assert (clone / ".venv/.takt-installed").is_file()
    assert not re.search(r"warning|deprecat", r.stderr, re.I), r.stderr[-2000:]  # a quiet install (pip's and uv's)
    # every pin of the lock at its exact version, and the whole venv consistent
    freeze = subprocess.run([str(clone / ".venv/bin/uv"), "pip", "freeze", "--python", str(clone / ".venv/bin/python")],
                            env=env, capture_output=True, text=True, check=True).stdout  # fmt: skip
    installed = {_norm(ln.partition("==")[0]): ln.partition("==")[2] for ln in freeze.splitlines() if "==" in ln}
    pins = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", (ROOT / "requirements.lock").read_text(), re.M)
    wrong = [(n, v, installed.get(_norm(n))) for n, v in pins if installed.get(_norm(n)) != v]
    assert len(pins) > 100 and not wrong, wrong
    check = subprocess.run([str(clone / ".venv/bin/uv"), "pip", "check", "--python", str(clone / ".venv/bin/python")],
                           env=env, capture_output=True, text=True)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    for tool, args in (("takt", ["--help"]), ("takt-runner", ["--help"])):
        run = subprocess.run([str(clone / ".venv/bin" / tool), *args], env=env, capture_output=True, text=True)
        assert run.returncode == 0 and "usage" in run.stdout.lower(), (tool, run.stdout, run.stderr)
    # the installed Takt is the clone's own (editable), not the worktree's
    where = subprocess.run([str(clone / ".venv/bin/python"), "-c", "import compiler; print(compiler.__file__)"],
                           env=env, cwd=tmp_path, capture_output=True, text=True)  # fmt: skip
    assert where.stdout.strip().startswith(str(clone)), where
    again = subprocess.run(["make", ".venv/.takt-installed"], cwd=clone, env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "up to date" in again.stdout, again.stdout  # the stamp holds: nothing redone
