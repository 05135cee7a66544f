"""to_yaml takes libyaml's emitter only for data it writes byte for byte like ruamel's pure emitter (the
reference): a difference here is a bundle whose digest depends on whether ruamel.yaml.clib is installed."""

from __future__ import annotations

import io
import random
from typing import Any

import pytest
from ruamel.yaml import YAML

from compiler.render import escape
from compiler.render.escape import to_yaml

TRICKY = [
    "",
    " ",
    "a b",
    " lead",
    "trail ",
    "yes",
    "no",
    "on",
    "null",
    "~",
    "None",
    "1",
    "1.5",
    "1e3",
    "0x1f",
    "-",
    "- a",
    "a: b",
    "a #b",
    "#c",
    "'q'",
    "it's",
    '"d"',
    "x\ny",
    "x\n",
    "\n",
    "tab\there",
    "\x07bell",
    "é ünï",
    "日本",
    "emoji 🎉",
    "a" * 5000,
    "b " * 3000,
    "c" * 999,
    "[x]",
    "{y}",
    "*a",
    "&b",
    "!t",
    "%p",
    "@a",
    "`b",
    "|",
    ">",
    "?",
    "? x",
    ":",
    "a:",
    "http://x:8080/p?q=1#f",
    "\u2028",
    "\ufeff",
    "\x85",
    "2001-12-14",
    "true",
    "False",
    ".inf",
    "<<",
    "a\\b",
    "  two\n  lines  ",
    "\r\n",
    "x\r",
    "/var/lib/takt",
    "256Mi",
    "yes",
    "off",
    "1:20",
]


def _reference(obj: Any) -> str:
    """ruamel's pure emitter with to_yaml's representer (which quotes YAML 1.1's non-strings, tested apart)."""
    yaml = YAML(typ="safe", pure=True)
    yaml.Representer = escape._Representer
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False
    yaml.width = 4096
    buf = io.StringIO()
    yaml.dump(obj, buf)
    return buf.getvalue()


def _samples() -> list[Any]:
    rnd = random.Random(15)
    out: list[Any] = [{}, [], {"a": {}}, [[]], 0, -1, 0.1, 1e20, 1e-7, True, None, {"n": None}, 2**70]
    for s in TRICKY:
        out += [s, {"k": s}, {s or "e": 1}, [s], {"a": [{"b": s, "c": [s, 1]}]}]
    for _ in range(1500):
        pick = lambda: rnd.choice(TRICKY)  # noqa: E731
        out.append({pick() or "k": rnd.choice([pick(), [pick(), pick()], {"z": pick()}, rnd.random(), None])})
    return out


def test_to_yaml_writes_the_reference_bytes_whichever_emitter_it_takes():
    samples = _samples()
    assert [to_yaml(o) for o in samples] == [_reference(o) for o in samples]


def test_plain_data_takes_the_c_emitter_and_tricky_data_the_pure_one():
    assert escape._c_safe({"name": "takt-x", "services": {"runner": {"command": ["--config", "/b"], "cpus": 0.5}}})
    for tricky in ("it's", "x\ny", "emoji 🎉", "a" * 5000, "\u2028"):
        assert not escape._c_safe({"k": [tricky]})
        assert not escape._c_safe({tricky: 1})


@pytest.mark.parametrize("value", ["it's", "x\ny", "emoji 🎉"])
def test_to_yaml_round_trips_what_it_routes_to_the_pure_emitter(value: str):
    assert YAML(typ="safe").load(to_yaml({"k": value})) == {"k": value}


@pytest.mark.parametrize("value", ["yes", "No", "ON", "off", "y", "N", "1:20", "190:20:30", "0b101", "017", "1_000"])
def test_a_string_yaml_1_1_reads_as_another_type_is_quoted(value: str) -> None:
    """Kubernetes reads manifests as YAML 1.1 (sigs.k8s.io/yaml): there `yes` is true and `1:20` is 80. Both
    emitters quote such strings, as values and as keys, so a 1.1 reader and a 1.2 reader both get the string."""
    from ruamel.yaml import YAML

    for doc in ({"k": value}, {value: "v"}, {"k": [value, "it's"]}):
        text = to_yaml(doc)
        assert f"'{value}'" in text
        for version in ("1.1", "1.2"):
            loader = YAML(typ="safe", pure=True)
            loaded = loader.load(f"%YAML {version}\n---\n{text}")
            assert loaded == doc, (version, text)
