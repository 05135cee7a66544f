"""The OPC UA specification as a test oracle, and a generator of node ids, hostile ones included.

The oracle is written from the ABNF of Part 6 §5.1.12 (Tables 4 and 5) as one regular expression plus
the value ranges of Part 3 §8.2.4, independently of the parser in compiler.spec.addresses.
"""

from __future__ import annotations

import base64
import random
import re

# --- the oracle: Part 6 §5.1.12 Table 4/5, Part 3 §8.2.4 -------------------------------------------

_CONTROL = "\x00-\x1f\x7f-\x9f"  # Unicode category Cc: C0, DEL, C1
_URI_CHAR = r"A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,="  # RFC 3986 unreserved + reserved, less ';'
_SPEC = re.compile(
    rf"(?:ns=(?P<ns>[0-9]+);|nsu=(?P<nsu>[A-Za-z][A-Za-z0-9+.\-]*:(?:[{_URI_CHAR}]|%[0-9A-Fa-f]{{2}})*);)?"
    rf"(?:i=(?P<i>[0-9]+)"
    rf"|s=(?P<s>[^{_CONTROL}\ud800-\udfff]*)"
    rf"|g=(?P<g>[0-9A-Fa-f]{{8}}(?:-[0-9A-Fa-f]{{4}}){{3}}-[0-9A-Fa-f]{{12}})"
    rf"|b=(?P<b>[A-Za-z0-9+/=]*))",
    re.DOTALL,
)


def spec_valid(text: str) -> bool:
    """The verdict of the specification: grammar, UInt16/UInt32 ranges, 4096 limits, canonical base64."""
    m = _SPEC.fullmatch(text)
    if not m:
        return False
    if m["ns"] is not None and int(m["ns"]) > 65535:
        return False
    if m["i"] is not None and int(m["i"]) > 4294967295:
        return False
    if m["s"] is not None and len(m["s"]) > 4096:
        return False
    if m["b"] is not None:
        try:
            raw = base64.b64decode(m["b"], validate=True)
        except ValueError:
            return False
        return base64.b64encode(raw).decode() == m["b"] and len(raw) <= 4096
    return True


# --- generated ids ---------------------------------------------------------------------------------

_HOSTILE_CHARS = ["\x00", "\t", "\n", "\x7f", "\x85", "\x9f", "\ud800", "²", "٣", "１", "ä", " ", ";", "%", "{", "}"]


def _namespace(rng: random.Random) -> str:
    choice = rng.randrange(9)
    if choice == 0:
        return ""
    if choice == 1:
        return f"ns={rng.choice([0, 1, 2, 65535, 65536, 70000, 10**6])};"
    if choice == 2:
        return f"ns={rng.choice(['', '²', '٣', '-1', '+2', ' 2', '0x2', '2 '])};"
    if choice == 3:
        return rng.choice(["ns=2", "nsu=urn:x"])  # no ';'
    uri = rng.choice(["urn:plant:press", "http://example.com/UA/", "http://opcfoundation.org/UA/", "x"])
    mutation = rng.randrange(6)
    if mutation == 1:
        uri += rng.choice(["%3B", "%3b", "%", "%4", "%G1", "%%", "%zz", "%20"])
    elif mutation == 2:
        uri += rng.choice(_HOSTILE_CHARS)
    elif mutation == 3:
        uri = rng.choice(["", "1urn:x", ":x", "no-scheme"])
    return f"nsu={uri};"


def _identifier(rng: random.Random) -> str:
    kind = rng.choice("isgbsx")
    if kind == "i":
        numbers = ["0", "85", "007", "4294967295", "4294967296", "", "-1", "²", "1٣", "１", "1 ", "0x10"]
        return "i=" + rng.choice(numbers)
    if kind == "s":
        body = rng.choice(["", "Line1.Press", "A;B;C", "Hello:World", "ä ö"])
        if rng.random() < 0.4:
            at = rng.randrange(len(body) + 1)
            body = body[:at] + rng.choice(_HOSTILE_CHARS) + body[at:]
        if rng.random() < 0.1:
            body = "x" * rng.choice([4095, 4096, 4097])
        return "s=" + body
    if kind == "g":
        guid = rng.choice(["72962B91-FA75-4AE6-8D28-B404DC7DAF63", "00000000-0000-0000-0000-000000000000"])
        mutation = rng.randrange(6)
        if mutation == 1:
            guid = rng.choice(["{", ""]) + guid + rng.choice(["}", ""])
        elif mutation == 2:
            guid = guid.replace("-", "", 1)
        elif mutation == 3:
            guid = guid[:-1] + rng.choice(["G", "²", " "])
        return "g=" + guid
    if kind == "b":
        raw = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 2, 3, 16, 4096, 4097])))
        text = base64.b64encode(raw).decode()
        mutation = rng.randrange(6)
        if mutation == 1:
            text += rng.choice(["=", "==", "A", "A=", "===="])
        elif mutation == 2:
            text = text.rstrip("=")
        elif mutation == 3 and text:
            at = rng.randrange(len(text))
            text = text[:at] + rng.choice(["=", "*", " ", "\n", "-", "_"]) + text[at:]
        elif mutation == 4 and text.endswith("=="):
            text = text[:-3] + "R=="  # non-zero padding bits
        return "b=" + text
    return rng.choice(["x=1", "I=1", "s", "=1", "", "i:1", "S=a"])


def generated_node_ids(seed: int = 2026, count: int = 6000) -> list[str]:
    rng = random.Random(seed)
    return [_namespace(rng) + _identifier(rng) for _ in range(count)]
