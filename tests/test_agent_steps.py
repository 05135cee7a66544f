"""The cycle's parts, deterministically: the switch under an injected crash between any two of its
filesystem calls, the journal's chain whatever its entries' sizes, a step that raises, quarantine
over several cycles."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest

from agent.cycle import Step
from agent.reasons import Event, Reason, Result
from agent.reconcile import Reconciler
from agent.releases import activate, current_release
from agent.status import GENESIS, JOURNAL, journal, verify_journal
from agent.steps import STEPS
from compiler.bundle import canonical_json
from tests.agentkit import World, in_days, journal_events, read_status, served_world

# --- the switch: a crash between any two filesystem calls leaves `current` whole -----------------

_MUTATING = ("symlink", "replace", "rename", "unlink", "remove", "link", "rmdir")


class Crash(BaseException):
    """The process dies here: nothing after this call runs (no except clause catches it)."""


def _crash_at(monkeypatch: pytest.MonkeyPatch, k: int) -> list[str]:
    """From now on, the k-th mutating filesystem call (0-based) crashes before it runs."""
    calls: list[str] = []
    for name in _MUTATING:
        real = getattr(os, name)

        def wrapper(*a, _real=real, _name=name, **kw):
            if len(calls) == k:
                calls.append(f"{_name} (crashed)")
                raise Crash
            calls.append(_name)
            return _real(*a, **kw)

        monkeypatch.setattr(os, name, wrapper)
    return calls


def _releases(root: Path) -> tuple[Path, Path, Path]:
    state = root / "state"
    old, new = state / "releases/old.1", state / "releases/new.2"
    for r in (old, new):
        r.mkdir(parents=True)
        (r / "release.json").write_text(r.name)
    activate(state, old)
    return state, old, new


@pytest.mark.parametrize("previous", ["a release", "no release yet"])
def test_activate_leaves_current_on_the_old_or_the_new_release_whatever_call_it_dies_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, previous: str
):
    outcomes = []
    for k in range(12):
        state, old, new = _releases(tmp_path / str(k))
        if previous == "no release yet":
            (state / "current").unlink()
        calls = _crash_at(monkeypatch, k)
        try:
            activate(state, new)
            finished = True
        except Crash:
            finished = False
        monkeypatch.undo()
        live = current_release(state)
        allowed = (new,) if finished else (old, new) if previous == "a release" else (None, new)
        assert live in allowed, f"crash before call {k} ({calls}): current is {live}"
        outcomes.append((finished, live))
        if finished:
            assert len(calls) == k, "a finished switch made fewer calls than the crash point"
            break
    assert outcomes[-1] == (True, new), "the switch never completed within 12 calls"
    assert any(not f for f, _ in outcomes), "no crash point was exercised"


# --- the journal's chain is independent of entry size ------------------------------------------


def _append_raw(path: Path, details: dict, prev: str) -> str:
    """An entry as an earlier agent version wrote it (unbounded details), correctly chained."""
    entry = {"time": "2026-01-01T00:00:00Z", "event": "refused", "details": details, "prev": prev}
    digest = hashlib.sha256(canonical_json(entry)).hexdigest()
    with path.open("ab") as fh:
        fh.write(canonical_json({**entry, "hash": digest}))
    return digest


@pytest.mark.parametrize("size", [10, 65_400, 65_536, 65_537, 200 << 10, 3 << 20])
@pytest.mark.parametrize("torn", [0, 100, 70_000])
def test_the_chain_survives_entries_of_any_size_and_a_torn_tail(tmp_path: Path, size: int, torn: int):
    from datetime import UTC, datetime

    path = tmp_path / JOURNAL
    head = _append_raw(path, {"message": "a"}, GENESIS)
    _append_raw(path, {"message": "k" * size}, head)
    if torn:
        with path.open("ab") as fh:
            fh.write(b'{"details":{"message":"' + b"t" * torn)  # killed mid-append
    journal(tmp_path, datetime(2026, 1, 2, tzinfo=UTC), Event.REFUSED, reason=Reason.SIGNATURE_INVALID)
    assert verify_journal(path) == (True, 3)


def test_journal_entries_and_status_are_bounded_whatever_they_quote(tmp_path: Path):
    from datetime import UTC, datetime

    from agent.status import write_status

    now = datetime(2026, 1, 2, tzinfo=UTC)
    journal(tmp_path, now, Event.REFUSED, message="m" * (5 << 20), problems=["p" * 10_000] * 10_000)
    assert (tmp_path / JOURNAL).stat().st_size < 512 << 10 and verify_journal(tmp_path / JOURNAL) == (True, 1)
    write_status(
        tmp_path,
        now,
        ready=False,
        reconciling=False,
        stalled=True,
        degraded=True,
        reason=Reason.SIGNATURE_INVALID,
        message="x" * (20 << 20),
        fields={"lastError": "y" * (20 << 20)},
    )
    assert (tmp_path / "status.json").stat().st_size < 16 << 10


# --- the cycle as steps -----------------------------------------------------------------------


@pytest.fixture
def world(tmp_path: Path):
    with served_world(tmp_path) as w:
        yield w


def test_a_step_that_raises_is_reported_and_the_loop_goes_on(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import agent.loop

    def broken(_cycle):
        raise RecursionError("maximum recursion depth exceeded")

    state = tmp_path / "state"
    steps = tuple(Step("verify-state", broken) if s.name == "verify-state" else s for s in STEPS)
    seen = []

    class Patched(Reconciler):
        def __init__(self, cfg):
            super().__init__(cfg, steps)

    monkeypatch.setattr(agent.loop, "Reconciler", Patched)
    agent.loop.run(world.config(state, fast=True), cycles=3, sleep=lambda _s: None, report=seen.append)
    assert [(o.result, o.reason) for o in seen] == [("failed", "InternalError")] * 3
    doc = read_status(state)
    assert (doc["result"], doc["reason"]) == ("failed", "InternalError") and "RecursionError" in doc["lastError"]
    assert next(c for c in doc["conditions"] if c["type"] == "Ready")["status"] == "False"
    assert [e["event"] for e in journal_events(state)] == ["internal-error"] * 3
    assert 'takt_agent_reason{reason="InternalError"} 1' in (state / "metrics.prom").read_text()
    assert Reconciler(world.config(state, fast=True)).run_once().result == "applied"


def test_every_reason_string_the_readme_promises_is_a_reason():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme[readme.index("`status.json` (written atomically)") :][:800]
    promised = set(re.findall(r"`([A-Z][A-Za-z]+)`", section))
    assert promised and promised <= {r.value for r in Reason}
    assert {"applied", "unchanged", "refused", "rejected", "rolled-back", "fetch-failed", "preempted"} <= {
        r.value for r in Result
    }


# --- quarantine over several cycles -----------------------------------------------------------

FAILING_HEALTH = (
    '#!/bin/sh\necho \'{"ok": false, "checks": [{"bundle": "*", "ok": false, "detail": "stub"}]}\'\nexit 1\n'
)


@pytest.mark.parametrize("gate", ["pre-check", "activate-hook", "post-check"])
def test_a_release_that_failed_a_gate_is_not_tried_again_until_the_state_changes(
    world: World, tmp_path: Path, gate: str
):
    state = tmp_path / "state"
    assert Reconciler(world.config(state, fast=True)).run_once().result == "applied"
    first = current_release(state)
    world.republish(("specs/deployment.yaml", "cpu: 500m", "cpu: 750m"))
    hook_log = tmp_path / "hook.log"
    hook = tmp_path / "hook.sh"
    fail = "exit 1\n" if gate == "activate-hook" else ""
    hook.write_text(f'#!/bin/sh\necho "$TAKT_RELEASE_DIR" >> {hook_log}\n{fail}')
    hook.chmod(0o755)
    failing = tmp_path / "failing-health"
    failing.write_text(FAILING_HEALTH)
    failing.chmod(0o755)
    kw: dict = {"activate_hook": str(hook)}
    if gate == "pre-check":
        kw["python"] = str(failing)
    elif gate == "post-check":
        kw["post_check"] = "false"
    outcomes = [Reconciler(world.config(state, fast=gate != "pre-check", **kw)).run_once() for _ in range(5)]
    first_reason = "HealthCheckFailed" if gate == "pre-check" else "RolledBack"
    assert [o.reason for o in outcomes] == [first_reason] + ["Quarantined"] * 4, outcomes
    events = [e["event"] for e in journal_events(state)]
    failures = events.count("pre-check-failed") + events.count("rolled-back")
    assert failures == 1, events
    assert events.count("activated") == (1 if gate == "pre-check" else 2)  # the first apply, then at most one
    assert current_release(state) == first
    calls = hook_log.read_text().split() if hook_log.exists() else []
    assert len(calls) == (0 if gate == "pre-check" else 2)  # never, or once for the new release and once back
    # a new desired state lifts the quarantine: it is tried (and here fails) once more
    work = world.checkout()
    from compiler.bundle import DesiredState

    old = DesiredState.parse((work / "devices/ipc-press-1/desired.json").read_bytes())
    world.signed_state(work, "ipc-press-1", DesiredState(old.device, old.generation + 1, in_days(7), old.bundles))
    world.push(work)
    again = [Reconciler(world.config(state, fast=gate != "pre-check", **kw)).run_once() for _ in range(2)]
    assert [o.reason for o in again] == [first_reason, "Quarantined"]
    assert read_status(state)["acceptedGeneration"] == old.generation + 1 and current_release(state) == first


def test_the_agent_imports_only_compiler_bundle_from_the_compiler():
    import ast

    offenders = []
    for path in sorted((Path(__file__).parents[1] / "agent").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: {n}"
                for n in names
                if n.split(".")[0] == "compiler" and not n.startswith("compiler.bundle")
            ]
    assert offenders == []
