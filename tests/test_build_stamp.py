"""The tree stamp that lets a build trust an unchanged bundle directory without reading it."""

from __future__ import annotations

import os
from pathlib import Path

from compiler.build_cache import BuildCache, CacheEntry, tree_stamp


def _tree(root: Path) -> Path:
    (root / "health").mkdir(parents=True)
    (root / "runner.json").write_text("{}\n")
    (root / "health" / "s.npz").write_bytes(b"\0" * 10)
    return root


def test_the_stamp_is_stable_while_nothing_changes_and_moves_with_any_change(tmp_path: Path):
    tree = _tree(tmp_path / "b")
    first = tree_stamp(tree)
    assert first is not None and tree_stamp(tree) == first
    st = (tree / "runner.json").stat()
    (tree / "runner.json").write_text("[]\n")  # same size, mtime put back: ctime still moves
    os.utime(tree / "runner.json", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert tree_stamp(tree) != first
    second = tree_stamp(tree)
    (tree / "health" / "extra").write_text("")
    assert tree_stamp(tree) != second


def test_threat_links_and_special_files_are_never_stamped(tmp_path: Path):
    tree = _tree(tmp_path / "b")
    (tree / "link").symlink_to(tree / "runner.json")
    assert tree_stamp(tree) is None
    os.unlink(tree / "link")
    os.mkfifo(tree / "fifo")
    assert tree_stamp(tree) is None
    (tmp_path / "dirlink").symlink_to(tree, target_is_directory=True)
    os.unlink(tree / "fifo")
    assert tree_stamp(tmp_path / "dirlink") is None and tree_stamp(tmp_path / "missing") is None


def test_threat_a_stamp_is_sealed_with_its_entry(tmp_path: Path):
    path = tmp_path / "cache.json"
    cache = BuildCache(path, b"s" * 32)
    cache.save({"a" * 64: CacheEntry("b" * 64, "c" * 64)})
    assert BuildCache.load(path, b"s" * 32).entry("a" * 64) == CacheEntry("b" * 64, "c" * 64)
    path.write_text(path.read_text().replace("c" * 64, "d" * 64))  # another stamp: the seal no longer holds
    assert BuildCache.load(path, b"s" * 32).entries == {}
