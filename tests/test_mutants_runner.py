"""compiler/bundle/runner.py rule by rule, fast: the runner.json contract a device parses before it runs anything.

tests/test_runner_contract.py checks the rendered configs end to end; here each rule of the codec (types, bounds,
references, the shadow entry) is pinned at its edge without onnx or a build, so one `make mutation` mutant of this
large module costs about a second of test time.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
from pathlib import Path
from typing import Any, Literal

import pytest

from compiler.bundle import runner as contract

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = json.loads((ROOT / "tests" / "golden" / "edge-pc.json").read_text())["runner.json"].encode()
CLASSES = [c for _, c in inspect.getmembers(contract, inspect.isclass)
           if dataclasses.is_dataclass(c) and c.__module__ == contract.__name__]


def doc() -> dict[str, Any]:
    return json.loads(GOLDEN)


def refused(value: object) -> contract.ContractError:
    data = value if isinstance(value, bytes) else json.dumps(value).encode()
    with pytest.raises(contract.ContractError) as info:
        contract.RunnerConfig.parse(data)
    return info.value


# --- the dataclasses ------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_contract_class_is_frozen_and_keyword_only(cls: type) -> None:
    names = [f.name for f in dataclasses.fields(cls)]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(object.__new__(cls), names[0], None)
    with pytest.raises(TypeError, match="takes 1 positional argument but 2 were given"):
        cls(names[0])  # a field added in the middle must never shift what a caller passes


def test_the_limits_and_names_are_the_contract() -> None:
    assert (contract.API_VERSION, contract.RUNNER_JSON, contract.MAX_BYTES, contract.MAX_DEPTH) == (
        "takt/runner/v1", "runner.json", 16 * 2**20, 24)
    assert (contract.SHADOW_API_VERSION, contract.SHADOW_JSON, contract.MAX_SHADOW_BYTES,
            contract.DEFAULT_SHADOW_WINDOW) == ("takt/shadow/v1", "shadow.json", 65536, 3600.0)


def test_defaults_a_document_may_leave_out() -> None:
    assert contract.ModbusSerial() == contract.ModbusSerial(baud_rate=19200, parity="E", data_bits=8, stop_bits=1)
    assert contract.RunnerGate() == contract.RunnerGate(window_seconds=300, max_error_rate=0.01)
    assert contract.Health().timeout_seconds == 30 and contract.Health().gate is None
    assert contract.DriftMonitor(test_suite="s", dataset="d") == contract.DriftMonitor(
        test_suite="s", dataset="d", method="psi", threshold=0.2, window=3600.0)
    assert (contract.Window(size=4).stride, contract.FillMissing().value) == (1, 0.0)
    address = contract.ModbusAddress(register_type="coil", address=0, data_type="bool")
    assert (address.word_order, address.byte_order, address.scale, address.offset) == ("big", "big", 1.0, 0.0)
    mqtt = contract.MqttSource(broker="b", fields=())
    assert (mqtt.qos, mqtt.sparkplug, mqtt.protocol) == (1, False, "mqtt")
    modbus = contract.ModbusSource(transport="tcp", endpoint="e", sampling_interval=1.0, fields=())
    assert (modbus.unit_id, modbus.addressing, modbus.serial) == (1, "zero-based", None)
    out = contract.MqttOutput(from_="y", topic="t")
    assert (out.qos, out.retain, contract.HttpOutput(from_="y", url="u").method) == (1, False, "POST")
    assert (contract.HealthSamples(file="f").abs, contract.HealthSamples(file="f").rel) == (0.0, 0.0)
    assert contract.Binding(input="x", source="s", fields=()).layout == "features"
    shadow = contract.ShadowEntry(deployment="d", challenger="c", config="x")
    assert (shadow.window, shadow.tolerance) == (3600.0, 0.0)


def test_a_tensor_names_its_columns_by_feature_or_by_itself() -> None:
    t = contract.Tensor(name="x", dtype="float32", shape=(1, 2),
                        features=(contract.Feature(name="a"), contract.Feature(name="b")))
    assert t.columns == ("a", "b")
    assert contract.Tensor(name="x", dtype="float32", shape=(1,)).columns == ("x",)
    assert contract.Tensor(name="x", dtype="float32", shape=(1,), features=()).columns == ("x",)


# --- parse: the document as a whole ---------------------------------------------------------------


def test_the_golden_config_round_trips_and_with_changes_one_field() -> None:
    config = contract.RunnerConfig.parse(GOLDEN)
    assert config.to_json() == GOLDEN
    assert contract.RunnerConfig.parse(config.to_json()) == config
    changed = config.with_(deployment="other")
    assert (changed.deployment, changed.model, config.deployment) == ("other", config.model, "press-anomaly-muc")


def test_threat_the_byte_limit_is_exact() -> None:
    padded = GOLDEN + b" " * (contract.MAX_BYTES - len(GOLDEN))
    assert contract.RunnerConfig.parse(padded).deployment == "press-anomaly-muc"
    err = refused(padded + b" ")
    assert str(err) == f"{contract.MAX_BYTES + 1} bytes is over the limit of {contract.MAX_BYTES}"


def nested(levels: int) -> dict[str, Any]:
    """The golden document with `monitoring.metrics` replaced by lists nested to `levels` in all."""
    d = doc()
    value: object = "x"
    for _ in range(levels - 3):  # the document (1), monitoring (2), the lists, then the string
        value = [value]
    d["monitoring"]["metrics"] = value
    return d


def test_threat_the_depth_limit_is_exact_and_checked_before_the_types() -> None:
    with pytest.raises(contract.ContractError, match="must be a string"):  # 24 deep: decoded, wrong type
        contract.RunnerConfig.from_obj(nested(24))
    err = refused(nested(25))
    assert str(err) == "nested deeper than 24 levels"
    assert contract._depth([[1], [[[2]]], {"a": {"b": 3}}]) == 5
    assert contract._depth({}) == 1


def test_threat_parse_refuses_what_is_not_json_each_with_its_reason() -> None:
    assert str(refused(b"{")).startswith("not JSON (")
    assert str(refused(b"\xff")).startswith("not JSON (")
    assert "Infinity is not a JSON number" in str(refused(GOLDEN.replace(b"0.0001", b"Infinity")))
    assert str(refused(b"[" * 50_000 + b"]" * 50_000)) == "nested deeper than 24 levels"
    assert str(refused(b"[]")) == "the document is not a JSON object"


def test_threat_the_version_is_checked_under_its_key() -> None:
    d = doc()
    d["apiVersion"] = "takt/runner/v0"
    err = refused(d)
    assert err.path == "apiVersion" and "'takt/runner/v0' is not supported" in err.reason


# --- references between sections ------------------------------------------------------------------


@pytest.mark.parametrize(("change", "path", "reason"), [
    (lambda d: d["bindings"][1].__setitem__("input", "nope"), "bindings[1]", "input 'nope' is not a model input"),
    (lambda d: d["bindings"][0].__setitem__("source", "x"), "bindings[0]", "source 'x' is not in sources"),
    (lambda d: d["bindings"][1]["fields"].extend(["a", "b"]), "bindings[1]",
     "source 'press-hydraulics' has no field(s) a, b"),
    (lambda d: d["outputs"][1].__setitem__("from", "y"), "outputs[1]", "'y' is not a model output"),
    (lambda d: d["outputs"][0].__setitem__("connection", "plc-9"), "outputs[0]",
     "connection 'plc-9' is not in sources"),
    (lambda d: d["model"]["preprocessing"][0].__setitem__("input", "z"), "model.preprocessing[0]",
     "input 'z' is not a model input"),
])
def test_threat_a_dangling_reference_is_refused_where_it_is(change, path: str, reason: str) -> None:
    d = doc()
    change(d)
    err = refused(d)
    assert (err.path, err.reason) == (path, reason)


def test_references_that_resolve_and_optional_ones_left_out_are_accepted() -> None:
    d = doc()
    d["model"]["preprocessing"][0].pop("input")  # a step for every input
    d["outputs"][0].pop("connection")  # an OPC UA output must name its connection …
    with pytest.raises(contract.ContractError, match="is required"):
        contract.RunnerConfig.from_obj(d)
    d["outputs"][0] = {"from": "score", "type": "mqtt", "topic": "t"}  # … an MQTT one need not
    d["outputs"].append({"from": "score", "type": "mqtt", "topic": "t", "connection": ""})
    config = contract.RunnerConfig.from_obj(d)
    assert config.model.preprocessing[0].input is None and config.outputs[0].connection is None


# --- the generic codec ----------------------------------------------------------------------------


def test_keys_are_the_camel_case_of_the_field_names_or_their_metadata() -> None:
    assert contract._camel("sampling_interval") == "samplingInterval"
    assert contract._camel("from_") == "from" and contract._camel("a_b_c") == "aBC" and contract._camel("x") == "x"
    keys = dict(contract._encoded_fields(contract.OpcUaOutput))
    assert keys == {"from_": "from", "node_id": "nodeId", "connection": "connection", "type": "type", "name": "name"}


def test_threat_literals_refuse_booleans_and_values_not_listed() -> None:
    assert contract.decode(Literal[0, 1, 2], 1) == 1
    for bad, words in ((True, "True is not one of 0, 1, 2"), (3, "3 is not one of 0, 1, 2")):
        with pytest.raises(contract.ContractError, match=words):
            contract.decode(Literal[0, 1, 2], bad, "qos")


@pytest.mark.parametrize(("tp", "value", "words"), [
    (bool, 1, "must be a boolean"), (int, True, "must be an integer"), (int, 1.0, "must be an integer"),
    (float, True, "must be a finite number"), (float, "1", "must be a finite number"),
    (float, math.inf, "must be a finite number"), (str, 1, "must be a string"),
    (tuple[int, ...], (1,), "must be a list"), (tuple[int, int], [1], "must be a list of 2"),
    (dict[str, int], [], "must be an object"), (contract.Feature, [], "must be an object"),
    (contract.Source, [], "must be an object"), (bytes, b"", "has no decoder for bytes"),
])
def test_threat_each_type_refuses_a_value_of_another(tp: Any, value: object, words: str) -> None:
    with pytest.raises(contract.ContractError) as info:
        contract.decode(tp, value, "p")
    assert (info.value.path, info.value.reason) == ("p", words)


def test_each_type_decodes_its_own_values() -> None:
    assert contract.decode(bool, False) is False
    assert contract.decode(float, 2) == 2.0 and isinstance(contract.decode(float, 2), float)
    assert contract.decode(tuple[int, str], [1, "a"]) == (1, "a")
    assert contract.decode(tuple[int, ...], [1, 2, 3]) == (1, 2, 3)
    assert contract.decode(dict[str, int], {"a": 1}) == {"a": 1}
    assert contract.decode(int | None, None) is None and contract.decode(int | None, 3) == 3
    assert contract.decode(contract.Number, 2) == 2 and isinstance(contract.decode(contract.Number, 2), int)
    assert contract.decode(contract.Number, 2.5) == 2.5


def test_union_errors_name_every_branch_and_the_path_inside() -> None:
    with pytest.raises(contract.ContractError) as info:
        contract.decode(int | str, 1.5, "x")
    assert info.value.reason == "must be an integer or must be a string"
    with pytest.raises(contract.ContractError) as info:
        contract.decode(tuple[int, ...], [1, "a"], "list")
    assert info.value.path == "list[1]"
    with pytest.raises(contract.ContractError) as info:
        contract.decode(dict[str, int], {"k": "v"}, "")
    assert info.value.path == "k"
    with pytest.raises(contract.ContractError) as info:
        contract.decode(dict[str, int], {"k": "v"}, "m")
    assert info.value.path == "m.k"


def test_a_tagged_union_picks_its_member_by_the_tag_and_names_the_allowed_tags() -> None:
    got = contract.decode(contract.Step, {"op": "window", "size": 3})
    assert got == contract.Window(size=3)
    with pytest.raises(contract.ContractError) as info:
        contract.decode(contract.Step, {"op": "scale"}, "s")
    assert info.value.reason == "op 'scale' is not one of 'standardize', 'minmax', 'clip', 'fill-missing', 'window'"
    assert contract._tag(contract.RunnerConfig) is None and contract._tag(contract.Clip) == ("op", "clip")
    with pytest.raises(TypeError, match="Feature is in a union"):
        contract._tag_of(contract.Feature)


def test_threat_a_dataclass_refuses_unknown_and_missing_keys_with_their_path() -> None:
    with pytest.raises(contract.ContractError) as info:
        contract.decode(contract.Feature, {"name": "a", "zz": 1, "yy": 2}, "f")
    assert info.value.reason == "unknown key(s) yy, zz (known: name, unit)"
    with pytest.raises(contract.ContractError) as info:
        contract.decode(contract.Feature, {}, "f")
    assert (info.value.path, info.value.reason) == ("f.name", "is required")
    with pytest.raises(contract.ContractError) as info:
        contract.decode(contract.Feature, {})
    assert info.value.path == "name"
    assert contract.decode(contract.Feature, {"name": "a"}) == contract.Feature(name="a")


def test_encode_leaves_out_none_and_writes_tuples_and_dicts_as_json() -> None:
    value = {"k": (contract.Feature(name="a"), contract.Feature(name="b", unit="bar"))}
    assert contract.encode(value) == {"k": [{"name": "a"}, {"name": "b", "unit": "bar"}]}
    assert contract.encode([1, (2,)]) == [1, [2]]
    assert contract.encode(contract.Feature) is contract.Feature  # a class is no instance


def test_dump_json_is_sorted_indented_utf8_and_refuses_nan() -> None:
    assert contract.dump_json({"b": "é", "a": 1}) == '{\n  "a": 1,\n  "b": "é"\n}\n'
    with pytest.raises(ValueError, match="not JSON compliant"):
        contract.dump_json(math.nan)


def test_the_error_carries_its_reason_and_path() -> None:
    err = contract.ContractError("bad", "a.b")
    assert (str(err), err.reason, err.path) == ("a.b: bad", "bad", "a.b")
    assert str(contract.ContractError("bad")) == "bad"
    assert contract._type_name(int) == "an integer" and contract._type_name(bytes) == "bytes"
    assert contract._type_name(list[int]) == "list[int]"


# --- the JSON Schema ------------------------------------------------------------------------------


def test_the_generated_schema_is_the_committed_one() -> None:
    assert contract.json_schema() == json.loads((ROOT / "schemas" / "runner.json").read_text())


def test_the_schema_requires_what_the_codec_requires() -> None:
    defs = contract.json_schema()["$defs"]
    assert defs["Clip"]["required"] == ["max", "min", "op"]  # the tag too: it picks the member
    assert defs["OpcUaField"]["required"] == ["address", "dtype", "name"]
    assert defs["OpcUaField"]["properties"]["range"] == {"type": "array", "prefixItems": [{"type": "number"}] * 2,
                                                    "minItems": 2, "maxItems": 2}
    assert "description" not in defs["Feature"] and "replays" in defs["HealthSamples"]["description"]


# --- the shadow entry -----------------------------------------------------------------------------

ENTRY = contract.ShadowEntry(deployment="d", challenger="c" * 64, config="ch/runner.json", tolerance=0.5, window=60.0)


def entry(**change: object) -> bytes:
    return json.dumps({**json.loads(ENTRY.to_json()), **change}).encode()


def test_a_shadow_entry_round_trips() -> None:
    assert contract.ShadowEntry.parse(ENTRY.to_json()) == ENTRY
    assert contract.ShadowEntry.parse(entry(tolerance=0, window=1e-9)).tolerance == 0.0


@pytest.mark.parametrize(("change", "path"), [
    ({"apiVersion": "takt/shadow/v2"}, "apiVersion"),
    ({"challenger": "c" * 63}, "challenger"), ({"challenger": "c" * 65}, "challenger"),
    ({"challenger": "C" * 64}, "challenger"), ({"challenger": "g" + "c" * 63}, "challenger"),
    ({"tolerance": -0.1}, "tolerance"), ({"window": 0}, "window"), ({"window": -1}, "window"),
])
def test_threat_a_shadow_entry_out_of_its_rules_is_refused_at_the_field(change: dict, path: str) -> None:
    with pytest.raises(contract.ContractError) as info:
        contract.ShadowEntry.parse(entry(**change))
    assert info.value.path == path


def test_threat_a_shadow_entry_is_bounded_and_json() -> None:
    exact = ENTRY.to_json()
    exact += b" " * (contract.MAX_SHADOW_BYTES - len(exact))
    assert contract.ShadowEntry.parse(exact) == ENTRY
    with pytest.raises(contract.ContractError, match="65537 bytes is over the limit of 65536"):
        contract.ShadowEntry.parse(exact + b" ")
    for bad in (b"[", b"\xff", b"[" * 10_000 + b"]" * 10_000, b'{"tolerance": NaN}'):
        with pytest.raises(contract.ContractError, match="not JSON"):
            contract.ShadowEntry.parse(bad)
    with pytest.raises(contract.ContractError, match="not a takt/shadow/v1 shadow entry"):
        contract.ShadowEntry.parse(b"[]")


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Spelled:
    """A field whose key is spelled apart from its name (as `from_` is `from`), and one whose key metadata is
    not a string (ignored: the camel-case name is its key)."""

    odd_name: str = dataclasses.field(metadata=contract._key("x-key"))
    plain_name: int = dataclasses.field(default=0, metadata={"key": 5})


def test_an_explicit_key_is_the_documents_key_and_a_non_string_one_is_ignored() -> None:
    assert contract.decode(_Spelled, {"x-key": "v", "plainName": 3}) == _Spelled(odd_name="v", plain_name=3)
    assert contract.encode(_Spelled(odd_name="v")) == {"x-key": "v", "plainName": 0}
    with pytest.raises(contract.ContractError):
        contract.decode(_Spelled, {"oddName": "v"})


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Tagged:
    kind: Literal["t"]
    n: int = 0


def test_a_union_of_a_tagged_class_and_a_plain_type_tries_each_member() -> None:
    """Only a union of dataclasses alone is decoded by its tag; one with a plain type tries each member."""
    assert contract.decode(_Tagged | str, "text") == "text"
    assert contract.decode(_Tagged | str, {"kind": "t", "n": 2}) == _Tagged(kind="t", n=2)


def test_a_union_with_none_among_its_members_tries_the_members_after_it() -> None:
    assert contract.decode(int | None | str, "x") == "x"
    assert contract.decode(int | None | str, None) is None and contract.decode(int | None | str, 3) == 3


def _contract_unions() -> list[tuple[str, tuple[type, ...]]]:
    """Every union of dataclasses alone a field of the contract is typed with (through tuples and dicts too)."""
    found: list[tuple[str, tuple[type, ...]]] = []

    def walk(where: str, tp: Any) -> None:
        members = contract._union_args(tp)
        if members is not None:
            present = tuple(m for m in members if m is not type(None))
            if len(present) > 1 and all(isinstance(m, type) and dataclasses.is_dataclass(m) for m in present):
                found.append((where, present))
            for m in present:
                walk(where, m)
            return
        for arg in contract._shape(tp)[1]:
            walk(where, arg)

    for name, cls in vars(contract).items():
        if isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == contract.__name__:
            for f in dataclasses.fields(cls):
                walk(f"{name}.{f.name}", contract._hints(cls)[f.name])
    return found


def test_every_tagged_union_of_the_contract_discriminates_on_one_key() -> None:
    """The decoder reads the tag key off the union's first class: every member must name the same key."""
    unions = _contract_unions()
    assert unions, "the contract has tagged unions (sources, outputs, steps): the walk must find them"
    for where, members in unions:
        assert len({contract._tag_of(m)[0] for m in members}) == 1, (where, members)
