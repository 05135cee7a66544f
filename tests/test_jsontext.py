"""compiler.bundle.jsontext.dumps: json.dumps' canonical text, byte for byte, for every value."""

from __future__ import annotations

import enum
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.bundle.jsontext import dumps


def _reference(obj: object) -> str:
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=5)
    | st.sampled_from(["", "\x00", "\u2028", '"\\', "\ud800", "é", "\U0001f600", "\x7f"])
)


def _outcome(encode, obj: object) -> tuple[str | None, tuple[type, str] | None]:
    try:
        return encode(obj), None
    except Exception as exc:  # noqa: BLE001 - both sides must raise alike
        return None, (type(exc), str(exc))


_plain = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(_plain)
def test_plain_data_gives_json_s_exact_text(obj: object):
    assert dumps(obj) == _reference(obj)


class Colour(enum.StrEnum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


_odd_keys = st.dictionaries(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=3),
    st.integers(),
    max_size=4,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_odd_keys | st.sampled_from([Colour.RED, Level.HIGH, {"k": Colour.RED}, {Colour.RED: 1}]), max_size=3))
def test_values_outside_the_plain_subset_take_json_s_own_path(obj: object):
    assert _outcome(dumps, obj) == _outcome(_reference, obj)  # the same text, or the same error


@pytest.mark.parametrize(
    "obj",
    [math.nan, [1.0, math.inf], {"a": -math.inf}, {"a": object()}, {1: 1, "1": 2}, {(1, 2): 3}],
)
def test_what_json_refuses_is_refused_the_same_way(obj: object):
    with pytest.raises(Exception) as ours:
        dumps(obj)
    with pytest.raises(Exception) as theirs:
        _reference(obj)
    assert (type(ours.value), str(ours.value)) == (type(theirs.value), str(theirs.value))


def test_a_circular_or_very_deep_value_is_json_s_to_judge():
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        dumps(loop)
    deep: object = "x"
    for _ in range(300):
        deep = {"d": [deep]}
    assert dumps(deep) == _reference(deep)


def test_a_circular_mapping_is_refused_like_a_circular_list():
    loop: dict[str, object] = {}
    loop["self"] = loop
    with pytest.raises(ValueError, match="Circular reference"):
        dumps(loop)


def _nested(kind: str, levels: int) -> object:
    scalars: list[object] = [False, True, None, 1, 1.5, "s", (), {}]
    value: object = dict(zip("ftnixsem", scalars, strict=True)) if kind == "dict" else scalars  # innermost: same kind
    for _ in range(levels):
        value = {"k": value} if kind == "dict" else [value] if kind == "list" else (value,)
    return value


@pytest.mark.parametrize("kind", ["dict", "list", "tuple"])
def test_plain_data_up_to_the_depth_bound_never_takes_json_s_slow_path(kind: str, monkeypatch: pytest.MonkeyPatch):
    """The speed is the point (json's pure-Python indent encoder is ~5x slower): plain data of up to 200
    levels, False and tuples included, is written by the one pass; one level more goes to json."""
    import compiler.bundle.jsontext as jsontext

    expected = {n: _reference(_nested(kind, n)) for n in (199, 200)}
    calls: list[object] = []
    real = json.dumps
    monkeypatch.setattr(jsontext.json, "dumps", lambda obj, **kw: calls.append(obj) or real(obj, **kw))
    assert dumps(_nested(kind, 199)) == expected[199] and calls == []
    assert dumps(_nested(kind, 200)) == expected[200] and len(calls) == 1  # 201 containers deep


def test_json_s_own_path_keeps_non_ascii_text_as_it_is():
    """Outside the plain subset (an enum) json writes the text, with é and 中 unescaped as on
    the fast path: runner.json's bytes must not depend on which path wrote them."""
    for obj in ({"name": "Pressé 中", "k": Colour.RED}, [Colour.RED, "é"], {"k": Level.HIGH, "é": "ü"}):
        text = dumps(obj)
        assert text == _reference(obj) and "\\u" not in text and "é" in text
