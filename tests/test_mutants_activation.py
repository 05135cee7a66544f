"""How a device activates a bundle (compiler/bundle/activation.py): the manifest field the agent trusts to decide
whether anything of a bundle runs on this machine. Each member, its wire value and the refusal are pinned."""

from __future__ import annotations

import pytest

from compiler.bundle import Activation, Manifest


def test_each_activation_has_its_wire_value_and_only_run_runs_here():
    assert [(a.value, a.runs_here) for a in Activation] == [("run", True), ("flash", False), ("cluster", False)]


@pytest.mark.parametrize("member", list(Activation))
def test_parse_returns_the_member_named(member: Activation):
    assert Activation.parse(member.value) is member


@pytest.mark.parametrize("value", ["RUN", "", None, 1, "run ", ["run"]])
def test_threat_anything_else_is_a_value_error(value: object):
    with pytest.raises(ValueError, match="unknown activation"):
        Activation.parse(value)


def test_threat_the_refusal_clips_the_value_at_40_characters():
    with pytest.raises(ValueError) as info:
        Activation.parse("f" * 41)
    assert str(info.value) == f"unknown activation {'f' * 40!r}"


@pytest.mark.parametrize("member", [Activation.FLASH, Activation.CLUSTER])
def test_a_manifest_carries_a_non_run_activation_and_run_is_left_out(member: Activation):
    m = Manifest("d/t", "embedded", (), activation=member)
    assert Manifest.parse(m.to_bytes()).activation is member
    assert b'"activation"' not in Manifest("d/t", "edge-pc", ()).to_bytes()
