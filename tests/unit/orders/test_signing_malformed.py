"""Every malformed signature is a SignatureRejected naming the field, never another error."""

from __future__ import annotations

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

BODY = b'{"order_id":"o-1"}'
NOW = 1_790_000_000
SECRET = "s3cret"
QUERY = sign_query([("order_id", "o-1"), ("amount_minor", "10")], SECRET, NOW)
MAC = QUERY.rsplit("&sig=", 1)[1]


@dataclass(frozen=True)
class Case:
    name: str
    query: str
    field: str
    reason: str


QUERY_CASES = [
    # a parameter after sig: the finding that answered 500
    Case("param after sig", f"{QUERY}&extra=1", "sig", "must be the last query parameter"),
    # sig twice, the same value both times
    Case("repeated sig", f"{QUERY}&sig={MAC}", "sig", "given more than once"),
    # sig first, then the signed parameters: given, but not last (it said "missing")
    Case(
        "sig first",
        f"sig={MAC}&{QUERY.rsplit('&sig=', 1)[0]}",
        "sig",
        "must be the last query parameter",
    ),
    # no sig at all
    Case("missing sig", QUERY.rsplit("&sig=", 1)[0], "sig", "missing"),
    # an empty query
    Case("empty query", "", "sig", "missing"),
    # sig present but empty
    Case("empty sig", f"{QUERY.rsplit('&sig=', 1)[0]}&sig=", "sig", "64 hex characters"),
    # right length, not hex
    Case("non-hex sig", f"{QUERY.rsplit('&sig=', 1)[0]}&sig={'z' * 64}", "sig", "64 hex"),
    # one character short
    Case("63 hex characters", f"{QUERY.rsplit('&sig=', 1)[0]}&sig={MAC[:-1]}", "sig", "64 hex"),
    # one character too many
    Case("65 hex characters", f"{QUERY.rsplit('&sig=', 1)[0]}&sig={MAC}0", "sig", "64 hex"),
    # non-ASCII text that hmac.compare_digest cannot take
    Case("unicode sig", f"{QUERY.rsplit('&sig=', 1)[0]}&sig={'é' * 64}", "sig", "64 hex"),
    # percent-encoded: the raw text is what is signed and compared
    Case("percent-encoded sig", f"{QUERY.rsplit('&sig=', 1)[0]}&sig=%41{MAC[3:]}", "sig", "64 hex"),
]


@pytest.mark.parametrize("case", QUERY_CASES, ids=lambda c: c.name)
def test_malformed_postback_signature_is_rejected_naming_sig(case: Case) -> None:
    with pytest.raises(SignatureRejected) as raised:
        verify_query(case.query, NOW, [SECRET], NOW)
    assert (raised.value.field, case.reason in raised.value.reason) == (case.field, True)


def test_uppercase_hex_signature_still_verifies() -> None:
    signed = QUERY.rsplit("&sig=", 1)[0]
    verify_query(f"{signed}&sig={MAC.upper()}", NOW, [SECRET], NOW)


HEADER_MAC = sign(BODY, SECRET, NOW).split("v1=")[1]

HEADER_CASES = [
    # non-ASCII v1 used to reach hmac.compare_digest and raise TypeError
    ("unicode v1", f"t={NOW},v1={'é' * 64}", "64 hex characters"),
    # a digit int() cannot read
    ("superscript timestamp", f"t=²,v1={HEADER_MAC}", "unix seconds"),
    # short MAC
    ("short v1", f"t={NOW},v1={HEADER_MAC[:10]}", "64 hex characters"),
    # one good and one malformed candidate: the header is malformed
    ("one malformed candidate", f"t={NOW},v1={HEADER_MAC},v1=xyz", "64 hex characters"),
    # an empty candidate
    ("empty v1", f"t={NOW},v1=", "64 hex characters"),
    # two times, the signature good for the second: which was meant is not the parser's
    # guess to make
    ("two timestamps", f"t={NOW - 3_600},t={NOW},v1={HEADER_MAC}", "t given more than once"),
]


@pytest.mark.parametrize(
    ("name", "header", "reason"), HEADER_CASES, ids=[c[0] for c in HEADER_CASES]
)
def test_malformed_signature_header_is_rejected_naming_the_header(
    name: str, header: str, reason: str
) -> None:
    with pytest.raises(SignatureRejected, match=reason) as raised:
        verify(header, BODY, [SECRET], NOW)
    assert raised.value.field == SIGNATURE_HEADER
