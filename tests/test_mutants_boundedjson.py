"""boundedjson at its edges: every non-bracket byte ignored, limits inclusive, messages cut where they say.

Written against the mutants `make mutation` found that tests/test_boundedjson.py lets through.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.bundle.boundedjson import UntrustedJSONError, clip, load_bounded, loads_bounded, nesting_depth

OTHER_BYTES = bytes(c for c in range(256) if c not in b"[]{}")


def test_every_byte_but_brackets_is_ignored_by_the_depth_scan():
    for b in OTHER_BYTES:
        if b == ord('"'):
            continue
        assert nesting_depth(b"[[" + bytes([b]) * 3 + b"[]]]") == 3, hex(b)
        assert nesting_depth(bytes([b]) + b"{[" + bytes([b]) + b"]}") == 2, hex(b)


@pytest.mark.parametrize(("data", "depth"), [(b"", 0), (b"1", 0), (b"[]", 1), (b"[[]][]", 2), (b"[[][[]]]", 3),
                                            (b'["[[[", {"a": "}}"}]', 2), (b"[[[", 3), (b"]]][", 0)])
def test_depth_of_small_documents(data: bytes, depth: int):
    assert nesting_depth(data) == depth


def test_limits_are_inclusive_and_the_refusals_name_them():
    assert loads_bounded(b"[[1]]", max_bytes=5, max_depth=2) == [[1]]
    with pytest.raises(UntrustedJSONError, match=r"^manifest is 6 bytes, over the limit of 5$"):
        loads_bounded(b"[[1]] ", max_bytes=5, max_depth=2, what="manifest")
    with pytest.raises(UntrustedJSONError, match=r"^document nests more than 1 levels deep$"):
        loads_bounded(b"[[1]]", max_bytes=5, max_depth=1)
    with pytest.raises(UntrustedJSONError, match=r"is 1,000,001 bytes, over the limit of 1,000,000$"):
        loads_bounded(b" " * 1_000_001, max_bytes=1_000_000, max_depth=2)


def test_clip_keeps_a_value_of_exactly_the_limit_and_cuts_a_longer_one():
    assert clip("x" * 78) == repr("x" * 78)  # 80 characters with the quotes
    assert clip("x" * 79) == repr("x" * 79)[:80] + "… (81 characters)"
    assert clip("y" * 5000, 10) == "'yyyyyyyyy… (5,002 characters)"


def test_the_scan_stops_early_only_past_the_limit_and_never_underestimates():
    data = b"[" * 70_000 + b"]" * 70_000  # deeper than one 64 KiB chunk of brackets
    assert nesting_depth(data) == 70_000
    assert nesting_depth(data, stop_above=100_000) == 70_000
    assert nesting_depth(data, stop_above=65_536) > 65_536
    with pytest.raises(UntrustedJSONError, match="nests more than 65536 levels"):
        loads_bounded(data, max_bytes=len(data), max_depth=65_536)


def test_limits_are_keyword_only(tmp_path: Path):
    """Two int bounds side by side: named, they cannot be swapped unnoticed (the file reader's too)."""
    with pytest.raises(TypeError):
        loads_bounded(b"[]", 10, 2)  # type: ignore[misc]
    doc = tmp_path / "doc.json"
    doc.write_bytes(b"[[1]]")
    assert load_bounded(doc, max_bytes=5, max_depth=2) == [[1]]
    with pytest.raises(TypeError):
        load_bounded(doc, 5, 2)  # type: ignore[misc]
