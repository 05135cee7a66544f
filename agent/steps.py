"""The steps of a reconcile cycle, in order (see agent.cycle for their one signature).

fetch state → verify state → fetch bundles → verify bundles → compare with the live release →
stage → pre-check → switch → post-check (or roll back). Nothing is touched until the desired
state and every bundle byte are verified, and nothing is checked out that the signed state does
not name. The runners of the live release are started, judged and reported by the steps of
agent.runner_gate (observe first, ports before the switch, the runner gate after it).
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from agent.config import AgentConfig
from agent.cycle import Cycle, Outcome, Step, need
from agent.gitsync import FetchError, remote_head, sync
from agent.health import run_health
from agent.reasons import Event, Reason, Result
from agent.releases import (
    StageError,
    activate,
    machine_arch,
    mem_available,
    preflight,
    prune,
    release_id_of,
    stage,
    verify_release,
)
from agent.report import report_step
from agent.runner_gate import check_ports, gate_runners, observe_runners, restore_runners
from agent.verify import (
    Refused,
    listed_paths,
    load_trusted,
    manifest_paths,
    state_paths,
    verify_bundles,
    verify_state,
)


def _fetched(c: Cycle, paths: list[str], head: str) -> Outcome | None:
    cfg = c.cfg
    try:
        c.workdir, c.commit = sync(cfg.repo, cfg.branch, c.state / "repo", head, paths, cfg.git_timeout)
    except FetchError as exc:
        c.record(Event.FETCH_FAILED, error=exc.args[0])
        return Outcome(Result.FETCH_FAILED, Reason.FETCH_FAILED, f"{exc.args[0]}; keeping the current release")
    c.fields["remoteCommit"] = c.commit
    return None


def fetch_state(c: Cycle) -> Outcome | None:
    """A cheap remote check, then only desired.json and its signature (nothing beside them)."""
    try:
        c.head = remote_head(c.cfg.repo, c.cfg.branch, c.cfg.git_timeout)
    except FetchError as exc:
        c.record(Event.FETCH_FAILED, error=exc.args[0])
        return Outcome(Result.FETCH_FAILED, Reason.FETCH_FAILED, f"{exc.args[0]}; keeping the current release")
    return _fetched(c, state_paths(c.cfg.device), c.head)


def _refused(c: Cycle, exc: Refused) -> Outcome:
    c.record(Event.REFUSED, reason=exc.reason, message=exc.message)
    return Outcome(Result.REFUSED, exc.reason, exc.message)


def verify_desired(c: Cycle) -> Outcome | None:
    """Signature by a trusted key, device, generation, expiry: before any bundle is fetched."""
    try:
        trusted = load_trusted(c.cfg.trusted_keys)
        workdir, mem = need(c.workdir, "the clone"), c.mem
        verified = verify_state(workdir, c.cfg.device, trusted, mem.accepted_generation, mem.accepted_release, c.now)
    except Refused as exc:
        return _refused(c, exc)
    c.desired, c.key_id, c.release_id = verified.state, verified.key_id, verified.release_id
    return None


def fetch_bundles(c: Cycle) -> Outcome | None:
    """The manifests the signed state names, then exactly the files they list."""
    desired = need(c.desired, "the desired state")
    if not desired.bundles:
        return None
    device = state_paths(c.cfg.device)
    outcome = _fetched(c, [*device, *manifest_paths(desired)], need(c.commit, "the fetched commit"))
    if outcome is None:
        listed = listed_paths(need(c.workdir, "the clone"), desired)
        outcome = _fetched(c, [*device, *manifest_paths(desired), *listed], need(c.commit, "the fetched commit"))
    return outcome


def verify_bundles_step(c: Cycle) -> Outcome | None:
    """Every bundle byte against its manifest; then the state is accepted (its generation remembered)."""
    desired = need(c.desired, "the desired state")
    try:
        c.manifests = verify_bundles(need(c.workdir, "the clone"), desired)
    except Refused as exc:
        return _refused(c, exc)
    rid = c.release_id
    c.fields.update(
        desiredGeneration=desired.generation,
        desiredRelease=rid,
        signerKeyId=c.key_id,
        desiredBundles=[{"name": b.name, "digest": b.digest} for b in desired.bundles],
    )
    if desired.generation > c.mem.accepted_generation:
        c.mem.accepted_generation, c.mem.accepted_release = desired.generation, rid
        c.record(Event.ACCEPTED, generation=desired.generation, release=rid, key=c.key_id)
    return None


def compare(c: Cycle) -> Outcome | None:
    """Up to date, drifted (restage), quarantined (wait), or killed mid-activation (resume)."""
    desired, rid = need(c.desired, "the desired state"), need(c.release_id, "the release id")
    mem, current = c.mem, c.current
    running = current is not None and release_id_of(current) == rid
    drift = verify_release(current) if current is not None and running else []
    if current is not None and running and not drift and mem.pending_health != current.name:
        return Outcome(Result.UNCHANGED, Reason.UP_TO_DATE, f"generation {desired.generation} is running")
    if current is not None and drift:
        c.record(Event.DRIFT, release=current.name, problems=drift[:5])
    if rid in mem.quarantine and mem.quarantine[rid] == desired.generation:
        return Outcome(
            Result.REJECTED,
            Reason.QUARANTINED,
            f"release {rid[:12]} failed its health gate at generation {desired.generation}; "
            "waiting for a new desired state",
        )
    if current is not None and running and not drift and mem.pending_health == current.name:
        c.release, c.resumed = current, True  # killed after the switch, before the post check
    return None


def stage_release(c: Cycle) -> Outcome | None:
    """Preflight (architecture, memory), then stage beside the live release."""
    if c.resumed:
        return None
    cfg, desired = c.cfg, need(c.desired, "the desired state")
    try:
        manifests = [c.manifests[b.digest] for b in desired.bundles]
        preflight(manifests, cfg.arch or machine_arch(), cfg.memory if cfg.memory is not None else mem_available())
        workdir, rid = need(c.workdir, "the clone"), need(c.release_id, "the release id")
        c.release = stage(c.state, workdir, desired, c.manifests, rid, cfg.reserve_bytes)
    except StageError as exc:
        c.record(Event.STAGE_FAILED, reason=exc.reason, message=exc.message)
        return Outcome(Result.REFUSED, exc.reason, f"{exc.message}; keeping the current release")
    return None


def pre_check(c: Cycle) -> Outcome | None:
    """The health gate in a subprocess; a newer desired state pre-empts it."""
    if c.resumed:
        return None
    cfg, release = c.cfg, need(c.release, "the staged release")

    def newer() -> bool:
        try:
            return remote_head(cfg.repo, cfg.branch, cfg.git_timeout) != c.head
        except FetchError:
            return False

    ok, why = run_health(release, cfg.python, cfg.health_timeout, preempt=newer)
    if ok:
        return None
    if why.startswith("preempted"):
        c.record(Event.PREEMPTED, release=release.name)
        return Outcome(Result.PREEMPTED, Reason.PREEMPTED, "a newer desired state arrived during the check")
    c.mem.quarantine[need(c.release_id, "the release id")] = need(c.desired, "the desired state").generation
    c.record(Event.PRE_CHECK_FAILED, release=release.name, reason=why)
    return Outcome(Result.REJECTED, Reason.HEALTH_CHECK_FAILED, f"new release not activated: {why}")


def switch(c: Cycle) -> Outcome | None:
    """`current` to the new release in one rename, remembered as pending until it proves healthy."""
    if c.resumed:
        return None
    release = need(c.release, "the staged release")
    c.mem.pending_health = release.name
    c.mem.save(c.state)
    activate(c.state, release)
    c.record(Event.ACTIVATED, release=release.name, generation=need(c.desired, "the desired state").generation)
    return None


def _run(cmd: str, env: dict[str, str], timeout: float, what: str) -> tuple[bool, str]:
    try:
        proc = subprocess.run(shlex.split(cmd), env=env, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"{what} failed: {exc}"
    return proc.returncode == 0, (proc.stderr or proc.stdout).strip()[-300:] or f"exit {proc.returncode}"


def hook(cfg: AgentConfig, release: Path) -> tuple[bool, str]:
    if not cfg.activate_hook:
        return True, ""
    env = {**os.environ, "TAKT_RELEASE_DIR": str(release), "TAKT_DEVICE": cfg.device}
    return _run(cfg.activate_hook, env, cfg.hook_timeout, "activate hook")


def _post_check(cfg: AgentConfig, release: Path) -> tuple[bool, str]:
    ok, why = run_health(release, cfg.python, cfg.health_timeout)
    if ok and cfg.post_check:
        env = {**os.environ, "TAKT_RELEASE_DIR": str(release)}
        ok, why = _run(cfg.post_check, env, cfg.health_timeout, "post check")
    return ok, why


def post_activation(c: Cycle) -> Outcome:
    """Hook and post check; any failure quarantines the release and switches back to the last known good."""
    cfg, state, mem, release = c.cfg, c.state, c.mem, need(c.release, "the release being activated")
    desired = need(c.desired, "the desired state")
    ok, why = hook(cfg, release)
    if ok:
        ok, why = _post_check(cfg, release)
    mem.pending_health = None
    if not ok:
        mem.quarantine[need(c.release_id, "the release id")] = desired.generation
        previous = None if c.resumed else c.current
        fallback = previous or (state / "releases" / mem.last_known_good if mem.last_known_good else None)
        if fallback is not None and fallback.is_dir() and fallback != release:
            activate(state, fallback)
            hook(cfg, fallback)
            restored, note = restore_runners(c, fallback)  # never "rolled back" unseen: its runner checked
            c.record(Event.ROLLED_BACK, failed=release.name, to=fallback.name, reason=why, restored=note)
            return Outcome(
                Result.ROLLED_BACK if restored else Result.REJECTED,
                Reason.ROLLED_BACK if restored else Reason.RESTORE_UNHEALTHY,
                f"{release.name} failed after activation ({why}); back on {fallback.name}" + (note and f": {note}"),
            )
        c.record(Event.POST_CHECK_FAILED, release=release.name, reason=why)
        return Outcome(Result.REJECTED, Reason.HEALTH_CHECK_FAILED, f"{why}; no earlier release to return to")
    mem.last_known_good = release.name
    mem.good = [*[g for g in mem.good if g != release.name][-cfg.keep_releases :], release.name]
    prune(state, mem.good)
    c.record(Event.HEALTHY, release=release.name, generation=desired.generation)
    return Outcome(Result.APPLIED, Reason.APPLIED, f"generation {desired.generation} is running")


STEPS: tuple[Step, ...] = (
    Step("runners", observe_runners, "runnerSeconds"),
    Step("fetch-state", fetch_state, "fetchSeconds"),
    Step("verify-state", verify_desired, "verifySeconds"),
    Step("fetch-bundles", fetch_bundles, "fetchSeconds"),
    Step("verify-bundles", verify_bundles_step, "verifySeconds"),
    Step("compare", compare),
    Step("stage", stage_release, "stageSeconds"),
    Step("pre-check", pre_check, "healthSeconds"),
    Step("runner-ports", check_ports),
    Step("switch", switch),
    Step("runner-gate", gate_runners, "runnerSeconds"),
    Step("post-check", post_activation, "postCheckSeconds"),
    Step("report", report_step, "reportSeconds", after=True),
)
