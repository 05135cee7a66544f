"""Words shared by the fleet renderers: ages, generations, and states as a shift supervisor reads them."""

from __future__ import annotations

import re

from compiler.fleet.status import DeviceStatus

DASH = "—"
_PLAIN = {
    "Applied": "running its desired model",
    "UpToDate": "running its desired model",
    "NoReport": "has not reported",
    "FetchFailed": "cannot reach the deploy repository",
    "HealthCheckFailed": "the new model failed its health check",
    "RolledBack": "rolled back to the previous model",
    "Quarantined": "waiting: the new model failed its health check",
    "Expired": "its desired state expired; waiting for a fresh publish",
    "RunnerNotReady": "the model's runner is not ready",
    "NoDesiredState": "nothing is published for it",
    "WrongArchitecture": "the bundle does not fit its hardware",
    "InsufficientMemory": "not enough memory for the model",
    "InsufficientDisk": "not enough disk for the model",
}
_STATE = {"Ready": "OK", "Degraded": "Degraded", "Stalled": "Stopped", "Unknown": "Unknown"}


def age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s ago"
    if s < 7200:
        return f"{s // 60}m ago"
    if s < 172800:
        return f"{s // 3600}h ago"
    return f"{s // 86400}d ago"


def gen(value: int | None) -> str:
    return DASH if value is None else str(value)


def num(value: float | None, digits: int = 3) -> str:
    return DASH if value is None else f"{value:.{digits}f}"


def state_word(d: DeviceStatus) -> str:
    return _STATE.get(d.state, d.state)


def reason_words(reason: str) -> str:
    return _PLAIN.get(reason) or re.sub(r"(?<=[a-z])(?=[A-Z])", " ", reason).lower()


def plain(d: DeviceStatus) -> str:
    """The device's state in one sentence a person on the floor understands."""
    words = reason_words(d.reason)
    if d.state == "Ready":
        text = f"OK, {words}"
    elif d.state == "Unknown":
        text = words
    else:
        text = f"{state_word(d)}: {words}"
    if d.message and d.state != "Ready" and d.message not in text:
        text += f" ({d.message})"
    return text
