"""Webhook signatures follow Standard Webhooks: the reference verifier accepts ours."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from afflux.payouts.webhooks import signing

pytestmark = pytest.mark.unit

SECRET = signing.secret_from_bytes(bytes(range(32)))


def test_a_secret_is_whsec_and_the_base64_of_its_key() -> None:
    assert SECRET.startswith("whsec_")
    assert signing.secret_key(SECRET) == bytes(range(32))


def test_a_secret_of_too_few_bytes_is_refused() -> None:
    with pytest.raises(signing.InvalidSecret):
        signing.secret_from_bytes(b"x" * 23)


def test_a_secret_that_is_not_base64_is_refused() -> None:
    with pytest.raises(signing.InvalidSecret):
        signing.secret_key("whsec_not*base64")


def test_the_signature_matches_the_specification_example() -> None:
    # The example of the Standard Webhooks specification (and its reference libraries).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert signing.signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected


@dataclass(frozen=True)
class Case:
    body: bytes


@pytest.mark.parametrize(
    "case",
    [
        Case(b"{}"),  # the smallest JSON body
        Case('{"name":"Zoë ✓"}'.encode()),  # non-ASCII UTF-8 is signed as bytes
        Case(b'{"a":"' + b"x" * 60_000 + b'"}'),  # a body near the size limit
    ],
)
def test_the_reference_verifier_accepts_our_headers(case: Case) -> None:
    now = int(time.time())
    headers = signing.signed_headers(SECRET, "msg_1", now, case.body)
    Webhook(SECRET).verify(case.body, headers)


def test_the_reference_verifier_refuses_a_changed_body() -> None:
    headers = signing.signed_headers(SECRET, "msg_1", int(time.time()), b'{"amount":1}')
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(b'{"amount":2}', headers)


def test_the_reference_verifier_refuses_another_secret() -> None:
    other = "whsec_" + base64.b64encode(b"y" * 32).decode()
    headers = signing.signed_headers(SECRET, "msg_1", int(time.time()), b"{}")
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(b"{}", headers)


def test_the_headers_are_the_three_standard_ones() -> None:
    headers = signing.signed_headers(SECRET, "msg_1", 1_700_000_000, b"{}")
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == "1700000000"
    assert headers["webhook-signature"].startswith("v1,")
