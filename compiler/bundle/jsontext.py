"""Canonical bundle JSON (sorted keys, two-space indent, UTF-8 text, no NaN) without json's slow path.

On Python 3.11 `json.dumps(..., indent=2)` always takes the pure-Python generator encoder, about
1 ms per runner.json. `dumps` writes the same text in one recursive pass for plain data — exact
str, int, float, bool, None, list, tuple and str-keyed dict, as the contract encoders produce —
with json's own C string escaper and float/int reprs, and hands anything else (another type, a
non-string key, NaN or infinity, a nesting too deep) to `json.dumps` itself, so every input gives
json's exact text or json's exact error.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring  # the C escaper when _json is built, as json.dumps uses
from typing import Any

_MAX_DEPTH = 200  # deeper than any contract document; deeper input takes json's own path


class _NotPlain(Exception):
    """A value outside the plain subset: json.dumps decides (its text or its error)."""


def _write(o: Any, out: list[str], indent: str, depth: int) -> None:
    t = type(o)
    if t is str:
        out.append(encode_basestring(o))
    elif o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif t is int:
        out.append(int.__repr__(o))
    elif t is float:
        if o != o or o in (float("inf"), float("-inf")):
            raise _NotPlain
        out.append(float.__repr__(o))
    elif t is dict:
        if not o:
            out.append("{}")
            return
        if depth >= _MAX_DEPTH:
            raise _NotPlain
        for key in o:
            if type(key) is not str:
                raise _NotPlain
        inner = indent + "  "
        first = True
        for key in sorted(o):
            out.append("{\n" + inner if first else ",\n" + inner)
            first = False
            out.append(encode_basestring(key))
            out.append(": ")
            _write(o[key], out, inner, depth + 1)
        out.append("\n" + indent + "}")
    elif t is list or t is tuple:
        if not o:
            out.append("[]")
            return
        if depth >= _MAX_DEPTH:
            raise _NotPlain
        inner = indent + "  "
        first = True
        for item in o:
            out.append("[\n" + inner if first else ",\n" + inner)
            first = False
            _write(item, out, inner, depth + 1)
        out.append("\n" + indent + "]")
    else:
        raise _NotPlain


def dumps(obj: Any) -> str:
    """`json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\\n"`, faster."""
    out: list[str] = []
    try:
        _write(obj, out, "", 0)
    except _NotPlain:
        return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    out.append("\n")
    return "".join(out)
