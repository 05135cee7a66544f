"""JSON from bytes nobody vouches for yet: bounded in size and nesting before the parser sees them.

`json.loads` recurses once per nested bracket, so 100,000 of them raise RecursionError (not a
ValueError) and a few hundred MiB exhaust memory. Everything the agent parses before or while
verifying (desired.json, its signature, MANIFEST.json) comes through here, and any refusal is a
ValueError whose message names the limit.
Standard library only: the agent imports it.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from pathlib import Path
from typing import Any

# A JSON string, skipped so that brackets inside it do not count. Possessive, and it matches an
# unterminated string to the end, so no input makes it backtrack or rescan (linear time).
_STRING = re.compile(rb'"(?:[^"\\]++|\\.|\\\Z)*+(?:"|\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")
_CHUNK = 1 << 16
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 / -1 as signed bytes


class UntrustedJSONError(ValueError):
    """Bytes refused before parsing: too large or nested too deeply."""


def nesting_depth(data: bytes, stop_above: int | None = None) -> int:
    """The deepest bracket nesting outside strings (what the parser's recursion would reach).

    Never below the depth a parser reaches before it finds an error. Innermost pairs ("[]", "{}"
    once values are dropped) are peeled a level per pass while that shrinks the brackets fast;
    the rest is summed in chunks that stop once the depth passes `stop_above`. Linear in the input.
    """
    steps = _STRING.sub(b"", data).translate(_STEPS, _NOT_BRACKETS)
    peeled = 0
    while steps:
        inner = steps.replace(b"\x01\xff", b"")
        if len(inner) * 4 > len(steps) * 3:  # a pass removes under a quarter: count the rest
            break
        steps, peeled = inner, peeled + 1
    view, level, deepest = memoryview(steps).cast("b"), 0, 0
    for start in range(0, len(view), _CHUNK):
        chunk = view[start : start + _CHUNK]
        deepest = max(deepest, *accumulate(chunk, initial=level))
        level += sum(chunk)
        if stop_above is not None and peeled + deepest > stop_above:
            break
    return peeled + deepest


def clip(value: object, limit: int = 80) -> str:
    """An untrusted value in a message: repr'd and cut, so no message carries megabytes."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def loads_bounded(data: bytes, *, max_bytes: int, max_depth: int, what: str = "document") -> Any:
    """Parse UTF-8 JSON, refusing it (UntrustedJSONError) past `max_bytes` or `max_depth`.

    Other defects are the ValueError json or the UTF-8 decoder raises.
    """
    if len(data) > max_bytes:
        raise UntrustedJSONError(f"{what} is {len(data):,} bytes, over the limit of {max_bytes:,}")
    depth = nesting_depth(data, stop_above=max_depth)
    if depth > max_depth:
        raise UntrustedJSONError(f"{what} nests more than {max_depth} levels deep")
    return json.loads(data.decode("utf-8"))


def load_bounded(path: Path, *, max_bytes: int, max_depth: int) -> Any:
    """`loads_bounded` of a file, read no further than `max_bytes` + 1: a huge file is refused
    without being read whole. OSError as `open` raises it."""
    with path.open("rb") as fh:
        data = fh.read(max_bytes + 1)
    return loads_bounded(data, max_bytes=max_bytes, max_depth=max_depth, what=str(path))
