"""Sparkplug B topics judged by the Sparkplug 3.0 topic namespace (§4.1), on generated topics.

The oracle is the specification's three topic shapes written as one regular expression, independently
of compiler.spec.addresses.
"""

from __future__ import annotations

import random
import re
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.spec.addresses import sparkplug_topic_problem
from tests.conftest import only

_ID = r"[^/+#\x00-\x1f\x7f-\x9f\ud800-\udfff]+"
_SPEC = re.compile(
    rf"spBv1\.0/STATE/{_ID}"
    rf"|spBv1\.0/{_ID}/(?:NBIRTH|NDEATH|NDATA|NCMD)/{_ID}"
    rf"|spBv1\.0/{_ID}/(?:DBIRTH|DDEATH|DDATA|DCMD)/{_ID}/{_ID}"
)


def spec_valid(topic: str) -> bool:
    return _SPEC.fullmatch(topic) is not None


_TYPES = ["NBIRTH", "NDEATH", "NDATA", "NCMD", "DBIRTH", "DDEATH", "DDATA", "DCMD", "STATE", "DATA", "ndata", "BIRTH"]
_IDS = ["plant", "edge1", "press 3", "ä", "STATE", "", "+", "#", "a+b", "a#", "\x00", "\t", "\ud800", "x\x85"]


_GOOD_IDS = ["plant", "edge1", "press 3", "ä", "STATE", "NDATA"]


def _valid_levels(rng: random.Random) -> list[str]:
    shape = rng.randrange(3)
    if shape == 0:
        return ["spBv1.0", "STATE", rng.choice(_GOOD_IDS)]
    kind = rng.choice(_TYPES[:8])
    levels = ["spBv1.0", rng.choice(_GOOD_IDS), kind, rng.choice(_GOOD_IDS)]
    return [*levels, rng.choice(_GOOD_IDS)] if kind.startswith("D") else levels


def _mutate(rng: random.Random, levels: list[str]) -> list[str]:
    levels = list(levels)
    mutation = rng.randrange(5)
    at = rng.randrange(len(levels))
    if mutation == 0:
        levels[at] = rng.choice(_IDS + _TYPES + ["spAv1.0", "spbv1.0", ""])
    elif mutation == 1:
        levels.insert(at, rng.choice(_IDS + _TYPES))
    elif mutation == 2 and len(levels) > 1:
        del levels[at]
    elif mutation == 3:
        levels[at] = levels[at] + rng.choice(_IDS)
    else:
        levels[2:3] = rng.choice([["STATE"], ["STATE", rng.choice(_IDS)]])
    return levels


def generated_topics(seed: int = 2026, count: int = 4000) -> list[str]:
    """Valid topics of every shape, half of them mutated once (hostile characters, levels moved)."""
    rng = random.Random(seed)
    topics = []
    for _ in range(count):
        levels = _valid_levels(rng)
        topics.append("/".join(_mutate(rng, levels) if rng.random() < 0.6 else levels))
    return topics


def test_generated_topics_agree_with_the_specification():
    topics = generated_topics()
    disagreements = [t for t in topics if (sparkplug_topic_problem(t) is None) != spec_valid(t)]
    valid = sum(map(spec_valid, topics))
    assert 0.15 < valid / len(topics) < 0.85
    assert disagreements == [], f"{len(disagreements)}/{len(topics)} disagree, e.g. {disagreements[:5]!r}"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_TYPES + _IDS), st.text(max_size=6)), min_size=1, max_size=5))
def test_any_levels_get_the_specification_verdict(levels: list[str]):
    topic = "/".join(["spBv1.0", *levels])
    assert (sparkplug_topic_problem(topic) is None) == spec_valid(topic), topic


@pytest.mark.parametrize(
    ("topic", "fragment"),
    [
        ("spBv1.0/plant/STATE/edge1", "spBv1.0/STATE/<host id>"),
        ("spBv1.0/plant/STATE/edge1/press3", "spBv1.0/STATE/<host id>"),
        ("spBv1.0/STATE/host/extra", "message type 'host'"),
        ("spBv1.0/STATE/", "host id is empty"),
        ("spBv1.0/plant/NBIRTH/edge1/press3", "no device id"),
        ("spBv1.0/plant/DBIRTH/edge1", "need a device id"),
        ("spBv1.0/plant/DDATA/edge1/press3/x", "6 topic levels"),
        ("spBv1.0/plant/DDATA/edge\x00/press3", "control characters"),
        ("spBv1.0/plant/DDATA/edge1/\ud800", "control characters"),
        ("spBv1.0/pl#nt/NDATA/edge1", "'#'"),
        ("STATE/scada-1", "Sparkplug 2.x form"),
    ],
)
def test_invalid_topics_say_why(topic: str, fragment: str):
    problem = sparkplug_topic_problem(topic)
    assert problem is not None and fragment in problem, problem


@pytest.mark.parametrize("topic", ["spBv1.0/STATE/scada-1", "spBv1.0/STATE/NDATA/edge1", "spBv1.0/g/NCMD/e"])
def test_valid_topics(topic: str):
    assert sparkplug_topic_problem(topic) is None


MQ = """\
    apiVersion: takt/v1
    kind: DataSource
    metadata: {name: mq}
    spec:
      protocol: mqtt
      broker: mqtt://broker:1883
      sparkplug: true
      fields:
        - {name: a, dtype: float32, address: {topic: "TOPIC", metric: temp}}
    """


def test_group_level_state_topic_is_takt2011_at_the_topic(repo):
    text = MQ.replace("TOPIC", "spBv1.0/plant/STATE/edge1")
    d = only(repo({"mq.yaml": text}), "TAKT2011")
    line = textwrap.dedent(text).splitlines().index(next(x for x in textwrap.dedent(text).splitlines() if "topic" in x))
    column = textwrap.dedent(text).splitlines()[line].index('"spBv1.0') + 1
    assert (d.location.file, d.location.line, d.location.column) == ("mq.yaml", line + 1, column)
    assert d.path == "spec.fields[0].address.topic"


def test_host_state_topic_carries_no_metrics(repo):
    d = only(repo({"mq.yaml": MQ.replace("TOPIC", "spBv1.0/STATE/scada-1")}), "TAKT2011")
    assert d.path == "spec.fields[0].address.topic" and "online state, not metrics" in d.message
