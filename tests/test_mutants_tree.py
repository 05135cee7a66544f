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


def test_a_link_or_a_file_used_as_a_directory_is_refused_as_a_link_and_a_read_fd_blocks(tmp_path: Path) -> None:
    from compiler.bundle.tree import open_regular

    (tmp_path / "f").write_text("x")
    (tmp_path / "l").symlink_to("f")
    for path in (tmp_path / "l", tmp_path / "f" / "x"):  # ELOOP, ENOTDIR
        with pytest.raises(TreeError) as err:
            open_regular(path)
        assert err.value.reason == "is a symbolic link, not a regular file"
    fd = open_regular(tmp_path / "f")
    try:
        assert os.get_blocking(fd)  # opened O_NONBLOCK (never hang on a FIFO), then blocking for the read
    finally:
        os.close(fd)


def test_first_link_reports_the_first_link_below_top_only(tmp_path: Path) -> None:
    from compiler.bundle.tree import first_link

    (tmp_path / "real" / "d").mkdir(parents=True)
    (tmp_path / "real" / "d" / "f").write_text("x")
    (tmp_path / "top").mkdir()
    (tmp_path / "top" / "via").symlink_to(tmp_path / "real")
    assert first_link(tmp_path / "top" / "via" / "d" / "f") == tmp_path / "top" / "via"
    assert first_link(tmp_path / "top" / "via" / "d" / "f", tmp_path / "top") == tmp_path / "top" / "via"
    assert first_link(tmp_path / "real" / "d" / "f", tmp_path / "real") is None
    assert first_link(tmp_path / "top" / "via", tmp_path / "top" / "via") is None  # top itself is not below top


def test_regular_inside_refuses_a_directory_and_entries_are_frozen(tmp_path: Path) -> None:
    import dataclasses

    from compiler.bundle.tree import Entry, regular_inside, walk

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("x")
    with pytest.raises(TreeError, match=r"is not a regular file \(a directory\)"):
        regular_inside(tmp_path, "d")
    assert regular_inside(tmp_path, "d/f") == tmp_path.resolve() / "d/f"
    entries = list(walk(tmp_path))
    assert entries == [Entry("d", "dir"), Entry("d/f", "file")]
    with pytest.raises(dataclasses.FrozenInstanceError):
        entries[0].kind = "file"  # type: ignore[misc]
    assert len(set(entries)) == 2


def test_walk_of_a_file_is_empty_and_read_regular_names_the_shown_path(tmp_path: Path) -> None:
    from compiler.bundle.tree import TooLarge, read_regular, walk

    (tmp_path / "f").write_text("xy")
    assert list(walk(tmp_path / "f")) == []
    with pytest.raises(TooLarge) as shown:
        read_regular(tmp_path / "f", 1, "bundle/f")
    assert shown.value.path == "bundle/f"
    with pytest.raises(TooLarge) as plain:
        read_regular(tmp_path / "f", 1)
    assert plain.value.path == str(tmp_path / "f")


def test_walk_skips_only_the_named_entries(tmp_path: Path) -> None:
    from compiler.bundle.tree import Entry, walk

    for name in ("a", "b", "c"):
        (tmp_path / name).write_text("x")
    assert list(walk(tmp_path, frozenset({"a"}))) == [Entry("b", "file"), Entry("c", "file")]


def test_a_file_that_grew_while_it_was_read_is_refused(tmp_path: Path, monkeypatch) -> None:
    """fstat said 0 bytes (the file grew after it): the read itself must notice it is past the limit."""
    from compiler.bundle.tree import TooLarge, read_regular

    (tmp_path / "f").write_bytes(b"xyz")
    real = os.fstat

    def stale(fd: int) -> os.stat_result:
        st = real(fd)
        return os.stat_result((st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid, st.st_gid, 0,
                               st.st_atime, st.st_mtime, st.st_ctime))

    monkeypatch.setattr(os, "fstat", stale)
    with pytest.raises(TooLarge, match="grew past the limit of 2 bytes while it was read"):
        read_regular(tmp_path / "f", 2)
    assert read_regular(tmp_path / "f", 3) == b"xyz"
