"""Device status reports (`takt/status/v1`): what a device tells the fleet, signed with its own key.

A device writes one report after every transition and at least every few minutes; the build side
(`takt fleet status`, `takt rollout status|promote`) reads them back. The same signed envelope
travels over both transports: as the only file of the commit at `refs/takt/status/<device>` in the
deploy repo (each device pushes only its own ref, so thousands never conflict), and as the
retained MQTT message on `takt/status/<device>`.

The envelope is canonical JSON {"version", "payload": base64(report bytes), "keyId", "signature"};
the signature covers the exact payload bytes. Everything here is unsigned input until verified:
sizes and depths are bounded before parsing, and a report is only believed when the key declared
for that device in its Device spec signed it *and* the report names that device. Replay (a
sequence not above the last one seen) is the reader's check, since only it knows what it saw.
"""

from __future__ import annotations

import base64
import binascii
import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from compiler.bundle.boundedjson import clip, loads_bounded
from compiler.bundle.desired import BundleRef, key_id
from compiler.bundle.manifest import canonical_json

REPORT_VERSION = "takt/status/v1"
STATUS_REF_PREFIX = "refs/takt/status/"
MQTT_TOPIC_PREFIX = "takt/status/"
REPORT_FILE = "status.json"  # the one file of a status ref's commit
MAX_ENVELOPE_BYTES = 256 * 1024  # a report of 64 deployments is ~40 KiB; anything larger is refused unread
MAX_PAYLOAD_BYTES = 192 * 1024
_MAX_DEPTH = 8  # the report nests 4 levels
_MAX_TEXT = 512  # reasons and messages are clipped to this on write and refused beyond it on read
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class Rejected(enum.StrEnum):
    """Why a report is ignored; listed by `takt fleet status` and `takt rollout status`."""

    MALFORMED = "Malformed"
    UNKNOWN_DEVICE = "UnknownDevice"
    NO_KEY = "NoDeclaredKey"
    BAD_SIGNATURE = "BadSignature"
    WRONG_DEVICE = "WrongDevice"
    REPLAYED = "Replayed"


class ReportRejected(ValueError):
    def __init__(self, reason: Rejected, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ShadowHealth:
    """A shadow challenger beside the current model: how far their outputs agree, from the runner's counters."""

    challenger: str  # bundle digest of the challenger
    frames: int  # frames both models were fed
    agreement: float | None  # classifiers: share of equal labels; regressors: share within tolerance
    mean_abs_diff: float | None  # regressors, in the output's unit
    p99_abs_diff: float | None
    inference_p99_ms: float | None
    error_rate: float | None


@dataclass(frozen=True)
class RunnerHealth:
    """One Deployment's runner, summarised from its own /v2/health/ready and /metrics."""

    deployment: str
    bundle: str  # digest of the bundle the runner serves
    ready: bool
    live: bool = True
    reason: str = ""  # why not ready, naming the source or the gate (empty when ready)
    frames: int = 0
    inferences: int = 0
    errors: int = 0
    error_rate: float | None = None
    inference_p99_ms: float | None = None
    drift_psi_max: float | None = None
    shadow: ShadowHealth | None = None

    def to_json(self) -> dict[str, Any]:
        """As in a status report (and the agent's status.json)."""
        return _runner_json(self)


@dataclass(frozen=True)
class Condition:
    type: str  # Ready, Reconciling, Stalled, Degraded, ...
    status: bool
    reason: str
    message: str = ""


@dataclass(frozen=True)
class StatusReport:
    device: str
    sequence: int  # only grows, across restarts of the agent
    time: datetime
    desired_generation: int | None
    applied_generation: int | None
    bundles: tuple[BundleRef, ...] = ()
    conditions: tuple[Condition, ...] = ()
    runners: tuple[RunnerHealth, ...] = ()
    quarantined: tuple[str, ...] = ()  # bundle digests that failed a gate on this device
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def condition(self, kind: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == kind), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": REPORT_VERSION,
            "device": self.device,
            "sequence": self.sequence,
            "time": self.time.astimezone(UTC).strftime(_TIME_FORMAT),
            "desiredGeneration": self.desired_generation,
            "appliedGeneration": self.applied_generation,
            "bundles": [{"name": b.name, "digest": b.digest} for b in self.bundles],
            "conditions": [
                {"type": c.type, "status": c.status, "reason": c.reason[:_MAX_TEXT], "message": c.message[:_MAX_TEXT]}
                for c in self.conditions
            ],
            "runners": [_runner_json(r) for r in self.runners],
            "quarantined": list(self.quarantined),
        }

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    @classmethod
    def parse(cls, data: bytes) -> StatusReport:
        """Parse a report payload; raises ReportRejected(MALFORMED) naming the first problem."""
        try:
            doc = loads_bounded(data, max_bytes=MAX_PAYLOAD_BYTES, max_depth=_MAX_DEPTH, what="status report")
            if not isinstance(doc, dict) or doc.get("version") != REPORT_VERSION:
                raise ValueError(f"not a {REPORT_VERSION} report")
            return cls(
                device=_str(doc, "device"),
                sequence=_int(doc, "sequence"),
                time=_time(doc["time"]),
                desired_generation=_opt_int(doc, "desiredGeneration"),
                applied_generation=_opt_int(doc, "appliedGeneration"),
                bundles=tuple(BundleRef(_str(b, "name"), _digest(b, "digest")) for b in _list(doc, "bundles")),
                conditions=tuple(
                    Condition(_str(c, "type"), _bool(c, "status"), _str(c, "reason"), _str(c, "message"))
                    for c in _list(doc, "conditions")
                ),
                runners=tuple(_runner(r) for r in _list(doc, "runners")),
                quarantined=tuple(_hex64(q) for q in _list(doc, "quarantined")),
            )
        except ReportRejected:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ReportRejected(Rejected.MALFORMED, f"malformed status report ({clip(exc)})") from None

    def next(self, now: datetime, **changes: Any) -> StatusReport:
        """The following report: sequence + 1, a new time, and the given fields changed."""
        return replace(self, sequence=self.sequence + 1, time=now, **changes)


def _runner_json(r: RunnerHealth) -> dict[str, Any]:
    out: dict[str, Any] = {
        "deployment": r.deployment,
        "bundle": r.bundle,
        "ready": r.ready,
        "live": r.live,
        "reason": r.reason[:_MAX_TEXT],
        "frames": r.frames,
        "inferences": r.inferences,
        "errors": r.errors,
        "errorRate": _finite(r.error_rate),
        "inferenceP99Ms": _finite(r.inference_p99_ms),
        "driftPsiMax": _finite(r.drift_psi_max),
        "shadow": None,
    }
    if r.shadow is not None:
        s = r.shadow
        out["shadow"] = {
            "challenger": s.challenger,
            "frames": s.frames,
            "agreement": _finite(s.agreement),
            "meanAbsDiff": _finite(s.mean_abs_diff),
            "p99AbsDiff": _finite(s.p99_abs_diff),
            "inferenceP99Ms": _finite(s.inference_p99_ms),
            "errorRate": _finite(s.error_rate),
        }
    return out


def _runner(d: Any) -> RunnerHealth:
    shadow = d.get("shadow")
    return RunnerHealth(
        deployment=_str(d, "deployment"),
        bundle=_str(d, "bundle"),
        ready=_bool(d, "ready"),
        live=_bool(d, "live"),
        reason=_str(d, "reason"),
        frames=_int(d, "frames"),
        inferences=_int(d, "inferences"),
        errors=_int(d, "errors"),
        error_rate=_opt_float(d, "errorRate"),
        inference_p99_ms=_opt_float(d, "inferenceP99Ms"),
        drift_psi_max=_opt_float(d, "driftPsiMax"),
        shadow=None
        if shadow is None
        else ShadowHealth(
            challenger=_str(shadow, "challenger"),
            frames=_int(shadow, "frames"),
            agreement=_opt_float(shadow, "agreement"),
            mean_abs_diff=_opt_float(shadow, "meanAbsDiff"),
            p99_abs_diff=_opt_float(shadow, "p99AbsDiff"),
            inference_p99_ms=_opt_float(shadow, "inferenceP99Ms"),
            error_rate=_opt_float(shadow, "errorRate"),
        ),
    )


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def _list(d: Any, k: str) -> list[Any]:
    v = d[k]
    if not isinstance(v, list) or len(v) > 256:
        raise ValueError(f"{k} must be a list of at most 256 items")
    return v


def _str(d: Any, k: str) -> str:
    v = d[k]
    if not isinstance(v, str) or len(v) > _MAX_TEXT:
        raise ValueError(f"{k} must be a string of at most {_MAX_TEXT} characters")
    return v


def _bool(d: Any, k: str) -> bool:
    v = d[k]
    if not isinstance(v, bool):
        raise ValueError(f"{k} must be true or false")
    return v


def _int(d: Any, k: str) -> int:
    v = d[k]
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 1 << 63:
        raise ValueError(f"{k} must be a non-negative integer")
    return v


def _opt_int(d: Any, k: str) -> int | None:
    return None if d.get(k) is None else _int(d, k)


def _opt_float(d: Any, k: str) -> float | None:
    v = d.get(k)
    if v is None:
        return None
    if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
        raise ValueError(f"{k} must be a finite number")
    return float(v)


def _hex64(v: Any) -> str:
    if not isinstance(v, str) or len(v) != 64 or any(c not in "0123456789abcdef" for c in v):
        raise ValueError("a bundle digest must be 64 hex digits")
    return v


def _digest(d: Any, k: str) -> str:
    return _hex64(d[k])


_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{1,6})Z", re.ASCII)  # what _TIME_FORMAT writes


def _time(v: Any) -> datetime:
    """The report's time, exactly as `_TIME_FORMAT` writes it (a regex and the constructor: a fleet
    reader parses tens of thousands of these, and strptime costs 50 times as much)."""
    m = _TIME.fullmatch(v) if isinstance(v, str) and len(v) <= 40 else None
    if m is None:
        raise ValueError("time must be an RFC 3339 UTC string")
    year, month, day, hour, minute, second, fraction = m.groups()
    return datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second), int(fraction.ljust(6, "0")), tzinfo=UTC
    )


# --- keys and the signed envelope -------------------------------------------------------------


def load_device_public_key(text: str) -> Ed25519PublicKey:
    """A device key as declared in the Device spec: the one-line OpenSSH form (`ssh-ed25519 AAAA…`),
    which `takt agent keygen` prints, or PEM. Raises ValueError naming why not."""
    data = text.strip().encode()
    try:
        key = (
            serialization.load_pem_public_key(data)
            if data.startswith(b"-----BEGIN")
            else serialization.load_ssh_public_key(data)
        )
    except (ValueError, TypeError, binascii.Error, UnsupportedAlgorithm) as exc:
        raise ValueError(f"not a public key ({clip(exc)})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an ed25519 public key")
    return key


def openssh_public_key(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def seal(report: StatusReport, private: Ed25519PrivateKey) -> bytes:
    """The signed envelope of a report, as written to the status ref and the retained MQTT message."""
    payload = report.to_bytes()
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"status report of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    return canonical_json(
        {
            "version": REPORT_VERSION,
            "payload": base64.b64encode(payload).decode(),
            "keyId": key_id(private.public_key()),
            "signature": base64.b64encode(private.sign(payload)).decode(),
        }
    )


def open_envelope(
    data: bytes, keys: Mapping[str, Ed25519PublicKey | None], expected_device: str | None
) -> StatusReport:
    """Verify and parse an envelope. `keys` maps device id → declared key (None: declared without a key);
    `expected_device` is the device the transport says it came from (the ref or topic name).

    Raises ReportRejected with a typed reason; never returns a report the device's own key did not sign.
    """
    try:
        doc = loads_bounded(data, max_bytes=MAX_ENVELOPE_BYTES, max_depth=3, what="status envelope")
        if not isinstance(doc, dict) or doc.get("version") != REPORT_VERSION:
            raise ValueError(f"not a {REPORT_VERSION} envelope")
        payload = base64.b64decode(_str_any(doc, "payload", MAX_ENVELOPE_BYTES), validate=True)
        signature = base64.b64decode(_str_any(doc, "signature", 128), validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ReportRejected(Rejected.MALFORMED, f"malformed status envelope ({clip(exc)})") from None
    report = StatusReport.parse(payload)
    if expected_device is not None and report.device != expected_device:
        raise ReportRejected(
            Rejected.WRONG_DEVICE, f"report names device {clip(report.device, 64)} but came from {expected_device}"
        )
    if report.device not in keys:
        raise ReportRejected(Rejected.UNKNOWN_DEVICE, f"no Device spec declares {clip(report.device, 64)}")
    key = keys[report.device]
    if key is None:
        raise ReportRejected(Rejected.NO_KEY, f"the Device spec of {report.device} declares no publicKey")
    try:
        key.verify(signature, payload)
    except InvalidSignature:
        raise ReportRejected(Rejected.BAD_SIGNATURE, f"report for {report.device} is not signed by its key") from None
    return report


def _str_any(d: Any, k: str, limit: int) -> str:
    v = d[k]
    if not isinstance(v, str) or len(v) > limit:
        raise ValueError(f"{k} must be a string")
    return v


def runner_to_json(r: RunnerHealth) -> dict[str, Any]:
    """A runner's health as the report writes it (also the agent's `status.json` key `runners`)."""
    return _runner_json(r)


def runner_from_json(d: Any) -> RunnerHealth:
    """The inverse of runner_to_json; ValueError naming the first problem."""
    try:
        return _runner(d)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed runner health ({clip(exc)})") from None
