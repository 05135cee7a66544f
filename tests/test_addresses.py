"""Protocol address grammars, checked against the rules of each standard."""

from __future__ import annotations

import pytest

from compiler.spec.addresses import (
    json_path_problem,
    mqtt_topic_problem,
    opcua_node_id_problem,
    opcua_uses_namespace_index,
    sparkplug_topic_problem,
    url_problem,
)


@pytest.mark.parametrize(
    "node_id",
    [
        "i=85",
        "ns=0;i=2253",
        "ns=2;s=Line1.Press.Vibration",
        "ns=3;g=72962B91-FA75-4AE6-8D28-B404DC7DAF63",
        "ns=4;b=M/RbKBsRVkePCePcx24oRA==",
        "nsu=http://example.com/UA/;s=A;B;C",  # ';' inside a string identifier is legal
        "nsu=urn:plant:press;i=1001",
        "s=NoNamespace",  # valid, though namespace 0 has no string ids: TAKT2008 warns
        "ns=2;s=",  # an empty string identifier is the null node id only in namespace 0
    ],
)
def test_valid_opcua_node_ids(node_id: str):
    assert opcua_node_id_problem(node_id) is None


@pytest.mark.parametrize(
    ("node_id", "fragment"),
    [
        ("ns=2;x=1", "i=, s=, g= or b="),
        ("ns=70000;i=1", "0..65535"),
        ("ns=a;i=1", "0..65535"),
        ("ns=2", "missing ';'"),
        ("ns=2;i=abc", "numeric identifier"),
        ("ns=2;i=4294967296", "numeric identifier"),
        ("ns=2;g=not-a-guid", "GUID"),
        ("ns=2;b=***", "base64"),
        ("ns=2;i=", "numeric identifier"),
        ("nsu=;s=x", "empty namespace URI"),
        ("Line1.Press", "i=, s=, g= or b="),
    ],
)
def test_invalid_opcua_node_ids(node_id: str, fragment: str):
    problem = opcua_node_id_problem(node_id)
    assert problem is not None and fragment in problem


def test_namespace_index_detection():
    assert opcua_uses_namespace_index("ns=2;s=X")
    assert not opcua_uses_namespace_index("ns=0;i=85")  # namespace 0 is the standard one
    assert not opcua_uses_namespace_index("nsu=urn:x;s=X")


@pytest.mark.parametrize("topic", ["a/b/c", "plant/+/temp", "plant/#", "#", "+", "/leading/slash", "a//b"])
def test_valid_subscription_topics(topic: str):
    assert mqtt_topic_problem(topic, allow_wildcards=True) is None


@pytest.mark.parametrize(
    ("topic", "fragment"),
    [("a/#/b", "last level"), ("a/b#", "whole level"), ("a/te+mp", "whole level"), ("", "empty"), ("a\x00b", "NUL")],
)
def test_invalid_subscription_topics(topic: str, fragment: str):
    assert fragment in (mqtt_topic_problem(topic, allow_wildcards=True) or "")


@pytest.mark.parametrize(("topic", "fragment"), [("a/+/b", "not allowed"), ("a/#", "not allowed"), ("$SYS/x", "$")])
def test_publish_topics_refuse_wildcards_and_system_topics(topic: str, fragment: str):
    assert fragment in (mqtt_topic_problem(topic, allow_wildcards=False) or "")


def test_topic_length_limit_is_in_bytes():
    assert mqtt_topic_problem("ä" * 33000, allow_wildcards=False) == "topic longer than 65535 bytes"


@pytest.mark.parametrize("topic", ["spBv1.0/plant/DDATA/edge1/press3", "spBv1.0/plant/NDATA/edge1"])
def test_valid_sparkplug_topics(topic: str):
    assert sparkplug_topic_problem(topic) is None


@pytest.mark.parametrize(
    ("topic", "fragment"),
    [
        ("spAv1.0/g/DDATA/n/d", "start with"),
        ("spBv1.0/g/DATA/n/d", "message type"),
        ("spBv1.0/g/DDATA/n", "need a device id"),
        ("spBv1.0/g/NDATA/n/d", "no device id"),
        ("spBv1.0/g+/NDATA/n", "group id"),
        ("spBv1.0/g", "expected"),
    ],
)
def test_invalid_sparkplug_topics(topic: str, fragment: str):
    assert fragment in (sparkplug_topic_problem(topic) or "")


@pytest.mark.parametrize("path", ["$", "$.a", "$.a.b_c", "$.v[0]", "$['odd key']", '$["x"][2].y'])
def test_valid_json_paths(path: str):
    assert json_path_problem(path) is None


@pytest.mark.parametrize("path", ["a.b", "$..a", "$.a[*]", "$.a[?(@.x)]", "$.", "$[-1]"])
def test_invalid_json_paths(path: str):
    assert json_path_problem(path) is not None


def test_urls():
    assert url_problem("opc.tcp://plc:4840", ("opc.tcp",)) is None
    assert "scheme" in url_problem("http://plc:4840", ("opc.tcp",))
    assert "missing host" in url_problem("opc.tcp://:4840", ("opc.tcp",))
    assert "password" in url_problem("mqtt://u:secret@b:1883", ("mqtt",))
    assert "invalid URL" in url_problem("mqtt://b:99999", ("mqtt",))
