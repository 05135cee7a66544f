"""compiler/bundle/tree.py's path checks, each case on its own (`make mutation` found them unguarded): the
Windows-style absolute forms and the Path arguments that resolve_inside takes besides strings."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.bundle.tree import TreeError, resolve_inside


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "a").mkdir()
    for name in ("a/f", "x", "ab:c", ":x", "C:x"):
        (tmp_path / name).write_text("x")
    return tmp_path


@pytest.mark.parametrize("rel", ["\\evil", "\\", "C:", "C:x", "C:\\x", "x:"])
def test_threat_a_windows_absolute_path_is_refused(root: Path, rel: str) -> None:
    with pytest.raises(TreeError, match="is an absolute path"):
        resolve_inside(root, rel)


@pytest.mark.parametrize("rel", ["x", "ab:c", ":x", "a/f"])
def test_relative_names_with_a_colon_elsewhere_are_read(root: Path, rel: str) -> None:
    assert resolve_inside(root, rel) == root.resolve() / rel


def test_a_path_argument_inside_the_root_resolves_like_its_string(root: Path) -> None:
    assert resolve_inside(root, root / "a" / "f") == root.resolve() / "a/f"
    assert resolve_inside(root, Path("a/f")) == root.resolve() / "a/f"


def test_threat_an_absolute_path_argument_outside_the_root_is_refused(root: Path, tmp_path_factory) -> None:
    other = tmp_path_factory.mktemp("other")
    (other / "f").write_text("x")
    with pytest.raises(TreeError, match="is outside the project"):
        resolve_inside(root, other / "f")
    with pytest.raises(TreeError, match=r"leaves the project with '\.\.'"):
        resolve_inside(root, Path("a/../../f"))
