"""The readiness body (`GET /v2/health/ready`) at its exact rules: what the agent's gate believes of a runner.

The agent parses this body from a socket, so each rule of compiler/bundle/readiness.py is pinned here at its
edge (sizes, depth, types, the text clip), without starting a runner: the runner tests that cover it start
servers, which made every `make mutation` mutant cost a minute.
"""

from __future__ import annotations

import json

import pytest

from compiler.bundle import readiness as rd
from compiler.bundle.readiness import Readiness, SourceReadiness


def body(doc: object) -> bytes:
    return json.dumps(doc).encode()


def test_the_paths_limits_and_metric_names_are_the_contract():
    assert (rd.LIVE_PATH, rd.READY_PATH, rd.METRICS_PATH) == ("/v2/health/live", "/v2/health/ready", "/metrics")
    assert (rd.MAX_READY_BYTES, rd.MAX_METRICS_BYTES) == (64 * 1024, 4 * 1024 * 1024)
    assert (rd.FRAMES, rd.INFERENCES, rd.INFERENCE_ERRORS, rd.SKIPPED_FRAMES, rd.INFERENCE_SECONDS,
            rd.SOURCE_CONNECTED, rd.DRIFT_PSI) == (
        "takt_runner_frames_total", "takt_runner_inferences_total", "takt_runner_inference_errors_total",
        "takt_runner_skipped_frames_total", "takt_runner_inference_seconds", "takt_runner_source_connected",
        "takt_runner_drift_psi")
    assert (rd.SHADOW_FRAMES, rd.SHADOW_AGREEMENT, rd.SHADOW_ABS_DIFF_MEAN, rd.SHADOW_ABS_DIFF_P99,
            rd.SHADOW_ERROR_RATE, rd.SHADOW_INFERENCE_P99_MS) == (
        "takt_runner_shadow_frames", "takt_runner_shadow_agreement", "takt_runner_shadow_abs_diff_mean",
        "takt_runner_shadow_abs_diff_p99", "takt_runner_shadow_error_rate", "takt_runner_shadow_inference_p99_ms")


def test_a_body_round_trips_through_to_json_and_parse():
    state = Readiness(False, (SourceReadiness("plc", True, False, "node id ns=2;s=X: BadNodeIdUnknown"),
                              SourceReadiness("mqtt", False, True)))
    doc = state.to_json()
    assert doc == {"ready": False, "sources": [
        {"name": "plc", "connected": True, "fresh": False, "refused": "node id ns=2;s=X: BadNodeIdUnknown"},
        {"name": "mqtt", "connected": False, "fresh": True, "refused": None}]}
    assert Readiness.parse(body(doc)) == state
    assert Readiness.parse(b'{"ready": true}') == Readiness(True, ())


def test_only_a_literal_true_is_connected_or_fresh():
    got = Readiness.parse(body({"ready": True, "sources": [
        {"name": "a", "connected": 1, "fresh": "yes"},
        {"name": "b"},
        {"name": "c", "connected": True, "fresh": True, "refused": 7}]}))
    assert got.sources == (SourceReadiness("a", False, False), SourceReadiness("b", False, False),
                           SourceReadiness("c", True, True, None))


@pytest.mark.parametrize(("doc", "words"), [
    ([], "not an object with a boolean ready"),
    ({"ready": 1}, "not an object with a boolean ready"),
    ({}, "not an object with a boolean ready"),
    ({"ready": True, "sources": {}}, "sources is not a list"),
    ({"ready": True, "sources": ["plc"]}, "a readiness source has no name"),
    ({"ready": True, "sources": [{"name": 3}]}, "a readiness source has no name"),
    ({"ready": True, "sources": [{"connected": True}]}, "a readiness source has no name"),
])
def test_threat_a_malformed_body_is_a_value_error_naming_the_rule(doc: object, words: str):
    with pytest.raises(ValueError, match=words):
        Readiness.parse(body(doc))


def test_threat_the_body_is_bounded_at_exactly_64_kib():
    head = b'{"ready": true, "pad": "'
    exact = head + b"x" * (rd.MAX_READY_BYTES - len(head) - 2) + b'"}'
    assert len(exact) == 64 * 1024
    assert Readiness.parse(exact) == Readiness(True, ())
    with pytest.raises(ValueError, match="over the limit"):
        Readiness.parse(exact[:-2] + b'x"}')


def test_threat_the_body_nests_at_most_four_levels():
    def nested(levels: int) -> bytes:  # the document, sources, a source, then lists down to `levels`
        inner: object = 1
        for _ in range(levels - 3):
            inner = [inner]
        return body({"ready": True, "sources": [{"name": "a", "x": inner}]})

    assert Readiness.parse(nested(4)).sources == (SourceReadiness("a", False, False),)
    with pytest.raises(ValueError, match="nests more than 4 levels deep"):
        Readiness.parse(nested(5))


def test_threat_names_and_refusals_are_clipped_at_300_characters():
    exact, over = "n" * 300, "r" * 301
    got = Readiness.parse(body({"ready": False, "sources": [{"name": exact, "refused": over}]}))
    assert got.sources[0].name == exact
    assert got.sources[0].refused == "r" * 300 + "…"
    assert Readiness(True, (SourceReadiness(over, True, True, exact),)).to_json()["sources"][0]["refused"] == exact
    assert Readiness.parse(body({"ready": True, "sources": [{"name": ""}]})).sources[0].name == ""


def test_a_readiness_cannot_change_once_parsed():
    from dataclasses import FrozenInstanceError

    state = Readiness.parse(b'{"ready": true, "sources": [{"name": "a"}]}')
    with pytest.raises(FrozenInstanceError):
        state.ready = False  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        state.sources[0].connected = True  # type: ignore[misc]
