"""`to_yaml`'s exact text for small block documents, without ruamel's representer on every node.

A compose file goes through ruamel's Python representer node by node: about 0.3 ms per bundle,
more than the rest of its rendering. Its shape is fixed and small — block mappings of string keys,
block sequences of scalars or of such mappings — so this module writes that layout itself (ruamel's
indentation: nested mappings two spaces in, sequences at their key's column, a mapping item's later
keys under its first) and leaves every scalar's text to `escape.yaml_scalar`, i.e. to ruamel's own
quoting and styles. Anything else (another type, an empty or shared container, a sequence in a
sequence, a scalar ruamel writes on more than one line, a key it would quote or write as a complex
key) takes `to_yaml` for the whole document, so every input gives `to_yaml`'s bytes
(tests/test_blockyaml.py compares both on the escape tests' corpus).
"""

from __future__ import annotations

from typing import Any

from compiler.render.escape import to_yaml, yaml_scalar

_SCALARS = (str, int, float, bool)  # exact types: a subclass may be represented otherwise
_MAX_KEY = 122  # ruamel's pure emitter writes longer keys as complex keys ("? key"; escape._C_SAFE_KEY)
_MAX_NESTING = 64  # mappings below the top one: deeper, to_yaml takes the pure emitter and, far deeper, raises
# RecursionError. Counted in levels (two columns each), not columns: an indent is always even, so a bound in
# columns would have a neighbour that no document can tell from it.


class _Fallback(Exception):
    """Outside this module's subset: `to_yaml` writes the document."""


def dumps(obj: Any) -> str:
    """`to_yaml(obj)`, byte for byte; faster for the block documents described above."""
    if type(obj) is not dict or not obj:
        return to_yaml(obj)
    out: list[str] = []
    try:
        _mapping(obj, 0, out, None, set())
    except _Fallback:
        return to_yaml(obj)
    return "".join(out)


def _scalar(value: Any) -> str:
    if type(value) not in _SCALARS:
        raise _Fallback
    text = yaml_scalar(value)
    if text is None:
        raise _Fallback
    return text


def _key(key: Any) -> str:
    if type(key) is not str or len(key) > _MAX_KEY or yaml_scalar(key) != key:
        raise _Fallback  # only keys ruamel writes plain and as simple keys
    return key


def _enter(container: Any, seen: set[int]) -> None:
    """ruamel anchors a container met twice (&id001 / *id001): not written here."""
    if not container or id(container) in seen:
        raise _Fallback
    seen.add(id(container))


def _mapping(m: dict[Any, Any], indent: int, out: list[str], lead: str | None, seen: set[int]) -> None:
    if indent > 2 * _MAX_NESTING:
        raise _Fallback
    _enter(m, seen)
    pad = " " * indent
    for key, value in m.items():
        head = f"{pad if lead is None else lead}{_key(key)}:"
        lead = None
        kind = type(value)
        if kind is dict:
            out.append(head + "\n")
            _mapping(value, indent + 2, out, None, seen)
        elif kind is list:
            out.append(head + "\n")
            _sequence(value, indent, out, seen)
        else:
            out.append(f"{head} {_scalar(value)}\n")


def _sequence(items: list[Any], indent: int, out: list[str], seen: set[int]) -> None:
    _enter(items, seen)
    pad = " " * indent
    for item in items:
        if type(item) is dict:
            _mapping(item, indent + 2, out, pad + "- ", seen)
        elif type(item) is list:
            raise _Fallback
        else:
            out.append(f"{pad}- {_scalar(item)}\n")
