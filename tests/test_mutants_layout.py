"""The `deployments/<name>` links of a release: names, targets and their check, one assertion per rule.

The agent tests reach these through a real git daemon; these pin each rule directly, so that weakening one
(found by `make mutation`) fails a test in seconds.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.layout import DEPLOYMENTS, check_links, deployment_links, deployment_of, write_links
from compiler.bundle import BundleRef

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
