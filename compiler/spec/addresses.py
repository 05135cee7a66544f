"""Data-access addresses checked by each protocol's own rules.

Pure functions returning the problem as text (or None), so both the pydantic models and the
cross-field lint can use them.
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import urlsplit

# OPC UA Part 6 §5.3.1.10 string form: [ns=<idx>;|nsu=<uri>;]<i|s|g|b>=<identifier>
_GUID_RE = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")


def opcua_node_id_problem(node_id: str) -> str | None:
    rest = node_id
    if rest.startswith("ns="):
        head, sep, rest = rest[3:].partition(";")
        if not sep:
            return "missing ';' after the namespace index"
        if not head.isdigit() or int(head) > 65535:
            return f"namespace index {head!r} must be an integer 0..65535"
    elif rest.startswith("nsu="):
        head, sep, rest = rest[4:].partition(";")
        if not sep:
            return "missing ';' after the namespace URI"
        if not head:
            return "empty namespace URI"
    if len(rest) < 2 or rest[1] != "=" or rest[0] not in "isgb":
        return "identifier must start with i=, s=, g= or b="
    kind, ident = rest[0], rest[2:]
    if not ident:
        return "empty identifier"
    if kind == "i" and (not ident.isdigit() or int(ident) > 0xFFFFFFFF):
        return f"numeric identifier {ident!r} must be an integer 0..4294967295"
    if kind == "g" and not _GUID_RE.match(ident.strip("{}")):
        return f"GUID identifier {ident!r} must look like 72962b91-fa75-4ae6-8d28-b404dc7daf63"
    if kind == "b":
        try:
            base64.b64decode(ident, validate=True)
        except (binascii.Error, ValueError):
            return f"opaque identifier {ident!r} must be base64"
    if kind == "s" and len(ident) > 4096:
        return "string identifier longer than 4096 characters"
    return None


def opcua_uses_namespace_index(node_id: str) -> bool:
    """ns=<idx> with idx > 0: indexes of non-standard namespaces are not stable across servers."""
    m = re.match(r"^ns=(\d+);", node_id)
    return bool(m) and int(m.group(1)) > 0


def mqtt_topic_problem(topic: str, *, allow_wildcards: bool) -> str | None:
    """MQTT 3.1.1/5 §4.7: UTF-8, 1..65535 bytes, no NUL; wildcards only as whole levels."""
    if not topic:
        return "topic is empty"
    if len(topic.encode("utf-8")) > 65535:
        return "topic longer than 65535 bytes"
    if "\x00" in topic:
        return "topic contains a NUL character"
    levels = topic.split("/")
    for i, level in enumerate(levels):
        if "#" in level or "+" in level:
            if not allow_wildcards:
                return "wildcards '+' and '#' are not allowed in a publish topic"
            if level == "#" and i != len(levels) - 1:
                return "'#' must be the last level of a topic filter"
            if level not in ("#", "+"):
                return f"wildcard must occupy a whole level, not {level!r}"
    if topic.startswith("$") and not allow_wildcards:
        return "topics starting with '$' are reserved for the broker"
    return None


SPARKPLUG_TYPES = ("NBIRTH", "NDEATH", "DBIRTH", "DDEATH", "NDATA", "DDATA", "NCMD", "DCMD", "STATE")
_SPARKPLUG_ID = re.compile(r"^[^/+#]+$")


def sparkplug_topic_problem(topic: str) -> str | None:
    """spBv1.0/<group>/<message type>/<edge node>[/<device>]."""
    parts = topic.split("/")
    if parts[0] != "spBv1.0":
        return "Sparkplug B topics start with 'spBv1.0/'"
    if len(parts) not in (4, 5):
        return "expected spBv1.0/<group>/<type>/<edge node>[/<device>]"
    if parts[2] not in SPARKPLUG_TYPES:
        return f"message type {parts[2]!r} is not one of " + ", ".join(SPARKPLUG_TYPES)
    for label, value in zip(("group", "type", "edge node", "device"), parts[1:], strict=False):
        if not _SPARKPLUG_ID.match(value):
            return f"{label} id {value!r} must be non-empty and contain no '/', '+' or '#'"
    if parts[2].startswith("D") and len(parts) != 5:
        return f"{parts[2]} messages need a device id"
    if parts[2].startswith("N") and len(parts) != 4:
        return f"{parts[2]} messages have no device id"
    return None


_JSONPATH_RE = re.compile(r"""^\$(\.[A-Za-z_][A-Za-z0-9_-]*|\[[0-9]+\]|\['[^']*'\]|\["[^"]*"\])*$""")


def json_path_problem(path: str) -> str | None:
    """A subset of JSONPath that addresses exactly one value (no filters or wildcards)."""
    return None if _JSONPATH_RE.match(path) else "use a JSONPath to one value, e.g. $.sensors.temp or $.v[0]"


def redact_url(url: str) -> str:
    """The URL with any password replaced, for messages that end up in CI logs."""
    return re.sub(r"(://[^/\s:@]+:)[^/\s@]+@", r"\1***@", url)


def url_problem(url: str, schemes: tuple[str, ...], *, default_port_required: bool = False) -> str | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"invalid URL: {exc}"
    if parts.scheme not in schemes:
        return f"scheme must be one of {', '.join(s + '://' for s in schemes)}"
    if not parts.hostname:
        return "missing host"
    if any(c.isspace() for c in url):
        return "URL contains white space"
    if parts.password is not None:
        return "URL contains a password; use credentialsRef"
    if default_port_required and port is None:
        return "give the port explicitly"
    return None
