"""agent/health.py, fast: the health gate on a hand-made release (a two-input linear model, its runner.json and
an NPZ of samples), the tolerance and latency budget at their exact bounds through a fake clock, and the
subprocess driver against tiny stand-in interpreters (`make mutation`: every mutant of health.py)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent import health
from tests.conftest import TINY
from tests.procs import running
from tests.test_runner_contract import _doc

DIGEST = "d" * 64
X = np.array([[1.0, 1.0], [2.0, 4.0], [0.0, 2.0], [6.0, 0.0]], dtype=np.float32)
Y = (X.sum(axis=1, keepdims=True) * 0.5).astype(np.float32)  # what TINY computes: y = 0.5 x0 + 0.5 x1


def _bundle(release: Path, digest: str, *, model: bool = True, config: dict[str, Any] | None = None,
            expected: np.ndarray | None = None, x: np.ndarray = X) -> None:  # fmt: skip
    bundle = release / "bundles" / digest
    bundle.mkdir(parents=True)
    if model:
        (bundle / "model").mkdir()
        (bundle / "model" / "model.onnx").write_bytes(TINY)
    if config is not None:
        (bundle / "runner.json").write_bytes(json.dumps(config).encode())
    if expected is not None:
        (bundle / "health").mkdir()
        np.savez(bundle / "health" / "samples.npz", x=x, **{"expected/y": expected})


def _config(*, samples: dict[str, Any] | None, latency: float | None = None) -> dict[str, Any]:
    doc = _doc()
    doc["model"]["inputs"] = [{"name": "x", "dtype": "float32", "shape": ["batch", 2]}]
    doc["model"]["outputs"] = [{"name": "y", "dtype": "float32", "shape": ["batch", 1]}]
    doc["bindings"], doc["outputs"], doc["model"]["preprocessing"] = [], [], []
    doc["health"].pop("samples")
    doc["health"].pop("latencySeconds")
    if samples is not None:
        doc["health"]["samples"] = {"file": "health/samples.npz", **samples}
    if latency is not None:
        doc["health"]["latencySeconds"] = latency
    return doc


def _release(tmp: Path, bundles: list[tuple[str, str]]) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "release.json").write_text(json.dumps({"bundles": [{"name": n, "digest": d} for n, d in bundles]}))
    return tmp


class Clock:
    """perf_counter for the gate: the warm-up is not timed, the timed run takes `took` seconds."""

    def __init__(self, took: float, start: float = 0.0) -> None:
        self.times = iter([start, start + took])

    def perf_counter(self) -> float:
        return next(self.times)


# --- check_release --------------------------------------------------------------------------------------------


def test_a_bundle_without_a_model_is_healthy_and_says_why(tmp_path: Path) -> None:
    release = _release(tmp_path, [("line/ipc", DIGEST)])
    _bundle(release, DIGEST, model=False)
    assert health.check_release(release) == {
        "ok": True, "checks": [{"bundle": "line/ipc", "ok": True, "detail": "no model to load (not an edge bundle)"}]}


@pytest.mark.parametrize("config", [None, "without samples"])
def test_a_model_without_samples_only_has_to_load(tmp_path: Path, config: str | None) -> None:
    release = _release(tmp_path, [("line/ipc", DIGEST)])
    _bundle(release, DIGEST, config=_config(samples=None) if config else None)
    assert health.check_release(release) == {
        "ok": True, "checks": [{"bundle": "line/ipc", "ok": True, "detail": "model loads; no health samples"}]}


def test_samples_the_model_reproduces_pass_with_their_count_and_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = _release(tmp_path, [("line/ipc", DIGEST)])
    _bundle(release, DIGEST, config=_config(samples={"abs": 0.0, "rel": 0.0}), expected=Y)
    monkeypatch.setattr(health, "time", Clock(0.00125))
    assert health.check_release(release) == {
        "ok": True, "checks": [{"bundle": "line/ipc", "ok": True, "detail": "4 samples in 1.25 ms"}]}


@pytest.mark.parametrize(("abs_", "rel", "ok"), [
    (0.25, 0.0, True), (0.2, 0.0, False),  # every output off by 0.25: within an absolute 0.25, not 0.2
    (0.0, 0.2, True), (0.0, 0.19, False),  # relative to the expected 1.25: 0.2 of it covers 0.25, 0.19 not
])  # fmt: skip
def test_the_tolerance_is_the_bundle_s_absolute_and_relative_one(tmp_path: Path, abs_: float, rel: float,
                                                                ok: bool) -> None:  # fmt: skip
    release = _release(tmp_path, [("line/ipc", DIGEST)])
    _bundle(release, DIGEST, config=_config(samples={"abs": abs_, "rel": rel}), expected=Y + np.float32(0.25))
    report = health.check_release(release)
    assert report["ok"] is ok and report["checks"][0]["ok"] is ok
    if not ok:
        assert report["checks"][0]["detail"] == "outputs y differ from the health samples"


@pytest.mark.parametrize(("took", "budget", "ok"), [(0.004, 0.001, True), (0.004, 0.000999, False),
                                                    (10.0, None, True)])  # fmt: skip
def test_the_latency_budget_is_per_sample_and_inclusive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, took: float, budget: float | None, ok: bool
) -> None:
    release = _release(tmp_path, [("line/ipc", DIGEST)])
    _bundle(release, DIGEST, config=_config(samples={}, latency=budget), expected=Y)
    monkeypatch.setattr(health, "time", Clock(took))
    check = health.check_release(release)["checks"][0]
    assert check["ok"] is ok
    if ok:
        assert check["detail"] == f"4 samples in {took * 1e3:.2f} ms"
    else:
        assert check["detail"] == "1.00 ms per sample exceeds the budget of 1.00 ms"


def test_wrong_outputs_are_named_before_a_blown_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = _release(tmp_path, [("line/ipc", DIGEST)])
    _bundle(release, DIGEST, config=_config(samples={}, latency=1e-9), expected=Y + 1)
    monkeypatch.setattr(health, "time", Clock(1.0))
    assert health.check_release(release)["checks"][0] == {
        "bundle": "line/ipc", "ok": False, "detail": "outputs y differ from the health samples"}


def test_one_unhealthy_bundle_makes_the_release_unhealthy_and_every_bundle_is_checked(tmp_path: Path) -> None:
    other = "e" * 64
    release = _release(tmp_path, [("a/ipc", DIGEST), ("b/ipc", other), ("c/ipc", "f" * 64)])
    _bundle(release, DIGEST, config=_config(samples={}), expected=Y)
    _bundle(release, other, config=_config(samples={}), expected=Y + 1)
    _bundle(release, "f" * 64, model=False)
    report = health.check_release(release)
    assert report["ok"] is False
    assert [(c["bundle"], c["ok"]) for c in report["checks"]] == [("a/ipc", True), ("b/ipc", False), ("c/ipc", True)]


# --- run_health: the subprocess ---------------------------------------------------------------------------------


def _interpreter(tmp: Path, script: str) -> str:
    path = tmp / f"python-{abs(hash(script))}"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return str(path)


def _report(*checks: tuple[str, bool, str]) -> str:
    return json.dumps({"ok": all(c[1] for c in checks),
                       "checks": [{"bundle": b, "ok": ok, "detail": d} for b, ok, d in checks]})  # fmt: skip


def test_a_healthy_report_lists_every_check_and_only_its_last_line_counts(tmp_path: Path) -> None:
    report = _report(("a", True, "fine"), ("b", True, "also"))
    python = _interpreter(tmp_path, f"echo 'noise from a library'\necho '{report}'\n")
    assert health.run_health(tmp_path, python, timeout=60) == (True, "a: fine; b: also")


def test_an_unhealthy_report_names_only_the_failing_checks(tmp_path: Path) -> None:
    report = _report(("a", True, "fine"), ("b", False, "bad"), ("c", False, "worse"))
    python = _interpreter(tmp_path, f"echo '{report}'\nexit 1\n")
    assert health.run_health(tmp_path, python, timeout=60) == (False, "b: bad; c: worse")


def test_a_check_that_prints_no_report_crashed_with_its_last_error_line(tmp_path: Path) -> None:
    python = _interpreter(tmp_path, "echo first >&2\necho 'Segmentation fault' >&2\nexit 139\n")
    assert health.run_health(tmp_path, python, timeout=60) == (False, "health check crashed: Segmentation fault")
    python = _interpreter(tmp_path, "exit 3\n")
    assert health.run_health(tmp_path, python, timeout=60) == (False, "health check crashed: no output")
    python = _interpreter(tmp_path, "echo 'not json'\nprintf '%0400d\\n' 7 >&2\n")
    ok, why = health.run_health(tmp_path, python, timeout=60)
    assert not ok and why == "health check crashed: " + "0" * 300  # the 400-character line cut at 300


def test_a_check_past_its_timeout_is_killed(tmp_path: Path) -> None:
    import time

    marker = tmp_path / "finished"
    python = _interpreter(tmp_path, f"sleep 1\ntouch {marker}\n")
    assert health.run_health(tmp_path, python, timeout=0.3, poll=0.05) == (False, "health check timed out after 0 s")
    time.sleep(1.2)
    assert not marker.exists()  # killed, not left running
    python = _interpreter(tmp_path, "sleep 3\n")
    assert health.run_health(tmp_path, python, timeout=1.6, poll=0.05) == (False, "health check timed out after 2 s")


def _ends(pid: int) -> bool:
    """A killed process stops running once the kernel has delivered the signal: within seconds, not at once."""
    import time

    deadline = time.monotonic() + 10
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    return not running(pid)


@pytest.mark.parametrize("end", ["timeout", "preempt"])
def test_what_the_check_started_is_killed_with_it(tmp_path: Path, end: str) -> None:
    """A check's children are in its process group and die with it: before, only the check was killed, so a
    child with its own output went on running, and a child holding the check's pipes kept the agent waiting
    for as long as it lived."""
    pids = tmp_path / "pids"
    detached, holding_the_pipes = "sleep 300 >/dev/null 2>&1 &", "sleep 20 &"
    python = _interpreter(tmp_path, f"{detached}\necho $! > {pids}\n{holding_the_pipes}\necho $! >> {pids}\nwait\n")
    preempt = (lambda: pids.exists() and len(pids.read_text().split()) == 2) if end == "preempt" else None
    ok, why = health.run_health(tmp_path, python, timeout=2 if end == "timeout" else 60, preempt=preempt,
                                poll=0.05, preempt_every=0.05)  # fmt: skip
    expected = "health check timed out after 2 s" if end == "timeout" else "preempted by a newer desired state"
    assert not ok and why == expected
    started = [int(p) for p in pids.read_text().split()]
    assert len(started) == 2 and all(_ends(p) for p in started)


def test_a_wait_that_ends_in_an_exception_kills_the_check(tmp_path: Path) -> None:
    """The agent stopped by a signal while it waits (KeyboardInterrupt, SystemExit from its SIGTERM handler)
    or a preempt() that raises: the check and its children never outlive the wait."""
    pids = tmp_path / "pids"
    python = _interpreter(tmp_path, f"sleep 60 &\necho $! > {pids}\nwait\n")

    def stopped() -> bool:
        if pids.exists() and pids.read_text().strip():
            raise KeyboardInterrupt
        return False

    with pytest.raises(KeyboardInterrupt):
        health.run_health(tmp_path, python, timeout=60, preempt=stopped, poll=0.05, preempt_every=0.05)
    assert _ends(int(pids.read_text()))


def test_a_process_that_left_the_group_and_holds_the_pipes_is_not_waited_for(tmp_path: Path) -> None:
    """A child in a session of its own survives the group's kill: the check's end is not its end."""
    import signal

    pids = tmp_path / "pids"
    python = _interpreter(tmp_path, f"setsid sleep 60 &\necho $! > {pids}\nwait\n")
    ok, why = health.run_health(tmp_path, python, timeout=0.5, poll=0.05)
    escaped = int(pids.read_text())
    try:
        assert (ok, why) == (False, "health check timed out after 0 s")
        assert running(escaped), "returned only once the process that held the pipes had ended"
    finally:
        os.kill(escaped, signal.SIGKILL)


def test_preemption_is_asked_every_interval_and_abandons_the_check(tmp_path: Path) -> None:
    python = _interpreter(tmp_path, "sleep 3\n")
    asked: list[float] = []

    def preempt() -> bool:
        asked.append(1)
        return len(asked) == 3

    ok, why = health.run_health(tmp_path, python, timeout=60, preempt=preempt, poll=0.01, preempt_every=0.1)
    assert (ok, why) == (False, "preempted by a newer desired state") and len(asked) == 3
    asked.clear()
    ok, why = health.run_health(tmp_path, python, timeout=0.5, preempt=lambda: asked.append(1) or False,
                                poll=0.01, preempt_every=5)  # fmt: skip
    assert (ok, why) == (False, "health check timed out after 0 s") and asked == []  # not asked before its interval
    ok, why = health.run_health(tmp_path, python, timeout=0.4, preempt=None, poll=0.01, preempt_every=0.01)
    assert why == "health check timed out after 0 s"


def test_the_real_gate_runs_as_a_module_of_this_interpreter(tmp_path: Path) -> None:
    release = _release(tmp_path / "r", [("line/ipc", DIGEST)])
    _bundle(release, DIGEST, config=_config(samples={}), expected=Y)
    ok, why = health.run_health(release, None, timeout=120)
    assert ok is True and why.startswith("line/ipc: 4 samples in ")
    broken = _release(tmp_path / "broken", [("line/ipc", DIGEST)])
    _bundle(broken, DIGEST, config=_config(samples={}), expected=None)  # the samples file is missing
    ok, why = health.run_health(broken, sys.executable, timeout=120)
    assert ok is False and why.startswith("?: FileNotFoundError: ")


def test_main_prints_one_report_and_exits_by_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.setattr(health, "check_release", lambda release: {"ok": True, "checks": [str(release)]})
    monkeypatch.setattr(sys, "argv", ["health", str(tmp_path)])
    with pytest.raises(SystemExit) as info:
        health.main()
    assert info.value.code == 0 and json.loads(capsys.readouterr().out) == {"ok": True, "checks": [str(tmp_path)]}

    def boom(release: Path) -> dict[str, Any]:
        raise ValueError("no such model")

    monkeypatch.setattr(health, "check_release", boom)
    with pytest.raises(SystemExit) as info:
        health.main()
    assert info.value.code == 1 and json.loads(capsys.readouterr().out) == {
        "ok": False, "checks": [{"bundle": "?", "ok": False, "detail": "ValueError: no such model"}]}


# --- check_release: more bundles, the clock, the latency bound and the samples file ------------------------------


def test_bundles_without_a_model_or_samples_do_not_end_the_check(tmp_path: Path) -> None:
    release = _release(tmp_path, [("a/ipc", DIGEST), ("b/ipc", "e" * 64), ("c/ipc", "f" * 64)])
    _bundle(release, DIGEST, model=False)
    _bundle(release, "e" * 64, config=_config(samples=None))
    _bundle(release, "f" * 64, config=_config(samples={}), expected=Y + 1)
    assert health.check_release(release) == {"ok": False, "checks": [
        {"bundle": "a/ipc", "ok": True, "detail": "no model to load (not an edge bundle)"},
        {"bundle": "b/ipc", "ok": True, "detail": "model loads; no health samples"},
        {"bundle": "c/ipc", "ok": False, "detail": "outputs y differ from the health samples"},
    ]}  # fmt: skip


def test_the_time_is_the_timed_run_s_whatever_the_clock_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = _release(tmp_path, [("line/ipc", DIGEST)])
    _bundle(release, DIGEST, config=_config(samples={}, latency=0.0625), expected=Y)
    monkeypatch.setattr(health, "time", Clock(0.5, start=1024.0))  # 0.125 s a sample: twice the budget
    assert health.check_release(release)["checks"][0] == {
        "bundle": "line/ipc", "ok": False, "detail": "125.00 ms per sample exceeds the budget of 62.50 ms"}


@pytest.mark.parametrize(("rows", "took", "ok"), [(1, 0.25, True), (1, 0.375, False), (0, 0.375, False)])
def test_one_sample_or_none_takes_the_whole_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: int,
                                                took: float, ok: bool) -> None:  # fmt: skip
    release = _release(tmp_path, [("line/ipc", DIGEST)])
    _bundle(release, DIGEST, config=_config(samples={}, latency=0.25), expected=Y[:rows], x=X[:rows])
    monkeypatch.setattr(health, "time", Clock(took))
    check = health.check_release(release)["checks"][0]
    assert check["ok"] is ok
    if not ok:  # an empty samples file is not a division by zero: its one run is its sample
        assert check["detail"] == "375.00 ms per sample exceeds the budget of 250.00 ms"


class _Payload:
    """Unpickling it opens (creates) the marker: what a pickled object in a samples file could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return open, (str(self.marker), "w")


def test_threat_a_pickled_object_in_the_samples_is_never_loaded(tmp_path: Path) -> None:
    release = _release(tmp_path / "r", [("line/ipc", DIGEST)])
    _bundle(release, DIGEST, config=_config(samples={}), expected=Y)
    marker = tmp_path / "unpickled"
    payload = np.empty(1, dtype=object)
    payload[0] = _Payload(marker)
    np.savez(release / "bundles" / DIGEST / "health" / "samples.npz", x=X, **{"expected/y": payload})
    with pytest.raises(ValueError, match="allow_pickle"):
        health.check_release(release)
    assert not marker.exists()


# --- run_health against a simulated check and clock: the bounds exactly, without waiting ------------------------


class _Simulated:
    """Popen and the monotonic clock for run_health: the check runs `runs` seconds of simulated time, and each
    wait for it moves the clock by the wait's timeout (or to the check's exit, if sooner)."""

    def __init__(self, runs: float, report: str) -> None:
        self.now = self.start = 4096.0
        self.exits, self.report = self.start + runs, report
        self.waits: list[float] = []
        self.drains: list[float | None] = []  # the waits for the output after the kill
        self.killed = False

    def monotonic(self) -> float:
        return self.now

    def __call__(self, argv: list[str], **kwargs: Any) -> _Simulated:
        return self

    pid = 0  # never a real process group: os.killpg is the fixture's

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        if self.killed:
            self.drains.append(timeout)
            return "", ""
        if timeout is None:
            return self.report, ""
        self.waits.append(timeout)
        if len(self.waits) > 1000:
            raise RuntimeError("run_health spins without waiting")
        if self.now + timeout >= self.exits:
            self.now = self.exits
            return self.report, ""
        self.now += max(timeout, 0.0)
        raise health.subprocess.TimeoutExpired("check", timeout)

    def kill(self) -> None:
        self.killed = True

    def wait(self) -> int:
        assert self.killed, "waited for a check that was never killed"
        return -9

    def killpg(self, pgid: int, sig: int) -> None:
        assert (pgid, sig) == (self.pid, health.signal.SIGKILL)
        self.killed = True


@pytest.fixture
def simulate(monkeypatch: pytest.MonkeyPatch):
    def make(runs: float) -> _Simulated:
        sim = _Simulated(runs, _report(("a", True, "fine")))
        monkeypatch.setattr(health.subprocess, "Popen", sim)
        monkeypatch.setattr(health, "time", sim)
        monkeypatch.setattr(health.os, "killpg", sim.killpg)
        return sim

    return make


def test_the_timeout_is_exclusive(simulate) -> None:
    sim = simulate(2.25)  # still running at exactly 2 s: not yet over its timeout, and it finishes
    assert health.run_health(Path("r"), "python", timeout=2.0, poll=0.5) == (True, "a: fine")
    sim = simulate(2.75)
    assert health.run_health(Path("r"), "python", timeout=2.0, poll=0.5) == (False, "health check timed out after 2 s")
    assert sim.killed and sim.now - sim.start == 2.5  # killed at the first look past the timeout
    assert sim.drains == [2]  # its output is waited for two seconds at most, once


def test_preemption_is_asked_every_two_seconds_by_default(simulate) -> None:
    sim = simulate(60.0)
    asked: list[float] = []

    def preempt() -> bool:
        asked.append(sim.now - sim.start)
        return len(asked) == 3

    assert health.run_health(Path("r"), "python", timeout=30, preempt=preempt, poll=0.5) == (
        False, "preempted by a newer desired state")  # fmt: skip
    assert asked == [2.0, 4.0, 6.0] and sim.killed


def test_the_check_is_looked_at_every_tenth_of_a_second_by_default(simulate) -> None:
    sim = simulate(0.25)
    assert health.run_health(Path("r"), "python", timeout=30) == (True, "a: fine")
    assert sim.waits == [0.1, 0.1, 0.1]


def test_a_check_that_prints_more_than_a_pipe_holds_is_read_while_it_runs(tmp_path: Path) -> None:
    report = _report(("a", True, "fine"))
    noise = "head -c 300000 /dev/zero | tr '\\000' x"
    python = _interpreter(tmp_path, f"{noise} >&2\n{noise}\necho\necho '{report}'\n")
    assert health.run_health(tmp_path, python, timeout=20) == (True, "a: fine")


def _model(nodes: list[Any], initializers: list[Any]) -> bytes:
    from onnx import TensorProto, helper

    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializers)  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


def test_the_runtime_s_errors_reach_stderr_not_its_warnings(tmp_path: Path,
                                                          capfd: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from onnx import helper, numpy_helper

    release = _release(tmp_path / "warns", [("line/ipc", DIGEST)])
    _bundle(release, DIGEST, config=_config(samples={}), expected=X)
    unused = numpy_helper.from_array(np.ones(3, np.float32), "unused")  # the runtime warns it removes it
    (release / "bundles" / DIGEST / "model" / "model.onnx").write_bytes(
        _model([helper.make_node("Identity", ["x"], ["y"])], [unused]))
    assert health.check_release(release)["ok"] is True
    assert capfd.readouterr().err == ""
    release = _release(tmp_path / "fails", [("line/ipc", DIGEST)])
    _bundle(release, DIGEST, config=_config(samples={}), expected=X)
    shape = numpy_helper.from_array(np.array([3, 5], np.int64), "shape")  # 4 samples × 2 cannot be 3 × 5
    (release / "bundles" / DIGEST / "model" / "model.onnx").write_bytes(
        _model([helper.make_node("Reshape", ["x", "shape"], ["y"])], [shape]))
    with pytest.raises(Exception, match="Reshape"):
        health.check_release(release)
    assert "Non-zero status code returned while running Reshape node" in capfd.readouterr().err
