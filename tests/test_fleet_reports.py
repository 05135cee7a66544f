"""The fleet reader (compiler/fleet/reports.py): status refs of a deploy repo, believed only when verified."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.report_git import KEEP_REPORTS, commit_report, push_report
from compiler.bundle.report import Condition, Rejected, StatusReport, seal
from compiler.fleet.reports import MAX_HISTORY, read_reports
from compiler.fleet.seen import SeenReport, parse_seen, seen_to_bytes

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _bare(path: Path) -> str:
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    return str(path)


def _report(device: str, seq: int, applied: int = 3) -> StatusReport:
    return StatusReport(
        device=device,
        sequence=seq,
        time=T0 + timedelta(minutes=seq),
        desired_generation=applied,
        applied_generation=applied,
        conditions=(Condition("Ready", True, "Applied", f"generation {applied} is running"),),
    )


class Device:
    """One simulated device: its own state dir and key, pushing with the agent's own transport."""

    def __init__(self, root: Path, name: str) -> None:
        self.name, self.state = name, root / name
        self.state.mkdir(parents=True)
        self.key = Ed25519PrivateKey.generate()

    def send(
        self, url: str, seq: int, key: Ed25519PrivateKey | None = None, report: StatusReport | None = None
    ) -> None:
        envelope = seal(report or _report(self.name, seq), key or self.key)
        commit_report(self.state, self.name, envelope, seq, T0)
        push_report(self.state, url, self.name, 60)


def _keys(*devices: Device):
    return {d.name: d.key.public_key() for d in devices}


def test_the_newest_report_of_each_device_is_believed_with_its_history(tmp_path: Path) -> None:
    url = _bare(tmp_path / "deploy.git")
    a, b = Device(tmp_path, "press-01"), Device(tmp_path, "press-02")
    for seq in (1, 2, 3):
        a.send(url, seq)
    b.send(url, 7)
    fleet = read_reports(url, _keys(a, b))
    assert fleet.latest["press-01"].sequence == 3 and fleet.latest["press-02"].sequence == 7
    assert [r.sequence for r in fleet.history["press-01"]] == [1, 2, 3]
    assert fleet.ignored == ()
    assert fleet.seen["press-01"].sequence == 3


def test_threat_a_forged_report_is_ignored_and_listed(tmp_path: Path) -> None:
    url = _bare(tmp_path / "deploy.git")
    a = Device(tmp_path, "press-01")
    a.send(url, 1, key=Ed25519PrivateKey.generate())
    fleet = read_reports(url, _keys(a))
    assert "press-01" not in fleet.latest
    assert [(i.device, i.reason) for i in fleet.ignored] == [("press-01", Rejected.BAD_SIGNATURE)]


def test_threat_a_report_for_another_device_is_ignored(tmp_path: Path) -> None:
    url = _bare(tmp_path / "deploy.git")
    a, b = Device(tmp_path, "press-01"), Device(tmp_path, "press-02")
    # a's genuine report, pushed to b's ref
    envelope = seal(_report("press-01", 5), a.key)
    commit_report(b.state, "press-02", envelope, 5, T0)
    push_report(b.state, url, "press-02", 60)
    fleet = read_reports(url, _keys(a, b))
    assert fleet.latest == {}
    assert [(i.device, i.reason) for i in fleet.ignored] == [("press-02", Rejected.WRONG_DEVICE)]


def test_threat_a_ref_reset_to_an_older_report_is_a_replay(tmp_path: Path) -> None:
    url = _bare(tmp_path / "deploy.git")
    a = Device(tmp_path, "press-01")
    a.send(url, 1)
    old = subprocess.run(["git", "--git-dir", url, "rev-parse", "refs/takt/status/press-01"], capture_output=True,
                         text=True, check=True).stdout.strip()  # fmt: skip
    a.send(url, 2)
    first = read_reports(url, _keys(a))
    assert first.latest["press-01"].sequence == 2
    subprocess.run(["git", "--git-dir", url, "update-ref", "refs/takt/status/press-01", old], check=True)
    second = read_reports(url, _keys(a), seen=first.seen)
    assert "press-01" not in second.latest
    assert [(i.reason, i.sequence) for i in second.ignored] == [(Rejected.REPLAYED, 1)]
    assert second.seen["press-01"].sequence == 2  # the memory never goes down
    # back at the report already seen: the same one again is not a replay
    subprocess.run(["git", "--git-dir", url, "update-ref", "refs/takt/status/press-01", first_tip(a)], check=True)
    again = read_reports(url, _keys(a), seen=first.seen)
    assert again.latest["press-01"].sequence == 2 and again.ignored == ()


def first_tip(device: Device) -> str:
    return subprocess.run(["git", "--git-dir", str(device.state / "status.git"), "rev-parse",
                           f"refs/takt/status/{device.name}"], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip


def test_threat_a_chain_whose_sequence_goes_back_is_not_believed_past_the_top(tmp_path: Path) -> None:
    url = _bare(tmp_path / "deploy.git")
    a = Device(tmp_path, "press-01")
    a.send(url, 5)
    a.send(url, 3)  # a genuine older report re-sent on top
    fleet = read_reports(url, _keys(a))
    assert fleet.latest["press-01"].sequence == 5
    assert [(i.reason, i.sequence) for i in fleet.ignored] == [(Rejected.REPLAYED, 3)]


def test_threat_unknown_and_keyless_devices_and_odd_refs_are_listed_not_fetched(tmp_path: Path) -> None:
    url = _bare(tmp_path / "deploy.git")
    a, stranger = Device(tmp_path, "press-01"), Device(tmp_path, "stranger")
    a.send(url, 1)
    stranger.send(url, 1)
    fleet = read_reports(url, {"press-01": None})
    assert sorted((i.device, i.reason) for i in fleet.ignored) == [
        ("press-01", Rejected.NO_KEY),
        ("stranger", Rejected.UNKNOWN_DEVICE),
    ]


def test_threat_an_oversized_or_missing_envelope_is_malformed_unread(tmp_path: Path) -> None:
    url = _bare(tmp_path / "deploy.git")
    a = Device(tmp_path, "press-01")
    commit_report(a.state, a.name, b"{" * (300 * 1024), 1, T0)
    push_report(a.state, url, a.name, 60)
    fleet = read_reports(url, _keys(a))
    assert fleet.latest == {}
    assert fleet.ignored[0].reason == Rejected.MALFORMED and "over" in fleet.ignored[0].message


def test_the_device_chain_stays_bounded_and_keeps_the_newest_reports(tmp_path: Path) -> None:
    url = _bare(tmp_path / "deploy.git")
    a = Device(tmp_path, "press-01")
    n = 2 * KEEP_REPORTS + 3
    for seq in range(1, n + 1):
        commit_report(a.state, a.name, seal(_report(a.name, seq), a.key), seq, T0)
    push_report(a.state, url, a.name, 60)
    count = subprocess.run(["git", "--git-dir", url, "rev-list", "--count", "refs/takt/status/press-01"],
                           capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert int(count) <= 2 * KEEP_REPORTS
    fleet = read_reports(url, _keys(a))
    assert fleet.latest["press-01"].sequence == n
    seqs = [r.sequence for r in fleet.history["press-01"]]
    assert seqs == list(range(n - len(seqs) + 1, n + 1)) and len(seqs) == min(MAX_HISTORY, int(count))


def test_seen_memory_round_trips_and_refuses_damage() -> None:
    seen = {"a": SeenReport(3, "f" * 64)}
    assert parse_seen(seen_to_bytes(seen)) == seen
    with pytest.raises(ValueError):
        parse_seen(b'{"version": "takt/fleet-seen/v1", "devices": {"a": {"sequence": -1}}}')


def test_a_device_public_key_that_does_not_load_is_located_TAKT1013(repo) -> None:
    from tests.conftest import codes, only

    r = repo({"k.yaml": "apiVersion: takt/v1\nkind: Device\nmetadata: {name: d2}\nspec:\n  target: ipc\n"
              "  publicKey: ssh-rsa AAAAB3NzaC1yc2E\n"})  # fmt: skip
    d = only(r, "TAKT1013")
    assert (d.location.file, d.location.line, d.location.column) == ("k.yaml", 6, 14)
    assert d.path == "spec.publicKey"
    good = Ed25519PrivateKey.generate().public_key()
    from compiler.bundle.report import openssh_public_key

    r = repo({"k.yaml": "apiVersion: takt/v1\nkind: Device\nmetadata: {name: d2}\nspec:\n  target: ipc\n"
              f"  publicKey: {openssh_public_key(good)}\n"})  # fmt: skip
    assert "TAKT1013" not in codes(r) and "TAKT1010" not in codes(r), codes(r)


def test_threat_the_branch_gives_generations_and_phases_but_never_links_or_bundles(tmp_path: Path) -> None:
    from compiler.fleet.status import read_branch

    url = _bare(tmp_path / "deploy.git")
    work = tmp_path / "work"
    (work / "devices" / "press-01").mkdir(parents=True)
    (work / "devices" / "press-01" / "desired.json").write_text('{"generation": 7, "device": "press-01"}')
    (work / "devices" / "press-02").mkdir()
    (work / "devices" / "press-02" / "desired.json").symlink_to("/etc/passwd")
    (work / "rollouts").mkdir()
    (work / "rollouts" / "press.json").write_text('{"phase": "Canary", "canaries": ["press-01"]}')
    (work / "rollouts" / "broken.json").write_text("[" * 100_000)
    (work / "bundles").mkdir()
    (work / "bundles" / "model.onnx").write_bytes(b"x" * 100_000)
    for args in (
        ["init", "-q"],
        ["add", "-A"],
        ["commit", "-qm", "publish"],
        ["push", "-q", url, "HEAD:refs/heads/deploy"],
    ):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=work, check=True)
    branch = read_branch(url, "deploy", ["press-01", "press-02", "press-03"])
    assert branch.desired == {"press-01": 7}
    assert branch.phases == {"press-01": "Canary (canary)"}
    assert read_branch(url, "no-such-branch", ["press-01"]).desired == {}


def test_threat_hundreds_of_spam_refs_are_listed_unknown_and_the_declared_ones_still_read(tmp_path: Path) -> None:
    # spam refs of no declared device are listed from the ref listing alone, never fetched
    url = _bare(tmp_path / "deploy.git")
    a = Device(tmp_path, "press-01")
    a.send(url, 4)
    tip = first_tip(a)
    spam = 600  # more than any list of refspecs git matches quickly
    lines = "".join(f"create refs/takt/status/spam-{i:04d} {tip}\n" for i in range(spam))
    subprocess.run(["git", "--git-dir", url, "update-ref", "--stdin"], input=lines.encode(), check=True)
    fleet = read_reports(url, _keys(a))
    assert fleet.latest["press-01"].sequence == 4
    assert sum(i.reason == Rejected.UNKNOWN_DEVICE for i in fleet.ignored) == spam


def test_threat_a_rollout_reads_only_its_step_devices_and_still_refuses_their_forgeries(tmp_path: Path) -> None:
    url = _bare(tmp_path / "deploy.git")
    step, forged, other = (Device(tmp_path, n) for n in ("press-01", "press-02", "press-03"))
    step.send(url, 3)
    forged.send(url, 4, key=Ed25519PrivateKey.generate())
    other.send(url, 9)
    memory = {"press-03": SeenReport(5, "0" * 64)}
    fleet = read_reports(url, _keys(step, forged, other), seen=memory, only={"press-01", "press-02"})
    assert set(fleet.latest) == {"press-01"} and fleet.latest["press-01"].sequence == 3
    assert [(i.device, i.reason) for i in fleet.ignored] == [("press-02", Rejected.BAD_SIGNATURE)]
    assert fleet.seen["press-03"] == memory["press-03"]  # not read: its memory is kept as it was
    assert read_reports(url, _keys(step, forged, other)).latest["press-03"].sequence == 9  # all, when not restricted
