"""compiler/bundle/manifest.py's bounds at their exact edges: a manifest is read before it is trusted, so each
limit (file size, manifest bytes and depth, path length) is asserted at the limit and one past it; a bound
moved either way fails here (`make mutation`: the NumberReplacer mutants of these constants)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import stat
from pathlib import Path

import pytest

from compiler.bundle import MANIFEST, FileEntry, Manifest, verify_bundle, write_bundle
from compiler.bundle.manifest import (
    MAX_FILE_BYTES,
    MAX_MANIFEST_BYTES,
    MAX_MANIFEST_DEPTH,
    canonical_json,
    safe_relative,
)


def _nested(levels: int) -> object:
    value: object = 1
    for _ in range(levels):
        value = [value]
    return value


def test_the_bounds_are_the_documented_ones() -> None:
    assert (MAX_FILE_BYTES, MAX_MANIFEST_BYTES, MAX_MANIFEST_DEPTH) == (4 * 2**30, 16 * 2**20, 32)


def test_a_file_of_exactly_the_maximum_size_parses_and_one_byte_more_is_impossible() -> None:
    ok = Manifest("a/b", "edge-pc", (FileEntry("m.onnx", MAX_FILE_BYTES, "0" * 64),))
    assert Manifest.parse(ok.to_bytes()).files[0].size == 4 * 2**30
    big = Manifest("a/b", "edge-pc", (FileEntry("m.onnx", 4 * 2**30 + 1, "0" * 64),))
    with pytest.raises(ValueError, match=r"file 'm\.onnx' has an impossible size"):
        Manifest.parse(big.to_bytes())
    neg = Manifest("a/b", "edge-pc", (FileEntry("m.onnx", -1, "0" * 64),))
    with pytest.raises(ValueError, match="impossible size"):
        Manifest.parse(neg.to_bytes())
    assert Manifest.parse(Manifest("a/b", "edge-pc", (FileEntry("e", 0, "0" * 64),)).to_bytes()).files[0].size == 0


def test_a_manifest_32_levels_deep_parses_and_33_is_refused() -> None:
    # the document (1), provenance (2) and 30 lists: 32 levels
    assert Manifest.parse(Manifest("a/b", "edge-pc", (), {"x": _nested(30)}).to_bytes()).provenance["x"]
    with pytest.raises(ValueError, match="nests more than 32 levels deep"):
        Manifest.parse(Manifest("a/b", "edge-pc", (), {"x": _nested(31)}).to_bytes())


def _manifest_of_size(size: int) -> Manifest:
    base = len(Manifest("a/b", "edge-pc", (), {"pad": ""}).to_bytes())
    return Manifest("a/b", "edge-pc", (), {"pad": "x" * (size - base)})


def test_the_manifest_byte_bound_is_applied_exactly_where_it_is_read(tmp_path: Path, monkeypatch) -> None:
    """The limit itself is pinned above; here a small stand-in shows both readers (parse, verify_bundle) take
    a manifest of exactly the limit and refuse one byte more (16 MiB documents would take a minute here)."""
    limit = 4096
    monkeypatch.setattr("compiler.bundle.manifest.MAX_MANIFEST_BYTES", limit)
    exact = _manifest_of_size(limit)
    assert len(exact.to_bytes()) == limit
    assert Manifest.parse(exact.to_bytes()).digest == exact.digest
    d = write_bundle(tmp_path, "a/b", "edge-pc", {}, exact.provenance)
    assert verify_bundle(tmp_path / d.digest, d.digest) == (exact, [])
    over = _manifest_of_size(limit + 1)
    with pytest.raises(ValueError, match="over the limit of 4,096"):
        Manifest.parse(over.to_bytes())
    (tmp_path / d.digest / MANIFEST).write_bytes(over.to_bytes())
    manifest, problems = verify_bundle(tmp_path / d.digest)
    assert manifest is None and problems == ["MANIFEST.json: is 4,097 bytes, over the limit of 4,096 bytes"]


def test_a_path_of_512_characters_is_safe_and_513_is_not() -> None:
    assert safe_relative("a/" * 255 + "bb")  # 512 characters
    assert not safe_relative("a/" * 255 + "bbb")
    assert not safe_relative("a" * 513)


def test_canonical_json_writes_utf8_not_escapes_and_refuses_nan() -> None:
    # the digest is taken over these bytes: escaping `é` as `\u00e9` or writing NaN would be another format
    assert canonical_json({"b": "é", "a": [1, 2.5]}) == '{"a":[1,2.5],"b":"é"}\n'.encode()
    with pytest.raises(ValueError, match="not JSON compliant"):
        canonical_json({"x": float("nan")})


def test_a_manifest_and_its_entries_cannot_change_after_their_digest_was_taken() -> None:
    m = Manifest("a/b", "edge-pc", (FileEntry("f", 1, "0" * 64),))
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.files[0].size = 2  # type: ignore[misc]


@pytest.mark.parametrize(("doc", "shown"), [({"version": 2}, "2"), ([1], "'?'"), ({}, "None")])
def test_threat_a_document_of_another_version_or_shape_is_refused_by_its_version(doc: object, shown: str) -> None:
    with pytest.raises(ValueError, match=f"^unsupported manifest version {re.escape(shown)}$"):
        Manifest.parse(json.dumps(doc).encode())


def test_threat_a_version_2_manifest_is_refused_for_its_version_even_with_a_matching_digest() -> None:
    body = {**Manifest("a/b", "edge-pc", ()).body(), "version": 2}
    data = canonical_json({**body, "digest": hashlib.sha256(canonical_json(body)).hexdigest()})
    with pytest.raises(ValueError, match=r"^unsupported manifest version 2$"):
        Manifest.parse(data)


FILES = {"runner.json": b"{}\n", "model/m.onnx": b"m", "bin/start": b"#!/bin/sh\n"}


def test_a_cached_bundle_that_verifies_is_kept_as_it_is(tmp_path: Path) -> None:
    m = write_bundle(tmp_path, "a/b", "edge-pc", FILES, {})
    inode = (tmp_path / m.digest).stat().st_ino
    assert write_bundle(tmp_path, "a/b", "edge-pc", FILES, {}) == m
    assert (tmp_path / m.digest).stat().st_ino == inode  # not written again
    assert sorted(p.name for p in tmp_path.iterdir()) == [m.digest]


def test_threat_a_tampered_cached_bundle_is_replaced_by_one_that_verifies(tmp_path: Path) -> None:
    m = write_bundle(tmp_path, "a/b", "edge-pc", FILES, {})
    (tmp_path / m.digest / "runner.json").write_bytes(b"{}")
    assert verify_bundle(tmp_path / m.digest, m.digest)[1] == ["runner.json: 2 bytes, manifest says 3"]
    write_bundle(tmp_path, "a/b", "edge-pc", FILES, {})
    assert verify_bundle(tmp_path / m.digest, m.digest, exact_modes=True) == (m, [])
    assert sorted(p.name for p in tmp_path.iterdir()) == [m.digest]  # nothing staged or stale left


def test_threat_a_link_named_for_the_digest_is_replaced_and_its_target_left_alone(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    m = write_bundle(elsewhere, "a/b", "edge-pc", FILES, {})
    out = tmp_path / "out"
    out.mkdir()
    (out / m.digest).symlink_to(elsewhere / m.digest)  # a valid bundle, but reached through a link
    write_bundle(out, "a/b", "edge-pc", FILES, {})
    assert not (out / m.digest).is_symlink() and verify_bundle(out / m.digest, m.digest) == (m, [])
    assert verify_bundle(elsewhere / m.digest, m.digest) == (m, [])


def test_a_bundle_is_written_into_a_parent_that_does_not_exist_yet(tmp_path: Path) -> None:
    m = write_bundle(tmp_path / "x" / "y", "a/b", "edge-pc", FILES, {})
    assert verify_bundle(tmp_path / "x" / "y" / m.digest, m.digest) == (m, [])


def test_every_directory_and_the_manifest_get_exactly_their_modes_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        m = write_bundle(tmp_path, "a/b", "edge-pc", FILES, {}, executable=frozenset({"bin/start"}))
    finally:
        os.umask(old)
    top = tmp_path / m.digest
    modes = {p.relative_to(top).as_posix(): stat.S_IMODE(p.lstat().st_mode) for p in [top, *top.rglob("*")]}
    assert modes == {".": 0o755, "bin": 0o755, "model": 0o755, "bin/start": 0o755, "model/m.onnx": 0o644,
                     "runner.json": 0o644, MANIFEST: 0o644}


def _with_mode(mode: str) -> bytes:
    """A manifest whose one file's mode is written as `mode`, with the digest of its canonical form."""
    m = Manifest("a/b", "edge-pc", (FileEntry("f", 1, "0" * 64),))
    doc = json.loads(m.to_bytes())
    doc["files"][0]["mode"] = mode
    return json.dumps(doc).encode()


def test_threat_a_mode_is_read_from_at_most_8_characters() -> None:
    # the int parse is bounded: 8 octal digits are read, a ninth makes it another (refused) mode
    assert Manifest.parse(_with_mode("00000644")).files[0].mode == 0o644
    with pytest.raises(ValueError, match="file 'f' has mode '000000644'"):
        Manifest.parse(_with_mode("000000644"))
    with pytest.raises(ValueError, match="has mode '0600'"):
        Manifest.parse(_with_mode("0600"))


def _unlink_fails_inside_trees(monkeypatch: pytest.MonkeyPatch) -> None:
    """rmtree removes by descriptor (`dir_fd`); make that fail, as a read-only or busy tree would for a non-root."""
    real = os.unlink

    def unlink(path, *, dir_fd=None):  # type: ignore[no-untyped-def]
        if dir_fd is not None:
            raise PermissionError(13, "Permission denied", path)
        return real(path)

    monkeypatch.setattr(os, "unlink", unlink)


def test_threat_an_old_copy_that_cannot_be_removed_never_fails_the_write(tmp_path: Path, monkeypatch) -> None:
    m = write_bundle(tmp_path, "a/b", "edge-pc", FILES, {})
    (tmp_path / m.digest / "runner.json").write_bytes(b"{}")
    _unlink_fails_inside_trees(monkeypatch)
    assert write_bundle(tmp_path, "a/b", "edge-pc", FILES, {}) == m
    monkeypatch.undo()
    assert verify_bundle(tmp_path / m.digest, m.digest) == (m, [])


def test_threat_a_write_that_fails_leaves_no_staging_behind_and_raises_its_own_error(tmp_path: Path,
                                                                                     monkeypatch) -> None:
    clash = {"0": b"0", "a": b"1", "a/b": b"2"}  # `a` is made a directory for `a/b`, then cannot be a file
    with pytest.raises(OSError) as info:
        write_bundle(tmp_path, "a/b", "edge-pc", clash, {})
    assert not isinstance(info.value, PermissionError) and list(tmp_path.iterdir()) == []
    _unlink_fails_inside_trees(monkeypatch)  # the cleanup fails too: the caller still sees why the write failed
    with pytest.raises(OSError) as info:
        write_bundle(tmp_path, "a/b", "edge-pc", clash, {})
    assert not isinstance(info.value, PermissionError)


def test_threat_a_bundle_file_is_only_ever_created_never_written_through_an_existing_name(tmp_path: Path) -> None:
    from compiler.bundle.manifest import _write_new

    target = tmp_path / "elsewhere"
    target.write_bytes(b"keep")
    (tmp_path / "link").symlink_to(target)
    (tmp_path / "file").write_bytes(b"keep")
    for name in ("link", "file"):
        with pytest.raises(FileExistsError):
            _write_new(str(tmp_path / name), b"new", 0o644)
    assert target.read_bytes() == (tmp_path / "file").read_bytes() == b"keep"
    _write_new(str(tmp_path / "fresh"), b"new", 0o755)
    assert (tmp_path / "fresh").read_bytes() == b"new" and stat.S_IMODE((tmp_path / "fresh").stat().st_mode) == 0o755


def test_exact_modes_is_keyword_only(tmp_path: Path) -> None:
    # a bare True after the digest would read as a mode policy nobody named at the call
    m = write_bundle(tmp_path, "a/b", "edge-pc", FILES, {})
    with pytest.raises(TypeError, match="positional argument"):
        verify_bundle(tmp_path / m.digest, m.digest, True)  # type: ignore[misc]
    assert verify_bundle(tmp_path / m.digest, m.digest, exact_modes=True) == (m, [])


def test_threat_every_bad_file_is_reported_not_only_the_first(tmp_path: Path) -> None:
    m = write_bundle(tmp_path, "a/b", "edge-pc", {n: n.encode() for n in "abcde"}, {})
    d = tmp_path / m.digest
    (d / "a").unlink()
    (d / "b").unlink()
    (d / "b").symlink_to("e")  # inside the bundle: reached through a link
    (d / "c").unlink()
    os.mkfifo(d / "c")
    (d / "d").write_bytes(b"x")
    _, problems = verify_bundle(d, m.digest)
    assert problems == ["a: missing", "b: reached through a symbolic link",
                        "c: not a regular file (symlink, device or directory)", "d: content differs from the manifest"]


def test_threat_an_unsafe_path_does_not_hide_the_next_problem(tmp_path: Path) -> None:
    entry = {"size": 1, "sha256": "0" * 64, "mode": "0644"}
    body = {"version": 1, "name": "n", "targetClass": "edge-pc", "provenance": {},
            "files": [{"path": "../escape", **entry}, {"path": "z", **entry}]}
    digest = hashlib.sha256(canonical_json(body)).hexdigest()
    (tmp_path / MANIFEST).write_bytes(canonical_json({**body, "digest": digest}))
    assert verify_bundle(tmp_path)[1] == ["unsafe path '../escape'", "z: missing"]


def test_a_git_work_tree_compares_only_the_owners_executable_bit(tmp_path: Path) -> None:
    m = write_bundle(tmp_path, "a/b", "edge-pc", FILES, {}, executable=frozenset({"bin/start"}))
    d = tmp_path / m.digest
    os.chmod(d / "runner.json", 0o655)  # group and others may execute: Git records only the owner's bit
    os.chmod(d / "bin/start", 0o744)
    assert verify_bundle(d, m.digest)[1] == []
    os.chmod(d / "runner.json", 0o744)
    assert verify_bundle(d, m.digest)[1] == [
        "runner.json: mode 0744, manifest says 0644 (executable bit differs)"]


class _Growing:
    """A bundle file that grew between the size check and the read: fstat says `size`, the read yields more."""

    def __init__(self, path: Path, content: bytes) -> None:
        self._fh, self._data = path.open("rb"), io.BytesIO(content)

    def fileno(self) -> int:
        return self._fh.fileno()

    def read(self, n: int = -1) -> bytes:
        return self._data.read(min(n, 5))  # short reads, as from a pipe or a network file system


def test_threat_a_file_that_grows_while_it_is_hashed_is_refused(tmp_path: Path) -> None:
    from compiler.bundle.manifest import _check_file

    data = b"x" * 10
    (tmp_path / "f").write_bytes(data)
    entry = FileEntry("f", 10, hashlib.sha256(data).hexdigest())
    assert _check_file(_Growing(tmp_path / "f", data), entry, False) == []  # type: ignore[arg-type]
    grown = _Growing(tmp_path / "f", data + b"y")  # the first 10 bytes still match the manifest
    assert _check_file(grown, entry, False) == ["f: content differs from the manifest"]  # type: ignore[arg-type]


def test_a_file_larger_than_one_read_is_hashed_to_its_end(tmp_path: Path) -> None:
    big = bytes(range(256)) * (3 * 4096 + 7)  # about 3 MiB: several 1 MiB reads
    m = write_bundle(tmp_path, "a/b", "edge-pc", {"model.onnx": big}, {})
    assert verify_bundle(tmp_path / m.digest, m.digest) == (m, [])
    (tmp_path / m.digest / "model.onnx").write_bytes(big[:-1] + b"\x00")
    assert verify_bundle(tmp_path / m.digest, m.digest)[1] == ["model.onnx: content differs from the manifest"]
