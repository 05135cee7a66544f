"""blockyaml.dumps writes to_yaml's exact bytes: on the escape tests' corpus (tricky scalars as values,
keys and items, at several depths), on compose-shaped documents, and where it hands over to to_yaml."""

from __future__ import annotations

from typing import Any

import pytest

from compiler.render import blockyaml
from compiler.render.escape import to_yaml, yaml_scalar
from tests.test_escape_yaml import TRICKY, _samples


def _compose(value: Any) -> dict[str, Any]:
    service = {
        "image": value,
        "command": ["--config", value, "--http-port", "8080"],
        "working_dir": "/bundle",
        "volumes": [{"type": "bind", "source": value, "target": "/bundle", "read_only": True}],
        "restart": "unless-stopped",
        "read_only": True,
        "network_mode": "host",
        "mem_limit": 268435456,
        "cpus": 0.5,
    }
    return {"name": value, "services": {"runner": service}}


def _shapes() -> list[Any]:
    out: list[Any] = list(_samples())
    for s in TRICKY:
        out += [
            _compose(s),
            {"a": {"b": {"c": s}}, "d": [s, s]},
            {"l": [{"k": s, "m": {"n": s}, "o": [s, {"p": s}]}]},
            {"k": s, s or "e": [s]},
        ]
    out += [
        {"a": [[1]]},
        {"a": ()},
        {"a": (1, 2)},
        {1: "x"},
        {"a": None},
        {"a": {}},
        {"a": []},
        {"a": [{}]},
        {"x" * 127: 1},
        {"x" * 128: 1},
        {"a": 1.0, "b": 1, "c": True, "d": 1e300, "e": -0.0, "f": 2**64, "g": False, "h": 0},
    ]
    return out


def test_dumps_writes_to_yaml_bytes() -> None:
    shapes = _shapes()
    assert [blockyaml.dumps(o) for o in shapes] == [to_yaml(o) for o in shapes]


def test_a_container_met_twice_is_left_to_ruamel() -> None:
    shared = ["a"]
    doc = {"x": shared, "y": shared}
    assert blockyaml.dumps(doc) == to_yaml(doc)
    assert "&" in to_yaml(doc)


def test_yaml_scalar_keeps_bool_int_and_float_apart() -> None:
    assert (yaml_scalar(1), yaml_scalar(True), yaml_scalar(1.0)) == ("1", "true", "1.0")
    assert (yaml_scalar("1"), yaml_scalar("true"), yaml_scalar("b " * 3000)) == ("'1'", "'true'", None)


@pytest.mark.parametrize("value", ["it's", "emoji 🎉", "a" * 999, "a" * 5000, "b " * 3000])
def test_compose_of_tricky_values(value: str) -> None:
    assert blockyaml.dumps(_compose(value)) == to_yaml(_compose(value))


@pytest.mark.parametrize("value", ["runner", "/var/lib/takt/current/d1", "it's", "8080", "yes", "a b: c", "-x"])
def test_compose_shaped_documents_are_written_here_not_handed_to_to_yaml(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The module exists to skip ruamel's representer for the whole document: a compose file of ordinary and
    quoted one-line scalars must be laid out here (only its scalars asked of ruamel), never handed back."""
    doc = {**_compose(value), "x-takt": {"deployment": value, "ports": ["8080:8080", value], "count": 1, "ready": True}}
    expected = to_yaml(doc)
    for scalar in _scalars(doc):
        yaml_scalar(scalar)  # warm the scalar cache before the whole-document path is forbidden

    def whole_document(obj: Any) -> str:
        raise AssertionError(f"handed to to_yaml: {obj!r}"[:200])

    monkeypatch.setattr(blockyaml, "to_yaml", whole_document)
    assert blockyaml.dumps(doc) == expected


def _scalars(obj: Any) -> list[Any]:
    if isinstance(obj, dict):
        return [s for k, v in obj.items() for s in (k, *_scalars(v))]
    if isinstance(obj, list):
        return [s for v in obj for s in _scalars(v)]
    return [obj]


def _written_here(doc: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> bool:
    """Whether dumps lays `doc` out itself (its scalars asked of ruamel) rather than handing it to to_yaml; its
    bytes are to_yaml's either way."""
    expected = to_yaml(doc)
    for scalar in _scalars(doc):
        yaml_scalar(scalar)
    handed: list[Any] = []

    def whole_document(obj: Any) -> str:
        handed.append(obj)
        return to_yaml(obj)

    with monkeypatch.context() as m:
        m.setattr(blockyaml, "to_yaml", whole_document)
        assert blockyaml.dumps(doc) == expected
    return not handed


def test_a_key_of_up_to_122_characters_is_written_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """ruamel's pure emitter writes a key of 123 characters as a complex key ("? key"), which is not written
    here; up to 122, in any UTF-8 length, the key is a simple key and the document is laid out here."""
    assert _written_here({"x" * 122: 1}, monkeypatch) and not _written_here({"x" * 123: 1}, monkeypatch)
    assert _written_here({"é" * 122: 1}, monkeypatch) and not _written_here({"é" * 123: 1}, monkeypatch)
    assert blockyaml.dumps({"x" * 123: 1}).startswith("? ")


def _levels(n: int) -> dict[str, Any]:
    out: dict[str, Any] = {"k": "v"}
    for _ in range(n - 1):
        out = {"k": out}
    return out


def test_a_document_of_up_to_65_mapping_levels_is_written_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """64 levels below the top mapping are laid out here, the innermost 128 columns in; one more is handed to
    to_yaml, as a mapping in a sequence's item one level deeper is."""
    assert _written_here(_levels(65), monkeypatch) and not _written_here(_levels(66), monkeypatch)
    item = {"k": [_levels(64)]}  # the item's mapping is one level below the key's, 2 columns in
    assert _written_here(item, monkeypatch) and not _written_here({"k": [_levels(65)]}, monkeypatch)
