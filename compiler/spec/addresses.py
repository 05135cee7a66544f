"""Data-access addresses checked by each protocol's own rules.

Pure functions returning the problem as text (or None), so both the pydantic models and the
cross-field lint can use them.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

from compiler.bundle.gitmessage import redact_url as redact_url  # one redaction, build side and device

# OPC UA node ids: Part 6 §5.1.12 (string form), §5.3.1.10–11; Part 3 §8.2.4 (identifier values).
OPCUA_NAMESPACE_URI = "http://opcfoundation.org/UA/"
MAX_IDENTIFIER = 4096  # Part 3 §8.2.4: characters of a String, bytes of an Opaque identifier
_DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() also takes '²' and '٣'
_GUID_RE = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
_BASE64_RE = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_URI_CHAR = re.compile(r"[A-Za-z0-9._~:/?#\[\]@!$&'()*+,=-]")  # RFC 3986 §2, without ';' (it ends the URI)
_PCT = re.compile(r"%[0-9A-Fa-f]{2}")


@dataclass(frozen=True)
class NodeId:
    """A parsed node id: `namespace` is an index, a namespace URI (still percent-encoded) or 0."""

    namespace: int | str
    kind: str  # i, s, g or b
    identifier: str

    @property
    def standard_namespace(self) -> bool:
        """Namespace 0, the OPC UA namespace, however it is written."""
        return self.namespace in (0, OPCUA_NAMESPACE_URI)

    @property
    def is_null(self) -> bool:
        """Part 3 §8.2.4: numeric 0, or an empty string, all-zero GUID or empty ByteString, in namespace 0."""
        if not self.standard_namespace:
            return False
        if self.kind == "i":
            return int(self.identifier) == 0
        if self.kind == "g":
            return set(self.identifier) <= {"0", "-"}
        return self.identifier == ""


def parse_opcua_node_id(text: str) -> tuple[NodeId | None, str | None]:
    """The node id, or None and the problem, by the grammar of Part 6 §5.1.12."""
    namespace, rest, problem = _namespace(text)
    if problem:
        return None, problem
    if len(rest) < 2 or rest[1] != "=" or rest[0] not in "isgb":
        return None, "identifier must start with i=, s=, g= or b="
    kind, ident = rest[0], rest[2:]
    problem = _IDENTIFIER_CHECKS[kind](ident)
    return (None, problem) if problem else (NodeId(namespace, kind, ident), None)


def opcua_node_id_problem(node_id: str) -> str | None:
    return parse_opcua_node_id(node_id)[1]


def _namespace(text: str) -> tuple[int | str, str, str | None]:
    """`ns=<UInt16>;`, `nsu=<encoded URI>;` or nothing (namespace 0)."""
    if text.startswith("ns="):
        head, sep, rest = text[3:].partition(";")
        if not sep:
            return 0, "", "missing ';' after the namespace index"
        if not _DIGITS.fullmatch(head) or int(head) > 0xFFFF:
            return 0, "", f"namespace index {head[:40]!r} must be a decimal integer 0..65535 (digits 0-9)"
        return int(head), rest, None
    if text.startswith("nsu="):
        head, sep, rest = text[4:].partition(";")
        if not sep:
            return 0, "", "missing ';' after the namespace URI"
        return head, rest, _uri_problem(head)
    return 0, text, None


def _uri_problem(uri: str) -> str | None:
    """ENCODEDURI: an RFC 3986 URI with '%' only in two-hex-digit escapes and ';' escaped as %3B."""
    if not uri:
        return "empty namespace URI"
    text_problem = _text_problem(uri, "namespace URI")
    if text_problem:
        return text_problem
    if not _URI_SCHEME.match(uri):
        return f"namespace URI {uri[:60]!r} needs a scheme, e.g. urn:… or http://…"
    i = 0
    while i < len(uri):
        if uri[i] == "%":
            if not _PCT.match(uri, i):
                return f"'%' at position {i + 1} of the namespace URI must start an escape of two hex digits, e.g. %3B"
            i += 3
            continue
        if not _URI_CHAR.fullmatch(uri[i]):
            return (
                f"namespace URI contains {uri[i]!r}, which a URI cannot hold: percent-encode it as {_percent(uri[i])}"
            )
        i += 1
    return None


def _percent(char: str) -> str:
    return "".join(f"%{b:02X}" for b in char.encode("utf-8", "surrogatepass"))


def _text_problem(value: str, what: str) -> str | None:
    """Part 3 §8.2.4 and Part 6 §5.1.12: no Unicode control characters (C0, DEL, C1), valid UTF-8."""
    for i, char in enumerate(value):
        category = unicodedata.category(char)
        if category == "Cc":
            return f"{what} contains the control character {char!r} at position {i + 1}"
        if category == "Cs":
            return f"{what} contains a lone surrogate {char!r} at position {i + 1}, which is not a character"
    return None


def _numeric_problem(ident: str) -> str | None:
    if not _DIGITS.fullmatch(ident) or int(ident) > 0xFFFFFFFF:
        return f"numeric identifier {ident[:40]!r} must be a decimal integer 0..4294967295 (digits 0-9)"
    return None


def _string_problem(ident: str) -> str | None:
    if len(ident) > MAX_IDENTIFIER:
        return f"string identifier of {len(ident)} characters; at most {MAX_IDENTIFIER}"
    return _text_problem(ident, "string identifier")


def _guid_problem(ident: str) -> str | None:
    if not _GUID_RE.fullmatch(ident):
        return (
            f"GUID identifier {ident[:60]!r} must be 8-4-4-4-12 hex digits without braces, "
            "e.g. 72962b91-fa75-4ae6-8d28-b404dc7daf63"
        )
    return None


def _opaque_problem(ident: str) -> str | None:
    if not _BASE64_RE.fullmatch(ident):
        return f"opaque identifier {ident[:60]!r} must be base64 (A-Z, a-z, 0-9, +, /; '=' only as final padding)"
    data = base64.b64decode(ident)
    if base64.b64encode(data).decode("ascii") != ident:
        return f"opaque identifier {ident[:60]!r} is not canonical base64: its padding bits are not zero"
    if len(data) > MAX_IDENTIFIER:
        return f"opaque identifier of {len(data)} bytes; at most {MAX_IDENTIFIER}"
    return None


_IDENTIFIER_CHECKS = {"i": _numeric_problem, "s": _string_problem, "g": _guid_problem, "b": _opaque_problem}


def opcua_uses_namespace_index(node_id: str) -> bool:
    """ns=<idx> with idx > 0: indexes of non-standard namespaces are not stable across servers."""
    parsed, _ = parse_opcua_node_id(node_id)
    return parsed is not None and isinstance(parsed.namespace, int) and parsed.namespace > 0


def opcua_misses_namespace(node_id: str) -> bool:
    """A string, GUID or opaque id in namespace 0: the OPC UA namespace has numeric ids only, so the
    namespace was most likely forgotten (`s=M43.Speed`)."""
    parsed, _ = parse_opcua_node_id(node_id)
    return parsed is not None and parsed.standard_namespace and parsed.kind != "i"


def mqtt_topic_problem(topic: str, *, allow_wildcards: bool) -> str | None:
    """MQTT 3.1.1/5 §4.7: UTF-8, 1..65535 bytes, no NUL; wildcards only as whole levels."""
    if not topic:
        return "topic is empty"
    surrogate = next((c for c in topic if unicodedata.category(c) == "Cs"), None)
    if surrogate is not None:  # YAML lets "\ud800" through; UTF-8, and so MQTT, cannot carry it
        return f"topic contains the lone surrogate {surrogate!r}, which is not a character and has no UTF-8 form"
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


# Sparkplug 3.0 §4.1: spBv1.0/<group>/<type>/<edge node>[/<device>], and spBv1.0/STATE/<host id>.
SPARKPLUG_NAMESPACE = "spBv1.0"
SPARKPLUG_NODE_TYPES = ("NBIRTH", "NDEATH", "NDATA", "NCMD")
SPARKPLUG_DEVICE_TYPES = ("DBIRTH", "DDEATH", "DDATA", "DCMD")
SPARKPLUG_TYPES = (*SPARKPLUG_NODE_TYPES, *SPARKPLUG_DEVICE_TYPES, "STATE")
_SPARKPLUG_SHAPE = "spBv1.0/<group>/<type>/<edge node>[/<device>] or spBv1.0/STATE/<host id>"


def sparkplug_topic_problem(topic: str) -> str | None:
    """The topic namespace of Sparkplug 3.0 §4.1 (the MQTT rules are checked separately)."""
    parts = topic.split("/")
    if parts[0] == "STATE":
        return "STATE/<host id> is the Sparkplug 2.x form; Sparkplug 3.0 host state is spBv1.0/STATE/<host id>"
    if parts[0] != SPARKPLUG_NAMESPACE:
        return "Sparkplug B topics start with 'spBv1.0/'"
    if len(parts) == 3 and parts[1] == "STATE":
        return _sparkplug_id_problem("host", parts[2])
    if len(parts) < 4 or len(parts) > 5:
        return f"{len(parts)} topic levels; expected {_SPARKPLUG_SHAPE}"
    return _sparkplug_type_problem(parts) or next(
        filter(None, map(_sparkplug_id_problem, ("group", "edge node", "device"), [parts[1], *parts[3:]])), None
    )


def _sparkplug_type_problem(parts: list[str]) -> str | None:
    """The message type exists, and a device id comes with device messages only."""
    kind = parts[2]
    if kind == "STATE":
        return "STATE is spBv1.0/STATE/<host id>: no group, edge node or device id goes with it"
    if kind not in SPARKPLUG_TYPES:
        return f"message type {kind!r} is not one of " + ", ".join(SPARKPLUG_TYPES)
    if kind in SPARKPLUG_DEVICE_TYPES and len(parts) != 5:
        return f"{kind} messages need a device id: spBv1.0/<group>/{kind}/<edge node>/<device>"
    if kind in SPARKPLUG_NODE_TYPES and len(parts) != 4:
        return f"{kind} messages have no device id: spBv1.0/<group>/{kind}/<edge node>"
    return None


def _sparkplug_id_problem(label: str, value: str) -> str | None:
    """Sparkplug 3.0 §4.1.1: ids are non-empty UTF-8 strings without '+', '/' or '#'; MQTT §1.5.3
    forbids NUL and advises against the other control characters."""
    if not value:
        return f"{label} id is empty"
    bad = next((c for c in value if c in "+#" or unicodedata.category(c) in ("Cc", "Cs")), None)
    if bad is not None:
        return f"{label} id {value[:60]!r} contains {bad!r}: use UTF-8 text without '+', '/', '#' or control characters"
    return None


# Modbus: Modicon notation puts the register type in front of a one-based number: 1xxxx discrete
# inputs, 3xxxx input registers, 4xxxx holding registers (0xxxx coils look like plain numbers);
# 5 digits reach register 9999, 6 digits (4xxxxx) all 65536.
MODICON_TYPES = {1: "discrete-input", 3: "input-register", 4: "holding-register"}
MAX_REGISTER = 65535  # the protocol's addresses are 0..65535 (1..65536 counted from 1)


@dataclass(frozen=True)
class ModiconReference:
    register_type: str
    offset: int  # the zero-based protocol address
    digits: int  # 5 or 6

    @property
    def pattern(self) -> str:
        prefix = next(p for p, t in MODICON_TYPES.items() if t == self.register_type)
        return str(prefix) + "x" * (self.digits - 1)


def modicon_reference(address: int) -> ModiconReference | None:
    """The register an address names if it is read as Modicon notation, else None."""
    for digits, base, last in ((5, 10_000, 9_999), (6, 100_000, MAX_REGISTER + 1)):
        prefix, number = divmod(address, base)
        if prefix in MODICON_TYPES and 1 <= number <= last:
            return ModiconReference(MODICON_TYPES[prefix], number - 1, digits)
    return None


_JSONPATH_RE = re.compile(r"""^\$(\.[A-Za-z_][A-Za-z0-9_-]*|\[[0-9]+\]|\['[^']*'\]|\["[^"]*"\])*$""")


def json_path_problem(path: str) -> str | None:
    """A subset of JSONPath that addresses exactly one value (no filters or wildcards)."""
    return None if _JSONPATH_RE.match(path) else "use a JSONPath to one value, e.g. $.sensors.temp or $.v[0]"


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
