"""Merchant signatures: what is signed, the replay window, rotation."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import pytest

from afflux.orders.signing import (
    SIGNATURE_HEADER,
    SignatureRejected,
    sign,
    sign_query,
    verify,
    verify_query,
)

pytestmark = pytest.mark.unit

BODY = b'{"order_id":"o-1","amount_minor":1999}'
NOW = 1_790_000_000


def test_signature_is_hmac_sha256_of_timestamp_dot_raw_body() -> None:
    expected = hmac.new(b"s3cret", b"1790000000." + BODY, hashlib.sha256).hexdigest()
    assert sign(BODY, "s3cret", NOW) == f"t=1790000000,v1={expected}"


@dataclass(frozen=True)
class Case:
    name: str
    signed_at: int
    accepted: bool


WINDOW = [
    Case("now", NOW, True),
    Case("300 s old, the edge of the window", NOW - 300, True),
    Case("301 s old", NOW - 301, False),
    Case("300 s ahead", NOW + 300, True),
    Case("301 s ahead", NOW + 301, False),
]


@pytest.mark.parametrize("case", WINDOW, ids=[c.name for c in WINDOW])
def test_timestamp_must_be_within_300_seconds_either_way(case: Case) -> None:
    header = sign(BODY, "s3cret", case.signed_at)
    if case.accepted:
        verify(header, BODY, ["s3cret"], NOW)
    else:
        with pytest.raises(SignatureRejected, match="timestamp"):
            verify(header, BODY, ["s3cret"], NOW)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing signature header"),
        ("", "missing signature header"),
        ("v1=abc", "missing timestamp"),
        ("t=1790000000", "missing v1"),
        ("t=soon,v1=abc", "unix seconds"),
        ("garbage", "malformed"),
    ],
)
def test_malformed_headers_are_rejected_with_the_reason(header: str | None, reason: str) -> None:
    with pytest.raises(SignatureRejected, match=reason) as raised:
        verify(header, BODY, ["s3cret"], NOW)
    assert raised.value.field == SIGNATURE_HEADER


def test_any_changed_byte_breaks_the_signature() -> None:
    header = sign(BODY, "s3cret", NOW)
    for index in range(len(BODY)):
        changed = BODY[:index] + bytes([BODY[index] ^ 1]) + BODY[index + 1 :]
        with pytest.raises(SignatureRejected, match="does not match"):
            verify(header, changed, ["s3cret"], NOW)


def test_either_of_two_active_secrets_verifies_during_rotation() -> None:
    for secret in ("old", "new"):
        verify(sign(BODY, secret, NOW), BODY, ["old", "new"], NOW)
    with pytest.raises(SignatureRejected):
        verify(sign(BODY, "retired", NOW), BODY, ["old", "new"], NOW)


def test_a_signature_for_another_timestamp_does_not_verify() -> None:
    mac = sign(BODY, "s3cret", NOW).split("v1=")[1]
    with pytest.raises(SignatureRejected, match="does not match"):
        verify(f"t={NOW - 1},v1={mac}", BODY, ["s3cret"], NOW)


def test_postback_query_signs_everything_before_sig() -> None:
    query = sign_query([("order_id", "o 1"), ("amount_minor", "10")], "s3cret", NOW)
    assert query.startswith("order_id=o+1&amount_minor=10&t=1790000000&sig=")
    verify_query(query, NOW, ["s3cret"], NOW)
    with pytest.raises(SignatureRejected) as raised:
        verify_query(query.replace("=10", "=11"), NOW, ["s3cret"], NOW)
    assert raised.value.field == "sig"
    with pytest.raises(SignatureRejected) as stale:
        verify_query(query, NOW, ["s3cret"], NOW + 301)
    assert stale.value.field == "t"
