"""A target class's profile is the class's typed model with defaults, used by validate and render."""

from __future__ import annotations

import pytest

from compiler.render.plugins import target_classes
from compiler.render.profile import OpenProfile, ProfileError
from targets.edge_pc.profile import EdgePcProfile
from targets.embedded.profile import EmbeddedProfile
from targets.it_server.profile import ItServerProfile


def test_each_builtin_class_declares_its_typed_profile():
    classes = target_classes()
    assert classes["edge-pc"].plugin.profile is EdgePcProfile
    assert classes["embedded"].plugin.profile is EmbeddedProfile
    assert classes["it-server"].plugin.profile is ItServerProfile


def test_defaults_come_from_the_model_and_a_target_overrides_fields():
    tc = target_classes()["edge-pc"]
    default = tc.profile(None)
    assert isinstance(default, EdgePcProfile)
    assert (default.http_port, default.unit.user, default.health.timeout_seconds) == (8080, "takt", 30)
    mine = tc.profile({"httpPort": 9000, "unit": {"nice": 5}})
    assert (mine.http_port, mine.unit.nice, mine.unit.user) == (9000, 5, "takt")  # nested defaults kept


@pytest.mark.parametrize(
    ("overrides", "where"),
    [
        ({"httpPort": "8080"}, "profile.httpPort"),  # a string where a port number belongs
        ({"unit": {"nice": True}}, "profile.unit.nice"),
        ({"httpPrt": 1}, "profile.httpPrt"),  # unknown keys are refused like in specs
    ],
)
def test_a_profile_that_does_not_fit_is_a_profile_error_naming_the_field(overrides, where):
    with pytest.raises(ProfileError, match=where.replace(".", r"\.")):
        target_classes()["edge-pc"].profile(overrides)


def test_validate_locates_a_profile_mistake(repo):
    from tests.conftest import BASE

    fleet = str(BASE["fleet.yaml"]).replace("class: edge-pc", "class: edge-pc\n          profile: {httpPrt: 9000}")
    r = repo({"fleet.yaml": fleet})
    found = [d for d in r.diagnostics if d.code == "TAKT4035"]
    assert len(found) == 1 and "profile.httpPrt" in found[0].message
    assert found[0].hint == "did you mean 'httpPort'?"


def test_a_class_without_a_model_gets_an_open_profile():
    profile = OpenProfile.model_validate({"powerMode": "MAXN"})
    assert profile.get("powerMode") == "MAXN" and profile.get("absent", 1) == 1
