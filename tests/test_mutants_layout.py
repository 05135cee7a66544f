"""The `deployments/<name>` links of a release: names, targets and their check, one assertion per rule.

The agent tests reach these through a real git daemon; these pin each rule directly, so that weakening one
(found by `make mutation`) fails a test in seconds.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.layout import DEPLOYMENTS, SHADOW, check_links, deployment_links, deployment_of, write_links
from compiler.bundle import BundleRef, ShadowOf
from compiler.bundle.runner import DEFAULT_SHADOW_WINDOW, ShadowEntry

A, B = "a" * 64, "b" * 64


@pytest.mark.parametrize("name", ["press/ipc-1", "p.1_x-Y/t", "x" * 128 + "/t", "a/b/c"])
def test_deployment_of_a_plain_segment(name: str):
    assert deployment_of(name) == name.split("/", 1)[0]


@pytest.mark.parametrize("name", ["press", "press/", "/ipc", "../ipc", ".hidden/t", "-x/t", "x" * 129 + "/t", ""])
def test_threat_deployment_of_anything_else_is_refused(name: str):
    with pytest.raises(ValueError, match="is not <deployment>/<target>"):
        deployment_of(name)


def test_a_refused_name_is_quoted_to_80_characters():
    name = "é" * 300
    with pytest.raises(ValueError) as exc:
        deployment_of(name)
    assert repr("é" * 80) in str(exc.value)
    assert repr("é" * 81) not in str(exc.value)


def test_links_point_into_bundles_and_one_deployment_has_one_bundle():
    assert deployment_links([BundleRef("d1/t", A), BundleRef("d2/t", B)]) == {
        DEPLOYMENTS: {"d1": f"../bundles/{A}", "d2": f"../bundles/{B}"}  # no shadow/ without a challenger
    }
    with pytest.raises(ValueError, match="two bundles for deployment 'd1'"):
        deployment_links([BundleRef("d1/t", A), BundleRef("d1/u", B)])


@pytest.fixture
def release(tmp_path: Path) -> Path:
    write_links(tmp_path, [BundleRef("d1/t", A), BundleRef("d2/t", B)])
    return tmp_path


BUNDLES = [BundleRef("d1/t", A), BundleRef("d2/t", B)]


def test_written_links_check_clean(release: Path):
    assert sorted(os.listdir(release / DEPLOYMENTS)) == ["d1", "d2"]
    assert os.readlink(release / DEPLOYMENTS / "d1") == f"../bundles/{A}"
    assert check_links(release, BUNDLES) == []


def test_threat_every_wrong_entry_is_named(release: Path):
    top = release / DEPLOYMENTS
    (top / "d2").unlink()
    (top / "d2").mkdir()  # a directory where a link belongs
    os.symlink("x" * 300, top / "zz")  # an extra link
    (top / "d1").unlink()
    os.symlink(f"../bundles/{B}", top / "d1")  # pointing at another bundle
    assert check_links(release, [*BUNDLES, BundleRef("d3/t", A)]) == [
        f"{DEPLOYMENTS}/d1: points at {f'../bundles/{B}'!r}, expected {f'../bundles/{A}'!r}",
        f"{DEPLOYMENTS}/d2: not a symbolic link",
        f"{DEPLOYMENTS}/zz: unexpected entry",
        f"{DEPLOYMENTS}/d3: missing",
    ]


def test_a_link_target_is_quoted_to_200_characters(release: Path):
    top = release / DEPLOYMENTS
    (top / "d1").unlink()
    os.symlink("y" * 300, top / "d1")
    (problem,) = check_links(release, BUNDLES)
    assert repr("y" * 200) in problem and repr("y" * 201) not in problem


def test_threat_deployments_as_a_link_or_missing_is_refused(release: Path, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    os.rename(release / DEPLOYMENTS, elsewhere / DEPLOYMENTS)
    assert check_links(release, BUNDLES) == [f"{DEPLOYMENTS}/ is missing or not a directory"]
    os.symlink(elsewhere / DEPLOYMENTS, release / DEPLOYMENTS)  # the same links, behind a link
    assert check_links(release, BUNDLES) == [f"{DEPLOYMENTS}/ is missing or not a directory"]


def test_bad_bundle_names_are_a_problem_not_an_exception(release: Path):
    (problem,) = check_links(release, [BundleRef("nodeployment", A)])
    assert "is not <deployment>/<target>" in problem


# Shadow challengers: `shadow/<deployment>` links and the runner's `shadow/<deployment>.json` entries.
C, D = "c" * 64, "d" * 64
WITH_CHALLENGERS = [
    *BUNDLES,
    BundleRef("d1/t2", C, ShadowOf(tolerance=0.5)),  # a state written before the window was carried
    BundleRef("d2/t2", D, ShadowOf(tolerance=0.0, window=120.0)),
]


@pytest.fixture
def shadowed(tmp_path: Path) -> Path:
    write_links(tmp_path, WITH_CHALLENGERS)
    return tmp_path


def test_challengers_get_a_link_and_an_entry_each_and_check_clean(shadowed: Path):
    assert sorted(os.listdir(shadowed / SHADOW)) == ["d1", "d1.json", "d2", "d2.json"]
    assert os.readlink(shadowed / SHADOW / "d2") == f"../bundles/{D}"
    one = ShadowEntry.parse((shadowed / SHADOW / "d1.json").read_bytes())
    two = ShadowEntry.parse((shadowed / SHADOW / "d2.json").read_bytes())
    assert (one.deployment, one.challenger, one.config, one.tolerance) == ("d1", C, "d1/runner.json", 0.5)
    assert one.window == DEFAULT_SHADOW_WINDOW  # no window in the signed state: the runner's default
    assert (two.challenger, two.window) == (D, 120.0)  # the signed window wins over the default
    assert check_links(shadowed, WITH_CHALLENGERS) == []


def test_a_challenger_needs_a_current_bundle_and_the_first_orphan_is_named():
    orphans = [BundleRef("zz/t", C, ShadowOf()), BundleRef("mm/t", D, ShadowOf()), BundleRef("aa/t", A, ShadowOf())]
    with pytest.raises(ValueError, match=r"^a shadow challenger for 'aa' needs a current bundle"):
        deployment_links(orphans)


def test_threat_a_shadow_directory_without_challengers_is_unexpected(release: Path):
    (release / SHADOW).mkdir()
    assert check_links(release, BUNDLES) == [f"{SHADOW}: unexpected entry"]


def test_threat_both_directories_missing_are_both_named(shadowed: Path, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    os.rename(shadowed / DEPLOYMENTS, elsewhere / DEPLOYMENTS)
    os.rename(shadowed / SHADOW, elsewhere / SHADOW)
    assert check_links(shadowed, WITH_CHALLENGERS) == [
        f"{DEPLOYMENTS}/ is missing or not a directory",
        f"{SHADOW}/ is missing or not a directory",
    ]


def test_threat_an_entry_copied_into_deployments_is_unexpected(shadowed: Path):
    (shadowed / DEPLOYMENTS / "d1.json").write_bytes((shadowed / SHADOW / "d1.json").read_bytes())
    assert check_links(shadowed, WITH_CHALLENGERS) == [f"{DEPLOYMENTS}/d1.json: unexpected entry"]


def test_threat_a_missing_entry_is_named(shadowed: Path):
    (shadowed / SHADOW / "d1.json").unlink()
    assert check_links(shadowed, WITH_CHALLENGERS) == [f"{SHADOW}/d1.json: missing"]


def test_threat_an_entry_with_one_byte_more_differs(shadowed: Path):
    with (shadowed / SHADOW / "d2.json").open("ab") as fh:
        fh.write(b" ")
    assert check_links(shadowed, WITH_CHALLENGERS) == [f"{SHADOW}/d2.json: differs from the signed state"]


def test_threat_an_entry_that_is_a_link_or_a_directory_is_not_a_regular_file(shadowed: Path, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "d1.json"
    os.rename(shadowed / SHADOW / "d1.json", elsewhere)
    os.symlink(elsewhere, shadowed / SHADOW / "d1.json")  # the exact bytes, behind a link
    (shadowed / SHADOW / "d2.json").unlink()
    (shadowed / SHADOW / "d2.json").mkdir()
    assert check_links(shadowed, WITH_CHALLENGERS) == [
        f"{SHADOW}/d1.json: not a regular file",
        f"{SHADOW}/d2.json: not a regular file",
    ]
