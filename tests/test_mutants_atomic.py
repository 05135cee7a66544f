"""write_atomic and fsync_dir at the strength the README states: whole bytes or the old ones, durable, no debris.

Written against the mutants of `make mutation` (mutation/run.py) that the bundle tests let through.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from compiler.bundle.atomic import fsync_dir, write_atomic


def test_writes_the_bytes_into_new_parent_directories_and_replaces_an_old_file(tmp_path: Path):
    path = tmp_path / "a" / "b" / "f.bin"
    write_atomic(path, b"first")
    assert path.read_bytes() == b"first"
    write_atomic(path, b"second")  # the parent exists now
    assert path.read_bytes() == b"second"
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.bin"]


def test_a_failed_replace_keeps_the_old_bytes_and_leaves_no_temporary_file(tmp_path: Path, monkeypatch):
    path = tmp_path / "f"
    write_atomic(path, b"old")

    def fail(src: str, dst: str) -> None:
        raise KeyboardInterrupt  # not an Exception: a kill between write and rename must clean up too

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_the_file_and_then_its_directory_are_fsynced(tmp_path: Path, monkeypatch):
    synced: list[tuple[bool, bytes | None]] = []
    real = os.fsync

    def record(fd: int) -> None:
        is_dir = os.path.isdir(f"/proc/self/fd/{fd}")
        synced.append((is_dir, None if is_dir else os.pread(fd, 100, 0)))
        real(fd)

    monkeypatch.setattr(os, "fsync", record)
    write_atomic(tmp_path / "f", b"payload")
    assert synced == [(False, b"payload"), (True, None)]


def test_fsync_dir_refuses_a_file_and_closes_what_it_opened(tmp_path: Path):
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(NotADirectoryError):
        fsync_dir(tmp_path / "f")
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        fsync_dir(tmp_path)
    assert len(os.listdir("/proc/self/fd")) == before


def test_an_interrupt_right_after_the_rename_surfaces_as_itself(tmp_path: Path, monkeypatch):
    """The temporary name is gone by then; cleaning up must not turn the interrupt into FileNotFoundError."""
    real = os.replace

    def rename_then_interrupt(src: str, dst: str) -> None:
        real(src, dst)
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", rename_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(tmp_path / "f", b"new")
    assert (tmp_path / "f").read_bytes() == b"new"
