"""agent/runners.py without a runner: the supervisor runs tiny `python -c` children (a sleeper, a
crasher, one that exits 2, one that ignores SIGTERM) with a fast poll, and SystemdUnits drives a
fake `systemctl` script that records its arguments and answers `show` from a file, so starting,
restarting, backoff, giving up, draining, installing units and reading their state are asserted
exactly in about a second. The agent tests reach this module only through real runners."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import agent.runners as rn
from compiler.bundle import runner as contract
from compiler.bundle.tree import TreeError

GATE = contract.RunnerGate(window_seconds=5)


def _spec(tmp: Path, deployment: str = "line-a", port: int = 9000, **kw: object) -> rn.RunnerSpec:
    work = tmp / "work" / deployment
    work.mkdir(parents=True, exist_ok=True)
    args: dict[str, object] = {
        "deployment": deployment, "bundle": "sha256:" + "0" * 64, "config": work / "runner.json",
        "workdir": work, "port": port, "gate": GATE,
    }  # fmt: skip
    args.update(kw)
    return rn.RunnerSpec(**args)  # type: ignore[arg-type]


def _wait(cond: Callable[[], bool], limit: float = 5.0) -> None:
    end = time.monotonic() + limit
    while not cond():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.01)


# --- pure helpers ---------------------------------------------------------------------------------


def test_a_spec_is_frozen_so_ensure_can_compare_it(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.port = 1  # type: ignore[misc]


def test_port_conflicts_name_both_deployments_once_per_clash(tmp_path: Path) -> None:
    a, b, c, d = (_spec(tmp_path, n, p) for n, p in (("a", 1), ("b", 2), ("c", 1), ("d", 1)))
    assert rn.port_conflicts([a, b]) == []
    assert rn.port_conflicts([a, b, c, d]) == [
        "deployments a and c both use port 1",
        "deployments a and d both use port 1",
    ]


def test_unit_paths_read_workdir_and_the_config_argument() -> None:
    unit = b"[Service]\nWorkingDirectory=/s/w\nExecStart=/bin/takt-runner --config '/s/a b.json' --http-port 1\n"
    assert rn.unit_paths(unit) == ("/s/w", "/s/a b.json")
    assert rn.unit_paths(b"ExecStart=/bin/r --config\n") == (None, None)  # --config last: no value
    assert rn.unit_paths(b"ExecStart=/bin/r --config 'open\nWorkingDirectory=/w\n") == ("/w", None)
    assert rn.unit_paths(b"Working=/x\nExecStartPre=--config y\n") == (None, None)


def test_with_shadow_appends_the_challenger_to_the_single_execstart(tmp_path: Path) -> None:
    unit = b"[Service]\nExecStart=/bin/r --config c\nX=1"
    assert rn.with_shadow(unit, None) is unit
    assert (
        rn.with_shadow(unit, Path("/s/a b.json"))
        == b"[Service]\nExecStart=/bin/r --config c --shadow '/s/a b.json'\nX=1"
    )
    with pytest.raises(rn.RunnerError, match="no single ExecStart="):
        rn.with_shadow(b"ExecStart=a\nExecStart=b\n", Path("/s"))
    with pytest.raises(rn.RunnerError, match="no single ExecStart="):
        rn.with_shadow(b" ExecStart=a\n", Path("/s"))
    for bad in ("/s/%i", "/s/$x", "/s/\\", "/s/\n", "/s/'", '/s/"', "/s/\t"):
        with pytest.raises(rn.RunnerError, match="cannot be written into a systemd unit"):
            rn.with_shadow(unit, Path(bad))


def test_int_and_unit_name() -> None:
    assert rn._int("7") == 7
    assert rn._int(None) == 0
    assert rn._int("") == 0
    assert rn._int("x") == 0
    assert rn.unit_name("line-a") == "takt-runner-line-a.service"


def test_tail_is_the_last_non_blank_line_cut_to_300_of_the_last_4096_bytes(tmp_path: Path) -> None:
    log = tmp_path / "l"
    assert rn._tail(log) == ""
    log.write_bytes(b"first\nlast \n  \n\n")
    assert rn._tail(log) == "last "
    log.write_bytes(b"")
    assert rn._tail(log) == ""
    log.write_bytes(b"x" * 5000 + b"\n" + b"y" * 400)
    assert rn._tail(log) == "y" * 300
    log.write_bytes(b"a" * 4000 + b"\n" + b"b" * 97)
    assert rn._tail(log) == "b" * 97
    log.write_bytes(b"head\n" + b"z" * 4095)  # 'head' lies outside the last 4096 bytes
    assert rn._tail(log) == "z" * 300
    log.write_bytes(b"h\n" + b"z" * 4094)  # exactly 4096: 'h' is its first line
    assert rn._tail(log) == "z" * 300
    log.write_bytes(b"h\n" + b"\n" * 4094)
    assert rn._tail(log) == "h"


def test_the_supervisor_argv_and_backoff(tmp_path: Path) -> None:
    sup = rn.Supervisor(command=("run", "-m", "r"), logs=tmp_path, host="0.0.0.0", backoff=(0.5, 3.0))
    spec = _spec(tmp_path, port=9001)
    assert sup.argv(spec) == [
        "run",
        "-m",
        "r",
        "--config",
        str(spec.config),
        "--http-port",
        "9001",
        "--http-host",
        "0.0.0.0",
    ]
    shadow = _spec(tmp_path, port=9001, shadow=Path("/s/c.json"))
    assert sup.argv(shadow)[-2:] == ["--shadow", "/s/c.json"]
    assert [sup._delay(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    big = rn.Supervisor(command=("r",), logs=tmp_path, backoff=(1.0, 1e9))
    assert big._delay(17) == 2.0**16
    assert big._delay(18) == 2.0**16
    assert big._delay(16) == 2.0**15


# --- supervised children --------------------------------------------------------------------------


@pytest.fixture
def sup(tmp_path: Path) -> Iterator[rn.Supervisor]:
    s = rn.Supervisor(command=(sys.executable, "-c"), logs=tmp_path / "logs", poll=0.01, backoff=(0.02, 0.05),
                      drain_seconds=2.0, environ={"PATH": os.environ.get("PATH", ""), "TAKT_X": "1"})  # fmt: skip
    yield s
    s.close()


SLEEP = "import time,sys,os; print('up', os.environ.get('TAKT_X'), os.getcwd(), flush=True); time.sleep(60)"


def test_a_child_runs_in_its_workdir_with_the_environ_and_logs(sup: rn.Supervisor, tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    sup.command = (sys.executable, "-c", SLEEP, "--")
    sup.restart([spec])
    _wait(
        lambda: (
            "up" in (tmp_path / "logs" / "line-a.log").read_text()
            if (tmp_path / "logs" / "line-a.log").exists()
            else False
        )
    )
    assert (tmp_path / "logs" / "line-a.log").read_text().split() == ["up", "1", str(spec.workdir)]
    assert sup.exited("line-a") is None
    assert sup.exited("other") == "not started"
    pid = sup.pid("line-a")
    assert pid is not None and os.getpgid(pid) == pid  # its own session
    assert sup.pid("other") is None
    sup.close()
    assert sup.children == {}
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_crashed_child_is_restarted_and_its_first_death_kept(sup: rn.Supervisor, tmp_path: Path) -> None:
    marker = tmp_path / "n"
    code = (
        f"import pathlib,sys,time; p=pathlib.Path({str(marker)!r}); n=len(p.read_text()) if p.exists() else 0; "
        "p.write_text('x'*(n+1)); print('boom', n); sys.exit(3) if n < 2 else time.sleep(60)"
    )  # two crashes, then it keeps running
    sup.command = (sys.executable, "-c", code, "--")
    sup.restart([_spec(tmp_path)])
    _wait(lambda: marker.exists() and len(marker.read_text()) >= 3)
    _wait(lambda: sup.pid("line-a") is not None)
    assert sup.exited("line-a") == "exit 3: boom 0"
    child = sup.children["line-a"]
    assert child.failures == 2 and not child.gave_up
    sup.restart([_spec(tmp_path)])  # a restart forgets the death
    assert sup.exited("line-a") is None
    assert sup.children["line-a"].failures == 0


def test_exit_2_is_not_restarted(sup: rn.Supervisor, tmp_path: Path) -> None:
    marker = tmp_path / "n"
    code = (
        f"import pathlib,sys; p=pathlib.Path({str(marker)!r}); "
        "p.write_text(p.read_text()+'x' if p.exists() else 'x'); sys.exit(2)"
    )
    sup.command = (sys.executable, "-c", code, "--")
    sup.restart([_spec(tmp_path)])
    _wait(lambda: sup.children["line-a"].gave_up)
    time.sleep(0.2)  # ten backoffs long
    assert marker.read_text() == "x"
    assert sup.exited("line-a") == "exit 2"
    assert sup.pid("line-a") is None


def test_a_program_that_cannot_start_is_a_death_with_backoff(tmp_path: Path) -> None:
    now = [100.0]
    sup = rn.Supervisor(command=(str(tmp_path / "missing"),), logs=tmp_path / "logs", backoff=(4.0, 30.0),
                        clock=lambda: now[0], poll=60.0)  # fmt: skip
    sup.restart([_spec(tmp_path)])
    child = sup.children["line-a"]
    assert child.proc is None
    assert child.died == f"cannot start {tmp_path / 'missing'}: No such file or directory"
    assert child.failures == 1 and child.next_start == 104.0
    sup._spawn(child)
    assert child.failures == 2 and child.next_start == 108.0
    assert child.died.startswith("cannot start ")
    sup.close()


def test_a_child_that_ignores_sigterm_is_killed_after_the_drain(tmp_path: Path) -> None:
    code = (
        "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    )
    sup = rn.Supervisor(
        command=(sys.executable, "-c", code, "--"), logs=tmp_path / "logs", poll=0.01, drain_seconds=0.3
    )
    sup.restart([_spec(tmp_path)])
    log = tmp_path / "logs" / "line-a.log"
    _wait(lambda: "ready" in log.read_text())
    proc = sup.children["line-a"].proc
    assert proc is not None
    t0 = time.monotonic()
    sup.close()
    took = time.monotonic() - t0
    assert proc.returncode == -signal.SIGKILL
    assert 0.25 <= took < 3.0


def test_a_child_that_obeys_sigterm_stops_without_kill(tmp_path: Path) -> None:
    sup = rn.Supervisor(
        command=(sys.executable, "-c", SLEEP, "--"), logs=tmp_path / "logs", poll=0.01, drain_seconds=5.0
    )
    sup.restart([_spec(tmp_path)])
    proc = sup.children["line-a"].proc
    assert proc is not None
    sup.close()
    assert proc.returncode == -signal.SIGTERM


def test_ensure_keeps_running_children_and_replaces_changed_ones(sup: rn.Supervisor, tmp_path: Path) -> None:
    sup.command = (sys.executable, "-c", SLEEP, "--")
    a, b = _spec(tmp_path, "a", 1), _spec(tmp_path, "b", 2)
    sup.ensure([a, b])
    pa, pb = sup.pid("a"), sup.pid("b")
    assert pa is not None and pb is not None
    sup.ensure([a, b])
    assert (sup.pid("a"), sup.pid("b")) == (pa, pb)
    b2 = _spec(tmp_path, "b", 3)
    sup.ensure([a, b2])
    assert sup.pid("a") == pa and sup.pid("b") not in (None, pb)
    assert sup.children["b"].spec == b2
    sup.ensure([b2])
    assert set(sup.children) == {"b"}
    sup.restart([b2])
    assert sup.pid("b") not in (None, pb)


def test_a_big_log_is_cut_at_a_start_and_a_small_one_kept(sup: rn.Supervisor, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    sup.command = (sys.executable, "-c", "print('new', flush=True)", "--")
    sup.poll = 60.0
    assert rn.LOG_LIMIT == 1 << 20
    (logs / "a.log").write_bytes(b"o" * (1 << 20))
    (logs / "b.log").write_bytes(b"o" * ((1 << 20) + 1))
    sup.restart([_spec(tmp_path, "a", 1), _spec(tmp_path, "b", 2)])
    for c in sup.children.values():
        assert c.proc is not None
        c.proc.wait(5)
    assert (logs / "a.log").read_bytes() == b"o" * (1 << 20) + b"new\n"
    assert (logs / "b.log").read_bytes() == b"new\n"


# --- systemd --------------------------------------------------------------------------------------

FAKE = """
import json, pathlib, sys
d = pathlib.Path(sys.argv[1])
with (d / "calls").open("a") as f:
    f.write(json.dumps(sys.argv[2:]) + "\\n")
fail = d / "fail"
if fail.exists() and fail.read_text() in " ".join(sys.argv[2:]):
    print("it broke", file=sys.stderr); sys.exit(1)
if sys.argv[2] == "show":
    name = sys.argv[3]
    p = d / (name + ".show")
    print(p.read_text() if p.exists() else "ActiveState=active\\nSubState=running\\nNRestarts=0")
"""


def _units(tmp: Path) -> tuple[rn.SystemdUnits, Path]:
    d = tmp / "ctl"
    d.mkdir()
    (d / "fake.py").write_text(FAKE)
    return rn.SystemdUnits(unit_dir=tmp / "units", systemctl=(sys.executable, str(d / "fake.py"), str(d))), d


def _calls(d: Path) -> list[list[str]]:
    return [json.loads(line) for line in (d / "calls").read_text().splitlines()] if (d / "calls").exists() else []


def _unit_spec(tmp: Path, name: str = "line-a", **kw: object) -> rn.RunnerSpec:
    s = _spec(tmp, name)
    unit = f"[Service]\nWorkingDirectory={s.workdir}\nExecStart=/bin/takt-runner --config {s.config}\n".encode()
    return _spec(tmp, name, unit=unit, **kw)


SHOW = ["--property=ActiveState,SubState,ExecMainStatus,NRestarts"]


def test_restart_installs_reloads_enables_restarts_and_records_nrestarts(tmp_path: Path) -> None:
    units, d = _units(tmp_path)
    spec = _unit_spec(tmp_path)
    (d / "takt-runner-line-a.service.show").write_text("ActiveState=active\nSubState=running\nNRestarts=4\n")
    units.restart([spec])
    name = "takt-runner-line-a.service"
    assert (units.unit_dir / name).read_bytes() == spec.unit
    assert _calls(d) == [["daemon-reload"], ["enable", name], ["restart", name], ["show", name, *SHOW]]
    assert units.restarts == {"line-a": 4}
    assert units.exited("line-a") is None
    (d / f"{name}.show").write_text("ActiveState=active\nSubState=running\nNRestarts=5\nExecMainStatus=1\n")
    assert units.exited("line-a") == f"unit {name} active/running, exit 1"


def test_exited_names_failed_inactive_and_auto_restart_states(tmp_path: Path) -> None:
    units, d = _units(tmp_path)
    name = "takt-runner-x.service"
    show = d / f"{name}.show"
    for text, why in (
        ("ActiveState=failed\nSubState=failed\nExecMainStatus=2", "failed/failed, exit 2"),
        ("ActiveState=inactive\nSubState=dead", "inactive/dead, exit ?"),
        ("ActiveState=activating\nSubState=auto-restart\nExecMainStatus=9", "activating/auto-restart, exit 9"),
        ("NRestarts=1", "?/?, exit ?"),
    ):
        show.write_text(text)
        assert units.exited("x") == f"unit {name} {why}"
    show.write_text("ActiveState=activating\nSubState=start\nNRestarts=0")
    assert units.exited("x") is None
    (d / "fail").write_text("show")
    assert units.exited("x") == f"{sys.executable} show {name} {SHOW[0]}: it broke"


def test_ensure_changes_nothing_when_the_units_are_installed(tmp_path: Path) -> None:
    units, d = _units(tmp_path)
    spec = _unit_spec(tmp_path)
    units.ensure([spec])
    assert len(_calls(d)) == 4
    units.ensure([spec])
    assert len(_calls(d)) == 4
    (units.unit_dir / "takt-runner-line-a.service").write_bytes(b"changed")
    units.ensure([spec])
    assert len(_calls(d)) == 8
    assert (units.unit_dir / "takt-runner-line-a.service").read_bytes() == spec.unit


def test_an_unwanted_unit_is_disabled_and_removed_but_a_link_and_foreign_files_kept(tmp_path: Path) -> None:
    units, d = _units(tmp_path)
    units.unit_dir.mkdir()
    (units.unit_dir / "takt-runner-old.service").write_text("x")
    (units.unit_dir / "other.service").write_text("x")
    (units.unit_dir / "takt-runner-link.service").symlink_to(units.unit_dir / "other.service")
    units.restart([_unit_spec(tmp_path)])
    assert _calls(d)[0] == ["disable", "--now", "takt-runner-old.service"]
    assert sorted(p.name for p in units.unit_dir.iterdir()) == [
        "other.service", "takt-runner-line-a.service", "takt-runner-link.service",
    ]  # fmt: skip
    assert units._install([_unit_spec(tmp_path)]) is False


def test_a_unit_installed_as_a_link_is_replaced_by_the_file(tmp_path: Path) -> None:
    units, _ = _units(tmp_path)
    spec = _unit_spec(tmp_path)
    units.unit_dir.mkdir()
    (tmp_path / "same").write_bytes(spec.unit or b"")
    (units.unit_dir / "takt-runner-line-a.service").symlink_to(tmp_path / "same")
    assert units._install([spec]) is True
    assert not (units.unit_dir / "takt-runner-line-a.service").is_symlink()


def test_the_shadow_goes_into_the_installed_unit(tmp_path: Path) -> None:
    units, _ = _units(tmp_path)
    spec = _unit_spec(tmp_path, shadow=Path("/s/sh.json"))
    units.restart([spec])
    assert (units.unit_dir / "takt-runner-line-a.service").read_bytes().endswith(b" --shadow /s/sh.json\n")


def test_a_unit_missing_or_elsewhere_is_refused_with_the_install_dir(tmp_path: Path) -> None:
    units, d = _units(tmp_path)
    with pytest.raises(rn.RunnerError, match=r"^bundle of line-a has no takt-runner.service$"):
        units.restart([_spec(tmp_path)])
    s = _spec(tmp_path)
    for unit in (
        f"WorkingDirectory=/elsewhere\nExecStart=r --config {s.config}\n",
        f"WorkingDirectory={s.workdir}\nExecStart=r --config /elsewhere\n",
    ):
        with pytest.raises(rn.RunnerError) as err:
            units.restart([_spec(tmp_path, unit=unit.encode())])
        assert str(err.value).endswith(f"set the Target's profile.installDir to {s.workdir.parent.parent}")
        assert str(err.value).startswith("the unit of line-a runs ")
    assert _calls(d) == []


def test_systemctl_failing_missing_or_hanging_is_a_runner_error(tmp_path: Path) -> None:
    units, d = _units(tmp_path)
    (d / "fail").write_text("restart")
    with pytest.raises(rn.RunnerError, match=r": it broke$"):
        units.restart([_unit_spec(tmp_path)])
    silent = rn.SystemdUnits(unit_dir=tmp_path / "u2", systemctl=(sys.executable, "-c", "import sys; sys.exit(5)"))
    with pytest.raises(rn.RunnerError, match=r"daemon-reload: exit 5$"):
        silent._ctl("daemon-reload")
    out = rn.SystemdUnits(
        unit_dir=tmp_path / "u2", systemctl=(sys.executable, "-c", "print('on out'); raise SystemExit(1)")
    )
    with pytest.raises(rn.RunnerError, match=r"x: on out$"):
        out._ctl("x")
    gone = rn.SystemdUnits(unit_dir=tmp_path / "u2", systemctl=(str(tmp_path / "nope"),))
    with pytest.raises(rn.RunnerError, match=f"^{tmp_path / 'nope'} daemon-reload: "):
        gone._ctl("daemon-reload")
    hang = rn.SystemdUnits(
        unit_dir=tmp_path / "u2", systemctl=(sys.executable, "-c", "import time; time.sleep(30)"), timeout=0.3
    )
    with pytest.raises(rn.RunnerError, match=r"timed out after 0\.3 seconds"):
        hang._ctl("a")
    assert hang.close() is None


def test_runner_specs_one_per_runner_bundle_through_the_current_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner contract's parser is replaced at the module boundary: each runner.json names its health."""
    health = {
        "b": contract.Health(http_port=9100, gate=contract.RunnerGate(window_seconds=7)),
        "a": None,
    }

    class _Config:
        @staticmethod
        def parse(data: bytes) -> object:
            return type("C", (), {"health": health[data.decode()]})()

    monkeypatch.setattr(rn.contract, "RunnerConfig", _Config)
    release, state = tmp_path / "rel", tmp_path / "state"
    bundles = [
        {"name": "b/t", "digest": "d1"},
        {"name": "a/t", "digest": "d2"},
        {"name": "c/t", "digest": "d3"},  # no runner.json: embedded
        {"name": "b/t", "digest": "d4", "shadow": True},  # a challenger: runs inside b's runner
    ]
    for ref in bundles:
        (release / "bundles" / ref["digest"]).mkdir(parents=True)
    (release / "bundles" / "d1" / "runner.json").write_text("b")
    (release / "bundles" / "d1" / "takt-runner.service").write_bytes(b"unit")
    (release / "bundles" / "d2" / "runner.json").write_text("a")
    (release / "bundles" / "d4" / "runner.json").write_text("b")
    (release / "shadow").mkdir()
    (release / "shadow" / "b.json").write_text("{}")
    (release / "release.json").write_text(json.dumps({"bundles": bundles}))
    a, b = rn.runner_specs(state, release)
    live = state / "current" / "deployments"
    assert a == rn.RunnerSpec(
        deployment="a", bundle="d2", config=live / "a" / "runner.json", workdir=live / "a", port=8080,
        gate=contract.RunnerGate(window_seconds=300.0), unit=None, shadow=None,
    )  # fmt: skip
    assert b == rn.RunnerSpec(
        deployment="b", bundle="d1", config=live / "b" / "runner.json", workdir=live / "b", port=9100,
        gate=contract.RunnerGate(window_seconds=7), unit=b"unit", shadow=state / "current" / "shadow" / "b.json",
    )  # fmt: skip
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "release.json").write_text("{}")
    assert rn.runner_specs(state, empty) == []


def _release_of(tmp: Path, bundles: list[dict[str, object]]) -> Path:
    """A release whose runner bundles carry a real runner.json (the contract's golden one)."""
    from tests.test_runner_contract import _doc

    release = tmp / "rel"
    for ref in bundles:
        bundle = release / "bundles" / str(ref["digest"])
        bundle.mkdir(parents=True)
        if ref.get("runner", True):
            (bundle / "runner.json").write_text(json.dumps(_doc()))
    (release / "release.json").write_text(json.dumps({"bundles": bundles}))
    return release


def test_runner_specs_go_on_past_a_challenger_and_an_embedded_bundle(tmp_path: Path) -> None:
    release = _release_of(tmp_path, [
        {"name": "b/t", "digest": "d4", "shadow": {"tolerance": 0.0}},  # listed before its current bundle
        {"name": "c/t", "digest": "d3", "runner": False},  # embedded: no runner.json
        {"name": "b/t", "digest": "d1"},
        {"name": "a/t", "digest": "d2"},
    ])  # fmt: skip
    assert [(s.deployment, s.bundle) for s in rn.runner_specs(tmp_path / "state", release)] == [
        ("a", "d2"), ("b", "d1")]  # fmt: skip


def test_release_json_is_read_up_to_one_mib_and_refused_past(tmp_path: Path) -> None:
    release = _release_of(tmp_path, [{"name": "a/t", "digest": "d1"}])
    text = (release / "release.json").read_bytes()
    (release / "release.json").write_bytes(text[:-1] + b" " * ((1 << 20) - len(text)) + b"}")
    assert [s.bundle for s in rn.runner_specs(tmp_path / "state", release)] == ["d1"]
    (release / "release.json").write_bytes(text[:-1] + b" " * ((1 << 20) - len(text) + 1) + b"}")
    with pytest.raises(TreeError, match="over the limit of 1,048,576 bytes"):
        rn.runner_specs(tmp_path / "state", release)


def test_a_unit_is_read_up_to_64_kib_and_refused_past(tmp_path: Path) -> None:
    release = _release_of(tmp_path, [{"name": "a/t", "digest": "d1"}])
    unit = b"[Service]\n" + b"#" * ((64 << 10) - 11) + b"\n"  # far beyond any rendered unit, still read whole
    (release / "bundles" / "d1" / "takt-runner.service").write_bytes(unit)
    (spec,) = rn.runner_specs(tmp_path / "state", release)
    assert spec.unit == unit and len(unit) == 64 << 10
    (release / "bundles" / "d1" / "takt-runner.service").write_bytes(unit + b"\n")
    with pytest.raises(TreeError, match="over the limit of 65,536 bytes"):
        rn.runner_specs(tmp_path / "state", release)


def test_the_tail_reads_no_more_than_the_last_4096_bytes(tmp_path: Path) -> None:
    log = tmp_path / "l"
    log.write_bytes(b"h\n" + b"\n" * 4095)  # 4097 bytes: 'h' is one byte before the last 4096
    assert rn._tail(log) == ""


def test_the_default_backoff_starts_at_half_a_second_and_doubles_to_thirty(tmp_path: Path) -> None:
    """A program that cannot start is tried again by the watcher at each backoff, on the supervisor's clock."""
    now = [100.0]
    sup = rn.Supervisor(command=(str(tmp_path / "missing"),), logs=tmp_path / "logs", clock=lambda: now[0])
    try:
        sup.restart([_spec(tmp_path)])
        child = sup.children["line-a"]
        delays = []
        for attempt in range(1, 9):
            # its next start is set just after the count: wait for both
            _wait(lambda n=attempt: child.failures == n and child.next_start > now[0])
            delays.append(child.next_start - now[0])
            now[0] = child.next_start  # due: the watcher tries again
        assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0] and child.proc is None
    finally:
        sup.close()


class _Looks(threading.Event):
    """The watcher's stop event, recording how long each of its waits was."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return super().wait(timeout)


def test_the_watcher_looks_every_tenth_of_a_second_by_default(tmp_path: Path) -> None:
    sup = rn.Supervisor(command=(sys.executable, "-c", SLEEP, "--"), logs=tmp_path / "logs")
    sup._stop = looks = _Looks()
    try:
        sup.restart([_spec(tmp_path)])
        _wait(lambda: len(looks.waits) >= 3)
    finally:
        sup.close()
    assert set(looks.waits) == {0.1}


def test_the_supervisor_drains_as_long_as_the_agent_s_default() -> None:
    from agent.config import AgentConfig

    assert rn.Supervisor(command=("r",), logs=Path("l")).drain_seconds == AgentConfig.drain_seconds


def test_a_program_that_cannot_start_is_named_by_its_first_word_and_its_logs_get_their_parents(tmp_path: Path) -> None:
    logs = tmp_path / "state" / "runners"  # <state>/runners/, the state directory not made yet
    sup = rn.Supervisor(command=(str(tmp_path / "missing"), "-m", "runner"), logs=logs, poll=60.0)
    try:
        sup.restart([_spec(tmp_path)])
        assert sup.exited("line-a") == f"cannot start {tmp_path / 'missing'}: No such file or directory"
        assert logs.is_dir()
    finally:
        sup.close()


def _watchers() -> int:
    return sum(t.name == "takt-supervisor" and t.is_alive() for t in threading.enumerate())


def test_one_watcher_however_often_it_restarts_and_a_new_one_after_close(sup: rn.Supervisor, tmp_path: Path) -> None:
    sup.command = (sys.executable, "-c", SLEEP, "--")
    before = _watchers()
    sup.restart([_spec(tmp_path)])
    sup.ensure([_spec(tmp_path)])
    sup.restart([_spec(tmp_path)])
    assert _watchers() == before + 1
    sup.close()
    assert _watchers() == before
    sup.restart([_spec(tmp_path)])  # started again after a close: watched again
    assert _watchers() == before + 1


def test_a_supervisor_never_started_closes(tmp_path: Path) -> None:
    sup = rn.Supervisor(command=("r",), logs=tmp_path / "logs")
    sup.close()
    assert sup.children == {}


def test_an_agent_that_exits_without_closing_is_not_held_by_the_watcher(tmp_path: Path) -> None:
    import subprocess

    code = (
        "import sys; from pathlib import Path; import agent.runners as rn; "
        "s = rn.Supervisor(command=(sys.executable, '-c', 'raise SystemExit(2)', '--'), "
        f"logs=Path({str(tmp_path)!r})); "
        f"s.restart([rn.RunnerSpec(deployment='a', bundle='b', config=Path('c'), workdir=Path({str(tmp_path)!r}), "
        "port=1, gate=None)]); print('started', flush=True)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert (done.returncode, done.stdout) == (0, "started\n")


def test_a_drain_of_zero_kills_at_once(tmp_path: Path) -> None:
    code = (
        "import signal,sys,time; signal.signal(signal.SIGTERM, lambda *a: (time.sleep(0.5), sys.exit(7))); "
        "print('ready', flush=True); time.sleep(60)"
    )  # it would take half a second to obey SIGTERM
    sup = rn.Supervisor(command=(sys.executable, "-c", code, "--"), logs=tmp_path / "logs", poll=60.0,
                        drain_seconds=0.0)  # fmt: skip
    sup.restart([_spec(tmp_path)])
    log = tmp_path / "logs" / "line-a.log"
    _wait(lambda: "ready" in log.read_text())
    proc = sup.children["line-a"].proc
    assert proc is not None
    sup.close()
    assert proc.returncode == -signal.SIGKILL


def test_a_death_is_started_again_after_the_backoff_not_before(tmp_path: Path) -> None:
    now = [100.0]
    sup = rn.Supervisor(command=(sys.executable, "-c", "raise SystemExit(3)", "--"), logs=tmp_path / "logs",
                        clock=lambda: now[0], poll=0.01)  # fmt: skip
    try:
        sup.restart([_spec(tmp_path)])
        child = sup.children["line-a"]
        _wait(lambda: child.failures == 1 and child.next_start > now[0])
        assert child.next_start == 100.5 and child.died == "exit 3"
    finally:
        sup.close()


def test_systemctl_is_given_a_minute_and_named_by_its_first_word(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    import subprocess

    given: list[float] = []

    def run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        given.append(kw["timeout"])  # type: ignore[arg-type]
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(rn.subprocess, "run", run)
    rn.SystemdUnits(unit_dir=tmp_path / "u")._ctl("daemon-reload")
    assert given == [60.0]
    monkeypatch.undo()
    gone = rn.SystemdUnits(unit_dir=tmp_path / "u", systemctl=(str(tmp_path / "nope"), "--user"))
    with pytest.raises(rn.RunnerError, match=f"^{tmp_path / 'nope'} daemon-reload: "):
        gone._ctl("daemon-reload")


def test_systemctl_s_complaint_is_its_last_300_characters(tmp_path: Path) -> None:
    talk = rn.SystemdUnits(unit_dir=tmp_path / "u", systemctl=(
        sys.executable, "-c", "import sys; sys.stderr.write('a' * 100 + 'b' * 300 + '\\n'); sys.exit(1)"))  # fmt: skip
    with pytest.raises(rn.RunnerError) as err:
        talk._ctl("x")
    assert str(err.value).endswith(": " + "b" * 300)


def test_the_unit_directory_is_made_with_its_parents(tmp_path: Path) -> None:
    units, _ = _units(tmp_path)
    units.unit_dir = tmp_path / "etc" / "systemd" / "system"
    units.restart([_unit_spec(tmp_path)])
    assert (units.unit_dir / "takt-runner-line-a.service").is_file()


def test_a_deployment_that_left_is_removed_and_the_rest_reloaded(tmp_path: Path) -> None:
    units, d = _units(tmp_path)
    a, b = _unit_spec(tmp_path, "a"), _unit_spec(tmp_path, "b")
    units.ensure([a, b])
    first = len(_calls(d))
    units.ensure([a])  # a's unit is as installed: only b's removal changed anything
    calls = _calls(d)[first:]
    assert calls[0] == ["disable", "--now", "takt-runner-b.service"] and ["daemon-reload"] in calls
    assert sorted(p.name for p in units.unit_dir.iterdir()) == ["takt-runner-a.service"]
