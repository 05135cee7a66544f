"""The agent runs what it activates: supervised runners (real `takt-runner` processes), the runner
gate after the switch (release vs plant), rollback with the restored runner checked, quarantine."""

from __future__ import annotations

import contextlib
import itertools
import json
import sys
import time
from pathlib import Path

import pytest

from agent.reconcile import Reconciler
from agent.releases import current_release
from agent.runners import Supervisor
from tests.agentkit import journal_events, read_status
from tests.runnerkit import free_port, request, wait_for
from tests.supervisekit import Fleet, file_config

pytestmark = pytest.mark.slow  # real runner processes


def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1.0,2.0\n3.0,4.0\n")
    return path


@pytest.fixture
def fleet(tmp_path: Path):
    return Fleet(tmp_path / "fleet")


@pytest.fixture
def supervisor(tmp_path: Path):
    sup = Supervisor((sys.executable, "-m", "runner"), tmp_path / "state" / "runners", drain_seconds=5.0)
    yield sup
    sup.close()


def _version(port: int) -> str | None:
    try:
        code, doc = request("GET", f"http://127.0.0.1:{port}/v2/models/m")
    except OSError:
        return None
    return doc["versions"][0] if code == 200 else None


def _cycle(fleet: Fleet, state: Path, sup: Supervisor, **kw):
    return Reconciler(fleet.config(state, **kw), runners=sup).run_once()


def test_the_agent_starts_the_runner_and_restarts_it_on_activation(fleet: Fleet, tmp_path: Path, supervisor):
    state, port = tmp_path / "state", free_port()
    fleet.release(file_config(_csv(tmp_path), "1.0.0", port))
    out = _cycle(fleet, state, supervisor)
    assert (out.result, out.reason) == ("applied", "Applied"), out
    assert _version(port) == "1.0.0"
    first = supervisor.pid("d")
    doc = read_status(state)
    (runner,) = doc["runners"]
    assert runner["deployment"] == "d" and runner["ready"] and runner["live"] and runner["inferences"] >= 1
    assert 'takt_agent_runner_ready{deployment="d"} 1' in (state / "metrics.prom").read_text()
    from click.testing import CliRunner

    from agent.cli import agent_group

    shown = CliRunner().invoke(agent_group, ["status", "--state-dir", str(state)])
    assert shown.exit_code == 0 and "runner       d: ready (" in shown.output, shown.output
    # the runner reads its config through the deployment link, as the unit does
    argv = supervisor.argv(supervisor.children["d"].spec)
    assert argv[argv.index("--config") + 1] == str(state / "current/deployments/d/runner.json")
    fleet.release(file_config(_csv(tmp_path), "2.0.0", port))
    out = _cycle(fleet, state, supervisor)
    assert out.result == "applied", out
    assert _version(port) == "2.0.0" and supervisor.pid("d") != first
    assert _cycle(fleet, state, supervisor).result == "unchanged"
    assert [e["event"] for e in journal_events(state)].count("runners-started") == 2


def test_a_runner_that_never_becomes_ready_is_rolled_back_and_the_old_one_serves_again(
    fleet: Fleet, tmp_path: Path, supervisor
):
    state, port = tmp_path / "state", free_port()
    fleet.release(file_config(_csv(tmp_path), "1.0.0", port))
    assert _cycle(fleet, state, supervisor).result == "applied"
    good = current_release(state)
    fleet.release(file_config(tmp_path / "missing.csv", "2.0.0", port))  # the runner exits 2: it cannot start
    outcomes = [_cycle(fleet, state, supervisor)]
    doc = read_status(state)  # the cycle that rolled back names the gate, the figure and the source
    assert doc["runnerGate"]["reason"] == "RunnerCrashed" and doc["runnerGate"]["gate"] == "runner-live"
    assert [r["ready"] for r in doc["runners"]] == [True]  # the restored runner, checked
    metrics = (state / "metrics.prom").read_text()
    assert 'takt_agent_runner_gate{deployment="d",gate="runner-live",reason="RunnerCrashed",source=""} 1' in metrics
    outcomes += [_cycle(fleet, state, supervisor) for _ in range(2)]
    assert [(o.result, o.reason) for o in outcomes] == [("rolled-back", "RolledBack")] + [
        ("rejected", "Quarantined")
    ] * 2, outcomes
    assert "runner-live gate" in outcomes[0].message and "healthy again" in outcomes[0].message
    assert current_release(state) == good and _version(port) == "1.0.0"  # the old runner serves again
    events = journal_events(state)
    names = [e["event"] for e in events]
    assert names.count("activated") == 2 and names.count("runner-gate-failed") == 1, names  # not retried
    failed = next(e for e in events if e["event"] == "runner-gate-failed")["details"]
    assert failed["reason"] == "RunnerCrashed" and "exit 2" in failed["figure"] and "missing.csv" in failed["figure"]
    assert "runner-restored" in names


def test_two_runners_of_one_release_on_one_port_are_refused_before_the_switch(fleet: Fleet, tmp_path: Path, supervisor):
    state, port = tmp_path / "state", free_port()
    csv = _csv(tmp_path)
    fleet.release(file_config(csv, port=port, deployment="a"), file_config(csv, port=port, deployment="b"))
    out = _cycle(fleet, state, supervisor)
    assert (out.result, out.reason) == ("rejected", "PortConflict"), out
    assert "a and b both use port" in out.message and current_release(state) is None
    assert _cycle(fleet, state, supervisor).reason == "Quarantined"


def test_several_deployments_run_side_by_side(fleet: Fleet, tmp_path: Path, supervisor):
    state, csv = tmp_path / "state", _csv(tmp_path)
    ports = free_port(), free_port()
    fleet.release(
        file_config(csv, "1.0.0", ports[0], deployment="a"), file_config(csv, "3.0.0", ports[1], deployment="b")
    )
    assert _cycle(fleet, state, supervisor).result == "applied"
    assert (_version(ports[0]), _version(ports[1])) == ("1.0.0", "3.0.0")
    assert [r["deployment"] for r in read_status(state)["runners"]] == ["a", "b"]


def test_after_an_agent_restart_the_live_release_runs_again(fleet: Fleet, tmp_path: Path, supervisor):
    state, port = tmp_path / "state", free_port()
    fleet.release(file_config(_csv(tmp_path), "1.0.0", port))
    assert _cycle(fleet, state, supervisor).result == "applied"
    supervisor.close()  # the agent stopped: its children with it
    assert wait_for(lambda: _version(port) is None, what="runner stopped")
    again = Supervisor((sys.executable, "-m", "runner"), state / "runners")
    try:
        Reconciler(fleet.config(state, repo=str(tmp_path / "gone.git")), runners=again).run_once()  # git down, too
        assert wait_for(lambda: _version(port) == "1.0.0", what="runner started again")
    finally:
        again.close()


# --- the supervisor itself ----------------------------------------------------------------------


def _spec(tmp_path: Path, name: str = "x"):
    from agent.runners import RunnerSpec
    from compiler.bundle.runner import RunnerGate

    tmp_path.mkdir(parents=True, exist_ok=True)
    return RunnerSpec(name, "0" * 64, tmp_path / "runner.json", tmp_path, free_port(), RunnerGate())


def test_a_crashed_child_is_restarted_with_backoff(tmp_path: Path):
    starts = tmp_path / "starts"
    script = f"import time; open({str(starts)!r}, 'a').write(f'{{time.monotonic()}}\\n'); raise SystemExit(1)"
    sup = Supervisor((sys.executable, "-c", script), tmp_path / "logs", backoff=(0.2, 5.0), poll=0.02)

    def argv(_spec):  # the test's child takes no runner arguments
        return list(sup.command)

    sup.argv = argv  # type: ignore[method-assign]
    try:
        sup.restart([_spec(tmp_path / "w")])
        wait_for(lambda: starts.is_file() and len(starts.read_text().split()) >= 4, timeout=15, what="4 starts")
        assert sup.exited("x") == "exit 1"  # the first death since the restart, for the gate
    finally:
        sup.close()
    times = [float(t) for t in starts.read_text().split()]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4 and gaps[2] >= 0.8, gaps  # 0.2, 0.4, 0.8 s


def test_a_config_that_cannot_run_is_not_restarted(tmp_path: Path):
    starts = tmp_path / "starts"
    script = f"open({str(starts)!r}, 'a').write('x\\n'); import sys; print('bad config', file=sys.stderr); sys.exit(2)"
    sup = Supervisor((sys.executable, "-c", script), tmp_path / "logs", backoff=(0.05, 0.1), poll=0.02)
    sup.argv = lambda _s: list(sup.command)  # type: ignore[method-assign]
    try:
        sup.restart([_spec(tmp_path / "w")])
        wait_for(lambda: sup.exited("x"), what="exit seen")
        time.sleep(0.5)
        assert starts.read_text() == "x\n"
        assert sup.exited("x") == "exit 2: bad config"
    finally:
        sup.close()


def test_stop_drains_with_sigterm_then_kills(tmp_path: Path):
    ignore = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); "
    ignore += "time.sleep(60)"
    polite = "import signal, sys, time; print('up', flush=True); time.sleep(60)"
    sup = Supervisor((sys.executable, "-c", ignore), tmp_path / "logs", drain_seconds=1.0, poll=0.02)
    commands = {"stubborn": ignore, "polite": polite}
    sup.argv = lambda s: [sys.executable, "-c", commands[s.deployment]]  # type: ignore[method-assign]
    sup.restart([_spec(tmp_path / "s", "stubborn"), _spec(tmp_path / "p", "polite")])
    for name in commands:
        wait_for(lambda n=name: (tmp_path / "logs" / f"{n}.log").read_text().startswith("up"), what=f"{name} up")
    procs = {n: sup.children[n].proc for n in commands}
    t0 = time.monotonic()
    sup.close()
    took = time.monotonic() - t0
    assert procs["polite"].returncode == -15 and procs["stubborn"].returncode == -9
    assert 0.9 <= took < 5, took


# --- probing: figures and hostile answers ----------------------------------------------------------


class _Http:
    """A tiny HTTP server on 127.0.0.1 answering GETs with a fixed status and a body (per path, or one for all)."""

    def __init__(self, status: int, body: bytes, routes: dict[str, bytes] | None = None) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body_ = (routes or {}).get(self.path, body)
                self.send_response(status)
                self.send_header("Content-Length", str(len(body_)))
                self.end_headers()
                self.wfile.write(body_)

            def log_message(self, *_a) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


METRICS = b"""# TYPE takt_runner_frames counter
takt_runner_frames_total 120.0
# TYPE takt_runner_inferences counter
takt_runner_inferences_total 95.0
# TYPE takt_runner_inference_errors counter
takt_runner_inference_errors_total 5.0
# TYPE takt_runner_skipped_frames counter
takt_runner_skipped_frames_total{reason="stale"} 15.0
takt_runner_skipped_frames_total{reason="error"} 5.0
# TYPE takt_runner_inference_seconds histogram
takt_runner_inference_seconds_bucket{le="0.001"} 90.0
takt_runner_inference_seconds_bucket{le="0.005"} 95.0
takt_runner_inference_seconds_bucket{le="+Inf"} 95.0
takt_runner_inference_seconds_count 95.0
takt_runner_inference_seconds_sum 0.05
# TYPE takt_runner_drift_psi gauge
takt_runner_drift_psi{feature="a"} 0.1
takt_runner_drift_psi{feature="b"} NaN
"""


def test_the_gate_figures_come_from_the_runners_metrics(tmp_path: Path):
    from agent.probe import counters

    srv = _Http(200, METRICS)
    try:
        c = counters("127.0.0.1", _with_port(tmp_path, srv.port))
    finally:
        srv.close()
    assert (c.frames, c.inferences, c.errors) == (120, 95, 5)
    assert c.error_rate == pytest.approx(0.05) and c.skipped == {"stale": 15, "error": 5}
    assert c.p99_ms == pytest.approx(5.0) and c.drift_max == pytest.approx(0.1)
    assert c.shadow is None  # no challenger beside this runner


def test_a_challengers_figures_come_from_the_runners_shadow_metrics(tmp_path: Path):
    """What the runner's ShadowCollector exports is what the agent reports as ShadowHealth."""
    from prometheus_client import CollectorRegistry, generate_latest

    from agent.probe import counters
    from runner.shadow import ShadowCollector

    class _Challenger:  # the figures a runner/shadow.Challenger computes, fixed
        entry = type("E", (), {"challenger": "c" * 64})()
        frames, runs, errors, values, agreeing = 40, 39, 1, 39, 38

        def agreement(self) -> float:
            return 38 / 39

        def mean_abs_diff(self) -> float:
            return 0.01

        def p99_abs_diff(self) -> float:
            return 0.2

        def error_rate(self) -> float:
            return 1 / 40

        def inference_p99_ms(self) -> float:
            return 2.5

    registry = CollectorRegistry()
    registry.register(ShadowCollector(_Challenger()))  # type: ignore[arg-type]
    srv = _Http(200, METRICS + generate_latest(registry))
    try:
        c = counters("127.0.0.1", _with_port(tmp_path, srv.port))
    finally:
        srv.close()
    assert c.shadow is not None
    s = c.shadow
    assert (s.challenger, s.frames) == ("c" * 64, 40)
    assert s.agreement == pytest.approx(38 / 39) and s.error_rate == pytest.approx(0.025)
    assert (s.mean_abs_diff, s.p99_abs_diff, s.inference_p99_ms) == (pytest.approx(0.01), pytest.approx(0.2), 2.5)


def _with_port(tmp_path: Path, port: int):
    import dataclasses

    return dataclasses.replace(_spec(tmp_path), port=port)


@pytest.mark.parametrize("what", ["readiness", "metrics"])
def test_threat_oversized_or_malformed_runner_answers_are_refused_unparsed(tmp_path: Path, what: str):
    from agent.probe import counters, probe
    from compiler.bundle import readiness as rd

    limit = rd.MAX_READY_BYTES if what == "readiness" else rd.MAX_METRICS_BYTES
    for body in (b"x" * (limit + 1), b"[" * 10_000, b'{"ready": "yes"}', b"\xff\xfe not text"):
        srv = _Http(503, body)
        try:
            spec = _with_port(tmp_path, srv.port)
            if what == "readiness":
                p = probe("127.0.0.1", spec)
                assert p.readiness is None and p.error, body[:20]
            elif body.startswith(b"x" * 100) or body.startswith(b"["):
                with pytest.raises(ValueError):
                    counters("127.0.0.1", spec)
        finally:
            srv.close()


def test_readiness_round_trip_and_bounds():
    from compiler.bundle.readiness import Readiness, SourceReadiness

    state = Readiness(False, (SourceReadiness("plc", True, False, "node id x: BadNodeIdUnknown" + "y" * 1000),))
    back = Readiness.parse(json.dumps(state.to_json()).encode())
    assert back.sources[0].name == "plc" and back.sources[0].refused.startswith("node id x")
    assert len(back.sources[0].refused) < 400


# --- the gate judges the release, not the plant (a real OPC UA server) ---------------------------


@pytest.fixture
def plc():
    from tests.serverkit import LoopThread, OpcUaServer

    loop = LoopThread()
    server = OpcUaServer(loop)
    yield server
    server.stop()
    loop.close()


def _ready(port: int) -> bool:
    try:
        return request("GET", f"http://127.0.0.1:{port}/v2/health/ready")[0] == 200
    except OSError:
        return False


def test_a_plc_down_during_an_update_keeps_the_release_degraded_and_it_serves_once_the_plc_is_back(
    fleet: Fleet, tmp_path: Path, supervisor, plc
):
    from tests.supervisekit import opcua_config

    state, port = tmp_path / "state", free_port()
    ids = {n: plc.node_id(n) for n in "ab"}
    fleet.release(opcua_config(plc.endpoint, ids, "1.0.0", port))
    assert _cycle(fleet, state, supervisor).result == "applied"
    plc.stop()  # the line stops: for the old release and the new alike
    new = fleet.release(opcua_config(plc.endpoint, ids, "2.0.0", port))
    out = _cycle(fleet, state, supervisor)
    assert (out.result, out.reason) == ("applied", "Applied"), out  # kept: no rollback
    assert _version(port) == "2.0.0" and not _ready(port)
    doc = read_status(state)
    degraded = next(c for c in doc["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "SourceUnavailable"
    assert "source plc is not connected" in degraded["message"], degraded
    assert doc["runnerGate"]["source"] == "plc" and doc["runners"][0]["bundle"] == new[0]
    assert not doc["runners"][0]["ready"] and doc["runners"][0]["live"]
    names = [e["event"] for e in journal_events(state)]
    assert "runner-degraded" in names and "rolled-back" not in names and "runner-gate-failed" not in names
    assert _cycle(fleet, state, supervisor).result == "unchanged"  # still down: still said, every cycle
    degraded = next(c for c in read_status(state)["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "SourceUnavailable") and "plc" in degraded["message"]
    plc.restart()
    assert wait_for(lambda: _ready(port), timeout=20, what="serving once the PLC is back")
    out = _cycle(fleet, state, supervisor)
    assert out.result == "unchanged"
    degraded = next(c for c in read_status(state)["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "False" and read_status(state)["runners"][0]["ready"]


def test_a_release_whose_node_id_the_server_rejects_is_rolled_back(fleet: Fleet, tmp_path: Path, supervisor, plc):
    from tests.supervisekit import opcua_config

    state, port = tmp_path / "state", free_port()
    ids = {n: plc.node_id(n) for n in "ab"}
    fleet.release(opcua_config(plc.endpoint, ids, "1.0.0", port))
    assert _cycle(fleet, state, supervisor).result == "applied"
    good = current_release(state)
    wrong = {**ids, "b": f"nsu={plc.URI};s=Press.nope"}
    fleet.release(opcua_config(plc.endpoint, wrong, "2.0.0", port))
    out = _cycle(fleet, state, supervisor)
    assert (out.result, out.reason) == ("rolled-back", "RolledBack"), out
    assert "healthy again" in out.message
    assert current_release(state) == good and _version(port) == "1.0.0" and _ready(port)
    gate = read_status(state)["runnerGate"]
    assert (gate["reason"], gate["gate"], gate["source"]) == ("SourceRefused", "runner-ready", "plc")
    assert "Press.nope" in gate["figure"] and "BadNodeIdUnknown" in gate["figure"], gate
    assert _cycle(fleet, state, supervisor).reason == "Quarantined"


# --- systemd: the bundle's unit installed, reloaded, restarted --------------------------------------


def _kill_units(units: Path) -> None:
    import os
    import signal

    for pidfile in units.glob("*.pid"):
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.killpg(int(pidfile.read_text()), signal.SIGKILL)


def test_systemd_the_bundles_unit_is_installed_reloaded_restarted_and_judged(fleet: Fleet, tmp_path: Path):
    import shutil
    import subprocess

    from agent.runners import SystemdUnits, unit_name
    from tests.supervisekit import fake_systemctl, rendered_unit

    state, port = tmp_path / "state", free_port()
    exe, units, log = fake_systemctl(tmp_path / "systemd")
    control = SystemdUnits(units, (str(exe),))
    csv = _csv(tmp_path)
    try:
        fleet.release(file_config(csv, "1.0.0", port), units={"d": rendered_unit(state, "d", port)})
        out = Reconciler(fleet.config(state, supervise=False, unit_dir=units, systemctl=(str(exe),)),
                         runners=control).run_once()  # fmt: skip
        assert out.result == "applied", out
        assert _version(port) == "1.0.0"  # the unit's ExecStart, run in its WorkingDirectory, serves
        installed = units / unit_name("d")
        assert installed.read_bytes() == (current_release(state) / "deployments/d/takt-runner.service").read_bytes()
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        verbs = [c[0] for c in calls if c[0] != "show"]
        assert verbs == ["daemon-reload", "enable", "restart"], calls
        if shutil.which("systemd-analyze"):
            r = subprocess.run(["systemd-analyze", "verify", str(installed)], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
        # the next release: the unit rewritten and restarted; a deployment that left is disabled and removed
        other = free_port()
        fleet.release(file_config(csv, "2.0.0", other, deployment="e"), units={"e": rendered_unit(state, "e", other)})
        out = Reconciler(fleet.config(state, supervise=False, unit_dir=units, systemctl=(str(exe),)),
                         runners=control).run_once()  # fmt: skip
        assert out.result == "applied", out
        assert _version(other) == "2.0.0" and not installed.exists()
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        assert ["disable", "--now", unit_name("d")] in calls
    finally:
        _kill_units(units)


def test_systemd_a_unit_that_runs_from_elsewhere_than_the_agents_layout_is_refused(fleet: Fleet, tmp_path: Path):
    from agent.runners import SystemdUnits
    from tests.supervisekit import fake_systemctl, rendered_unit

    state, port = tmp_path / "state", free_port()
    exe, units, _log = fake_systemctl(tmp_path / "systemd")
    elsewhere = rendered_unit(tmp_path / "var-lib-takt", "d", port)  # installDir is not this agent's current
    fleet.release(file_config(_csv(tmp_path), "1.0.0", port), units={"d": elsewhere})
    control = SystemdUnits(units, (str(exe),))
    out = Reconciler(fleet.config(state, supervise=False, unit_dir=units), runners=control).run_once()
    assert (out.result, out.reason) == ("rejected", "RunnerStartFailed"), out
    assert f"set the Target's profile.installDir to {state}/current" in out.message
    assert not (units / "takt-runner-d.service").exists()


# --- the rendered unit and compose file agree with the agent's layout --------------------------------


def test_a_rendered_bundles_unit_and_compose_file_name_the_paths_of_the_applied_layout(tmp_path: Path):
    import shutil
    import subprocess

    from agent.runners import SystemdUnits, runner_specs, unit_paths
    from tests.agentkit import make_world
    from tests.supervisekit import fake_systemctl

    state = tmp_path / "state"
    world = make_world(tmp_path / "w")
    profile = "unit: {user: takt, nice: -5}"  # the device keeps its releases under <state>: installDir follows
    world.republish(("specs/targets.yaml", profile, f"{profile}\n    installDir: {state}/current"))
    assert Reconciler(world.config(state, fast=True)).run_once().result == "applied"
    release = current_release(state)
    specs = runner_specs(state, release)
    assert specs and {s.deployment for s in specs} == {"press-anomaly-muc"}
    _exe, units, _log = fake_systemctl(tmp_path / "systemd")
    for spec in specs:
        workdir, config = unit_paths(spec.unit)
        assert (workdir, config) == (str(spec.workdir), str(spec.config))  # what the agent runs is what the unit runs
        assert Path(workdir).is_dir() and Path(config).is_file()
        assert Path(config).resolve() == (release / "bundles" / spec.bundle / "runner.json").resolve()
        compose = (Path(workdir) / "compose.yaml").read_text()
        assert f"source: {workdir}\n" in compose  # the compose file mounts the same directory
        assert f"--http-port {spec.port}" in spec.unit.decode()
        SystemdUnits(units)._install([spec])  # accepted as this agent's layout
        if shutil.which("systemd-analyze"):
            r = subprocess.run(["systemd-analyze", "verify", str(units / f"takt-runner-{spec.deployment}.service")],
                               capture_output=True, text=True)  # fmt: skip
            assert r.returncode == 0, r.stderr


# --- `takt agent run --supervise`: SIGTERM stops the children -------------------------------------------


def test_agent_run_supervise_starts_the_runner_and_stops_it_on_sigterm(fleet: Fleet, tmp_path: Path):
    import os
    import signal
    import subprocess

    state, port = tmp_path / "state", free_port()
    fleet.release(file_config(_csv(tmp_path), "1.0.0", port))
    cmd = [sys.executable, "-m", "agent", "run", "--repo", str(fleet.remote), "--branch", "deploy", "--device",
           "edge-1", "--state-dir", str(state), "--trust", str(fleet.public), "--interval", "1", "--supervise",
           "--runner-command", f"{sys.executable} -m runner"]  # fmt: skip
    agent = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: _version(port) == "1.0.0", timeout=60, what="the agent's runner serving")
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)
    finally:
        if agent.poll() is None:
            agent.kill()
    assert agent.returncode == 0, agent.stderr.read()
    assert _version(port) is None  # the child went with it
    assert not [p for p in os.listdir("/proc") if p.isdigit() and f"--http-port {port} " in _cmdline(p)]


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


# --- after a rollback the restored runner is checked; the figures the gate reads ------------------------


def test_a_restored_runner_that_is_not_healthy_either_is_reported_stalled(fleet: Fleet, tmp_path: Path, supervisor):
    state, port = tmp_path / "state", free_port()
    csv = _csv(tmp_path)
    fleet.release(file_config(csv, "1.0.0", port))
    assert _cycle(fleet, state, supervisor).result == "applied"
    csv.unlink()  # the old release cannot start again either
    fleet.release(file_config(tmp_path / "missing.csv", "2.0.0", port))
    out = _cycle(fleet, state, supervisor)
    assert (out.result, out.reason) == ("rejected", "RestoreUnhealthy"), out
    assert "not healthy either" in out.message
    stalled = next(c for c in read_status(state)["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "RestoreUnhealthy"
    assert "restore-failed" in [e["event"] for e in journal_events(state)]


def test_a_failing_post_check_rolls_back_and_restarts_the_old_runner(fleet: Fleet, tmp_path: Path, supervisor):
    state, port = tmp_path / "state", free_port()
    fleet.release(file_config(_csv(tmp_path), "1.0.0", port))
    assert _cycle(fleet, state, supervisor).result == "applied"
    fleet.release(file_config(_csv(tmp_path), "2.0.0", port))
    out = _cycle(fleet, state, supervisor, post_check="false")
    assert (out.result, out.reason) == ("rolled-back", "RolledBack"), out
    assert out.message.endswith("its runner is healthy again") and _version(port) == "1.0.0"


class _FakeControl:
    def exited(self, deployment: str) -> str | None:
        return None


def test_the_gate_fails_a_release_whose_inferences_fail(fleet: Fleet, tmp_path: Path):
    import dataclasses
    from datetime import UTC, datetime

    from agent.cycle import Cycle
    from agent.runner_gate import judge
    from agent.status import Memory

    body = {"ready": True, "sources": [{"name": "f", "connected": True, "fresh": True, "refused": None}]}
    srv = _Http(200, b"", {"/v2/health/ready": json.dumps(body).encode(), "/metrics": METRICS})
    try:
        c = Cycle(fleet.config(tmp_path / "s", observe_seconds=0), tmp_path, datetime.now(UTC), Memory(),
                  runners=_FakeControl())  # fmt: skip
        verdict = judge(c, dataclasses.replace(_spec(tmp_path), port=srv.port))
    finally:
        srv.close()
    assert verdict.failure is not None and verdict.failure.reason == "ErrorRateExceeded"
    assert verdict.failure.figure.startswith("error rate 0.0500 > maxErrorRate 0.01 (5 failed of 100 inferences)")
    assert verdict.health.errors == 5 and verdict.health.error_rate == pytest.approx(0.05)


def test_the_runner_exports_the_metric_names_the_gate_reads():
    from prometheus_client import generate_latest

    from compiler.bundle import readiness as rd
    from runner.metrics import Metrics

    m = Metrics.create()
    m.connected.labels("plc").set(1)
    m.drift_psi.labels("a").set(0.1)
    text = generate_latest(m.registry).decode()
    for name in (rd.FRAMES, rd.INFERENCES, rd.INFERENCE_ERRORS, rd.SKIPPED_FRAMES, rd.SOURCE_CONNECTED, rd.DRIFT_PSI):
        assert f"\n{name}" in text, name
    assert f"\n{rd.INFERENCE_SECONDS}_bucket" in text


# --- the latency gate: healthGate.maxLatencyP95 against the runner's own histogram -----------------


def test_histogram_quantile_interpolates_inside_the_bucket_that_holds_the_rank():
    from agent.probe import histogram_quantile

    inf = float("inf")
    # 100 observations: 90 up to 1 ms, 8 in (1, 5] ms, 2 in (5, 10] ms: the 95th is the 5th of the 8
    buckets = [(0.001, 90.0), (0.005, 98.0), (0.01, 100.0), (inf, 100.0)]
    p95, low, high = histogram_quantile(buckets, 0.95)
    assert (low, high) == (0.001, 0.005) and p95 == pytest.approx(0.001 + 0.004 * 5 / 8)
    assert histogram_quantile(buckets, 0.5) == pytest.approx((0.001 * 50 / 90, 0.0, 0.001))
    # the rank in the +Inf bucket: the largest finite bound is all that is known (a floor)
    assert histogram_quantile([(0.001, 1.0), (inf, 10.0)], 0.95) == (0.001, 0.001, inf)
    assert histogram_quantile([(0.001, 0.0), (inf, 0.0)], 0.95) is None and histogram_quantile([], 0.95) is None


SLOW_METRICS = b"""# TYPE takt_runner_inferences counter
takt_runner_inferences_total 100.0
# TYPE takt_runner_inference_errors counter
takt_runner_inference_errors_total 0.0
# TYPE takt_runner_inference_seconds histogram
takt_runner_inference_seconds_bucket{le="0.001"} 10.0
takt_runner_inference_seconds_bucket{le="0.005"} 20.0
takt_runner_inference_seconds_bucket{le="0.01"} 90.0
takt_runner_inference_seconds_bucket{le="0.025"} 100.0
takt_runner_inference_seconds_bucket{le="+Inf"} 100.0
takt_runner_inference_seconds_count 100.0
takt_runner_inference_seconds_sum 0.8
"""


@pytest.mark.parametrize("budget, fails", [(0.005, True), (0.025, False), (None, False)])
def test_the_gate_judges_max_latency_p95_from_the_runners_histogram(fleet: Fleet, tmp_path: Path, budget, fails):
    import dataclasses
    from datetime import UTC, datetime

    from agent.cycle import Cycle
    from agent.runner_gate import judge
    from agent.status import Memory
    from compiler.bundle.runner import RunnerGate

    body = {"ready": True, "sources": [{"name": "f", "connected": True, "fresh": True, "refused": None}]}
    srv = _Http(200, b"", {"/v2/health/ready": json.dumps(body).encode(), "/metrics": SLOW_METRICS})
    spec = dataclasses.replace(_spec(tmp_path), port=srv.port, gate=RunnerGate(max_latency_p95_seconds=budget))
    try:
        c = Cycle(fleet.config(tmp_path / "s", observe_seconds=0), tmp_path, datetime.now(UTC), Memory(),
                  runners=_FakeControl())  # fmt: skip
        verdict = judge(c, spec)
    finally:
        srv.close()
    if not fails:
        assert verdict.failure is None and verdict.health.ready
        return
    assert verdict.failure is not None
    assert (verdict.failure.gate, verdict.failure.reason) == ("latency-p95", "LatencyExceeded")
    # rank 95 of 100 lies in the (10, 25] ms bucket, 5 of its 10: 17.5 ms
    assert verdict.failure.figure == (
        "inference latency p95 17.50 ms > maxLatencyP95 5 ms "
        "(estimated from the runner's latency histogram of 100 inferences, in the 10-25 ms bucket)"
    )


def _rows(tmp_path: Path, n: int = 40) -> Path:
    path = tmp_path / "rows.csv"
    path.write_text("a,b\n" + "".join(f"{i / 10},{i / 20}\n" for i in range(n)))
    return path


def test_a_runner_slower_than_max_latency_p95_is_rolled_back_and_one_within_is_kept(
    fleet: Fleet, tmp_path: Path, supervisor
):
    """Real runners and their real histograms: a budget of 10 s holds; one of 1 µs no onnxruntime
    run can meet, so the release is rolled back, naming the gate and the figure."""
    import re

    state, port, csv = tmp_path / "state", free_port(), _rows(tmp_path)
    fleet.release(file_config(csv, "1.0.0", port, latency_p95=10.0))
    out = _cycle(fleet, state, supervisor)
    assert (out.result, out.reason) == ("applied", "Applied"), out  # within the budget: kept
    good = current_release(state)
    fleet.release(file_config(csv, "2.0.0", port, latency_p95=1e-6))
    out = _cycle(fleet, state, supervisor)
    assert (out.result, out.reason) == ("rolled-back", "RolledBack"), out
    gate = read_status(state)["runnerGate"]
    assert (gate["gate"], gate["reason"]) == ("latency-p95", "LatencyExceeded"), gate
    assert re.fullmatch(
        r"inference latency p95 \d+\.\d\d ms > maxLatencyP95 0\.001 ms \(estimated from the runner's latency "
        r"histogram of [1-9]\d* inferences, in the [\d.]+-[\d.]+ ms bucket\)",
        gate["figure"],
    ), gate["figure"]
    assert "latency-p95 gate" in out.message and out.message.endswith("its runner is healthy again")
    assert current_release(state) == good and _version(port) == "1.0.0"  # the old runner serves again
