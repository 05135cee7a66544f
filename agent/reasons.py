"""The words the agent reports, one Enum each, shared by status.json, metrics.prom and journal.log.

Users' scripts read these strings: a member's value is the exact string written today, and a
member is added, never renamed.
"""

from __future__ import annotations

from enum import StrEnum


class Result(StrEnum):
    """What one cycle did: `status.json` field `result`, the `result` label of the reconcile counter."""

    APPLIED = "applied"
    UNCHANGED = "unchanged"
    REPAIRED = "repaired"
    REFUSED = "refused"
    REJECTED = "rejected"
    ROLLED_BACK = "rolled-back"
    FETCH_FAILED = "fetch-failed"
    PREEMPTED = "preempted"
    FAILED = "failed"  # a step raised: a defect of the agent, reported and retried, never an exit

    @property
    def ready(self) -> bool:
        return self in (Result.APPLIED, Result.UNCHANGED, Result.REPAIRED)

    @property
    def stalled(self) -> bool:
        return self in (Result.REFUSED, Result.REJECTED)

    @property
    def degraded(self) -> bool:
        return self not in (Result.APPLIED, Result.UNCHANGED, Result.REPAIRED)


class Reason(StrEnum):
    """Why: the `reason` of the conditions, of the journal's refusals and of the `reason` metric."""

    APPLIED = "Applied"
    UP_TO_DATE = "UpToDate"
    PROGRESSING = "Progressing"
    HEALTHY = "Healthy"
    LOCKED = "Locked"
    FETCH_FAILED = "FetchFailed"
    UNTRUSTED_KEY_FILE = "UntrustedKeyFile"
    NO_DESIRED_STATE = "NoDesiredState"
    SIGNATURE_MISSING = "SignatureMissing"
    UNTRUSTED_KEY = "UntrustedKey"
    SIGNATURE_INVALID = "SignatureInvalid"
    DESIRED_STATE_INVALID = "DesiredStateInvalid"
    WRONG_DEVICE = "WrongDevice"
    ROLLBACK_REFUSED = "RollbackRefused"
    GENERATION_REUSED = "GenerationReused"
    EXPIRED = "Expired"
    BUNDLE_INVALID = "BundleInvalid"
    QUARANTINED = "Quarantined"
    WRONG_ARCHITECTURE = "WrongArchitecture"
    INSUFFICIENT_MEMORY = "InsufficientMemory"
    INSUFFICIENT_DISK = "InsufficientDisk"
    STAGING_CORRUPT = "StagingCorrupt"
    STAGING_FAILED = "StagingFailed"
    PREEMPTED = "Preempted"
    HEALTH_CHECK_FAILED = "HealthCheckFailed"
    ROLLED_BACK = "RolledBack"
    INTERNAL_ERROR = "InternalError"
    # the runner gate (agent/runner_gate.py): what the runner of a release showed after the switch
    RUNNER_CRASHED = "RunnerCrashed"  # the runner exited (or its unit failed)
    RUNNER_NOT_READY = "RunnerNotReady"  # no answer within the health-gate window
    SOURCE_REFUSED = "SourceRefused"  # a server refused the release's node id, topic, register or credential
    ERROR_RATE_EXCEEDED = "ErrorRateExceeded"  # inference errors above the gate's maxErrorRate
    LATENCY_EXCEEDED = "LatencyExceeded"  # the runner's p95 inference latency above the gate's maxLatencyP95
    RUNNER_START_FAILED = "RunnerStartFailed"  # the unit could not be installed or started
    PORT_CONFLICT = "PortConflict"  # two runners of one release on one port
    SOURCE_UNAVAILABLE = "SourceUnavailable"  # Degraded, release kept: the plant (a PLC off, a broker down)
    RESTORE_UNHEALTHY = "RestoreUnhealthy"  # Stalled: rolled back, but the restored runner is not healthy


class Event(StrEnum):
    """The `event` of a journal entry: one per transition."""

    ACCEPTED = "accepted"
    REFUSED = "refused"
    FETCH_FAILED = "fetch-failed"
    DRIFT = "drift"
    STAGE_FAILED = "stage-failed"
    PREEMPTED = "preempted"
    PRE_CHECK_FAILED = "pre-check-failed"
    ACTIVATED = "activated"
    ROLLED_BACK = "rolled-back"
    POST_CHECK_FAILED = "post-check-failed"
    HEALTHY = "healthy"
    INTERNAL_ERROR = "internal-error"
    RUNNERS_STARTED = "runners-started"
    RUNNER_GATE_FAILED = "runner-gate-failed"
    RUNNER_DEGRADED = "runner-degraded"  # kept: a source of the plant is down
    RUNNER_RESTORED = "runner-restored"  # after a rollback: the restored runner checked healthy
    RESTORE_FAILED = "restore-failed"
