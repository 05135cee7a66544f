"""Unsigned JSON (desired.json, its signature, MANIFEST.json): refused by size and depth, never a crash."""

from __future__ import annotations

import json
import random

import pytest

from compiler.bundle import DesiredState, Manifest, verify_signature
from compiler.bundle.boundedjson import UntrustedJSONError, loads_bounded, nesting_depth

DEPTHS = [9, 33, 1_000, 100_000]


def _nested(depth: int, opener: str) -> bytes:
    closer = {"[": "]", "{": "}"}[opener]
    inner = '"x"' if opener == "[" else ""
    if opener == "{":  # {"a":{"a":…{}…}}
        return ('{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)).encode()
    return (opener * depth + inner + closer * depth).encode()


def _random_doc(rng: random.Random, depth: int):
    if depth == 0 or rng.random() < 0.2:
        return rng.choice([1, -2.5, None, True, 's"[{', "]]}}\\"])
    if rng.random() < 0.5:
        return [_random_doc(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    return {f"k{i}[": _random_doc(rng, depth - 1) for i in range(rng.randint(0, 3))}


def _depth(obj) -> int:
    if isinstance(obj, list):
        return 1 + max(map(_depth, obj), default=0)
    if isinstance(obj, dict):
        return 1 + max(map(_depth, obj.values()), default=0)
    return 0


def test_the_depth_scan_agrees_with_the_parser_and_ignores_brackets_in_strings():
    rng = random.Random(7)
    for _ in range(500):
        doc = _random_doc(rng, 9)
        assert nesting_depth(json.dumps(doc).encode()) == _depth(doc)
    assert nesting_depth(b'["[[[[", "\\"[[["]') == 1


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("opener", ["[", "{"])
def test_deep_nesting_is_refused_as_a_value_error(depth: int, opener: str):
    data = _nested(depth, opener)
    with pytest.raises(UntrustedJSONError, match="levels deep"):
        loads_bounded(data, max_bytes=len(data), max_depth=8)


@pytest.mark.parametrize("tail", [b"", b"]" * 10, b'"unterminated', b"\\"])
def test_unbalanced_or_unterminated_input_is_never_underestimated(tail: bytes):
    data = b"[" * 50 + tail
    assert nesting_depth(data) >= 50 - tail.count(b"]")
    with pytest.raises(ValueError):
        loads_bounded(data, max_bytes=1 << 20, max_depth=64)


@pytest.mark.parametrize("size", [4097, 1 << 20, 5 << 20])
def test_oversize_input_is_refused_before_parsing(size: int):
    data = b'"' + b"a" * (size - 2) + b'"'
    with pytest.raises(UntrustedJSONError, match="over the limit"):
        loads_bounded(data, max_bytes=4096, max_depth=8)


@pytest.mark.parametrize("depth", [33, 1_000, 2_000, 100_000])
def test_the_three_unsigned_documents_refuse_deep_nesting(depth: int):
    bracket = _nested(depth, "[")
    with pytest.raises(ValueError, match="levels deep"):
        DesiredState.parse(bracket)
    with pytest.raises(ValueError, match="levels deep"):
        Manifest.parse(bracket)
    with pytest.raises(ValueError, match=r"malformed signature file.*(levels deep|over the limit)"):
        verify_signature(b"{}", bracket, [])
    nested_key = b'{"keyId":' + bracket + b',"signature":"AA=="}'
    with pytest.raises(ValueError, match="malformed signature file"):
        verify_signature(b"{}", nested_key, [])


@pytest.mark.parametrize("length", [17, 20_000, 200 << 10])
def test_a_huge_key_id_is_refused_and_never_repeated(length: int):
    sig = json.dumps({"keyId": "a" * length, "signature": "AA=="}).encode()
    with pytest.raises(ValueError) as info:
        verify_signature(b"{}", sig, [])
    assert len(str(info.value)) < 300


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {"version": 1},
        {"version": 1, "generation": 1, "device": "d", "expires": "x", "bundles": [1]},
        {"version": 1, "generation": 1, "device": ["d"], "expires": "x", "bundles": []},
        {"version": 1, "generation": 1, "device": "d", "expires": "2030-01-01T00:00:00Z", "bundles": "ab"},
    ],
)
def test_malformed_desired_states_raise_value_error_only(doc):
    with pytest.raises(ValueError):
        DesiredState.parse(json.dumps(doc).encode())


def test_threat_a_huge_state_file_is_refused_without_reading_it_whole(tmp_path, monkeypatch):
    from agent.report import ReportMemory
    from agent.status import MAX_STATE_BYTES
    from compiler.bundle.boundedjson import load_bounded

    path = tmp_path / "report.json"
    with path.open("wb") as fh:  # sparse: 1 GiB on the file system, no disk used
        fh.write(b'{"sequence": 7, "pad": "')
        fh.truncate(1 << 30)
    reads: list[int] = []
    real_open = type(path).open

    def spying_open(self, *a, **k):
        fh = real_open(self, *a, **k)
        real_read = fh.read
        fh.read = lambda n=-1: reads.append(n) or real_read(n)  # type: ignore[method-assign]
        return fh

    monkeypatch.setattr(type(path), "open", spying_open)
    with pytest.raises(UntrustedJSONError, match="over the limit"):
        load_bounded(path, max_bytes=1024, max_depth=8)
    assert reads == [1025]
    # the agent's own reader: a state file past its limit is forgotten (sequence 0), not parsed
    assert ReportMemory.load(tmp_path).sequence == 0
    assert max(reads) == MAX_STATE_BYTES + 1


def test_a_state_file_within_the_limits_is_read(tmp_path):
    from agent.report import ReportMemory

    (tmp_path / "report.json").write_text(json.dumps({"sequence": 7, "owed": ["git"]}))
    memory = ReportMemory.load(tmp_path)
    assert (memory.sequence, memory.owed) == (7, ("git",))
