"""Hostile inputs for the fast paths of 2026-12-03 (blockyaml, escape.yaml_scalar, to_yaml's emitter choice):
each case once gave other bytes (or an error for output) than the general path, or than ruamel's pure emitter
(the reference: a bundle's digest must not depend on whether ruamel.yaml.clib is installed)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from compiler.render import blockyaml
from compiler.render.escape import to_yaml, yaml_scalar
from tests.test_escape_yaml import _reference


def _outcome(f: Callable[[Any], str], obj: Any) -> str:
    try:
        return f(obj)
    except Exception as exc:  # noqa: BLE001 - the exception's type is the outcome compared
        return f"raised {type(exc).__name__}"


def test_minus_zero_is_not_the_cached_zero() -> None:
    """yaml_scalar's lru_cache had one entry for 0.0 and -0.0 (equal, same hash, same type)."""
    assert blockyaml.dumps({"a": 0.0}) == "a: 0.0\n"
    assert yaml_scalar(0.0) == "0.0" and yaml_scalar(-0.0) == "-0.0"
    assert blockyaml.dumps({"a": -0.0}) == to_yaml({"a": -0.0}) == "a: -0.0\n"
    assert blockyaml.dumps({"a": [0.0, -0.0]}) == "a:\n- 0.0\n- -0.0\n"


def _keys() -> list[Any]:
    out: list[Any] = []
    for n in range(118, 132):
        out += ["x" * n, "x" * (n - 1) + "é"]
    for n in range(38, 46):
        out.append("日" * n)  # 3 UTF-8 bytes each: libyaml counts bytes, the pure emitter characters
    for n in range(60, 68):
        out.append("ж" * n)
    out += [int("1" * n) for n in range(118, 132)] + [-int("1" * n) for n in range(118, 132)]
    return out


@pytest.mark.parametrize("key", _keys(), ids=lambda k: f"{type(k).__name__}{len(str(k))}")
@pytest.mark.parametrize("rest", [{}, {"b": "it's"}], ids=["c-safe", "pure"])
def test_keys_near_the_simple_key_limit(key: Any, rest: dict[str, Any]) -> None:
    """The pure emitter writes "? key" from 123 characters, libyaml from 129 UTF-8 bytes: to_yaml took
    libyaml for such keys (other bytes than the reference), blockyaml wrote keys up to 127 as simple keys
    even in a document to_yaml gives the pure emitter."""
    doc = {key: 1, **rest}
    assert to_yaml(doc) == _reference(doc)
    assert blockyaml.dumps(doc) == to_yaml(doc)
    nested = {"services": {"runner": {"environment": doc}}}
    assert blockyaml.dumps(nested) == to_yaml(nested) == _reference(nested)


@pytest.mark.parametrize("value", ["\ud800", "a\udfffb", "\udc80 x"])
def test_a_lone_surrogate_is_written_as_the_pure_emitter_writes_it(value: str) -> None:
    """A JSON spec's "\\ud800" is a lone surrogate: libyaml raised UnicodeEncodeError where the pure emitter
    writes "\\uD800"; to_yaml took libyaml for it."""
    for doc in ({"k": value}, {value: 1}, {"k": [value]}):
        assert _outcome(to_yaml, doc) == _reference(doc)
        assert _outcome(blockyaml.dumps, doc) == _reference(doc)


@pytest.mark.parametrize(
    "bad",
    [{"k": object()}, {"k": 10**5000}, {"k": "it's", "o": object()}],
    ids=["object-pure", "huge-int-c", "object-after-text"],
)
def test_a_failed_dump_leaves_the_next_dumps_intact(bad: dict[str, Any]) -> None:
    """ruamel keeps a failed dump's context manager: with the per-process dumper, every later dump of that
    emitter wrote into the failed call's buffer and to_yaml returned "" (or libyaml raised EmitterError)."""
    with pytest.raises(Exception):  # noqa: B017 - RepresenterError or ValueError
        to_yaml(bad)
    for doc in ({"a": "it's"}, {"a": "plain"}, {"a": "it's"}, {"a": "plain"}):
        assert to_yaml(doc) == _reference(doc) != ""
    assert blockyaml.dumps({"name": "takt-x", "services": {"runner": {"image": "it's"}}}) == (
        "name: takt-x\nservices:\n  runner:\n    image: it's\n"
    )


def _nest(depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {"k": "v"}
    for _ in range(depth - 1):
        out = {"k": out}
    return out


@pytest.mark.parametrize("depth", [63, 64, 65, 66, 200, 600])
def test_deep_nesting_has_to_yaml_outcome(depth: int) -> None:
    """blockyaml wrote 600 levels where to_yaml raises RecursionError: past 64 levels it hands over."""
    doc = _nest(depth)
    assert _outcome(blockyaml.dumps, doc) == _outcome(to_yaml, doc)
    assert to_yaml({"a": "it's"}) == "a: it's\n"  # and a RecursionError does not spoil the dumper
