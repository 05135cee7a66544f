"""One reconcile cycle: fetch → verify → stage → pre-check → switch → hook → post-check, or roll back.

Idempotent at every step: a kill at any instant leaves `current` on a whole, verified release
(the old or the new one), and the next cycle converges. Nothing is touched until the desired
state and every bundle byte are verified.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from agent.config import AgentConfig
from agent.gitsync import FetchError, remote_head, sync
from agent.health import run_health
from agent.releases import (
    StageError,
    activate,
    clean_staging,
    current_release,
    machine_arch,
    mem_available,
    preflight,
    prune,
    release_id_of,
    stage,
    verify_release,
)
from agent.status import Memory, journal, write_metrics, write_status
from agent.verify import Refused, load_trusted, verify_desired
from compiler.bundle import DESIRED, DesiredState


@dataclass(frozen=True)
class Outcome:
    result: str  # applied | unchanged | repaired | refused | rejected | rolled-back | fetch-failed | preempted
    reason: str
    message: str

    @property
    def ready(self) -> bool:
        return self.result in ("applied", "unchanged", "repaired")


def _hook(cfg: AgentConfig, release: Path) -> tuple[bool, str]:
    if not cfg.activate_hook:
        return True, ""
    env = {**os.environ, "TAKT_RELEASE_DIR": str(release), "TAKT_DEVICE": cfg.device}
    try:
        proc = subprocess.run(
            shlex.split(cfg.activate_hook), env=env, capture_output=True, text=True, timeout=cfg.hook_timeout
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"activate hook failed: {exc}"
    return proc.returncode == 0, (proc.stderr or proc.stdout).strip()[-300:] or f"exit {proc.returncode}"


def _post_check(cfg: AgentConfig, release: Path) -> tuple[bool, str]:
    ok, why = run_health(release, cfg.python, cfg.health_timeout)
    if ok and cfg.post_check:
        try:
            proc = subprocess.run(
                shlex.split(cfg.post_check),
                env={**os.environ, "TAKT_RELEASE_DIR": str(release)},
                capture_output=True,
                text=True,
                timeout=cfg.health_timeout,
            )
            ok, why = proc.returncode == 0, (proc.stderr or proc.stdout).strip()[-300:] or f"exit {proc.returncode}"
        except (OSError, subprocess.TimeoutExpired) as exc:
            ok, why = False, f"post check failed: {exc}"
    return ok, why


class Reconciler:
    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        self.state = cfg.state_dir
        self.state.mkdir(parents=True, exist_ok=True)
        self.repo_dir = self.state / "repo"

    def run_once(self) -> Outcome:
        """One cycle under an exclusive lock of the state directory (released when the process dies)."""
        with (self.state / "agent.lock").open("a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return Outcome("refused", "Locked", f"another agent works on {self.state}")
            return self._run_once()

    def _run_once(self) -> Outcome:
        cfg, state = self.cfg, self.state
        now = cfg.clock()
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        mem = Memory.load(state)
        clean_staging(state)
        fields: dict = {"device": cfg.device, "repo": cfg.repo, "branch": cfg.branch}

        def finish(outcome: Outcome, **extra) -> Outcome:
            current = current_release(state)
            timings["totalSeconds"] = round(time.perf_counter() - t0, 4)
            mem.reconciles[outcome.result] = mem.reconciles.get(outcome.result, 0) + 1
            applied = _release_meta(current)
            doc = write_status(
                state,
                now,
                ready=outcome.ready,
                reconciling=False,
                stalled=outcome.result in ("refused", "rejected"),
                degraded=outcome.result in ("rolled-back", "fetch-failed", "rejected", "refused", "preempted"),
                reason=outcome.reason,
                message=outcome.message,
                fields={
                    **fields,
                    **extra,
                    "result": outcome.result,
                    "lastError": None if outcome.ready else outcome.message,
                    "appliedGeneration": applied.get("generation"),
                    "appliedRelease": release_id_of(current),
                    "appliedBundles": applied.get("bundles", []),
                    "lastKnownGood": mem.last_known_good,
                    "acceptedGeneration": mem.accepted_generation,
                    "timings": timings,
                },
            )
            write_metrics(state, mem, doc, cfg.metrics_file)
            mem.save(state)
            return outcome

        # fetch: a cheap remote check, then only this device's files
        t = time.perf_counter()
        try:
            head = remote_head(cfg.repo, cfg.branch, cfg.git_timeout)
            workdir, commit = sync(
                cfg.repo, cfg.branch, self.repo_dir, head, [f"/devices/{cfg.device}/"], cfg.git_timeout
            )
            wanted = _bundle_paths(workdir / "devices" / cfg.device / DESIRED)
            if wanted:
                workdir, commit = sync(
                    cfg.repo, cfg.branch, self.repo_dir, commit, [f"/devices/{cfg.device}/", *wanted], cfg.git_timeout
                )
        except FetchError as exc:
            journal(state, now, "fetch-failed", error=exc.args[0])
            return finish(Outcome("fetch-failed", "FetchFailed", f"{exc.args[0]}; keeping the current release"))
        timings["fetchSeconds"] = round(time.perf_counter() - t, 4)
        fields["remoteCommit"] = commit

        # verify: signature, generation, expiry, device, every bundle byte
        t = time.perf_counter()
        try:
            trusted = load_trusted(cfg.trusted_keys)
            verified = verify_desired(workdir, cfg.device, trusted, mem.accepted_generation, mem.accepted_release, now)
        except Refused as exc:
            journal(state, now, "refused", reason=exc.reason, message=exc.message)
            return finish(Outcome("refused", exc.reason, exc.message))
        timings["verifySeconds"] = round(time.perf_counter() - t, 4)
        desired, rid = verified.state, verified.release_id
        fields.update(
            desiredGeneration=desired.generation,
            desiredRelease=rid,
            signerKeyId=verified.key_id,
            desiredBundles=[{"name": b.name, "digest": b.digest} for b in desired.bundles],
        )
        if desired.generation > mem.accepted_generation:
            mem.accepted_generation, mem.accepted_release = desired.generation, rid
            journal(state, now, "accepted", generation=desired.generation, release=rid, key=verified.key_id)

        current = current_release(state)
        if current is not None and release_id_of(current) == rid:
            drift = verify_release(current)
            if not drift and mem.pending_health != current.name:
                return finish(Outcome("unchanged", "UpToDate", f"generation {desired.generation} is running"))
            if drift:
                journal(state, now, "drift", release=current.name, problems=drift[:5])
        if rid in mem.quarantine and mem.quarantine[rid] == desired.generation:
            return finish(
                Outcome(
                    "rejected",
                    "Quarantined",
                    f"release {rid[:12]} failed its health gate at "
                    f"generation {desired.generation}; waiting for a new desired state",
                )
            )

        if (
            current is not None
            and release_id_of(current) == rid
            and mem.pending_health == current.name
            and not verify_release(current)
        ):
            # killed after the switch, before the post check: finish what was started
            return self._post_activation(mem, current, None, desired, rid, timings, finish, now)

        # stage and pre-check beside the live release
        t = time.perf_counter()
        try:
            preflight(
                workdir, desired, cfg.arch or machine_arch(), cfg.memory if cfg.memory is not None else mem_available()
            )
            staged = stage(state, workdir, desired, rid, cfg.reserve_bytes)
        except StageError as exc:
            journal(state, now, "stage-failed", reason=exc.reason, message=exc.message)
            return finish(Outcome("refused", exc.reason, f"{exc.message}; keeping the current release"))
        timings["stageSeconds"] = round(time.perf_counter() - t, 4)
        t = time.perf_counter()

        def newer() -> bool:
            try:
                return remote_head(cfg.repo, cfg.branch, cfg.git_timeout) != head
            except FetchError:
                return False

        ok, why = run_health(staged, cfg.python, cfg.health_timeout, preempt=newer)
        timings["healthSeconds"] = round(time.perf_counter() - t, 4)
        if not ok:
            if why.startswith("preempted"):
                journal(state, now, "preempted", release=staged.name)
                return finish(Outcome("preempted", "Preempted", "a newer desired state arrived during the check"))
            mem.quarantine[rid] = desired.generation
            journal(state, now, "pre-check-failed", release=staged.name, reason=why)
            return finish(Outcome("rejected", "HealthCheckFailed", f"new release not activated: {why}"))

        # switch, hook, post-check; any failure switches back to the last known good
        previous = current
        mem.pending_health = staged.name
        mem.save(state)
        activate(state, staged)
        journal(state, now, "activated", release=staged.name, generation=desired.generation)
        return self._post_activation(mem, staged, previous, desired, rid, timings, finish, now)

    def _post_activation(
        self, mem, release: Path, previous: Path | None, desired: DesiredState, rid: str, timings, finish, now
    ) -> Outcome:
        cfg, state = self.cfg, self.state
        t = time.perf_counter()
        ok, why = _hook(cfg, release)
        if ok:
            ok, why = _post_check(cfg, release)
        timings["postCheckSeconds"] = round(time.perf_counter() - t, 4)
        mem.pending_health = None
        if not ok:
            mem.quarantine[rid] = desired.generation
            fallback = (
                previous
                if previous is not None
                else (state / "releases" / mem.last_known_good if mem.last_known_good else None)
            )
            if fallback is not None and fallback.is_dir() and fallback != release:
                activate(state, fallback)
                _hook(cfg, fallback)
                journal(state, now, "rolled-back", failed=release.name, to=fallback.name, reason=why)
                return finish(
                    Outcome(
                        "rolled-back",
                        "RolledBack",
                        f"{release.name} failed after activation ({why}); back on {fallback.name}",
                    )
                )
            journal(state, now, "post-check-failed", release=release.name, reason=why)
            return finish(Outcome("rejected", "HealthCheckFailed", f"{why}; no earlier release to return to"))
        mem.last_known_good = release.name
        mem.good = [*[g for g in mem.good if g != release.name][-cfg.keep_releases :], release.name]
        prune(state, mem.good)
        journal(state, now, "healthy", release=release.name, generation=desired.generation)
        return finish(Outcome("applied", "Applied", f"generation {desired.generation} is running"))


def _release_meta(release: Path | None) -> dict:
    try:
        return json.loads((release / "release.json").read_text()) if release else {}
    except (OSError, ValueError):
        return {}


def _bundle_paths(desired_file: Path) -> list[str]:
    """Which bundle directories to check out; read before verification, used only to choose paths."""
    try:
        state = DesiredState.parse(desired_file.read_bytes())
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [f"/bundles/{b.digest}/" for b in state.bundles]
