"""References and cross-document semantics, each reported at the referring node."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.conftest import BASE, codes, copy_example, only

SRC, MODEL, FLEET, DEPLOY, TESTS = (
    BASE[k] for k in ("sources.yaml", "model.yaml", "fleet.yaml", "deploy.yaml", "tests.yaml")
)


def test_dangling_reference_with_did_you_mean(repo):
    r = repo({"deploy.yaml": DEPLOY.replace("source: plc", "source: plcc")})
    d = only(r, "TAKT3001")
    assert d.message == "DataSource 'plcc' does not exist"
    assert d.hint == "did you mean 'plc'?"
    assert (d.location.file, d.location.line) == ("deploy.yaml", 7)


def test_every_reference_kind_resolves(repo):
    r = repo(
        {
            "deploy.yaml": DEPLOY.replace("model: m", "model: nope")
            .replace("targets: [ipc]", "targets: [nope]")
            .replace("gates: [suite]", "gates: [nope]"),
            "tests.yaml": TESTS.replace("model: m", "model: nope"),
            "fleet.yaml": FLEET.replace("spec: {target: ipc}", "spec: {target: nope}"),
        }
    )
    messages = sorted(d.message for d in r.diagnostics if d.code == "TAKT3001")
    assert messages == [
        "Model 'nope' does not exist",
        "Model 'nope' does not exist",
        "Target 'nope' does not exist",
        "Target 'nope' does not exist",
        "TestSuite 'nope' does not exist",
    ]


def test_duplicate_names_across_files(repo):
    r = repo({"dup.yaml": "apiVersion: takt/v1\nkind: Device\nmetadata: {name: ipc-1}\nspec: {target: ipc}\n"})
    d = only(r, "TAKT3002")
    assert d.location.file in ("dup.yaml", "fleet.yaml")
    assert d.related and d.related[0].file != d.location.file


def test_duplicate_device_ids(repo):
    r = repo(
        {"dup.yaml": "apiVersion: takt/v1\nkind: Device\nmetadata: {name: other}\nspec: {target: ipc, id: ipc-1}\n"}
    )
    d = only(r, "TAKT3005")  # files load in sorted order: fleet.yaml's ipc-1 comes second
    assert (d.location.file, d.path) == ("fleet.yaml", "metadata.name")
    assert d.related[0].file == "dup.yaml"


def test_extends_cycle_is_reported_once_per_member(repo):
    r = repo(
        {
            "t.yaml": """\
        apiVersion: takt/v1
        kind: Target
        metadata: {name: a}
        spec: {extends: b}
        ---
        apiVersion: takt/v1
        kind: Target
        metadata: {name: b}
        spec: {extends: a}
        """
        }
    )
    cycles = [d for d in r.diagnostics if d.code == "TAKT3003"]
    assert len(cycles) == 2
    assert all(d.path == "spec.extends" for d in cycles)
    assert "a → b → a" in cycles[0].message or "b → a → b" in cycles[0].message


def test_extends_inherits_and_completeness_is_checked_after_merge(repo):
    child = "apiVersion: takt/v1\nkind: Target\nmetadata: {name: arm}\nspec: {extends: ipc, arch: aarch64}\n"
    r = repo({"arm.yaml": child})
    assert r.diagnostics == []
    assert r.index.resolved_targets["arm"].memory == 4 * 2**30
    assert r.index.resolved_targets["arm"].arch == "aarch64"
    orphan = "apiVersion: takt/v1\nkind: Target\nmetadata: {name: bare}\nspec: {arch: aarch64}\n"
    d = only(repo({"arm.yaml": orphan}), "TAKT4013")
    assert "class, os, memory, runtime.onnxruntime" in d.message


def test_binding_count_dtype_and_unit(repo):
    r = repo({"deploy.yaml": DEPLOY.replace("fields: [temp, pres]", "fields: [temp]")})
    assert "1 fields bound to input 'x', which takes 2" in only(r, "TAKT4002").message
    r = repo(
        {"sources.yaml": SRC.replace("{name: pres, dtype: float32, unit: bar", "{name: pres, dtype: string, unit: bar")}
    )
    assert only(r, "TAKT4003").path == "spec.bindings[0].fields[1]"
    r = repo(
        {"sources.yaml": SRC.replace("{name: pres, dtype: float32, unit: bar", "{name: pres, dtype: int64, unit: bar")}
    )
    assert only(r, "TAKT4004").severity.label == "warning"
    r = repo({"sources.yaml": SRC.replace("unit: bar", "unit: psi")})
    d = only(r, "TAKT4005")
    assert "psi" in d.message and "bar" in d.message


def test_unit_aliases_are_equivalent(repo):
    assert repo({"sources.yaml": SRC.replace("unit: degC", "unit: °C")}).diagnostics == []


def test_unknown_field_in_binding_suggests(repo):
    r = repo({"deploy.yaml": DEPLOY.replace("fields: [temp, pres]", "fields: [temp, press]")})
    d = only(r, "TAKT3001")
    assert d.hint == "did you mean 'pres'?"
    assert d.path == "spec.bindings[0].fields[1]"


def test_unbound_and_twice_bound_inputs(repo):
    r = repo(
        {
            "model.yaml": MODEL.replace(
                "outputs:", "  - {name: z, dtype: float32, shape: [batch, 1]}\n          outputs:"
            )
        }
    )
    assert "'z'" in only(r, "TAKT4001").message
    twice = DEPLOY.replace(
        "            - {input: x, source: plc, fields: [temp, pres]}",
        "            - {input: x, source: plc, fields: [temp, pres]}\n"
        "            - {input: x, source: plc, fields: [temp, pres]}",
    )
    assert only(repo({"deploy.yaml": twice}), "TAKT4006").path == "spec.bindings[1].input"


def test_gate_must_test_the_deployed_model(repo):
    other = MODEL.replace("name: m}", "name: m2}")
    r = repo({"m2.yaml": other, "tests.yaml": TESTS.replace("model: m", "model: m2")})
    assert only(r, "TAKT4007").path == "spec.gates[0]"


def test_output_from_unknown_model_output(repo):
    r = repo({"deploy.yaml": DEPLOY.replace("from: y", "from: yy")})
    assert only(r, "TAKT4008").hint == "did you mean 'y'?"


def test_model_version_pin(repo):
    r = repo({"deploy.yaml": DEPLOY.replace("model: m", "model: m@2.0.0")})
    assert "pins m@2.0.0 but the Model spec is version 1.0.0" in only(r, "TAKT3004").message
    assert repo({"deploy.yaml": DEPLOY.replace("model: m", "model: {name: m, version: '1.0.0'}")}).diagnostics == []


def test_selector_matching_nothing_and_devices_on_other_targets(repo):
    r = repo({"deploy.yaml": DEPLOY.replace("{line: a}", "{line: b}")})
    assert only(r, "TAKT4010").severity.label == "warning"
    other = textwrap.dedent(FLEET) + textwrap.dedent("""\
        ---
        apiVersion: takt/v1
        kind: Target
        metadata: {name: ipc2}
        spec: {extends: ipc}
        ---
        apiVersion: takt/v1
        kind: Device
        metadata: {name: ipc-2, labels: {line: a}}
        spec: {target: ipc2}
        """)
    d = only(repo({"fleet.yaml": other}), "TAKT4011")
    assert "'ipc-2'" in d.message


def test_match_expressions(repo):
    sel = "selector: {matchExpressions: [{key: line, operator: In, values: [a, b]}]}"
    assert repo({"deploy.yaml": DEPLOY.replace("selector: {matchLabels: {line: a}}", sel)}).diagnostics == []
    sel = "selector: {matchExpressions: [{key: line, operator: DoesNotExist}]}"
    assert "TAKT4010" in codes(repo({"deploy.yaml": DEPLOY.replace("selector: {matchLabels: {line: a}}", sel)}))


def test_resources_must_fit_the_target(repo):
    r = repo({"deploy.yaml": DEPLOY + "  resources: {memory: 8Gi, gpu: 1}\n"})
    assert sorted(d.path for d in r.diagnostics if d.code == "TAKT4012") == [
        "spec.resources.gpu",
        "spec.resources.memory",
    ]
    assert all(d.hint == "" for d in r.diagnostics if d.code == "TAKT4012")  # one target: nothing is shared


def test_resources_that_fit_no_target_say_they_are_shared(tmp_path: Path):
    """The press example's Deployment has two targets; resources apply to both (TAKT4012's hint says so)."""

    from compiler.validate.pipeline import validate

    spec = tmp_path / "spec"
    copy_example("press-line-anomaly", spec)
    dep = spec / "specs/deployment.yaml"
    dep.write_text(dep.read_text().replace("memory: 256Mi", "memory: 64Gi"))
    hits = [d for d in validate(spec, check_artifacts=False).diagnostics if d.code == "TAKT4012"]
    assert hits and all("every target of the Deployment" in d.hint for d in hits)


def test_embedded_target_rules(repo):
    emb = """\
        apiVersion: takt/v1
        kind: Target
        metadata: {name: mcu}
        spec: {class: embedded, arch: cortex-m7, os: linux, memory: 512Ki, runtime: {onnxruntime: "1.20"}}
        """
    codes = sorted(d.code for d in repo({"mcu.yaml": emb}).diagnostics)
    assert codes == ["TAKT4015", "TAKT4030", "TAKT4031"]  # os, flash, minimal build (all TAKT4015 once)


def test_test_suite_dataset_and_output_references(repo):
    r = repo({"tests.yaml": TESTS.replace("dataset: ref}", "dataset: reff}")})
    assert only(r, "TAKT4016").hint == "did you mean 'ref'?"
    metric = TESTS + "    - {name: acc, type: metric, metric: accuracy, dataset: ref, threshold: 1.5, output: yy}\n"
    r = repo({"tests.yaml": metric})
    assert "TAKT4016" in codes(r) and "TAKT1014" in codes(r)  # TAKT1014 split from TAKT1007


def test_opcua_lints(repo):
    r = repo(
        {
            "sources.yaml": SRC.replace('"nsu=urn:x;s=T"', '"ns=2;s=T"').replace(
                "{mode: Sign, policy: Basic256Sha256,", "{mode: Sign, policy: Basic256,"
            )
        }
    )
    assert sorted(codes(r)) == ["TAKT2002", "TAKT2005"]
    r = repo(
        {"sources.yaml": SRC.replace("{mode: Sign, policy: Basic256Sha256,", "{mode: None, policy: Basic256Sha256,")}
    )
    assert only(r, "TAKT2003").path == "spec.security"


def test_modbus_rules(repo):
    mb = """\
        apiVersion: takt/v1
        kind: DataSource
        metadata: {name: mb}
        spec:
          protocol: modbus
          transport: rtu
          endpoint: gw:502
          unitId: 250
          addressing: one-based
          samplingInterval: 1s
          fields:
            - {name: a, dtype: float32, address: {registerType: coil, address: 1, dataType: float32}}
            - {name: b, dtype: bool, address: {registerType: holding-register, address: 0, dataType: bool}}
            - {name: c, dtype: float64, address: {registerType: holding-register, address: 65535, dataType: float64}}
            - {name: d, dtype: float32, address: {registerType: holding-register, address: 40001, dataType: int16}}
            - {name: e, dtype: float32, address: {registerType: input-register, address: 5, dataType: int16, scale: 0}}
        """
    r = repo({"mb.yaml": mb})
    by_path = {d.path: d for d in r.diagnostics}
    assert by_path["spec.fields[0].address.dataType"].code == "TAKT2021"
    assert "needs `bit" in by_path["spec.fields[1].address"].message
    assert "one-based" in by_path["spec.fields[1].address.address"].message
    past_end = by_path["spec.fields[2].address.address"].message
    assert "65535..65538, past the last register, 65536 (counted from 1)" in past_end
    assert "Modicon" in by_path["spec.fields[3].address.address"].message
    assert "scale 0" in by_path["spec.fields[4].address.scale"].message
    assert "serial" in by_path["spec"].message
    assert by_path["spec.endpoint"].code == "TAKT2028"  # split from TAKT2006: a Modbus endpoint is no URL
    assert by_path["spec.unitId"].code == "TAKT2026"  # split from TAKT2020: settings of the transport
    assert by_path["spec"].code == "TAKT2026"
    assert by_path["spec.fields[4].address.scale"].code == "TAKT2027"
    assert by_path["spec.fields[1].address.address"].code == "TAKT2020"


def test_sparkplug_rules(repo):
    mq = """\
        apiVersion: takt/v1
        kind: DataSource
        metadata: {name: mq}
        spec:
          protocol: mqtt
          broker: mqtt://broker:1883
          sparkplug: true
          fields:
            - {name: a, dtype: float32, address: {topic: "spBv1.0/g/DDATA/node/dev", metric: temp}}
            - {name: b, dtype: float32, address: {topic: "plant/a/b", jsonPath: "$.v"}}
        """
    r = repo({"mq.yaml": mq})
    assert sorted(d.path for d in r.diagnostics) == [
        "spec.fields[1].address",
        "spec.fields[1].address.jsonPath",
        "spec.fields[1].address.topic",
    ]


def test_publish_topic_wildcards_refused(repo):
    r = repo({"deploy.yaml": DEPLOY.replace("topic: out/y", "topic: out/+/y")})
    assert only(r, "TAKT2010").path == "spec.outputs[0].topic"


def test_literal_secrets_are_errors_and_never_echoed(repo):
    r = repo(
        {
            "sources.yaml": SRC.replace(
                'credentialsRef: "env:OPCUA"}', 'credentialsRef: "env:OPCUA", password: "hunter2"}'
            )
        }
    )
    assert "TAKT1010" in codes(r)
    r = repo({"deploy.yaml": DEPLOY.replace('broker: "mqtt://b:1883"', 'broker: "mqtt://admin:s3cr3t@b:1883"')})
    secret = [d for d in r.diagnostics if d.code == "TAKT1010"]
    assert secret and all("s3cr3t" not in d.message + d.hint for d in r.diagnostics)
    token = "ghp_" + "a1B2" * 9
    r = repo(
        {"deploy.yaml": DEPLOY.replace("metadata: {name: d}", f"metadata: {{name: d, annotations: {{note: {token}}}}}")}
    )
    assert only(r, "TAKT1010").message == "value looks like a GitHub token"


def test_protocol_of_output_connection_must_match(repo):
    out = DEPLOY.replace(
        '{type: mqtt, from: y, broker: "mqtt://b:1883", topic: out/y}',
        "{type: mqtt, from: y, connection: plc, topic: out/y}",
    )
    assert "speaks opcua" in only(repo({"deploy.yaml": out}), "TAKT4033").message


def test_examples_dtype_conversion_table():
    from compiler.validate.semantics import dtype_conversion as c

    assert c("float64", "float32") == "lossy"  # forgiven only where a declared range shows it harmless
    assert c("float32", "float16") == "lossy"
    assert c("int16", "float32") == "safe"
    assert c("int32", "float32") == "lossy"
    assert c("uint8", "int16") == "safe"
    assert c("int8", "uint8") == "lossy"
    assert c("bool", "float32") == "safe"
    assert c("float32", "bool") == "invalid"
    assert c("string", "float32") == "invalid"
