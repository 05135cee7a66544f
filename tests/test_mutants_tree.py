"""compiler/bundle/tree.py's path checks, each case on its own (`make mutation` found them unguarded): the
Windows-style absolute forms and the Path arguments that resolve_inside takes besides strings."""

from __future__ import annotations

import os
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


_CTTY = """
import os
import os
from pathlib import Path
from compiler.bundle.tree import TreeError, open_regular
master, slave = os.openpty()
name = os.ttyname(slave)
os.close(slave)
try:
    open_regular(Path(name))
except TreeError as exc:
    print(exc.reason)
try:
    os.close(os.open("/dev/tty", os.O_RDWR))
    print("a controlling terminal")
except OSError:
    print("no controlling terminal")
"""


def test_threat_a_tree_that_names_a_terminal_never_gives_the_reader_a_controlling_terminal() -> None:
    """O_NOCTTY: a session leader without a terminal that opens one would own it (and its hang-ups and
    signals). A new session opens a pty's slave through open_regular: refused, and still no terminal."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _CTTY], start_new_session=True, capture_output=True, text=True,
                         timeout=60, check=True).stdout.splitlines()
    assert out == ["is not a regular file (a character device)", "no controlling terminal"]


def test_a_refusal_names_the_path_as_the_caller_shows_it(tmp_path: Path) -> None:
    from compiler.bundle.tree import open_regular

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(TreeError) as shown:
        open_regular(fifo, "bundle/fifo")
    assert (shown.value.path, shown.value.reason) == ("bundle/fifo", "is not a regular file (a FIFO)")
    with pytest.raises(TreeError) as plain:
        open_regular(fifo)
    assert plain.value.path == str(fifo)
