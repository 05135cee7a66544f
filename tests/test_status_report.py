"""The signed device status report (compiler/bundle/report.py): the contract agents write and the fleet reads."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from compiler.bundle.desired import BundleRef
from compiler.bundle.report import (
    MAX_ENVELOPE_BYTES,
    Condition,
    Rejected,
    ReportRejected,
    RunnerHealth,
    ShadowHealth,
    StatusReport,
    load_device_public_key,
    open_envelope,
    openssh_public_key,
    seal,
)

KEY = Ed25519PrivateKey.generate()
PUB = load_device_public_key(openssh_public_key(KEY.public_key()))


def _report(device: str = "press-01", sequence: int = 7) -> StatusReport:
    return StatusReport(
        device=device,
        sequence=sequence,
        time=datetime(2026, 12, 1, 12, 0, 0, 123000, tzinfo=UTC),
        desired_generation=5,
        applied_generation=4,
        bundles=(BundleRef("press", "a" * 64),),
        conditions=(Condition("Ready", True, "Applied", "generation 4"),),
        runners=(
            RunnerHealth(
                "press",
                "a" * 64,
                ready=True,
                frames=100,
                inferences=98,
                errors=1,
                error_rate=0.0102,
                inference_p99_ms=0.8,
                drift_psi_max=0.05,
                shadow=ShadowHealth("b" * 64, 98, 0.99, 0.01, 0.2, 0.9, 0.0),
            ),
        ),
    )


def test_a_sealed_report_opens_to_the_same_report_with_its_device_key() -> None:
    report = _report()
    assert open_envelope(seal(report, KEY), {"press-01": PUB}, "press-01") == report


@pytest.mark.parametrize(
    ("keys", "via", "reason"),
    [
        ({"press-01": Ed25519PrivateKey.generate().public_key()}, "press-01", Rejected.BAD_SIGNATURE),
        ({"press-01": PUB, "press-02": PUB}, "press-02", Rejected.WRONG_DEVICE),
        ({"press-02": PUB}, None, Rejected.UNKNOWN_DEVICE),
        ({"press-01": None}, None, Rejected.NO_KEY),
    ],
)
def test_threat_a_report_not_signed_by_the_declared_key_of_its_own_device_is_rejected(keys, via, reason) -> None:
    with pytest.raises(ReportRejected) as err:
        open_envelope(seal(_report(), KEY), keys, via)
    assert err.value.reason is reason


def test_threat_a_payload_swapped_under_a_valid_signature_is_rejected() -> None:
    env = json.loads(seal(_report(), KEY))
    other = _report(sequence=99).to_bytes()
    env["payload"] = base64.b64encode(other).decode()
    with pytest.raises(ReportRejected) as err:
        open_envelope(json.dumps(env).encode(), {"press-01": PUB}, "press-01")
    assert err.value.reason is Rejected.BAD_SIGNATURE


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"[]",
        b"{" * 10_000,
        b" " * (MAX_ENVELOPE_BYTES + 1),
        json.dumps({"version": "takt/status/v1", "payload": "!!", "keyId": "x", "signature": ""}).encode(),
    ],
)
def test_threat_malformed_or_oversized_envelopes_are_rejected_unparsed(data: bytes) -> None:
    with pytest.raises(ReportRejected) as err:
        open_envelope(data, {"press-01": PUB}, None)
    assert err.value.reason is Rejected.MALFORMED


@pytest.mark.parametrize(
    "change",
    [
        {"sequence": -1},
        {"sequence": True},
        {"time": "yesterday"},
        {"bundles": [{"name": "x", "digest": "../../etc"}]},
        {"runners": [{"deployment": "x"}]},
        {"conditions": [{"type": "Ready", "status": "yes", "reason": "", "message": ""}]},
        {"device": "x" * 10_000},
    ],
)
def test_threat_a_signed_but_mistyped_payload_is_malformed_not_a_crash(change: dict) -> None:
    doc = _report().to_json() | change
    payload = json.dumps(doc).encode()
    env = json.dumps(
        {
            "version": "takt/status/v1",
            "payload": base64.b64encode(payload).decode(),
            "keyId": "0" * 16,
            "signature": base64.b64encode(KEY.sign(payload)).decode(),
        }
    ).encode()
    with pytest.raises(ReportRejected) as err:
        open_envelope(env, {"press-01": PUB}, None)
    assert err.value.reason is Rejected.MALFORMED


def test_next_report_grows_the_sequence() -> None:
    r = _report()
    later = datetime(2026, 12, 1, 13, tzinfo=UTC)
    n = r.next(later, applied_generation=5)
    assert (n.sequence, n.time, n.applied_generation) == (8, later, 5)


def test_device_keys_load_from_openssh_and_refuse_other_algorithms() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    ecdsa = ec.generate_private_key(ec.SECP256R1()).public_key()
    line = ecdsa.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    with pytest.raises(ValueError, match="ed25519"):
        load_device_public_key(line)
    with pytest.raises(ValueError, match="not a public key"):
        load_device_public_key("ssh-ed25519 AAAA-garbage")
