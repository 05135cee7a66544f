"""Structure: envelope and per-kind models, reported at the exact node with a useful hint."""

from __future__ import annotations

from tests.conftest import codes, only


def test_base_repo_is_clean(repo):
    result = repo()
    assert result.diagnostics == []
    assert len(result.documents) == 6


def test_unknown_field_points_at_the_key_and_suggests(repo):
    r = repo(
        {"extra.yaml": "apiVersion: takt/v1\nkind: Device\nmetadata: {name: d2}\nspec:\n  target: ipc\n  hostnme: x\n"}
    )
    d = only(r, "TAKT1004")
    assert (d.location.file, d.location.line, d.location.column) == ("extra.yaml", 6, 3)
    assert d.hint == "did you mean 'hostname'?"
    assert d.path == "spec.hostnme"


def test_unknown_field_inside_a_discriminated_union_suggests_from_that_variant(repo):
    r = repo(
        {
            "x.yaml": """\
        apiVersion: takt/v1
        kind: DataSource
        metadata: {name: mb}
        spec:
          protocol: modbus
          transport: tcp
          endpoint: gw:502
          samplingInterval: 1s
          fields:
            - {name: p, dtype: float32, address: {registerType: holding-register, address: 1, dataTyp: float32}}
        """
        }
    )
    d = next(d for d in r.diagnostics if d.code == "TAKT1004")
    assert d.hint == "did you mean 'dataType'?"
    assert d.location.line == 10


def test_missing_field_points_at_the_parent_key(repo):
    r = repo({"x.yaml": "apiVersion: takt/v1\nkind: Device\nmetadata: {name: d2}\nspec:\n  hostname: h\n"})
    d = only(r, "TAKT1003")
    assert "'target'" in d.message
    assert (d.location.line, d.location.column) == (4, 1)


def test_wrong_type_and_quoting_hint(repo):
    r = repo(
        {"x.yaml": "apiVersion: takt/v1\nkind: Device\nmetadata: {name: d2, labels: {cell: 3}}\nspec: {target: ipc}\n"}
    )
    d = only(r, "TAKT1005")
    assert "quote" in d.hint
    assert d.location.line == 3


def test_enum_value_suggests_the_right_spelling(repo):
    r = repo({"x.yaml": BASE_SOURCE.replace("mode: Sign,", "mode: sign,")})
    d = only(r, "TAKT1007")
    assert d.hint == "did you mean 'Sign'?"
    assert d.path == "spec.security.mode"


def test_unknown_protocol_suggests(repo):
    r = repo({"sources.yaml": BASE_SOURCE.replace("protocol: opcua", "protocol: opc-ua")})
    d = only(r, "TAKT1008")
    assert d.hint == "did you mean 'opcua'?"
    assert d.path == "spec.protocol"


def test_unknown_kind_and_api_version(repo):
    r = repo({"x.yaml": "apiVersion: takt/v2\nkind: Modell\nmetadata: {name: a}\nspec: {}\n"})
    assert sorted(codes(r)) == ["TAKT1001", "TAKT1002"]
    assert [d.hint for d in r.diagnostics if d.code == "TAKT1002"] == ["did you mean 'Model'?"]


def test_document_that_is_not_a_mapping(repo):
    r = repo({"x.yaml": "- a\n- b\n"})
    assert codes(r) == ["TAKT0008"]


def test_invalid_name(repo):
    r = repo({"x.yaml": "apiVersion: takt/v1\nkind: Device\nmetadata: {name: Press_1}\nspec: {target: ipc}\n"})
    d = only(r, "TAKT1006")
    assert (d.location.column, d.location.end_column) == (18, 25)


def test_version_written_as_float_is_caught(repo):
    r = repo({"fleet.yaml": BASE_FLEET.replace('onnxruntime: "1.20"', "onnxruntime: 1.20")})
    d = only(r, "TAKT1009")
    assert "quote" in d.message


def test_quantities_and_durations(repo):
    r = repo({"fleet.yaml": BASE_FLEET.replace("memory: 4Gi", "memory: 4 gigs")})
    assert "byte quantity" in only(r, "TAKT1009").message
    r = repo({"sources.yaml": BASE_SOURCE.replace("samplingInterval: 100ms", "samplingInterval: 100 millis")})
    assert "duration" in only(r, "TAKT1009").message


def test_every_independent_error_is_reported_in_one_run(repo):
    r = repo(
        {
            "sources.yaml": BASE_SOURCE.replace("mode: Sign,", "mode: sign,").replace(
                "samplingInterval: 100ms", "x: 1"
            ),
            "fleet.yaml": BASE_FLEET.replace("memory: 4Gi", "memory: lots"),
        }
    )
    assert {"TAKT1007", "TAKT1004", "TAKT1003", "TAKT1009"} <= set(codes(r))


def test_a_broken_document_does_not_cascade_into_dangling_references(repo):
    # the DataSource fails structure, but the deployment's reference to it still resolves
    r = repo({"sources.yaml": BASE_SOURCE.replace("mode: Sign,", "mode: sign,")})
    assert "TAKT3001" not in codes(r)


def test_relative_paths_stay_inside_the_repo(repo):
    r = repo({"model.yaml": BASE_MODEL.replace("models/m.onnx", "../../etc/passwd")})
    assert "'..'" in only(r, "TAKT1012").message
    r = repo({"model.yaml": BASE_MODEL.replace("models/m.onnx", "/etc/passwd")})
    assert "relative" in only(r, "TAKT1012").message


def test_secret_reference_syntax(repo):
    r = repo({"sources.yaml": BASE_SOURCE.replace('"env:OPCUA"', "hunter2")})
    assert "TAKT1011" in codes(r)


from tests.conftest import BASE  # noqa: E402

BASE_SOURCE = BASE["sources.yaml"]
BASE_FLEET = BASE["fleet.yaml"]
BASE_MODEL = BASE["model.yaml"]


def test_a_misspelt_required_key_is_one_finding(repo):
    r = repo({"sources.yaml": BASE_SOURCE.replace("samplingInterval:", "samplingIntervall:")})
    assert codes(r) == ["TAKT1004"]
    assert r.diagnostics[0].hint == "did you mean 'samplingInterval'?"
    # an unrelated missing field is still reported
    r = repo(
        {
            "sources.yaml": BASE_SOURCE.replace("samplingInterval: 100ms", "samplingIntervall: 100ms").replace(
                "endpoint: opc.tcp://plc:4840", "clientId: plc"
            )
        }
    )
    assert sorted(codes(r)) == ["TAKT1003", "TAKT1004", "TAKT1004"]
    assert "'endpoint'" in only(r, "TAKT1003").message
