"""Modbus addresses in the user's counting, Modicon notation, and what a number in a spec is.

Messages name the user's mistake in the user's terms: never a Python exception text.
"""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.spec.addresses import modicon_reference, mqtt_topic_problem
from tests.conftest import only

MB = """\
    apiVersion: takt/v1
    kind: DataSource
    metadata: {name: mb}
    spec:
      protocol: modbus
      transport: tcp
      endpoint: gw:502
      addressing: ADDRESSING
      samplingInterval: 1s
      fields:
        - {name: a, dtype: float32, address: {registerType: TYPE, address: ADDR, dataType: DATA}}
    """


def modbus(addr: object, *, kind: str = "holding-register", data: str = "float32", addressing: str = "zero-based"):
    dtype = "bool" if kind in ("coil", "discrete-input") else data
    return (
        MB.replace("ADDRESSING", addressing)
        .replace("TYPE", kind)
        .replace("ADDR", str(addr))
        .replace("DATA", dtype)
        .replace("dtype: float32", f"dtype: {'bool' if dtype == 'bool' else 'float32'}")
    )


def position(text: str, needle: str) -> tuple[int, int]:
    """1-based line and column of `needle` in the file as written (dedented)."""
    before = textwrap.dedent(text).split(needle)[0]
    return before.count("\n") + 1, len(before.rpartition("\n")[2]) + 1


def value_position(text: str, key: str, value: str) -> tuple[int, int]:
    """Where the value of `key: value` starts."""
    line, column = position(text, f"{key}: {value}")
    return line, column + len(key) + 2


# --- Modicon notation ----------------------------------------------------------------------------

_PREFIX = {"discrete-input": 1, "input-register": 3, "holding-register": 4}


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=999_999))
def test_modicon_reading_of_any_address(address: int):
    ref = modicon_reference(address)
    text = str(address)
    five = len(text) == 5 and text[0] in "134" and 1 <= int(text[1:]) <= 9999
    six = len(text) == 6 and text[0] in "134" and 1 <= int(text[1:]) <= 65536
    assert (ref is not None) == (five or six)
    if ref is not None:
        assert ref.pattern == text[0] + "x" * (len(text) - 1)  # the hint names the right digit
        assert ref.offset == int(text[1:]) - 1
        assert _PREFIX[ref.register_type] == int(text[0])


@pytest.mark.parametrize(("kind", "address"), [("input-register", 40000), ("holding-register", 40000)])
def test_40000_is_not_modicon(repo, kind: str, address: int):
    r = repo({"mb.yaml": modbus(address, kind=kind)})
    assert not [d for d in r.diagnostics if "Modicon" in d.message]


@pytest.mark.parametrize(
    ("kind", "address", "pattern", "number"),
    [
        ("holding-register", 40001, "4xxxx", 0),
        ("holding-register", 49999, "4xxxx", 9998),
        ("input-register", 30001, "3xxxx", 0),
        ("discrete-input", 10010, "1xxxx", 9),
    ],
)
def test_five_digit_modicon_is_a_warning_with_the_register_number(repo, kind, address, pattern, number):
    text = modbus(address, kind=kind)
    d = only(repo({"mb.yaml": text}), "TAKT2029")
    assert d.severity.label == "warning" and f"({pattern}:" in d.message
    assert d.hint == f"give the register number: {address} → {number} (zero-based) with registerType {kind}"
    assert (d.location.line, d.location.column) == value_position(text, "address", str(address))
    assert d.path == "spec.fields[0].address.address"


def test_modicon_of_another_register_type(repo):
    d = only(repo({"mb.yaml": modbus(40001, kind="input-register")}), "TAKT2029")
    assert "Modicon notation of a holding-register (4xxxx), but registerType is input-register" in d.message
    assert d.hint == "if it is holding-register 1: registerType holding-register, address 0"
    d = only(repo({"mb.yaml": modbus(30001, addressing="one-based")}), "TAKT2029")
    assert "Modicon notation of an input-register (3xxxx), but registerType is holding-register" in d.message
    assert d.hint == "if it is input-register 1: registerType input-register, address 1"


@pytest.mark.parametrize(
    ("address", "kind", "offset"), [(400001, "holding-register", 0), (365536, "input-register", 65535)]
)
def test_six_digit_modicon_is_named(repo, address: int, kind: str, offset: int):
    text = modbus(address)
    d = only(repo({"mb.yaml": text}), "TAKT2020")
    assert d.severity.label == "error" and "Modicon notation" in d.message
    assert f"for {kind} {offset + 1}: write registerType: {kind}, address: {offset} (or {offset + 1} with" in d.message
    assert (d.location.line, d.location.column) == value_position(text, "address", str(address))
    assert d.path == "spec.fields[0].address.address"


# --- ranges in the user's counting -----------------------------------------------------------------


def test_one_based_range_is_counted_from_1(repo):
    d = only(repo({"mb.yaml": modbus(65536, addressing="one-based")}), "TAKT2020")
    assert d.message == (
        "float32 at 65536 spans 2 registers, 65536..65537, past the last register, 65536 (counted from 1)"
    )
    assert repo({"mb.yaml": modbus(65535, addressing="one-based")}).diagnostics == []


def test_one_register_past_the_end_is_not_a_span(repo):
    d = only(repo({"mb.yaml": modbus(65536, data="int16")}), "TAKT2020")
    assert d.message == "address 65536 is past the last register, 65535 (counted from 0)"
    assert "1 registers" not in d.message


# --- numbers are YAML numbers ------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["address", "scale", "offset"])
@pytest.mark.parametrize("value", ["true", "false", "'100'", '"0x10"', "'1.5'"])
def test_booleans_and_quoted_text_are_not_numbers(repo, field: str, value: str):
    text = modbus(1).replace(
        "address: 1,", f"address: {value}," if field == "address" else f"address: 1, {field}: {value},"
    )
    d = only(repo({"mb.yaml": text}), "TAKT1005")
    assert d.path == f"spec.fields[0].address.{field}"
    assert (d.location.line, d.location.column) == value_position(text, field, value)
    assert "expected a number" in d.message
    assert ("unquoted" in d.message) == value.startswith(("'", '"'))


@pytest.mark.parametrize("field", ["unitId: VALUE", "qos: VALUE"])
def test_literal_and_source_level_numbers(repo, field: str):
    mq = """\
        apiVersion: takt/v1
        kind: DataSource
        metadata: {name: mq}
        spec:
          protocol: mqtt
          broker: mqtt://broker:1883
          FIELD
          fields:
            - {name: a, dtype: float32, address: {topic: plant/a}}
        """
    text = mq if field.startswith("qos") else modbus(1).replace("  addressing:", "  FIELD\n      addressing:")
    text = text.replace("FIELD", field.replace("VALUE", "true"))
    d = only(repo({"x.yaml": text}), "TAKT1005")
    assert d.path == "spec." + field.split(":")[0] and "boolean true" in d.message


def test_range_refuses_booleans(repo):
    text = modbus(1).replace("dtype: float32,", "dtype: float32, range: [0, true],")
    d = only(repo({"mb.yaml": text}), "TAKT1005")
    assert d.path == "spec.fields[0].range[1]"


@pytest.mark.parametrize(("written", "value"), [("0x10", 16), ("0o17", 15), ("10.0", 10), ("1e3", 1000)])
def test_yaml_numbers_are_numbers(repo, written: str, value: int):
    r = repo({"mb.yaml": modbus(written)})
    assert r.diagnostics == []
    (doc,) = [d for d in r.index.valid("DataSource") if d.name == "mb"]
    assert doc.model.spec.fields[0].address.address == value


def test_fractional_register_is_refused(repo):
    d = only(repo({"mb.yaml": modbus("10.5")}), "TAKT1005")
    assert d.message == "expected a whole number, got 10.5"


# --- MQTT topics: no codec errors --------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec=None), min_size=1, max_size=20))
def test_topic_problems_never_leak_codec_errors(topic: str):
    problem = mqtt_topic_problem(topic, allow_wildcards=True)
    assert problem is None or "codec" not in problem
    if any(0xD800 <= ord(c) <= 0xDFFF for c in topic):
        assert problem is not None and "lone surrogate" in problem


def test_lone_surrogate_in_a_topic_is_takt2010(repo):
    mq = """\
        apiVersion: takt/v1
        kind: DataSource
        metadata: {name: mq}
        spec:
          protocol: mqtt
          broker: mqtt://broker:1883
          fields:
            - {name: a, dtype: float32, address: {topic: "plant/\\ud800/a"}}
        """
    d = only(repo({"mq.yaml": mq}), "TAKT2010")
    assert d.path == "spec.fields[0].address.topic"
    assert "lone surrogate" in d.message and "codec" not in d.message
    assert (d.location.line, d.location.column) == position(mq, '"plant/')


# --- the editor schema and the model agree on what a number is ----------------------------------------


@pytest.mark.parametrize("slot", ["address", "scale", "offset", "unitId", "qos"])
@pytest.mark.parametrize("value", [True, False, "100", "0x10", 16, 16.0, 1e3, 10.5])
def test_schema_and_model_agree_on_numbers(slot: str, value: object):
    import json

    import jsonschema

    from compiler.schema_export import schema_files
    from compiler.spec.datasource import DataSource

    address = {"registerType": "holding-register", "address": 1, "dataType": "int16"}
    spec = {"protocol": "modbus", "transport": "tcp", "endpoint": "gw:502", "samplingInterval": "1s"}
    if slot == "qos":
        spec = {"protocol": "mqtt", "broker": "mqtt://b:1883", "qos": value}
        fields = [{"name": "a", "dtype": "float32", "address": {"topic": "a/b"}}]
    elif slot == "unitId":
        spec["unitId"] = value
        fields = [{"name": "a", "dtype": "float32", "address": address}]
    else:
        fields = [{"name": "a", "dtype": "float32", "address": {**address, slot: value}}]
    doc = {"apiVersion": "takt/v1", "kind": "DataSource", "metadata": {"name": "x"}, "spec": {**spec, "fields": fields}}
    schema = json.loads(schema_files()["datasource.json"])
    by_schema = jsonschema.Draft202012Validator(schema).is_valid(doc)
    try:
        DataSource.model_validate(doc)
        by_model = True
    except ValueError:
        by_model = False
    assert by_schema == by_model, (slot, value, by_schema, by_model)
