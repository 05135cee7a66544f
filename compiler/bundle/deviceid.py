"""A device id, one rule for every place it appears: the spec's `Device.spec.id`, the deploy branch's
`devices/<id>/` folders, the status ref `refs/takt/status/<id>`, report topics and the agent's `--device`.

It is a path segment and a Git ref component at once, so it can never be `..`, hold a slash, or end in
`.lock` or `.`; the pattern alone (exported to the JSON Schema) says the characters and the length.
"""

from __future__ import annotations

import re

DEVICE_ID_MAX = 128
DEVICE_ID_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9._-]{{0,{DEVICE_ID_MAX - 1}}}$"
_DEVICE_ID = re.compile(DEVICE_ID_PATTERN)


def is_device_id(value: str) -> bool:
    """True when `value` is a device id (the pattern, and a component `git check-ref-format` accepts)."""
    return _DEVICE_ID.fullmatch(value) is not None and ".." not in value and not value.endswith((".lock", "."))


def device_id_problem(value: str) -> str | None:
    """Why `value` is not a device id, in words for a diagnostic; None when it is one."""
    if is_device_id(value):
        return None
    if _DEVICE_ID.fullmatch(value) is None:
        return f"a device id is 1 to {DEVICE_ID_MAX} letters, digits, '.', '_' or '-', starting with a letter or digit"
    return "a device id is also a Git ref component: no '..', and no '.lock' or '.' at its end"
