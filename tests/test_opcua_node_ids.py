"""OPC UA node ids judged by the specification's grammar (Part 6 §5.1.12, Part 3 §8.2.4).

Generated ids, hostile ones included, must get the verdict of the oracle in tests/opcua_spec.py.
"""

from __future__ import annotations

import base64
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.spec.addresses import opcua_misses_namespace, opcua_node_id_problem, parse_opcua_node_id
from tests.conftest import BASE, only
from tests.opcua_spec import generated_node_ids, spec_valid


def test_generated_node_ids_agree_with_the_specification():
    ids = generated_node_ids()
    disagreements = [n for n in ids if (opcua_node_id_problem(n) is None) != spec_valid(n)]
    valid = sum(spec_valid(n) for n in ids)
    assert 0.15 < valid / len(ids) < 0.85  # the generator exercises both verdicts
    assert disagreements == [], f"{len(disagreements)}/{len(ids)} disagree, e.g. {disagreements[:5]!r}"


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["", "ns=2;", "ns=0;", "nsu=urn:x;", "nsu=http://opcfoundation.org/UA/;"]),
    st.sampled_from("isgb"),
    st.text(max_size=40),
)
def test_any_identifier_text_gets_the_specification_verdict(prefix: str, kind: str, ident: str):
    node_id = f"{prefix}{kind}={ident}"
    problem = opcua_node_id_problem(node_id)
    assert (problem is None) == spec_valid(node_id), (node_id, problem)
    assert problem is None or ("int()" not in problem and "codec" not in problem)


@pytest.mark.parametrize(
    ("node_id", "fragment"),
    [
        ("nsu=urn:a%G1;s=x", "two hex digits"),
        ("nsu=urn:a%4;s=x", "two hex digits"),
        ("nsu=urn:a\x00b;s=x", "control character"),
        ("ns=2;s=a\x00b", "control character"),
        ("ns=2;s=a\tb", "control character"),
        ("ns=2;s=a\x85b", "control character"),
        ("ns=2;s=\ud800", "lone surrogate"),
        ("ns=2;g={72962B91-FA75-4AE6-8D28-B404DC7DAF63}", "without braces"),
        ("ns=2;g={72962B91-FA75-4AE6-8D28-B404DC7DAF63", "without braces"),
        ("i=²", "digits 0-9"),
        ("ns=٣;i=1", "digits 0-9"),
        ("ns=2;b=QQ==QQ==", "base64"),
        ("ns=2;b=QQ===", "base64"),
        ("ns=2;b=QR==", "padding bits"),
        ("ns=2;b=" + base64.b64encode(b"x" * 4097).decode(), "4097 bytes"),
        ("ns=2;s=" + "x" * 4097, "4097 characters"),
        ("ns=65536;i=1", "0..65535"),
        ("ns=2;i=4294967296", "0..4294967295"),
        ("nsu=urn:a b;s=x", "percent-encode"),
        ("nsu=plain;s=x", "scheme"),
    ],
)
def test_invalid_classes_are_refused_in_the_users_terms(node_id: str, fragment: str):
    problem = opcua_node_id_problem(node_id)
    assert problem is not None and fragment in problem, problem


@pytest.mark.parametrize("node_id", ["ns=2;s=", "ns=2;b=", "nsu=urn:x;s=", "ns=2;i=0", "nsu=urn:a%3Bb;s=x"])
def test_empty_identifiers_outside_namespace_0_are_valid_and_not_null(node_id: str):
    parsed, problem = parse_opcua_node_id(node_id)
    assert problem is None and parsed is not None and not parsed.is_null


@pytest.mark.parametrize(
    "node_id",
    ["i=0", "ns=0;i=0", "s=", "b=", "g=00000000-0000-0000-0000-000000000000", "nsu=http://opcfoundation.org/UA/;i=0"],
)
def test_null_node_ids(node_id: str):
    parsed, problem = parse_opcua_node_id(node_id)
    assert problem is None and parsed is not None and parsed.is_null


def test_missing_namespace_is_only_for_non_numeric_ids_in_namespace_0():
    assert opcua_misses_namespace("s=M43.Speed")
    assert opcua_misses_namespace("ns=0;s=M43.Speed")
    assert opcua_misses_namespace("g=72962B91-FA75-4AE6-8D28-B404DC7DAF63")
    assert not opcua_misses_namespace("i=2258")  # Server_ServerStatus_CurrentTime: a real standard node
    assert not opcua_misses_namespace("nsu=urn:x;s=M43.Speed")
    assert not opcua_misses_namespace("ns=3;s=M43.Speed")


# --- located diagnostics -----------------------------------------------------------------------------

SRC = BASE["sources.yaml"]
DEPLOY = BASE["deploy.yaml"]
OPCUA_OUT = "{type: opcua, from: y, connection: plc, nodeId: NODE}"


def position(text: str, needle: str) -> tuple[int, int]:
    """1-based line and column of `needle` in the file as written (dedented)."""
    before = textwrap.dedent(text).split(needle)[0]
    return before.count("\n") + 1, len(before.rpartition("\n")[2]) + 1


def _with_output(node_id: str) -> str:
    mqtt_output = '{type: mqtt, from: y, broker: "mqtt://b:1883", topic: out/y}'
    return DEPLOY.replace(mqtt_output, OPCUA_OUT.replace("NODE", node_id))


def test_null_node_id_is_takt2007_at_the_node_id(repo):
    src = SRC.replace('"nsu=urn:x;s=T"', '"i=0"')
    d = only(repo({"sources.yaml": src}), "TAKT2007")
    assert (d.location.file, d.location.line, d.location.column) == ("sources.yaml", *position(src, '"i=0"'))
    assert d.path == "spec.fields[0].address.nodeId"
    assert "null node id" in d.message


def test_null_node_id_in_an_output(repo):
    dep = _with_output('"g=00000000-0000-0000-0000-000000000000"')
    d = only(repo({"deploy.yaml": dep}), "TAKT2007")
    assert d.path == "spec.outputs[0].nodeId"
    assert (d.location.line, d.location.column) == position(dep, '"g=0000')


def test_node_id_without_namespace_is_takt2008(repo):
    src = SRC.replace('"nsu=urn:x;s=T"', '"s=M43.Speed"')
    d = only(repo({"sources.yaml": src}), "TAKT2008")
    assert (d.location.file, d.location.line, d.location.column) == ("sources.yaml", *position(src, '"s=M43.Speed"'))
    assert d.severity.label == "warning" and d.hint == "write nsu=<namespace URI>;s=M43.Speed"
    assert "has no namespace" in d.message


def test_string_id_in_the_written_opc_ua_namespace_is_takt2008(repo):
    src = SRC.replace('"nsu=urn:x;s=T"', '"nsu=http://opcfoundation.org/UA/;s=T"')
    d = only(repo({"sources.yaml": src}), "TAKT2008")
    assert "is in namespace 0" in d.message and d.hint == "write nsu=<namespace URI>;s=T"
    assert d.path == "spec.fields[0].address.nodeId"


def test_output_node_ids_get_the_namespace_lints(repo):
    dep = _with_output('"ns=3;s=Out"')
    d = only(repo({"deploy.yaml": dep}), "TAKT2002")
    assert (d.location.file, d.location.line, d.location.column) == ("deploy.yaml", *position(dep, '"ns=3;s=Out"'))
    assert d.path == "spec.outputs[0].nodeId"
    d = only(repo({"deploy.yaml": _with_output('"s=Out"')}), "TAKT2008")
    assert d.path == "spec.outputs[0].nodeId"


def test_python_internals_never_reach_the_user(repo):
    d = only(repo({"sources.yaml": SRC.replace('"nsu=urn:x;s=T"', '"i=²"')}), "TAKT2001")
    assert "int()" not in d.message and "digits 0-9" in d.message
