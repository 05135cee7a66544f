"""desired.json and its signature file at their exact limits, field by field (the agent trusts nothing else).

Each test pins one rule of compiler/bundle/desired.py that `make mutation` found unguarded by the agent tests.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from compiler.bundle.desired import (
    MAX_DESIRED_BYTES,
    MAX_SIGNATURE_BYTES,
    BundleRef,
    DesiredState,
    key_id,
    load_public_key,
    sign,
    verify_signature,
)

D = "a" * 64
DOC = {"version": 1, "device": "ipc-1", "generation": 3, "expires": "2030-01-02T03:04:05Z",
       "bundles": [{"name": "d/t", "digest": D}], "sourceCommit": "c" * 40}


def parse(**change: object) -> DesiredState:
    return DesiredState.parse(json.dumps({**DOC, **change}).encode())


def test_a_state_parses_into_its_fields_and_back_to_the_same_bytes():
    state = parse()
    assert state == DesiredState("ipc-1", 3, datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC), (BundleRef("d/t", D),),
                                 "c" * 40)
    assert DesiredState.parse(state.to_bytes()) == state
    local = DesiredState("x", 0, datetime(2030, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2))), ())
    assert b'"expires":"2030-01-02T03:04:05Z"' in local.to_bytes()
    assert parse(sourceCommit=7).source_commit is None
    assert parse(generation=0).generation == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 2}, "unsupported desired state version"),
        ({"generation": -1}, "non-negative integer"),
        ({"generation": True}, "non-negative integer"),
        ({"generation": 1.0}, "non-negative integer"),
        ({"device": 1}, "device must be a string"),
        ({"bundles": {}}, "bundles a list"),
        ({"bundles": [{"name": 1, "digest": D}]}, "has no valid name or digest"),
        ({"bundles": [{"name": "d/t", "digest": D.upper()}]}, "has no valid name or digest"),
        ({"bundles": [{"name": "d/t", "digest": D + "a"}]}, "has no valid name or digest"),
        ({"bundles": [{"name": "d/t"}]}, "missing or mistyped field"),
        ({"bundles": [7]}, "missing or mistyped field"),
        ({"expires": "2030-01-02 03:04:05"}, "does not match format"),
    ],
)
def test_threat_each_malformed_field_is_a_value_error(change: dict, message: str):
    with pytest.raises(ValueError, match=message):
        parse(**change)


def test_threat_a_missing_field_or_a_document_that_is_no_object_is_refused():
    for doc in ({k: v for k, v in DOC.items() if k != "device"}, [DOC], "x"):
        with pytest.raises(ValueError, match=r"missing or mistyped field|unsupported desired state version"):
            DesiredState.parse(json.dumps(doc).encode())


def test_an_overlong_expiry_is_quoted_to_32_characters():
    with pytest.raises(ValueError) as exc:
        parse(expires="9" * 100)
    assert repr("9" * 32) in str(exc.value) and "9" * 33 not in str(exc.value)


def _padded(doc: dict, size: int) -> bytes:
    data = json.dumps(doc).encode()
    return data[:-1] + b" " * (size - len(data)) + b"}"


def test_desired_state_size_limit_is_exact():
    assert DesiredState.parse(_padded(DOC, MAX_DESIRED_BYTES)).device == "ipc-1"
    assert MAX_DESIRED_BYTES == 1 << 20
    with pytest.raises(ValueError, match="over the limit"):
        DesiredState.parse(_padded(DOC, MAX_DESIRED_BYTES + 1))


def test_desired_state_depth_limit_is_exact():
    assert parse(extra=[[[[[[[]]]]]]]).device == "ipc-1"  # the object and 7 lists: 8 levels
    with pytest.raises(ValueError, match="nests more than 8 levels"):
        parse(extra=[[[[[[[[]]]]]]]])


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def test_key_id_is_the_first_16_hex_digits_of_the_raw_key_digest(key: Ed25519PrivateKey):
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert key_id(key.public_key()) == hashlib.sha256(raw).hexdigest()[:16]


def test_a_signature_verifies_only_under_its_key_and_bytes(key: Ed25519PrivateKey):
    data = parse().to_bytes()
    sig = sign(data, key)
    assert json.loads(sig) == {"keyId": key_id(key.public_key()),
                               "signature": base64.b64encode(key.sign(data)).decode()}
    other = Ed25519PrivateKey.generate().public_key()
    assert verify_signature(data, sig, [other, key.public_key()]) == key_id(key.public_key())
    with pytest.raises(ValueError, match="signed by untrusted key"):
        verify_signature(data, sig, [other])
    with pytest.raises(ValueError, match="bad signature by key"):
        verify_signature(data + b" ", sig, [key.public_key()])


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {"keyId": 1, "signature": "AA=="},
        {"keyId": "0" * 16},
        {"keyId": "0" * 17, "signature": "AA=="},
        {"keyId": "G" * 16, "signature": "AA=="},
        {"keyId": "0" * 16, "signature": "A!=="},
    ],
)
def test_threat_a_malformed_signature_file_is_refused(doc: object, key: Ed25519PrivateKey):
    with pytest.raises(ValueError, match="malformed signature file"):
        verify_signature(b"x", json.dumps(doc).encode(), [key.public_key()])


def test_a_long_key_id_is_quoted_to_24_characters(key: Ed25519PrivateKey):
    with pytest.raises(ValueError) as exc:
        verify_signature(b"x", json.dumps({"keyId": "z" * 100, "signature": "AA=="}).encode(), [key.public_key()])
    assert "'" + "z" * 23 + "…" in str(exc.value)


def test_signature_file_limits_are_exact(key: Ed25519PrivateKey):
    data = b"payload"
    doc = json.loads(sign(data, key))
    assert verify_signature(data, _padded(doc, MAX_SIGNATURE_BYTES), [key.public_key()])
    with pytest.raises(ValueError, match="over the limit"):
        verify_signature(data, _padded(doc, MAX_SIGNATURE_BYTES + 1), [key.public_key()])
    assert MAX_SIGNATURE_BYTES == 4096
    deep = json.dumps({**doc, "x": [[[[[[[]]]]]]]}).encode()
    assert verify_signature(data, deep, [key.public_key()])
    with pytest.raises(ValueError, match="nests more than 8 levels"):
        verify_signature(data, json.dumps({**doc, "x": [[[[[[[[]]]]]]]]}).encode(), [key.public_key()])


def test_only_an_ed25519_public_key_loads(key: Ed25519PrivateKey):
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert key_id(load_public_key(pem)) == key_id(key.public_key())
    ec = generate_private_key(SECP256R1()).public_key()
    with pytest.raises(ValueError, match="not an ed25519 public key"):
        load_public_key(ec.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


# --- shadow challengers and the value types (survivors of the 2026-12-02 run) ---------------------------------

def test_a_challenger_round_trips_and_is_split_from_the_serving_bundles():
    from compiler.bundle.desired import ShadowOf

    e = "e" * 64
    state = parse(bundles=[{"name": "d/t", "digest": D}, {"name": "d/t", "digest": e, "shadow": {"tolerance": 0.25}}])
    assert state.bundles[1] == BundleRef("d/t", e, ShadowOf(0.25))
    assert state.serving == (BundleRef("d/t", D),) and state.challengers == (BundleRef("d/t", e, ShadowOf(0.25)),)
    assert DesiredState.parse(state.to_bytes()) == state
    assert b'"shadow":{"tolerance":0.25}' in state.to_bytes()
    assert b"shadow" not in parse().to_bytes()  # a state without challengers keeps its exact bytes
    assert parse(bundles=[{"name": "d/t", "digest": e, "shadow": {"tolerance": 0}}]).bundles[0].shadow == ShadowOf()
    assert ShadowOf().tolerance == 0.0


@pytest.mark.parametrize("tolerance", [True, -0.5, float("inf"), float("nan"), "1", None])
def test_threat_a_tolerance_that_is_no_finite_non_negative_number_is_refused(tolerance: object):
    with pytest.raises(ValueError, match="a shadow tolerance must be a finite non-negative number"):
        parse(bundles=[{"name": "d/t", "digest": D, "shadow": {"tolerance": tolerance}}])


def test_a_shadow_without_a_tolerance_is_a_missing_field():
    with pytest.raises(ValueError, match="missing or mistyped field"):
        parse(bundles=[{"name": "d/t", "digest": D, "shadow": {}}])


def test_the_contract_values_are_frozen_and_hashable():
    """They cross to the device and are compared and kept in sets: a mutable one could change under a check."""
    import dataclasses

    from compiler.bundle.desired import ShadowOf

    state = parse(bundles=[{"name": "d/t", "digest": D, "shadow": {"tolerance": 0.5}}])
    for value, field in ((state, "generation"), (state.bundles[0], "digest"), (state.bundles[0].shadow, "tolerance")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, field, 1)
    assert len({state, parse(bundles=[{"name": "d/t", "digest": D, "shadow": {"tolerance": 0.5}}])}) == 1
    assert len({ShadowOf(0.5), ShadowOf(0.5), BundleRef("d/t", D), BundleRef("d/t", D)}) == 2


@pytest.mark.parametrize("junk", ["!", "\n", " ", "*"])
def test_threat_a_signature_with_a_non_base64_character_is_refused_even_if_the_rest_verifies(
    junk: str, key: Ed25519PrivateKey
):
    """A lenient decoder would drop the stray character and accept the signature: the file must be exact."""
    data = b"payload"
    doc = json.loads(sign(data, key))
    assert verify_signature(data, json.dumps(doc).encode(), [key.public_key()])
    doc["signature"] = doc["signature"][:10] + junk + doc["signature"][10:]
    with pytest.raises(ValueError, match="malformed signature file"):
        verify_signature(data, json.dumps(doc).encode(), [key.public_key()])


def test_every_trusted_key_with_the_signing_key_id_is_tried(key: Ed25519PrivateKey, monkeypatch):
    """Two trusted keys whose ids collide (forced here: 64 bits cannot be made to collide in a test): a
    failure under the first is no verdict, the second key's signature still verifies."""
    import compiler.bundle.desired as desired

    monkeypatch.setattr(desired, "key_id", lambda _public: "0" * 16)
    data = b"payload"
    sig = sign(data, key)
    other = Ed25519PrivateKey.generate().public_key()
    assert verify_signature(data, sig, [other, key.public_key()]) == "0" * 16


def shadow_of(shadow: dict[str, object]) -> object:
    return parse(bundles=[{"name": "d/t", "digest": D, "shadow": shadow}]).bundles[0].shadow


@pytest.mark.parametrize("window", [1e-9, 0.5, 1, 1.5, 30, 1e300])
def test_a_shadow_window_of_any_finite_positive_number_of_seconds_is_taken_as_a_float(window: float):
    from compiler.bundle.desired import ShadowOf

    taken = shadow_of({"tolerance": 0.1, "window": window})
    assert taken == ShadowOf(0.1, float(window)) and isinstance(taken.window, float)  # type: ignore[attr-defined]
    assert shadow_of({"tolerance": 0.1}) == ShadowOf(0.1, None)  # no window: the runner's default


@pytest.mark.parametrize(
    "window", [0, 0.0, -0.0, -1e-9, -1, float("inf"), float("-inf"), float("nan"), True, False, "30", [30], {}]
)
def test_threat_a_shadow_window_that_is_no_finite_positive_number_is_refused(window: object):
    with pytest.raises(ValueError, match="a shadow window must be a finite positive number of seconds"):
        shadow_of({"tolerance": 0.1, "window": window})


def test_a_shadow_window_round_trips_through_the_state_bytes():
    state = parse(bundles=[{"name": "d/t", "digest": D, "shadow": {"tolerance": 0.25, "window": 600}}])
    assert b'"shadow":{"tolerance":0.25,"window":600.0}' in state.to_bytes()
    assert DesiredState.parse(state.to_bytes()) == state
