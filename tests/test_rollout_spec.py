"""`rollout` in a Deployment: every wrong combination of strategy and sections at its own line."""

from __future__ import annotations

import textwrap

import pytest

from tests.conftest import BASE, codes, only

DEPLOY = textwrap.dedent(BASE["deploy.yaml"])  # 12 lines; a rollout appended starts at line 13


def _with(rollout: str) -> dict[str, str]:
    return {"deploy.yaml": DEPLOY + textwrap.indent(textwrap.dedent(rollout), "  ")}


@pytest.mark.parametrize(
    ("rollout", "code", "line", "message"),
    [
        ("rollout:\n  strategy: canary\n", "TAKT4041", 14, "strategy canary needs a canary section"),
        ("rollout:\n  strategy: shadow\n  then: all-at-once\n", "TAKT4041", 14, "strategy shadow needs a shadow"),
        (
            "rollout:\n  strategy: shadow\n  shadow: {percentage: 10, minAgreement: 0.9}\n",
            "TAKT4041",
            14,
            "strategy shadow needs `then: canary`",
        ),
        (
            "rollout:\n  strategy: shadow\n  shadow: {percentage: 10, minAgreement: 0.9}\n  then: canary\n",
            "TAKT4041",
            16,
            "then: canary needs a canary section",
        ),
        (
            "rollout:\n  strategy: all-at-once\n  canary: {percentage: 10}\n",
            "TAKT4040",
            15,
            "strategy all-at-once has no canary step",
        ),
        (
            "rollout:\n  strategy: shadow\n  shadow: {percentage: 5, minAgreement: 0.9}\n  then: all-at-once\n"
            "  canary: {percentage: 10}\n",
            "TAKT4040",
            17,
            "strategy shadow has no canary step",
        ),
        (
            "rollout:\n  strategy: canary\n  canary: {percentage: 10}\n  shadow: {percentage: 5, minAgreement: 0.9}\n",
            "TAKT4040",
            16,
            "strategy canary has no shadow step",
        ),
        (
            "rollout:\n  strategy: canary\n  canary: {percentage: 10}\n  then: canary\n",
            "TAKT4040",
            16,
            "only strategy shadow has a `then` step",
        ),
        (
            "rollout:\n  strategy: canary\n  canary: {percentage: 10, selector: {matchLabels: {line: a}}}\n",
            "TAKT4042",
            15,
            "a canary selects devices by exactly one of selector and percentage",
        ),
        (
            "rollout:\n  strategy: shadow\n  shadow: {minAgreement: 0.9}\n  then: all-at-once\n",
            "TAKT4042",
            15,
            "a shadow selects devices by exactly one of selector and percentage",
        ),
        (
            "rollout:\n  strategy: shadow\n  shadow: {selector: {matchLabels: {ring: none}}, minAgreement: 0.9}\n"
            "  then: all-at-once\n",
            "TAKT4043",
            15,
            "the shadow selector matches none of the deployment's devices",
        ),
    ],
)
def test_rollout_mistakes_are_located(repo, rollout: str, code: str, line: int, message: str):
    d = only(repo(_with(rollout)), code)
    assert (d.location.file, d.location.line) == ("deploy.yaml", line)
    assert d.message.startswith(message)


def test_a_complete_shadow_then_canary_rollout_is_valid(repo):
    r = repo(
        _with(
            """\
            rollout:
              strategy: shadow
              shadow: {selector: {matchLabels: {line: a}}, minAgreement: 0.98, window: 1h, tolerance: 0.05}
              then: canary
              canary: {percentage: 10, healthGate: {window: 30m, maxErrorRate: 0.01}}
            """
        )
    )
    assert [c for c in codes(r) if c.startswith("TAKT40")] == []


@pytest.mark.parametrize(
    "field", ["minAgreement: 1.5", "minAgreement: 0.9, tolerance: -1", "minAgreement: 0.9, window: soon"]
)
def test_shadow_values_are_checked_at_their_field(repo, field: str):
    rollout = f"rollout:\n  strategy: shadow\n  shadow: {{percentage: 5, {field}}}\n  then: all-at-once\n"
    r = repo(_with(rollout))
    assert [(d.code[:5], d.location.line) for d in r.diagnostics] == [("TAKT1", 15)], codes(r)
