"""compiler.bundle.tree: the one way both sides read files of a tree that may be hostile."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from compiler.bundle.tree import TreeError, read_inside, read_regular, resolve_inside, walk

OUTSIDE_TARGETS = ["/etc/hostname", "/proc/self/environ", "/dev/zero", "/dev/null", "/"]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "data").mkdir(parents=True)
    (root / "data" / "real.csv").write_text("a,b\n1,2\n")
    (tmp_path / "secret.txt").write_text("TAKT_KEY=private\n")
    return root


@pytest.mark.parametrize("target", OUTSIDE_TARGETS)
def test_a_link_leaving_the_tree_is_refused_whatever_it_points_at(tree: Path, target: str):
    (tree / "data" / "golden.npz").symlink_to(target)
    with pytest.raises(TreeError, match="leaves the project"):
        read_inside(tree, "data/golden.npz", 1 << 20)


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_relative_links_that_climb_out_are_refused(tree: Path, depth: int):
    nested = tree.joinpath(*["d"] * depth)
    nested.mkdir(parents=True, exist_ok=True)
    (nested / "x.csv").symlink_to("../" * (depth + 1) + "secret.txt")
    rel = "/".join(["d"] * depth + ["x.csv"])
    with pytest.raises(TreeError, match="leaves the project"):
        read_inside(tree, rel, 1 << 20)


def test_a_directory_link_out_of_the_tree_is_refused(tree: Path, tmp_path: Path):
    (tree / "models").symlink_to(tmp_path)
    with pytest.raises(TreeError, match="leaves the project"):
        read_inside(tree, "models/secret.txt", 1 << 20)


def test_a_link_that_stays_inside_is_followed(tree: Path):
    (tree / "alias.csv").symlink_to("data/real.csv")
    assert read_inside(tree, "alias.csv", 1 << 20) == b"a,b\n1,2\n"


@pytest.mark.parametrize("rel", ["../secret.txt", "data/../../secret.txt", "/etc/hostname", "data/\0x"])
def test_paths_that_are_not_plain_relative_paths_are_refused(tree: Path, rel: str):
    with pytest.raises(TreeError):
        resolve_inside(tree, rel)


def test_a_fifo_inside_the_tree_is_refused_without_blocking(tree: Path):
    os.mkfifo(tree / "data" / "pipe.csv")
    with pytest.raises(TreeError, match="FIFO"):
        read_inside(tree, "data/pipe.csv", 1 << 20)


def test_read_regular_refuses_a_final_link_and_devices(tree: Path):
    (tree / "link").symlink_to("data/real.csv")
    with pytest.raises(TreeError, match="symbolic link"):
        read_regular(tree / "link", 100)
    with pytest.raises(TreeError, match="character device"):
        read_regular(Path("/dev/zero"), 100)


@pytest.mark.parametrize("limit", [0, 7, 8])
def test_sizes_are_bounded_before_reading(tree: Path, limit: int):
    if limit >= 8:
        assert read_inside(tree, "data/real.csv", limit) == b"a,b\n1,2\n"
    else:
        with pytest.raises(TreeError, match="over the limit"):
            read_inside(tree, "data/real.csv", limit)


def test_walk_reports_links_and_never_follows_them(tree: Path, tmp_path: Path):
    (tree / "out").symlink_to(tmp_path)
    os.mkfifo(tree / "data" / "fifo")
    kinds = {e.rel: e.kind for e in walk(tree)}
    assert kinds == {"data": "dir", "data/fifo": "other", "data/real.csv": "file", "out": "link"}
