"""compiler/bundle/report.py at its exact edges: every bound and type rule of the signed status report.

A status report is unsigned input until verified, and the fleet believes what it says about a device; each rule
(text and list lengths, integer range, the time format, rounding, the envelope's bounds) is pinned here at its
limit and one past it, so a bound moved either way fails a test (`make mutation`).
"""

from __future__ import annotations

import base64
import json
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from compiler.bundle import report as rp
from compiler.bundle.desired import BundleRef, key_id
from compiler.bundle.report import (
    Condition,
    Rejected,
    ReportRejected,
    RunnerHealth,
    ShadowHealth,
    StatusReport,
    open_envelope,
    seal,
)

KEY = Ed25519PrivateKey.generate()
PUB = KEY.public_key()
T = datetime(2026, 12, 2, 6, 7, 8, 90, tzinfo=UTC)


def report(**change: object) -> StatusReport:
    base = StatusReport("dev-1", 3, T, 2, 1, (BundleRef("d/t", "a" * 64),), (Condition("Ready", True, "Applied"),),
                        (RunnerHealth("d", "a" * 64, True),), ("b" * 64,))
    return StatusReport(**{**base.__dict__, **change})


def parse_doc(doc: dict) -> StatusReport:
    return StatusReport.parse(json.dumps(doc).encode())


def malformed(doc: object) -> str:
    with pytest.raises(ReportRejected) as info:
        StatusReport.parse(json.dumps(doc).encode())
    assert info.value.reason is Rejected.MALFORMED
    return str(info.value)


def envelope(payload: bytes, signature: bytes | None = None, /, **change: object) -> bytes:
    doc = {"version": rp.REPORT_VERSION, "payload": base64.b64encode(payload).decode(), "keyId": key_id(PUB),
           "signature": base64.b64encode(KEY.sign(payload) if signature is None else signature).decode()}
    return json.dumps({**doc, **change}).encode()


def test_the_names_and_limits_are_the_contract() -> None:
    assert (rp.REPORT_VERSION, rp.STATUS_REF_PREFIX, rp.MQTT_TOPIC_PREFIX, rp.REPORT_FILE) == (
        "takt/status/v1", "refs/takt/status/", "takt/status/", "status.json")
    assert (rp.MAX_ENVELOPE_BYTES, rp.MAX_PAYLOAD_BYTES, rp._MAX_DEPTH, rp._MAX_TEXT) == (
        256 * 1024, 192 * 1024, 8, 512)
    assert [r.value for r in Rejected] == ["Malformed", "UnknownDevice", "NoDeclaredKey", "BadSignature",
                                           "WrongDevice", "Replayed"]


def test_a_report_writes_its_fields_and_parses_back() -> None:
    r = report()
    doc = r.to_json()
    assert doc == {"version": "takt/status/v1", "device": "dev-1", "sequence": 3, "time": "2026-12-02T06:07:08.000090Z",
                   "desiredGeneration": 2, "appliedGeneration": 1, "bundles": [{"name": "d/t", "digest": "a" * 64}],
                   "conditions": [{"type": "Ready", "status": True, "reason": "Applied", "message": ""}],
                   "runners": [rp.runner_to_json(r.runners[0])], "quarantined": ["b" * 64]}
    assert StatusReport.parse(r.to_bytes()) == r
    assert r.condition("Ready") == Condition("Ready", True, "Applied") and r.condition("Stalled") is None
    with pytest.raises(FrozenInstanceError):
        r.sequence = 4  # type: ignore[misc]


def test_a_time_in_another_zone_is_written_in_utc() -> None:
    from datetime import timedelta, timezone

    local = datetime(2026, 12, 2, 8, 7, 8, tzinfo=timezone(timedelta(hours=2)))
    assert report(time=local).to_json()["time"] == "2026-12-02T06:07:08.000000Z"


def test_the_generations_may_be_null() -> None:
    doc = report().to_json() | {"desiredGeneration": None}
    del doc["appliedGeneration"]
    got = parse_doc(doc)
    assert (got.desired_generation, got.applied_generation) == (None, None)


@pytest.mark.parametrize("text", ["2026-12-02T06:07:08.1Z", "2026-12-02T06:07:08.123456Z"])
def test_times_with_one_to_six_fraction_digits_parse(text: str) -> None:
    got = parse_doc(report().to_json() | {"time": text})
    assert got.time == datetime(2026, 12, 2, 6, 7, 8, int(text[20:-1].ljust(6, "0")), tzinfo=UTC)


@pytest.mark.parametrize("text", ["2026-12-02T06:07:08Z", "2026-12-02T06:07:08.1234567Z", "2026-12-02T06:07:08.1",
                                  "2026-12-02 06:07:08.1Z", " 2026-12-02T06:07:08.1Z", "2026-12-02T06:07:08.1Z\n",
                                  "２026-12-02T06:07:08.1Z", 20261202])
def test_threat_any_other_time_is_malformed(text: object) -> None:
    assert "time must be an RFC 3339 UTC string" in malformed(report().to_json() | {"time": text})


def test_threat_text_is_clipped_to_512_on_write_and_refused_past_512_on_read() -> None:
    long = "r" * 600
    written = report(conditions=(Condition("Ready", False, long, long),),
                     runners=(RunnerHealth("d", "a" * 64, False, reason=long),)).to_json()
    assert written["conditions"][0]["reason"] == written["conditions"][0]["message"] == "r" * 512
    assert written["runners"][0]["reason"] == "r" * 512
    assert parse_doc(report().to_json() | {"device": "x" * 512}).device == "x" * 512
    assert "device must be a string of at most 512 characters" in malformed(report().to_json() | {"device": "x" * 513})
    assert "device must be a string" in malformed(report().to_json() | {"device": 5})


def test_threat_a_list_holds_at_most_256_items() -> None:
    ok = parse_doc(report().to_json() | {"quarantined": ["b" * 64] * 256})
    assert len(ok.quarantined) == 256
    assert "quarantined must be a list of at most 256 items" in malformed(
        report().to_json() | {"quarantined": ["b" * 64] * 257})
    assert "bundles must be a list" in malformed(report().to_json() | {"bundles": {}})


@pytest.mark.parametrize("value", [0, 2**63 - 1])
def test_integers_from_zero_to_two_to_the_63_minus_one_parse(value: int) -> None:
    assert parse_doc(report().to_json() | {"sequence": value}).sequence == value


@pytest.mark.parametrize("value", [-1, 2**63, True, 1.0, "1"])
def test_threat_other_integers_are_malformed(value: object) -> None:
    assert "sequence must be a non-negative integer" in malformed(report().to_json() | {"sequence": value})


@pytest.mark.parametrize("digest", ["a" * 63, "a" * 65, "A" * 64, "g" * 64, 7])
def test_threat_a_quarantined_digest_must_be_64_lower_hex_digits(digest: object) -> None:
    assert "a bundle digest must be 64 hex digits" in malformed(report().to_json() | {"quarantined": [digest]})


def test_threat_a_condition_status_must_be_a_boolean() -> None:
    doc = report().to_json()
    doc["conditions"][0]["status"] = 1
    assert "status must be true or false" in malformed(doc)


@pytest.mark.parametrize("doc", [[], {"version": "takt/status/v2"}, {}])
def test_threat_a_document_that_is_no_v1_report_is_malformed(doc: object) -> None:
    assert "not a takt/status/v1 report" in malformed(doc)


def test_threat_a_missing_key_is_malformed_and_named() -> None:
    doc = report().to_json()
    del doc["device"]
    assert "'device'" in malformed(doc)
    doc = report().to_json()
    doc["runners"] = [5]
    assert "malformed status report" in malformed(doc)


def test_threat_the_payload_is_bounded_in_bytes_and_depth() -> None:
    doc = report().to_json()
    pad = rp.MAX_PAYLOAD_BYTES - len(json.dumps(doc | {"extra": ""}).encode())
    exact = json.dumps(doc | {"extra": "x" * pad}).encode()
    assert len(exact) == rp.MAX_PAYLOAD_BYTES and StatusReport.parse(exact) == report()
    with pytest.raises(ReportRejected, match="over the limit"):
        StatusReport.parse(exact.replace(b'"extra": "', b'"extra": "x'))
    deep = doc | {"extra": [[[[[[[1]]]]]]]}  # the report (1) and 7 lists: 8 levels
    assert StatusReport.parse(json.dumps(deep).encode()) == report()
    with pytest.raises(ReportRejected, match="nests more than 8 levels deep"):
        StatusReport.parse(json.dumps(doc | {"extra": [[[[[[[[1]]]]]]]]}).encode())


# --- runner health --------------------------------------------------------------------------------


def test_runner_health_round_trips_with_its_shadow_and_rounds_to_six_places() -> None:
    shadow = ShadowHealth("c" * 64, 10, 0.1234567, 0.5, None, 2.0, 0.0)
    r = RunnerHealth("d", "a" * 64, False, live=False, reason="source plc down", frames=5, inferences=4, errors=1,
                     error_rate=0.25, inference_p99_ms=1.0000004, drift_psi_max=float("inf"), shadow=shadow)
    doc = rp.runner_to_json(r)
    assert doc == {"deployment": "d", "bundle": "a" * 64, "ready": False, "live": False, "reason": "source plc down",
                   "frames": 5, "inferences": 4, "errors": 1, "errorRate": 0.25, "inferenceP99Ms": 1.0,
                   "driftPsiMax": None, "shadow": {"challenger": "c" * 64, "frames": 10, "agreement": 0.123457,
                                                   "meanAbsDiff": 0.5, "p99AbsDiff": None, "inferenceP99Ms": 2.0,
                                                   "errorRate": 0.0}}
    assert r.to_json() == doc
    back = rp.runner_from_json(doc)
    assert back == RunnerHealth("d", "a" * 64, False, live=False, reason="source plc down", frames=5, inferences=4,
                                errors=1, error_rate=0.25, inference_p99_ms=1.0, drift_psi_max=None,
                                shadow=ShadowHealth("c" * 64, 10, 0.123457, 0.5, None, 2.0, 0.0))
    assert rp.runner_to_json(RunnerHealth("d", "a" * 64, True))["shadow"] is None
    assert rp.runner_from_json(rp.runner_to_json(RunnerHealth("d", "a" * 64, True))).shadow is None


def test_an_integer_rate_parses_as_a_float_and_nan_is_written_as_null() -> None:
    doc = rp.runner_to_json(RunnerHealth("d", "a" * 64, True, error_rate=float("nan")))
    assert doc["errorRate"] is None
    got = rp.runner_from_json(doc | {"errorRate": 1})
    assert got.error_rate == 1.0 and isinstance(got.error_rate, float)


@pytest.mark.parametrize("value", [True, "0.1", float("inf")])
def test_threat_a_rate_that_is_no_finite_number_is_refused(value: object) -> None:
    doc = rp.runner_to_json(RunnerHealth("d", "a" * 64, True)) | {"errorRate": value}
    with pytest.raises(ValueError, match="errorRate must be a finite number"):
        rp.runner_from_json(doc)


@pytest.mark.parametrize("doc", [{}, [], None, {"deployment": "d"}])
def test_threat_malformed_runner_health_is_a_value_error(doc: object) -> None:
    with pytest.raises(ValueError, match="malformed runner health"):
        rp.runner_from_json(doc)


# --- the envelope ---------------------------------------------------------------------------------


def test_a_sealed_envelope_is_canonical_and_names_the_key() -> None:
    data = seal(report(), KEY)
    doc = json.loads(data)
    assert data == rp.canonical_json(doc) and set(doc) == {"version", "payload", "keyId", "signature"}
    assert doc["keyId"] == key_id(PUB) and base64.b64decode(doc["payload"]) == report().to_bytes()
    assert open_envelope(data, {"dev-1": PUB}, None) == report()


def test_threat_seal_refuses_a_payload_over_its_limit_and_takes_one_at_it(monkeypatch: pytest.MonkeyPatch) -> None:
    size = len(report().to_bytes())
    monkeypatch.setattr(rp, "MAX_PAYLOAD_BYTES", size)
    assert open_envelope(seal(report(), KEY), {"dev-1": PUB}, "dev-1") == report()
    monkeypatch.setattr(rp, "MAX_PAYLOAD_BYTES", size - 1)
    with pytest.raises(ValueError, match=f"status report of {size} bytes exceeds {size - 1}"):
        seal(report(), KEY)


def test_threat_the_envelope_is_bounded_at_exactly_its_limit() -> None:
    data = seal(report(), KEY)
    exact = data + b" " * (rp.MAX_ENVELOPE_BYTES - len(data))
    assert open_envelope(exact, {"dev-1": PUB}, None) == report()
    with pytest.raises(ReportRejected, match="over the limit") as info:
        open_envelope(exact + b" ", {"dev-1": PUB}, None)
    assert info.value.reason is Rejected.MALFORMED


def test_threat_the_envelope_nests_at_most_three_levels() -> None:
    payload = report().to_bytes()
    assert open_envelope(envelope(payload, extra=[[1]]), {"dev-1": PUB}, None) == report()
    with pytest.raises(ReportRejected, match="nests more than 3 levels deep"):
        open_envelope(envelope(payload, extra=[[[1]]]), {"dev-1": PUB}, None)


@pytest.mark.parametrize(("change", "words"), [
    ({"version": "takt/status/v0"}, "not a takt/status/v1 envelope"),
    ({"signature": 5}, "signature must be a string"),
    ({"signature": "A" * 129}, "signature must be a string"),
    ({"payload": "@@@@"}, "malformed status envelope"),
    ({"payload": None}, "payload must be a string"),
])
def test_threat_a_malformed_envelope_names_why(change: dict, words: str) -> None:
    with pytest.raises(ReportRejected, match=words) as info:
        open_envelope(envelope(report().to_bytes(), **change), {"dev-1": PUB}, None)
    assert info.value.reason is Rejected.MALFORMED


def test_a_signature_of_exactly_128_characters_is_read_and_checked() -> None:
    sig = base64.b64encode(b"\0" * 96).decode()
    assert len(sig) == 128
    with pytest.raises(ReportRejected) as info:
        open_envelope(envelope(report().to_bytes(), b"\0" * 96), {"dev-1": PUB}, None)
    assert info.value.reason is Rejected.BAD_SIGNATURE


def test_threat_the_rejections_name_the_device_clipped() -> None:
    long = "d" * 100
    data = seal(report(device=long), KEY)
    with pytest.raises(ReportRejected) as info:
        open_envelope(data, {long: PUB}, "dev-1")
    assert info.value.reason is Rejected.WRONG_DEVICE
    assert str(info.value) == f"report names device {rp.clip(long, 64)} but came from dev-1"
    with pytest.raises(ReportRejected) as info:
        open_envelope(data, {}, None)
    assert info.value.reason is Rejected.UNKNOWN_DEVICE
    assert str(info.value) == f"no Device spec declares {rp.clip(long, 64)}"
    with pytest.raises(ReportRejected) as info:
        open_envelope(seal(report(), KEY), {"dev-1": None}, "dev-1")
    assert str(info.value) == "the Device spec of dev-1 declares no publicKey"
    with pytest.raises(ReportRejected) as info:
        open_envelope(seal(report(), KEY), {"dev-1": Ed25519PrivateKey.generate().public_key()}, "dev-1")
    assert str(info.value) == "report for dev-1 is not signed by its key"


# --- keys -----------------------------------------------------------------------------------------


def test_a_device_key_loads_from_pem_and_from_openssh_with_white_space() -> None:
    pem = PUB.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    line = rp.openssh_public_key(PUB)
    assert line.startswith("ssh-ed25519 AAAA")
    for text in (pem, f"  {line}\n", f"\n{pem}\n"):
        assert key_id(rp.load_device_public_key(text)) == key_id(PUB)


@pytest.mark.parametrize("text", ["-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", "", "ssh-ed25519",
                                  "ssh-ed25519 !!!!"])
def test_threat_a_device_key_that_does_not_load_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="not a public key"):
        rp.load_device_public_key(text)


def test_threat_a_pem_key_of_another_algorithm_is_refused() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with pytest.raises(ValueError, match="not an ed25519 public key"):
        rp.load_device_public_key(pem)


def test_a_runner_health_names_only_what_it_knows_the_rest_defaults_to_live_and_zero() -> None:
    r = RunnerHealth("d", "a" * 64, True)
    assert (r.live, r.reason, r.frames, r.inferences, r.errors) == (True, "", 0, 0, 0)
    assert (r.error_rate, r.inference_p99_ms, r.drift_psi_max, r.shadow) == (None, None, None, None)
    assert Condition("Ready", True, "Applied").message == ""


@pytest.mark.parametrize("value", [
    ShadowHealth("c" * 64, 1, None, None, None, None, None), RunnerHealth("d", "a" * 64, True),
    Condition("Ready", True, "Applied")], ids=lambda v: type(v).__name__)
def test_what_a_report_holds_cannot_change_after_it_was_signed(value: object) -> None:
    name = next(iter(value.__dataclass_fields__))  # type: ignore[attr-defined]
    with pytest.raises(FrozenInstanceError):
        setattr(value, name, None)


def test_what_a_reader_adds_beside_a_report_is_no_part_of_it() -> None:
    r = report(extra={"receivedVia": "mqtt"})
    assert StatusReport.parse(r.to_bytes()) == r and "extra" not in r.to_json()


@pytest.mark.parametrize("field", ["payload", "signature"])
def test_threat_base64_with_stray_characters_is_malformed_not_skipped(field: str) -> None:
    doc = json.loads(seal(report(), KEY))
    doc[field] = "!" + doc[field]  # a lenient decoder would drop the `!` and accept the rest
    with pytest.raises(ReportRejected, match="malformed status envelope") as info:
        open_envelope(json.dumps(doc).encode(), {"dev-1": PUB}, None)
    assert info.value.reason is Rejected.MALFORMED
