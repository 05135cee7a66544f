"""agent.verify decided without git: each refusal of a signed state has its own reason, and each check its test.

The agent tests go through a real git daemon (slow, so `make mutation` maps this file to agent/verify.py):
the device binding, the generation rules, expiry, bounded reads and bundle bytes, one case each.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.reasons import Reason
from agent.verify import (
    Refused,
    listed_paths,
    load_trusted,
    manifest_paths,
    release_id,
    state_paths,
    verify_bundles,
    verify_state,
)
from compiler.bundle import MANIFEST, BundleRef, DesiredState, ShadowOf, key_id, sign, write_bundle

NOW = datetime(2030, 1, 1, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()
PROV = {"sourceCommit": "a" * 40, "compiler": "0.1.0"}


def place(workdir: Path, state: DesiredState, *, device: str | None = None, key: Ed25519PrivateKey = KEY,
          data: bytes | None = None) -> None:
    ddir = workdir / "devices" / (device or state.device)
    ddir.mkdir(parents=True, exist_ok=True)
    data = state.to_bytes() if data is None else data
    (ddir / "desired.json").write_bytes(data)
    (ddir / "desired.json.sig").write_bytes(sign(data, key))


def state(device: str = "ipc-1", generation: int = 5, digest: str = "a" * 64, name: str = "d/t",
          expires: datetime = NOW + timedelta(days=1)) -> DesiredState:
    return DesiredState(device, generation, expires, (BundleRef(name, digest),))


def check(workdir: Path, accepted: int = 0, release: str | None = None, now: datetime = NOW, device: str = "ipc-1"):
    return verify_state(workdir, device, [KEY.public_key()], accepted, release, now)


def refused(workdir: Path, **kw) -> Reason:
    with pytest.raises(Refused) as exc:
        check(workdir, **kw)
    assert exc.value.message == str(exc.value)
    return exc.value.reason


def test_a_good_state_is_verified_with_its_key_and_release(tmp_path: Path):
    s = state()
    place(tmp_path, s)
    v = check(tmp_path)
    assert (v.state, v.key_id, v.release_id) == (s, key_id(KEY.public_key()), release_id(s))


def test_threat_a_state_signed_for_another_device_is_refused(tmp_path: Path):
    place(tmp_path, state(device="ipc-2"), device="ipc-1")
    assert refused(tmp_path) is Reason.WRONG_DEVICE


def test_generation_rules(tmp_path: Path):
    s = state(generation=5)
    place(tmp_path, s)
    rid = release_id(s)
    assert refused(tmp_path, accepted=6) is Reason.ROLLBACK_REFUSED
    assert refused(tmp_path, accepted=5, release="f" * 64) is Reason.GENERATION_REUSED
    assert check(tmp_path, accepted=5, release=rid).state == s  # the same release again is fine
    assert check(tmp_path, accepted=5, release=None).state == s
    assert check(tmp_path, accepted=4, release="f" * 64).state == s


def test_expiry_is_exclusive(tmp_path: Path):
    s = state()
    place(tmp_path, s)
    assert refused(tmp_path, now=s.expires) is Reason.EXPIRED
    assert check(tmp_path, now=s.expires - timedelta(seconds=1)).state == s


def test_threat_missing_unsigned_or_untrusted_input_has_its_own_reason(tmp_path: Path):
    assert refused(tmp_path) is Reason.NO_DESIRED_STATE
    s = state()
    place(tmp_path, s)
    (tmp_path / "devices/ipc-1/desired.json.sig").unlink()
    assert refused(tmp_path) is Reason.SIGNATURE_MISSING
    place(tmp_path, s, key=Ed25519PrivateKey.generate())
    assert refused(tmp_path) is Reason.UNTRUSTED_KEY
    place(tmp_path, s)
    (tmp_path / "devices/ipc-1/desired.json").write_bytes(s.to_bytes() + b" ")
    assert refused(tmp_path) is Reason.SIGNATURE_INVALID
    (tmp_path / "devices/ipc-1/desired.json.sig").write_bytes(b"{")
    assert refused(tmp_path) is Reason.SIGNATURE_INVALID


def test_threat_oversized_or_linked_input_is_refused_unread(tmp_path: Path):
    place(tmp_path, state())
    (tmp_path / "devices/ipc-1/desired.json").write_bytes(b" " * ((1 << 20) + 1))
    assert refused(tmp_path) is Reason.DESIRED_STATE_INVALID
    place(tmp_path, state())
    (tmp_path / "devices/ipc-1/desired.json.sig").write_bytes(b" " * 4097)
    assert refused(tmp_path) is Reason.SIGNATURE_INVALID


def test_threat_signed_but_malformed_states_are_invalid(tmp_path: Path):
    place(tmp_path, state(), data=json.dumps({"version": 1}).encode())
    assert refused(tmp_path) is Reason.DESIRED_STATE_INVALID
    place(tmp_path, state(name="no-deployment"))
    assert refused(tmp_path) is Reason.DESIRED_STATE_INVALID


def test_release_id_binds_names_and_digests_not_their_order():
    a, b = BundleRef("d1/t", "a" * 64), BundleRef("d2/t", "b" * 64)
    one = DesiredState("x", 1, NOW, (a, b))
    assert release_id(one) == release_id(DesiredState("y", 2, NOW, (b, a)))
    assert release_id(one) != release_id(DesiredState("x", 1, NOW, (a, BundleRef("d2/t", "c" * 64))))
    assert release_id(one) != release_id(DesiredState("x", 1, NOW, (a, BundleRef("d3/t", "b" * 64))))


def test_load_trusted_names_a_bad_key_file(tmp_path: Path):
    good = tmp_path / "k.pem"
    good.write_bytes(KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo))
    (tmp_path / "bad.pem").write_bytes(b"nope")
    assert [key_id(k) for k in load_trusted((good, good))] == [key_id(KEY.public_key())] * 2
    for bad in (tmp_path / "bad.pem", tmp_path / "missing.pem"):
        with pytest.raises(Refused) as exc:
            load_trusted((good, bad))
        assert exc.value.reason is Reason.UNTRUSTED_KEY_FILE and str(bad) in exc.value.message


def test_fetched_paths_are_exactly_the_signed_ones(tmp_path: Path):
    assert state_paths("ipc-1") == ["/devices/ipc-1/desired.json", "/devices/ipc-1/desired.json.sig"]
    m1 = write_bundle(tmp_path / "bundles", "d1/t", "edge-pc", {"a.txt": b"1", "x/b.txt": b"2"}, PROV)
    m2 = write_bundle(tmp_path / "bundles", "d2/t", "edge-pc", {"c.txt": b"3"}, PROV)
    forged = "e" * 64  # a manifest under another digest's name lists nothing
    (tmp_path / "bundles" / forged).mkdir()
    (tmp_path / "bundles" / forged / MANIFEST).write_bytes((tmp_path / "bundles" / m2.digest / MANIFEST).read_bytes())
    s = DesiredState("ipc-1", 1, NOW, (BundleRef("d1/t", m1.digest), BundleRef("d2/t", m2.digest),
                                       BundleRef("d3/t", forged), BundleRef("d4/t", "f" * 64)))
    assert manifest_paths(s) == [f"/bundles/{d}/{MANIFEST}" for d in (m1.digest, m2.digest, forged, "f" * 64)]
    assert listed_paths(tmp_path, s) == [
        f"/bundles/{m1.digest}/a.txt", f"/bundles/{m1.digest}/x/b.txt", f"/bundles/{m2.digest}/c.txt"]
    assert verify_bundles(tmp_path, DesiredState("ipc-1", 1, NOW, s.bundles[:2])) == {m1.digest: m1, m2.digest: m2}
    (tmp_path / "bundles" / m2.digest / "c.txt").write_bytes(b"4")
    with pytest.raises(Refused) as exc:
        verify_bundles(tmp_path, DesiredState("ipc-1", 1, NOW, s.bundles[:2]))
    assert exc.value.reason is Reason.BUNDLE_INVALID
    assert exc.value.message.startswith(f"bundle d2/t ({m2.digest[:12]}): ")


def test_a_verified_state_cannot_be_changed_after_verification(tmp_path: Path):
    import dataclasses

    place(tmp_path, state())
    v = check(tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.release_id = "f" * 64  # type: ignore[misc]


def test_an_unreadable_manifest_skips_only_its_own_bundle(tmp_path: Path):
    m1 = write_bundle(tmp_path / "bundles", "d1/t", "edge-pc", {"a.txt": b"1"}, PROV)
    s = DesiredState("ipc-1", 1, NOW, (BundleRef("d0/t", "f" * 64), BundleRef("d1/t", m1.digest)))
    assert listed_paths(tmp_path, s) == [f"/bundles/{m1.digest}/a.txt"]


def test_the_other_devices_name_is_quoted_to_80_characters(tmp_path: Path):
    place(tmp_path, state(device="z" * 200), device="ipc-1")
    with pytest.raises(Refused) as exc:
        check(tmp_path)
    assert exc.value.reason is Reason.WRONG_DEVICE
    assert repr("z" * 80) in exc.value.message and "z" * 81 not in exc.value.message


def test_a_bundle_with_several_problems_is_refused_naming_the_first(tmp_path: Path):
    m = write_bundle(tmp_path / "bundles", "d1/t", "edge-pc", {"a.txt": b"1", "b.txt": b"2"}, PROV)
    (tmp_path / "bundles" / m.digest / "a.txt").write_bytes(b"x")
    (tmp_path / "bundles" / m.digest / "b.txt").unlink()
    with pytest.raises(Refused) as exc:
        verify_bundles(tmp_path, DesiredState("ipc-1", 1, NOW, (BundleRef("d1/t", m.digest),)))
    assert exc.value.message.startswith(f"bundle d1/t ({m.digest[:12]}): a.txt: ")


def test_release_id_binds_a_challengers_terms_and_window_not_the_order():
    current = BundleRef("d1/t", "a" * 64)

    def rid(*challenger: BundleRef) -> str:
        return release_id(DesiredState("x", 1, NOW, (current, *challenger)))

    windowless = BundleRef("d1/t", "b" * 64, ShadowOf(0.5))
    ids = {
        rid(),
        rid(windowless),
        rid(BundleRef("d1/t", "b" * 64, ShadowOf(0.25))),
        rid(BundleRef("d1/t", "b" * 64, ShadowOf(0.5, 60.0))),
        rid(BundleRef("d1/t", "b" * 64, ShadowOf(0.5, 120.0))),
    }
    assert len(ids) == 5  # each term of the shadow rollout is part of what the device runs
    # the challenger shares its current bundle's name: either order in desired.json is one release
    assert release_id(DesiredState("x", 1, NOW, (windowless, current))) == rid(windowless)


def test_a_release_id_is_its_documented_digest_so_a_quarantine_outlives_an_agent_upgrade():
    """The quarantine (agent.json) and the release directories are keyed by release id: an agent that computed
    another id for the same state after an upgrade would re-activate a release it had quarantined. So the id is
    the format `release_id` documents — sorted by name, a current bundle before its challenger, one line each."""
    import hashlib

    current, other = BundleRef("d1/t", "a" * 64), BundleRef("d0/t", "c" * 64)
    challenger = BundleRef("d1/t", "b" * 64, ShadowOf(0.5, 60.0))
    lines = (f"d0/t\0{'c' * 64}\n" f"d1/t\0{'a' * 64}\n" f"d1/t\0{'b' * 64}\0shadow\0{0.5!r}\0window\0{60.0!r}\n")
    expected = hashlib.sha256(lines.encode()).hexdigest()
    assert release_id(DesiredState("x", 1, NOW, (challenger, current, other))) == expected
    plain = hashlib.sha256(f"d0/t\0{'c' * 64}\nd1/t\0{'a' * 64}\n".encode()).hexdigest()
    assert release_id(DesiredState("x", 1, NOW, (current, other))) == plain  # the format before challengers
