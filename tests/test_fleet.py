"""The fleet loop end to end: 20 agents (own state dirs and keys) report over a real `git daemon`
(receive-pack on) and a real mosquitto; `takt fleet status` reads them back; forged, replayed and
other-device reports are ignored and listed; a device that stops reporting shows stale; the HTML
page is checked as headless Chromium renders it."""

from __future__ import annotations

import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.devicekey import DEVICE_KEY, keygen, load_device_key
from agent.reconcile import Reconciler
from agent.report import REPORT_STATE
from agent.report_git import commit_report, push_report
from compiler.bundle.report import Rejected, StatusReport, seal
from compiler.fleet.mqtt import read_mqtt_reports
from compiler.fleet.reports import declared_keys, read_reports
from compiler.fleet.status import Branch, fleet_status
from compiler.report.fleet_html import render_fleet_html
from compiler.spec.device import Device
from tests.agentkit import World, git, served_world
from tests.serverkit import Mosquitto

N = 20
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _device_doc(name: str, i: int, public_line: str) -> str:
    plant, line = ("muc", "press") if i % 2 == 0 else ("ber", "paint")
    return (
        f"apiVersion: takt/v1\nkind: Device\nmetadata:\n  name: {name}\n"
        f"  labels: {{plant: {plant}, line: {line}}}\nspec:\n  target: ipc-x86\n  publicKey: {public_line}\n"
    )


def _fleet(world: World) -> dict[str, Path]:
    """N simulated devices, each with its own state directory and key, declared in the spec repo."""
    states, docs = {}, []
    for i in range(N):
        name = f"sim-{i:02d}"
        states[name] = world.root / "devices" / name
        docs.append(_device_doc(name, i, keygen(states[name])))
    (world.spec / "specs" / "fleet.yaml").write_text("---\n".join(docs))
    world.republish()
    return states


def _cycle_all(world: World, states: dict[str, Path], when: datetime, broker: str | None) -> list:
    def one(item):
        name, state = item
        cfg = world.config(state, device=name, fast=True, clock=lambda: when, report_mqtt=broker)
        return Reconciler(cfg).run_once()

    with ThreadPoolExecutor(max_workers=N) as pool:
        return list(pool.map(one, sorted(states.items())))


def _sequence(state: Path) -> int:
    return json.loads((state / REPORT_STATE).read_text())["sequence"]


def _devices(world: World) -> list[Device]:
    from compiler.validate.pipeline import validate

    return [d.model for d in validate(world.spec, check_artifacts=False).documents if d.kind == "Device"]


@pytest.mark.slow
def test_twenty_devices_report_at_once_over_git_and_mqtt_and_none_is_lost(tmp_path: Path, cli_run) -> None:
    broker = Mosquitto(tmp_path / "mqtt")
    try:
        with served_world(tmp_path, receive_pack=True) as world:
            states = _fleet(world)
            start = datetime.now(UTC) - timedelta(minutes=30)
            outcomes = _cycle_all(world, states, start, broker.url)
            assert all(json.loads((s / "status.json").read_text())["report"]["sent"] for s in states.values()), outcomes
            # every device again, 25 minutes later (past the report interval), except one that went silent
            talking = {k: v for k, v in states.items() if k != "sim-19"}
            _cycle_all(world, talking, start + timedelta(minutes=25), broker.url)

            keys = declared_keys(_devices(world))
            over_git = read_reports(world.url, keys)
            over_mqtt = read_mqtt_reports(broker.url, keys)
            for name, state in states.items():
                assert over_git.latest[name].sequence == _sequence(state), name
                assert over_mqtt.latest[name].sequence == _sequence(state), name
            assert _sequence(states["sim-00"]) == 2 and _sequence(states["sim-19"]) == 1
            assert [r.sequence for r in over_git.history["sim-00"]] == [1, 2]
            assert not [i for i in over_git.ignored if i.device.startswith("sim-")]

            out = tmp_path / "fleet.json"
            code, text = cli_run("fleet", "status", str(world.spec), "--deploy-repo", world.url,
                                 "--format", "json", "--output", str(out))  # fmt: skip
            view = json.loads(out.read_text())
            rows = {d["device"]: d for d in view["devices"]}
            assert code == 1, text  # a stale device (and three undeclared-key devices that never reported)
            assert {f"sim-{i:02d}" for i in range(N)} <= set(rows)
            assert rows["sim-19"]["stale"] and not rows["sim-00"]["stale"]
            assert rows["sim-00"]["state"] == "Ready" and rows["sim-00"]["appliedGeneration"] is not None
            assert rows["sim-00"]["desiredGeneration"] == rows["sim-00"]["appliedGeneration"]
            assert rows["sim-01"]["plant"] == "ber" and rows["sim-01"]["line"] == "paint"
            assert rows["ipc-press-1"]["state"] == "Unknown"  # declared without a key, never reported
            page = tmp_path / "fleet.html"
            cli_run("fleet", "status", str(world.spec), "--deploy-repo", world.url, "--format", "html", "-o", str(page))
            html = page.read_text()
            assert "press-anomaly@1.3.0" in html and all(f"<b>{name}</b>" in html for name in states)
    finally:
        broker.stop()


@pytest.mark.slow
def test_threat_forged_replayed_and_other_device_reports_are_ignored_and_listed(tmp_path: Path, cli_run) -> None:
    with served_world(tmp_path, receive_pack=True) as world:
        states = _fleet(world)
        now = datetime.now(UTC)
        _cycle_all(world, states, now - timedelta(minutes=10), None)
        _cycle_all(world, states, now - timedelta(minutes=4), None)  # a second report each, past the interval
        out = tmp_path / "fleet.json"
        args = ("fleet", "status", str(world.spec), "--deploy-repo", world.url, "--format", "json", "-o", str(out))
        cli_run(*args)  # the memory now holds sequence 2 of every device
        ref = "refs/takt/status/sim-02"
        first = git("--git-dir", str(states["sim-02"] / "status.git"), "rev-parse", f"{ref}~1").strip()

        def report(device: str, seq: int) -> StatusReport:
            return StatusReport(device, seq, now, 1, 1)

        # forged: sim-01's ref gets a newer report signed by a key that is not sim-01's
        commit_report(states["sim-01"], "sim-01", seal(report("sim-01", 99), Ed25519PrivateKey.generate()), 99, now)
        push_report(states["sim-01"], world.url, "sim-01", 60)
        # replayed: sim-02's ref reset to its first, genuinely signed report
        git("--git-dir", str(world.remote), "update-ref", ref, first)
        # another device's: sim-03's genuine report on sim-04's ref
        theirs = seal(report("sim-03", 50), load_device_key(states["sim-03"] / DEVICE_KEY))
        commit_report(states["sim-04"], "sim-04", theirs, 50, now)
        push_report(states["sim-04"], world.url, "sim-04", 60)

        cli_run(*args)
        view = json.loads(out.read_text())
        rows = {d["device"]: d for d in view["devices"]}
        ignored = {(i["device"], i["reason"]) for i in view["ignored"]}
        assert ("sim-01", Rejected.BAD_SIGNATURE) in ignored
        assert ("sim-02", Rejected.REPLAYED) in ignored
        assert ("sim-04", Rejected.WRONG_DEVICE) in ignored
        assert rows["sim-01"]["sequence"] == 2  # the forged report on top changes nothing
        assert rows["sim-02"]["sequence"] is None and rows["sim-02"]["state"] == "Unknown"
        assert rows["sim-03"]["sequence"] == 2 and rows["sim-04"]["sequence"] == 2
        _, text = cli_run("fleet", "status", str(world.spec), "--deploy-repo", world.url, "--format", "markdown")
        assert "Replayed" in text and "BadSignature" in text and "WrongDevice" in text


def _chromium(html_file: Path, shot: Path) -> str:
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
            f"--user-data-dir={html_file.parent / 'chromium-profile'}"]  # fmt: skip
    dom = subprocess.run([*base, "--dump-dom", html_file.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    shotrun = subprocess.run([*base, f"--screenshot={shot}", "--window-size=1280,1000", html_file.as_uri()],
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert shotrun.returncode == 0 and shot.stat().st_size > 1000, shotrun.stderr[-2000:]
    return dom.stdout


def _view(n: int, now: datetime):
    from compiler.fleet.reports import FleetReports

    key = Ed25519PrivateKey.generate()
    from compiler.bundle.report import Condition, RunnerHealth, openssh_public_key

    line = openssh_public_key(key.public_key())
    devices, latest, history = [], {}, {}
    for i in range(n):
        name = f"sim-{i:02d}"
        devices.append(Device.model_validate({"apiVersion": "takt/v1", "kind": "Device", "metadata": {
            "name": name, "labels": {"plant": ["muc", "ber"][i % 2], "line": "press"}},
            "spec": {"target": "ipc-x86", "publicKey": line}}))  # fmt: skip
        ready = Condition("Ready", True, "Applied", "generation 3 is running")
        runs = tuple(
            StatusReport(
                name,
                s,
                now - timedelta(minutes=(50 if i == 1 else 5) * (6 - s)),
                3,
                3,
                conditions=(ready,),
                runners=(
                    RunnerHealth(
                        "press",
                        "a" * 64,
                        ready=i != 2,
                        reason="source press-vibration: no data for 30 s",
                        error_rate=0.01 * (s % 3),
                        drift_psi_max=0.05 * s,
                    ),
                ),
            )
            for s in range(1, 6)
        )
        latest[name], history[name] = runs[-1], runs
    return fleet_status(devices, [], FleetReports(latest, history), Branch({}, {}, {}), now)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; .ci/tools.sh)")
@pytest.mark.parametrize("n", [0, 1, 6])
def test_the_fleet_page_renders_in_chromium_naming_every_device(tmp_path: Path, n: int) -> None:
    now = datetime.now(UTC)
    status = _view(n, now)
    page = tmp_path / "fleet.html"
    page.write_text(render_fleet_html(status))
    dom = _chromium(page, tmp_path / "fleet.png")  # the screenshot stays in the test's tmp output
    assert "<h1>Fleet status</h1>" in dom
    for d in status.devices:
        assert f'data-device="{d.device}"' in dom and f"<b>{d.device}</b>" in dom
    if n == 0:
        assert "No devices are declared" in dom
    if n > 1:
        assert "Plant muc" in dom and "Plant ber" in dom and "Line press" in dom
        assert dom.count("<polyline") == 2 * n  # drift and error rate charted per device
        assert 'class="stale"' in dom  # sim-01's last report is 50 minutes old
        assert "OK, running its desired model" in dom
        assert "Degraded: the model&#x27;s runner is not ready" in dom or "runner is not ready" in dom
