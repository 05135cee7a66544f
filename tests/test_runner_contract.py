"""The runner contract (runner.json, takt/runner/v1): round trip, strict parsing, schema, agent reading."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from compiler.bundle import runner as contract
from tests.conftest import TINY

GOLDEN = Path(__file__).parent / "golden"


def _golden_bytes(target: str = "edge-pc") -> bytes:
    snap = json.loads((GOLDEN / f"{target}.json").read_text())
    if target == "edge-pc":
        return snap["runner.json"].encode()
    return YAML(typ="safe").load(snap["configmap.yaml"])["data"]["runner.json"].encode()


@pytest.mark.parametrize("target", ["edge-pc", "it-server"])
def test_rendered_configs_round_trip_byte_for_byte(target: str):
    data = _golden_bytes(target)
    config = contract.RunnerConfig.parse(data)
    assert config.to_json() == data
    assert config.api_version == contract.API_VERSION


def test_parsed_config_is_typed():
    config = contract.RunnerConfig.parse(_golden_bytes())
    vib = config.sources["press-vibration"]
    assert isinstance(vib, contract.OpcUaSource)
    assert vib.sampling_interval == pytest.approx(0.1)
    assert vib.fields[0].range == (0.0, 50.0)
    hyd = config.sources["press-hydraulics"]
    assert isinstance(hyd, contract.ModbusSource) and hyd.unit_id == 3
    assert hyd.fields[0].address.word_order == "little"
    assert isinstance(config.model.preprocessing[0], contract.Clip)
    assert isinstance(config.outputs[0], contract.OpcUaOutput) and config.outputs[0].from_ == "is_anomaly"
    assert config.health is not None and config.health.samples is not None
    assert config.health.timeout_seconds == 30 and isinstance(config.health.timeout_seconds, int)
    assert config.model.inputs[0].columns == ("vib_x", "vib_y", "vib_z")


def _doc() -> dict:
    return json.loads(_golden_bytes())


def _refused(doc: object) -> contract.ContractError:
    with pytest.raises(contract.ContractError) as info:
        contract.RunnerConfig.parse(json.dumps(doc).encode() if not isinstance(doc, bytes) else doc)
    return info.value


def test_unknown_version_is_refused_with_both_versions_named():
    doc = _doc()
    doc["apiVersion"] = "takt/runner/v2"
    err = _refused(doc)
    assert "takt/runner/v2" in str(err) and contract.API_VERSION in str(err)
    del doc["apiVersion"]
    assert "None" in str(_refused(doc))


@pytest.mark.parametrize(
    ("mutate", "path", "words"),
    [
        (lambda d: d.__setitem__("extra", 1), "", "unknown key(s) extra"),
        (lambda d: d["model"].__setitem__("sha256", 5), "model.sha256", "must be a string"),
        (lambda d: d["bindings"][0].__setitem__("layout", "grid"), "bindings[0].layout", "'grid' is not one of"),
        (lambda d: d["sources"]["press-hydraulics"].__setitem__("unitId", True), "unitId", "must be an integer"),
        (lambda d: d["sources"]["press-vibration"].__setitem__("protocol", "s7"), "press-vibration", "protocol 's7'"),
        (lambda d: d["sources"]["press-vibration"]["fields"][0].pop("address"), "fields[0].address", "is required"),
        (lambda d: d["bindings"][1].__setitem__("source", "nowhere"), "bindings[1]", "'nowhere' is not in sources"),
        (lambda d: d["bindings"][0]["fields"].append("vib_w"), "bindings[0]", "no field(s) vib_w"),
        (lambda d: d["outputs"][0].__setitem__("from", "nothing"), "outputs[0]", "not a model output"),
        (lambda d: d["model"]["preprocessing"][0].__setitem__("min", "0"), "preprocessing[0].min", "finite number"),
    ],
)
def test_malformed_configs_name_the_path_and_the_reason(mutate, path: str, words: str):
    doc = _doc()
    mutate(doc)
    err = _refused(doc)
    assert path in err.path and words in err.reason, str(err)


def test_hostile_documents_are_refused_not_crashing():
    assert "not JSON" in str(_refused(b"{"))
    assert "not JSON" in str(_refused(b"\xff\xfe"))
    assert "NaN is not a JSON number" in str(_refused(_golden_bytes().replace(b"0.0001", b"NaN")))
    assert "not a JSON object" in str(_refused(b"[]"))
    deep: object = 1
    for _ in range(contract.MAX_DEPTH + 5):
        deep = {"a": deep}
    assert "nested deeper" in str(_refused(deep))
    assert "nested deeper" in str(_refused(b"[" * 100_000 + b"]" * 100_000))
    assert "over the limit" in str(_refused(b" " * (contract.MAX_BYTES + 1)))


def test_committed_schema_accepts_rendered_configs_and_rejects_unknown_keys():
    schema = json.loads((Path(__file__).parent.parent / "schemas" / "runner.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    for target in ("edge-pc", "it-server"):
        doc = json.loads(_golden_bytes(target))
        assert not list(validator.iter_errors(doc))
        doc["model"]["inputs"][0]["typo"] = 1
        assert list(validator.iter_errors(doc))
    doc = _doc()
    doc["apiVersion"] = "takt/runner/v2"
    assert list(validator.iter_errors(doc))


def test_agent_health_gate_reads_through_the_contract(tmp_path: Path):
    from agent.health import check_release

    bundle = tmp_path / "bundles" / ("d" * 64)
    (bundle / "model").mkdir(parents=True)
    (bundle / "model" / "model.onnx").write_bytes(TINY)
    (tmp_path / "release.json").write_text(json.dumps({"bundles": [{"name": "x/y", "digest": "d" * 64}]}))
    doc = _doc()
    doc["health"].pop("samples")
    doc["model"]["inputs"] = [{"name": "x", "dtype": "float32", "shape": ["batch", 2]}]
    doc["model"]["outputs"] = [{"name": "y", "dtype": "float32", "shape": ["batch", 1]}]
    doc["bindings"], doc["outputs"], doc["model"]["preprocessing"] = [], [], []
    (bundle / "runner.json").write_bytes(json.dumps(doc).encode())
    report = check_release(tmp_path)
    assert report["ok"] and "no health samples" in report["checks"][0]["detail"]
    doc["apiVersion"] = "takt/runner/v9"
    (bundle / "runner.json").write_bytes(json.dumps(doc).encode())
    with pytest.raises(contract.ContractError, match="takt/runner/v9"):
        check_release(tmp_path)


def test_edge_bundle_carries_reproducible_reference_quantiles_of_every_input_feature():
    import csv

    import numpy as np

    config = contract.RunnerConfig.parse(_golden_bytes())
    ref = config.reference
    assert ref is not None and (ref.test_suite, ref.dataset, ref.bins) == ("press-anomaly-acceptance", "reference", 10)
    features = [f.name for t in config.model.inputs for f in t.features or ()]
    assert [f.name for f in ref.features] == features == ["vib_x", "vib_y", "vib_z", "pressure", "oil_temp"]
    data = Path(__file__).parent.parent / "examples/press-line-anomaly/data/reference.csv"
    rows = list(csv.DictReader(data.open()))
    for f in ref.features:
        column = np.array([float(r[f.name]) for r in rows])
        np.testing.assert_allclose(f.edges, np.quantile(column, np.linspace(0, 1, 11))[1:-1])
        assert sum(f.fractions) == pytest.approx(1.0) and len(f.fractions) == len(f.edges) + 1


def test_the_spec_schemas_list_the_contract_dtypes():
    """The spec models take the dtypes from the contract (compiler/bundle/dtypes.py): the schemas list them."""
    import typing

    schema = json.loads((Path(__file__).parent.parent / "schemas" / "model.json").read_text())
    assert list(typing.get_args(contract.DType)) in [d.get("enum") for d in schema["$defs"].values()] + [
        p.get("enum") for d in schema["$defs"].values() for p in d.get("properties", {}).values()
    ]
