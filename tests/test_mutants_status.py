"""agent/status.py directly: the memory (what the replay defence relies on), the journal's chain, the bounds of
what status and journal quote, status conditions and metrics. The agent tests reach these only through whole
cycles; these pin each rule in a pytest start of a second or two, so that `make mutation` finds a weakened one."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from agent.reasons import Event, Reason
from agent.status import (
    JOURNAL,
    MEMORY,
    METRICS,
    STATUS,
    Memory,
    MemoryUnreadable,
    bounded,
    journal,
    read_state_json,
    verify_journal,
    write_metrics,
    write_status,
)
from compiler.bundle import canonical_json
from compiler.bundle.boundedjson import UntrustedJSONError

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
# The bounds, written out rather than imported: a test that read agent.status's constants would move with a
# mutated one. A string of status or journal, a list or object of the journal, a journal entry's details, a list
# of status (the bundles a desired state names); a state file's bytes and nesting.
MAX_TEXT, MAX_ITEMS, MAX_ENTRY, MAX_STATUS_ITEMS = 1024, 64, 16 * 1024, 5000
MAX_STATE_BYTES, MAX_STATE_DEPTH = 32 * 1024 * 1024, 64
GENESIS = "0" * 64  # the first entry's prev


def _remembered() -> Memory:
    return Memory(7, "r" * 64, "rel.3", ["rel.2", "rel.3"], {"q" * 64: 6}, "rel.4", {"applied": 2, "refused": 1})


# --- memory: what it remembers, and never a lower accepted generation from a damaged file ---


def test_memory_round_trips_every_field(tmp_path: Path) -> None:
    _remembered().save(tmp_path)
    assert Memory.load(tmp_path) == _remembered()


def test_no_memory_file_is_a_fresh_memory(tmp_path: Path) -> None:
    assert Memory.load(tmp_path) == Memory(0, None, None, [], {}, None, {})


def test_a_saved_fresh_memory_loads_and_unknown_keys_are_ignored(tmp_path: Path) -> None:
    Memory().save(tmp_path)  # generation 0 is a generation: the lowest one is no damage
    assert Memory.load(tmp_path) == Memory()
    (tmp_path / MEMORY).write_text(json.dumps({"accepted_generation": 3, "journal_head": "x", "good": ["a"]}))
    assert Memory.load(tmp_path) == Memory(accepted_generation=3, good=["a"])


def _saved(tmp_path: Path) -> bytes:
    _remembered().save(tmp_path)
    return (tmp_path / MEMORY).read_bytes()


def test_threat_every_truncation_of_the_memory_is_refused_not_forgotten(tmp_path: Path) -> None:
    data = _saved(tmp_path)
    for n in range(len(data.rstrip())):
        (tmp_path / MEMORY).write_bytes(data[:n])
        with pytest.raises(MemoryUnreadable, match=r"agent\.json"):
            Memory.load(tmp_path)


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe{}",
        b"[]",
        b'"accepted_generation"',
        b"7",
        b"null",
        b"{}",
        b'{"accepted_generation": "7"}',
        b'{"accepted_generation": 7.0}',
        b'{"accepted_generation": true}',
        b'{"accepted_generation": null}',
        b'{"accepted_generation": -1}',
        b'{"good": [], "quarantine": {}}',
    ],
)
def test_threat_a_damaged_memory_is_refused_not_taken_for_a_fresh_one(tmp_path: Path, content: bytes) -> None:
    (tmp_path / MEMORY).write_bytes(content)
    with pytest.raises(MemoryUnreadable):
        Memory.load(tmp_path)


def test_threat_a_memory_nested_past_the_state_depth_is_refused(tmp_path: Path) -> None:
    deep = b'{"accepted_generation": 9, "x": ' + b"[" * MAX_STATE_DEPTH + b"]" * MAX_STATE_DEPTH + b"}"
    (tmp_path / MEMORY).write_bytes(deep)
    with pytest.raises(MemoryUnreadable, match="levels deep"):
        Memory.load(tmp_path)


def test_threat_an_oversized_memory_is_refused_without_being_parsed(tmp_path: Path) -> None:
    with (tmp_path / MEMORY).open("wb") as fh:  # sparse
        fh.write(b'{"accepted_generation": 9, "pad": "')
        fh.truncate(MAX_STATE_BYTES + 1)
    with pytest.raises(MemoryUnreadable, match="over the limit"):
        Memory.load(tmp_path)


def test_threat_a_memory_replaced_by_a_link_is_refused_even_to_a_valid_memory(tmp_path: Path) -> None:
    older = tmp_path / "older"
    Memory(accepted_generation=1).save(older)
    state = tmp_path / "state"
    _remembered().save(state)
    (state / MEMORY).unlink()
    (state / MEMORY).symlink_to(older / MEMORY)
    with pytest.raises(MemoryUnreadable, match="not a regular file"):
        Memory.load(state)
    (state / MEMORY).unlink()
    (state / MEMORY).symlink_to(tmp_path / "nowhere")  # dangling: not "no memory"
    with pytest.raises(MemoryUnreadable, match="not a regular file"):
        Memory.load(state)


def test_threat_a_memory_that_is_a_directory_or_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    (tmp_path / MEMORY).mkdir()
    with pytest.raises(MemoryUnreadable, match="not a regular file"):
        Memory.load(tmp_path)
    (tmp_path / MEMORY).rmdir()
    os.mkfifo(tmp_path / MEMORY)  # opening it to read would wait for a writer forever
    with pytest.raises(MemoryUnreadable, match="not a regular file"):
        Memory.load(tmp_path)


def test_threat_a_state_directory_that_cannot_be_looked_into_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.write_text("a file where the directory should be")
    with pytest.raises(MemoryUnreadable, match="Not a directory"):
        Memory.load(state)


def test_memory_unreadable_is_a_value_error() -> None:
    assert issubclass(MemoryUnreadable, ValueError)


# --- the state reader's bounds are exact ---


def test_a_state_file_of_exactly_the_byte_limit_is_read_and_one_more_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_bytes(b'"' + b"a" * (MAX_STATE_BYTES - 2) + b'"')
    assert len(read_state_json(path)) == MAX_STATE_BYTES - 2
    path.write_bytes(b'"' + b"a" * (MAX_STATE_BYTES - 1) + b'"')
    with pytest.raises(UntrustedJSONError, match="over the limit"):
        read_state_json(path)


def test_a_state_file_of_exactly_the_depth_limit_is_read_and_one_more_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_bytes(b"[" * MAX_STATE_DEPTH + b"]" * MAX_STATE_DEPTH)
    assert read_state_json(path) is not None
    path.write_bytes(b"[" * (MAX_STATE_DEPTH + 1) + b"]" * (MAX_STATE_DEPTH + 1))
    with pytest.raises(UntrustedJSONError, match="levels deep"):
        read_state_json(path)


# --- bounded: the exact bounds of what status and journal quote ---


def test_a_string_of_max_text_is_kept_and_a_longer_one_cut_to_max_text_with_its_length() -> None:
    assert bounded("x" * MAX_TEXT) == "x" * MAX_TEXT
    cut = bounded("é" * (MAX_TEXT + 1))
    assert cut.startswith("é" * MAX_TEXT) and not cut.startswith("é" * (MAX_TEXT + 1))
    assert cut.endswith(f"({MAX_TEXT + 1:,} characters)")


def test_lists_tuples_and_objects_keep_max_items_and_no_more() -> None:
    assert bounded(list(range(MAX_ITEMS))) == list(range(MAX_ITEMS))
    assert bounded(list(range(MAX_ITEMS + 1))) == list(range(MAX_ITEMS))
    assert bounded(tuple(range(MAX_ITEMS + 5))) == list(range(MAX_ITEMS))
    big = {f"k{i}": i for i in range(MAX_ITEMS + 1)}
    assert bounded(big) == {f"k{i}": i for i in range(MAX_ITEMS)}
    assert bounded(list(range(10)), items=3) == [0, 1, 2]
    assert bounded([[0, 1, 2, 3]], items=2) == [[0, 1]]  # the limit applies at every level


def test_keys_become_bounded_strings_and_values_are_bounded_inside_containers() -> None:
    assert bounded({1: "a", "k" * (MAX_TEXT + 1): ["v" * (MAX_TEXT + 1)]}) == {
        "1": "a",
        bounded("k" * (MAX_TEXT + 1)): [bounded("v" * (MAX_TEXT + 1))],
    }
    assert bounded({"t": ("a", ("b",))}) == {"t": ["a", ["b"]]}


def _nest(levels: int) -> object:
    value: object = "leaf"
    for _ in range(levels):
        value = [value]
    return value


def test_six_levels_of_nesting_are_kept_and_a_seventh_is_elided() -> None:
    assert bounded(_nest(6)) == _nest(6)
    assert bounded(_nest(7)) == _elided(7)
    assert bounded({"a": {"b": {}}}, depth=2) == {"a": {"b": "…"}}
    assert bounded([], depth=0) == "…" and bounded({}, depth=0) == "…" and bounded((), depth=0) == "…"
    assert bounded("s", depth=0) == "s" and bounded(5, depth=0) == 5


def _elided(levels: int) -> object:
    value: object = "…"
    for _ in range(levels - 1):
        value = [value]
    return value


@pytest.mark.parametrize("value", [None, True, 0, -3, 2.5])
def test_scalars_pass_unchanged(value: object) -> None:
    assert bounded(value) is value


# --- the journal: a hash chain that detects an edited, dropped or reordered entry ---


def _entries(state: Path) -> list[dict]:
    return [json.loads(line) for line in (state / JOURNAL).read_bytes().splitlines()]


def _write(state: Path, entries: list[dict]) -> None:
    (state / JOURNAL).write_bytes(b"".join(canonical_json(e) for e in entries))


def _three(state: Path) -> list[dict]:
    for i in range(3):
        journal(state, NOW + timedelta(seconds=i), Event.ACCEPTED, generation=i)
    return _entries(state)


def test_an_absent_journal_verifies_empty_and_every_append_extends_the_chain(tmp_path: Path) -> None:
    assert verify_journal(tmp_path / JOURNAL) == (True, 0)
    entries = _three(tmp_path)
    assert verify_journal(tmp_path / JOURNAL) == (True, 3)
    assert entries[0]["prev"] == GENESIS
    assert [e["prev"] for e in entries[1:]] == [e["hash"] for e in entries[:-1]]
    assert len({e["hash"] for e in entries}) == 3


def test_an_entry_records_time_in_utc_the_event_and_its_details(tmp_path: Path) -> None:
    journal(tmp_path, datetime(2030, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2))), Event.REFUSED, why="x")
    (entry,) = _entries(tmp_path)
    assert (entry["time"], entry["event"], entry["details"]) == ("2030-01-02T03:04:05Z", "refused", {"why": "x"})
    assert (tmp_path / JOURNAL).read_bytes().endswith(b"}\n")


@pytest.mark.parametrize(("field", "value"), [("event", "healthy"), ("time", "2031-01-01T00:00:00Z"),
                                              ("details", {"generation": 99}), ("prev", GENESIS)])
def test_threat_an_edited_entry_breaks_the_chain_at_that_entry(tmp_path: Path, field: str, value: object) -> None:
    entries = _three(tmp_path)
    entries[1][field] = value
    _write(tmp_path, entries)
    assert verify_journal(tmp_path / JOURNAL) == (False, 1)


def test_threat_an_edited_entry_with_its_own_hash_recomputed_breaks_the_next_link(tmp_path: Path) -> None:
    entries = _three(tmp_path)
    forged = {k: v for k, v in entries[1].items() if k != "hash"} | {"details": {"generation": 99}}
    entries[1] = forged | {"hash": hashlib.sha256(canonical_json(forged)).hexdigest()}
    _write(tmp_path, entries)
    assert verify_journal(tmp_path / JOURNAL) == (False, 2)


def test_threat_a_dropped_or_reordered_or_unhashed_entry_breaks_the_chain(tmp_path: Path) -> None:
    entries = _three(tmp_path)
    _write(tmp_path, [entries[0], entries[2]])
    assert verify_journal(tmp_path / JOURNAL) == (False, 1)
    _write(tmp_path, entries[1:])
    assert verify_journal(tmp_path / JOURNAL) == (False, 0)
    _write(tmp_path, [entries[0], entries[2], entries[1]])
    assert verify_journal(tmp_path / JOURNAL) == (False, 1)
    _write(tmp_path, [entries[0], {k: v for k, v in entries[1].items() if k != "hash"}])
    assert verify_journal(tmp_path / JOURNAL) == (False, 1)


def test_threat_a_line_that_is_not_an_entry_breaks_the_chain_there_even_a_blank_one(tmp_path: Path) -> None:
    entries = _three(tmp_path)
    lines = [canonical_json(e) for e in entries]
    (tmp_path / JOURNAL).write_bytes(lines[0] + lines[1] + b"  \n" + lines[2])
    assert verify_journal(tmp_path / JOURNAL) == (False, 2)
    (tmp_path / JOURNAL).write_bytes(lines[0] + lines[1] + lines[2] + b"\n")
    assert verify_journal(tmp_path / JOURNAL) == (False, 3)
    journal(tmp_path, NOW, Event.HEALTHY)  # what the agent appends after it does not hide it
    assert verify_journal(tmp_path / JOURNAL) == (False, 3)
    (tmp_path / JOURNAL).write_bytes(lines[0] + b"{not json\n" + lines[1])
    assert verify_journal(tmp_path / JOURNAL) == (False, 1)


def test_a_torn_last_line_is_cut_and_the_next_entry_chains_to_the_last_whole_one(tmp_path: Path) -> None:
    entries = _three(tmp_path)
    whole = (tmp_path / JOURNAL).read_bytes()
    # one byte; a few; one byte short of a read-back block (the newline before it is at the block's first byte);
    # longer than a block
    for torn in (b"{", b'{"time": "20', b"z" * 65535, b"x" * 200_000):
        (tmp_path / JOURNAL).write_bytes(whole + torn)
        journal(tmp_path, NOW, Event.HEALTHY)
        after = _entries(tmp_path)
        assert after[:3] == entries and after[3]["prev"] == entries[2]["hash"] and len(after) == 4
        assert verify_journal(tmp_path / JOURNAL) == (True, 4)


def test_a_journal_that_is_only_a_torn_line_starts_from_genesis(tmp_path: Path) -> None:
    for torn in (b"{", b"y" * 200_000):
        (tmp_path / JOURNAL).write_bytes(torn)
        journal(tmp_path, NOW, Event.HEALTHY)
        (entry,) = _entries(tmp_path)
        assert entry["prev"] == GENESIS and verify_journal(tmp_path / JOURNAL) == (True, 1)


def test_cutting_a_torn_line_keeps_every_byte_before_it_up_to_the_first(tmp_path: Path) -> None:
    for before in (b"\n", b"\n" * 3, b"q\n"):
        for torn in (b"t", b"t" * 65536, b"t" * 65537):  # a read-back block ends at the file's first bytes
            (tmp_path / JOURNAL).write_bytes(before + torn)
            journal(tmp_path, NOW, Event.HEALTHY)
            assert (tmp_path / JOURNAL).read_bytes().startswith(before + b"{")


def test_an_empty_journal_starts_from_genesis(tmp_path: Path) -> None:
    (tmp_path / JOURNAL).write_bytes(b"")
    journal(tmp_path, NOW, Event.HEALTHY)
    assert _entries(tmp_path)[0]["prev"] == GENESIS


def test_a_long_last_entry_is_still_the_chain_head(tmp_path: Path) -> None:
    journal(tmp_path, NOW, Event.ACCEPTED)
    first = _entries(tmp_path)[0]
    big = {"time": "t", "event": "accepted", "details": {"pad": "p" * 150_000}, "prev": first["hash"]}
    big["hash"] = hashlib.sha256(canonical_json(big)).hexdigest()
    with (tmp_path / JOURNAL).open("ab") as fh:
        fh.write(canonical_json(big))
    journal(tmp_path, NOW, Event.HEALTHY)
    assert _entries(tmp_path)[-1]["prev"] == big["hash"]
    assert verify_journal(tmp_path / JOURNAL) == (True, 3)


@pytest.mark.parametrize("last", [b"{not json}\n", b'{"time": "t"}\n', b'{"hash": 5}\n', b"[1]\n", b"\n"])
def test_a_last_line_without_a_hash_string_restarts_from_genesis(tmp_path: Path, last: bytes) -> None:
    journal(tmp_path, NOW, Event.ACCEPTED)
    with (tmp_path / JOURNAL).open("ab") as fh:
        fh.write(last)
    journal(tmp_path, NOW, Event.HEALTHY)
    assert json.loads((tmp_path / JOURNAL).read_bytes().splitlines()[-1])["prev"] == GENESIS


def _details_of_size(n: int) -> dict[str, str]:
    """Details whose canonical JSON is exactly n bytes (each value under MAX_TEXT, so bounded keeps them)."""
    details = {f"k{i:02}": "" for i in range(MAX_ITEMS)}
    size = len(canonical_json(details))
    for key in details:
        add = min(MAX_TEXT, n - size)
        details[key], size = "v" * add, size + add
    assert len(canonical_json(details)) == n
    return details


def test_details_of_max_entry_bytes_are_kept_and_one_more_byte_is_truncated(tmp_path: Path) -> None:
    kept = _details_of_size(MAX_ENTRY)
    journal(tmp_path, NOW, Event.ACCEPTED, **kept)
    assert _entries(tmp_path)[-1]["details"] == kept
    over = _details_of_size(MAX_ENTRY + 1)
    journal(tmp_path, NOW, Event.ACCEPTED, **over)
    details = _entries(tmp_path)[-1]["details"]
    assert details == {"truncated": bounded(canonical_json(over).decode())}
    assert details["truncated"].startswith(canonical_json(over).decode()[:MAX_TEXT])
    assert verify_journal(tmp_path / JOURNAL) == (True, 2)


def test_details_are_bounded_before_they_are_recorded(tmp_path: Path) -> None:
    journal(tmp_path, NOW, Event.REFUSED, key="k" * (MAX_TEXT + 1), ids=list(range(MAX_ITEMS + 1)))
    assert _entries(tmp_path)[0]["details"] == {"key": bounded("k" * (MAX_TEXT + 1)), "ids": list(range(MAX_ITEMS))}


# --- status.json: conditions and bounded fields ---


def _status(state: Path, now: datetime = NOW, **kw) -> dict:
    args = dict(ready=True, reconciling=False, stalled=False, degraded=False, reason=Reason.UP_TO_DATE,
                message="running", fields={})
    return write_status(state=state, now=now, **(args | kw))  # every argument can be named


def _conds(doc: dict) -> dict[str, tuple[str, str, str, str]]:
    return {c["type"]: (c["status"], c["reason"], c["message"], c["lastTransitionTime"]) for c in doc["conditions"]}


def test_a_ready_cycle_has_its_four_conditions_and_the_file_is_what_was_returned(tmp_path: Path) -> None:
    doc = _status(tmp_path, fields={"result": "unchanged"})
    t = "2030-01-02T03:04:05Z"
    assert _conds(doc) == {
        "Ready": ("True", "Applied", "running", t),
        "Reconciling": ("False", "UpToDate", "", t),
        "Stalled": ("False", "Progressing", "", t),
        "Degraded": ("False", "Healthy", "", t),
    }
    assert [c["type"] for c in doc["conditions"]] == ["Ready", "Reconciling", "Stalled", "Degraded"]
    assert (doc["apiVersion"], doc["observedAt"], doc["result"]) == ("takt/agent/v1", t, "unchanged")
    assert json.loads((tmp_path / STATUS).read_text()) == doc


def test_status_json_is_for_people_too_sorted_keys_indented_by_two_newline_terminated(tmp_path: Path) -> None:
    doc = _status(tmp_path, fields={"zeta": 1, "alpha": {"b": 1, "a": 2}})
    text = (tmp_path / STATUS).read_text()
    assert text == json.dumps(doc, indent=2, sort_keys=True) + "\n"
    assert text.index('"alpha"') < text.index('"apiVersion"') < text.index('"zeta"')
    assert '\n  "alpha": {\n    "a": 2,' in text


def test_a_refused_cycle_carries_its_reason_and_message_where_it_applies(tmp_path: Path) -> None:
    doc = _status(tmp_path, ready=False, reconciling=True, stalled=True, degraded=True,
                  reason=Reason.SIGNATURE_INVALID, message="bad")
    t = "2030-01-02T03:04:05Z"
    assert _conds(doc) == {
        "Ready": ("False", "SignatureInvalid", "bad", t),
        "Reconciling": ("True", "SignatureInvalid", "bad", t),
        "Stalled": ("True", "SignatureInvalid", "bad", t),
        "Degraded": ("True", "SignatureInvalid", "bad", t),
    }


def test_degraded_by_gives_degraded_its_own_reason_and_bounded_message_only_when_degraded(tmp_path: Path) -> None:
    plant = (Reason.SOURCE_UNAVAILABLE, "p" * (MAX_TEXT + 1))
    doc = _status(tmp_path, degraded=True, degraded_by=plant)
    assert _conds(doc)["Degraded"][:3] == ("True", "SourceUnavailable", bounded("p" * (MAX_TEXT + 1)))
    assert _conds(doc)["Ready"][:3] == ("True", "Applied", "running")
    doc = _status(tmp_path, degraded=False, degraded_by=plant)
    assert _conds(doc)["Degraded"][:3] == ("False", "Healthy", "")


def test_a_condition_keeps_its_transition_time_until_its_status_changes(tmp_path: Path) -> None:
    _status(tmp_path)
    later = NOW + timedelta(minutes=5)
    doc = _status(tmp_path, later, degraded=True, reason=Reason.FETCH_FAILED, message="down")
    t0, t1 = "2030-01-02T03:04:05Z", "2030-01-02T03:09:05Z"
    assert {k: v[3] for k, v in _conds(doc).items()} == {"Ready": t0, "Reconciling": t0, "Stalled": t0, "Degraded": t1}
    doc = _status(tmp_path, later + timedelta(minutes=5), degraded=True, reason=Reason.FETCH_FAILED, message="down")
    assert _conds(doc)["Degraded"][3] == t1 and _conds(doc)["Ready"][3] == t0


@pytest.mark.parametrize("old", [b"[]", b"{not json", b'{"conditions": []}', b""])
def test_an_unreadable_or_foreign_old_status_starts_every_condition_now(tmp_path: Path, old: bytes) -> None:
    (tmp_path / STATUS).write_bytes(old)
    doc = _status(tmp_path)
    assert {v[3] for v in _conds(doc).values()} == {"2030-01-02T03:04:05Z"}


def test_status_keeps_max_status_items_of_a_list_and_cuts_every_string(tmp_path: Path) -> None:
    doc = _status(tmp_path, message="m" * (MAX_TEXT + 1), fields={
        "kept": list(range(MAX_STATUS_ITEMS)), "cut": list(range(MAX_STATUS_ITEMS + 1)), "s": "s" * (MAX_TEXT + 1),
    })
    assert doc["kept"] == list(range(MAX_STATUS_ITEMS)) and doc["cut"] == list(range(MAX_STATUS_ITEMS))
    assert doc["s"] == bounded("s" * (MAX_TEXT + 1))
    assert _conds(doc)["Ready"][2] == bounded("m" * (MAX_TEXT + 1))


# --- metrics ---


def _metrics(state: Path, status: dict, memory: Memory | None = None, extra: Path | None = None) -> list[str]:
    write_metrics(state, memory or Memory(), status, extra)
    text = (state / METRICS).read_text()
    assert text.endswith("\n")
    return text.splitlines()


def _conditions(ready: bool, degraded: bool) -> list[dict]:
    return [{"type": "Ready", "status": str(ready)}, {"type": "Degraded", "status": str(degraded)}]


def test_metrics_show_the_conditions_generations_timings_counters_and_reason(tmp_path: Path) -> None:
    status = {"conditions": _conditions(True, False), "desiredGeneration": 5, "appliedGeneration": 4,
              "timings": {"totalSeconds": 1.5}, "reason": "UpToDate"}
    lines = _metrics(tmp_path, status, Memory(reconciles={"refused": 2, "applied": 3}))
    assert "takt_agent_ready 1" in lines and "takt_agent_degraded 0" in lines
    assert "takt_agent_desired_generation 5" in lines and "takt_agent_applied_generation 4" in lines
    assert "takt_agent_reconcile_seconds 1.5" in lines
    counters = [x for x in lines if x.startswith("takt_agent_reconciles_total")]
    assert counters == ['takt_agent_reconciles_total{result="applied"} 3',
                        'takt_agent_reconciles_total{result="refused"} 2']
    assert [x for x in lines if x.startswith("takt_agent_reason")] == ['takt_agent_reason{reason="UpToDate"} 1']
    assert not any("runner" in x for x in lines)


def test_metrics_of_a_bare_status_are_zeros_and_no_unknown_reason(tmp_path: Path) -> None:
    lines = _metrics(tmp_path, {"conditions": _conditions(False, True), "reason": "NotAReason",
                                "desiredGeneration": None})
    assert "takt_agent_ready 0" in lines and "takt_agent_degraded 1" in lines
    assert "takt_agent_desired_generation 0" in lines and "takt_agent_applied_generation 0" in lines
    assert "takt_agent_reconcile_seconds 0" in lines
    assert not any(x.startswith("takt_agent_reason") for x in lines)
    bare = _metrics(tmp_path, {"conditions": []})  # no conditions at all: neither ready nor degraded
    assert "takt_agent_ready 0" in bare and "takt_agent_degraded 0" in bare


def test_metrics_go_to_the_extra_file_too_creating_its_directory(tmp_path: Path) -> None:
    extra = tmp_path / "textfile" / "deep" / "takt.prom"
    _metrics(tmp_path / "state", {"conditions": _conditions(True, False)}, extra=extra)
    assert extra.read_bytes() == (tmp_path / "state" / METRICS).read_bytes()
    _metrics(tmp_path / "state", {"conditions": _conditions(False, False)}, extra=extra)  # its directory is there
    assert "takt_agent_ready 0" in extra.read_text().splitlines()


def test_runner_metrics_show_numbers_and_booleans_of_each_runner_and_skip_the_rest(tmp_path: Path) -> None:
    runners = [{"deployment": "press", "ready": True, "live": False, "frames": 10, "inferences": 9, "errors": 1,
                "errorRate": 0.1}, {"deployment": 'a"b\\c\nd' + "x" * 300, "ready": "yes", "frames": None}, "junk"]
    lines = _metrics(tmp_path, {"conditions": [], "runners": runners})
    values = [x for x in lines if x.startswith("takt_agent_runner") and not x.startswith("#")]
    assert values == [
        'takt_agent_runner_ready{deployment="press"} 1',
        'takt_agent_runner_live{deployment="press"} 0',
        'takt_agent_runner_frames{deployment="press"} 10',
        'takt_agent_runner_inferences{deployment="press"} 9',
        'takt_agent_runner_inference_errors{deployment="press"} 1',
        'takt_agent_runner_error_rate{deployment="press"} 0.1',
    ]
    assert "# TYPE takt_agent_runner_ready gauge" in lines and "# TYPE takt_agent_runner_error_rate gauge" in lines
    assert not any("runner_gate" in x for x in lines)


def test_runner_labels_are_escaped_and_cut_to_200_characters(tmp_path: Path) -> None:
    name = 'a"b\\c\nd' + "x" * 300
    lines = _metrics(tmp_path, {"conditions": [], "runners": [{"deployment": name, "frames": 1}]})
    (line,) = [x for x in lines if x.startswith("takt_agent_runner_frames{")]
    escaped = name[:200].replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    assert line == f'takt_agent_runner_frames{{deployment="{escaped}"}} 1'
    assert "\n" not in line and len(name[:200]) == 200


def test_the_runner_gate_finding_is_one_labelled_gauge_even_without_runners(tmp_path: Path) -> None:
    gate = {"deployment": "press", "gate": "errorRate", "reason": "ErrorRateExceeded"}
    lines = _metrics(tmp_path, {"conditions": [], "runnerGate": gate})
    assert lines[-1] == ('takt_agent_runner_gate{deployment="press",gate="errorRate",reason="ErrorRateExceeded",'
                         'source=""} 1')
    assert "# TYPE takt_agent_runner_gate gauge" in lines and "# TYPE takt_agent_runner_frames gauge" in lines
    lines = _metrics(tmp_path, {"conditions": [], "runnerGate": "not a finding"})
    assert "# TYPE takt_agent_runner_frames gauge" in lines and not any("runner_gate" in x for x in lines)
