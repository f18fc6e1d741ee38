"""Hostile requests found by probing the running services: each answers a 4xx naming the
field and reason (never a 5xx), replayed as raw bytes against a started stack."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from dataclasses import dataclass
from typing import Any

import pytest

from afflux.cli.stack import Stack
from afflux.orders.signing import sign, sign_call, sign_query

from .conftest import ADMIN_TOKEN

pytestmark = [pytest.mark.e2e]

MERCHANT = "merchant-acme"
SECRET = f"dev-secret-{MERCHANT}"  # the stack runs in development: documented secrets
HEX = "a" * 64
# A creator's and a campaign's figures answer only to admin or their owner (docs/portal.md).
ADMIN = ((b"Authorization", f"Bearer {ADMIN_TOKEN}".encode()),)


@dataclass(frozen=True)
class Case:
    name: str
    service: str
    method: str
    target: bytes  # path and query, sent as given (may be invalid UTF-8)
    status: int
    field: str | None  # None: no afflux error body (refused before the app, or HTML)
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b""
    says: bytes = b""  # what a body without a field must contain


def _query(now: int, order_id: str, **extra: str) -> str:
    params = [
        ("merchant", MERCHANT),
        ("campaign_id", "acme-fashion"),
        ("order_id", order_id),
        ("amount_minor", "2500"),
        ("currency", "EUR"),
        *extra.items(),
    ]
    return sign_query(params, SECRET, now)


def _unsigned(query: str) -> str:
    return query.rsplit("&sig=", 1)[0]


def _postback(name: str, query: str, field: str, status: int = 401) -> Case:
    return Case(name, "orders", "GET", f"/v1/postback?{query}".encode(), status, field)


def _order(name: str, body: bytes, signature: bytes, status: int, field: str) -> Case:
    headers = ((b"X-Afflux-Merchant", MERCHANT.encode()), (b"X-Afflux-Signature", signature))
    return Case(name, "orders", "POST", b"/v1/orders", status, field, headers, body)


def _path_bound(name: str, path: str, body: bytes, merchant: str, now: int) -> Case:
    signature = sign_call("POST", path, body, f"dev-secret-{merchant}", now).encode()
    headers = ((b"X-Afflux-Merchant", merchant.encode()), (b"X-Afflux-Signature", signature))
    return Case(name, "orders", "POST", path.encode(), 422, "order_id", headers, body)


def _cases() -> list[Case]:
    now = int(time.time())
    q = _query(now, "probe-pb")
    mac = q.rsplit("&sig=", 1)[1]
    order = json.dumps(
        {
            "order_id": "probe-o",
            "campaign_id": "acme-fashion",
            "occurred_at": now * 1000,
            "kind": "sale",
            "amount_minor": 2500,
            "currency": "EUR",
        }
    ).encode()
    good_header = sign(order, SECRET, now).encode()
    return [
        # -- postback signatures: every malformed one is a 401 naming it
        _postback("postback param after sig", f"{q}&extra=1", "sig"),  # was a 500
        _postback("postback repeated sig", f"{q}&sig={mac}", "sig"),
        _postback("postback missing sig", _unsigned(q), "sig"),
        _postback("postback empty query", "", "sig"),
        _postback("postback empty sig", f"{_unsigned(q)}&sig=", "sig"),
        _postback("postback non-hex sig", f"{_unsigned(q)}&sig={'x' * 64}", "sig"),
        _postback("postback short sig", f"{_unsigned(q)}&sig={mac[:63]}", "sig"),
        _postback("postback unicode sig", f"{_unsigned(q)}&sig={'%C3%A9' * 32}", "sig"),
        _postback("postback duplicated t", q.replace("&t=", f"&t={now}&t=", 1), "t"),
        _postback("postback duplicated merchant", f"merchant={MERCHANT}&{q}", "merchant"),
        _postback("postback superscript t", q.replace("&t=", "&t=%C2%B2&x=", 1), "t"),
        # a good signature over a time int() cannot read
        _postback(
            "postback superscript occurred_at",
            _query(now, "probe-pb-2", occurred_at="²"),
            "occurred_at",
            422,
        ),
        # a good signature over a repeated ordinary parameter
        _postback(
            "postback repeated currency", _query(now, "probe-pb-3", currency="EUR"), "currency", 422
        ),
        # a good signature over an amount too long for int()
        _postback(
            "postback amount of 5000 digits",
            sign_query(
                [
                    ("merchant", MERCHANT),
                    ("campaign_id", "acme-fashion"),
                    ("order_id", "probe-pb-4"),
                    ("amount_minor", "9" * 5000),
                    ("currency", "EUR"),
                ],
                SECRET,
                now,
            ),
            "amount_minor",
            422,
        ),
        # a good signature over the buyer's hashed IP, which a logged URL must not carry
        _postback(
            "postback customer_ip_hash",
            _query(now, "probe-pb-5", customer_ip_hash=HEX),
            "customer_ip_hash",
            422,
        ),
        # -- a signed call naming an order id over 200 characters in its path (were 500s)
        _path_bound(
            "lead confirmation of a 201-character order id",
            f"/v1/leads/{'L' * 201}/confirm",
            b'{"campaign_id":"initech-insurance"}',
            "merchant-initech",
            now,
        ),
        _path_bound(
            "survey answer of a 201-character order id",
            f"/v1/orders/{'S' * 201}/survey",
            b'{"campaign_id":"acme-fashion","affiliate_id":"creator-01"}',
            MERCHANT,
            now,
        ),
        # -- the signature header
        _order(
            "order v1 of latin-1 bytes",
            order,
            f"t={now},v1=".encode() + b"\xe9" * 64,
            401,
            "X-Afflux-Signature",
        ),
        _order(
            "order superscript t", order, b"t=\xb2,v1=" + HEX.encode(), 401, "X-Afflux-Signature"
        ),
        _order("order malformed JSON", b"{", sign(b"{", SECRET, now).encode(), 400, "body"),
        _order("order JSON array", b"[]", sign(b"[]", SECRET, now).encode(), 422, "body"),
        _order("order signed body changed", order + b" ", good_header, 401, "X-Afflux-Signature"),
        # -- payouts: times and periods beyond what a datetime holds
        Case(
            "payouts period ending in year 10000",
            "payouts",
            "GET",
            b"/v1/kpis/campaigns/acme-fashion?period=9999-12",
            422,
            "period",
            ADMIN,
        ),
        Case(
            "payouts ISO week ending in year 10000",
            "payouts",
            "GET",
            b"/v1/kpis/creators?period=9999-W52",
            422,
            "period",
            ADMIN,
        ),
        Case(
            "payouts huge as_of",
            "payouts",
            "GET",
            b"/v1/creators/creator-01/statement?as_of=99999999999999999999999",
            422,
            "as_of",
            ADMIN,
        ),
        Case(
            "payouts superscript as_of",
            "payouts",
            "GET",
            b"/v1/creators/creator-01/balance?as_of=%C2%B2",
            422,
            "as_of",
            ADMIN,
        ),
        Case(
            "payouts unknown campaign",
            "payouts",
            "GET",
            b"/v1/kpis/campaigns/no-such-campaign",
            404,
            "campaign_id",
            ADMIN,
        ),
        Case(
            "payouts run with malformed JSON",
            "payouts",
            "POST",
            b"/v1/payouts/run",
            422,
            "body",
            ((b"Authorization", f"Bearer {ADMIN_TOKEN}".encode()),),
            b'{"period": ',
        ),
        # an encoded slash splits the id: no route matches
        Case(
            "payouts path traversal in an id",
            "payouts",
            "GET",
            b"/v1/kpis/campaigns/..%2F..%2Fetc%2Fpasswd",
            404,
            None,
            says=b'"reason":"Not Found"',
        ),
        # -- clicks: visitors get an HTML page, never a file
        Case(
            "clicks path traversal in a code",
            "clicks",
            "GET",
            b"/c/..%2F..%2Fetc%2Fpasswd",
            404,
            None,
            says=b"Link not found",
        ),
        Case("clicks invalid UTF-8 in a code", "clicks", "GET", b"/c/\xff\xfe", 400, None),
        # beyond the 16 KiB request head limit
        Case("clicks huge query string", "clicks", "GET", b"/c/abc?a=" + b"x" * 20_000, 431, None),
        Case(
            "clicks link for an unknown campaign",
            "clicks",
            "POST",
            b"/v1/links",
            422,
            "campaign_id",
            ((b"Authorization", f"Bearer {ADMIN_TOKEN}".encode()),),
            json.dumps(
                {
                    "campaign_id": "no-such-campaign",
                    "affiliate_id": "creator-01",
                    "destination_url": "https://shop.example.com/",
                }
            ).encode(),
        ),
        Case(
            "clicks link with malformed JSON",
            "clicks",
            "POST",
            b"/v1/links",
            422,
            "body",
            ((b"Authorization", f"Bearer {ADMIN_TOKEN}".encode()),),
            b"{",
        ),
        # -- every service: invalid UTF-8 in the path is refused before the app
        Case("orders invalid UTF-8 path", "orders", "GET", b"/v1/campaigns/\xff", 400, None),
        Case(
            "payouts invalid UTF-8 path", "payouts", "GET", b"/v1/creators/\xff/balance", 400, None
        ),
    ]


CASES = _cases()


def _exchange(url: str, case: Case) -> tuple[int, bytes]:
    """One raw HTTP/1.1 request; (status, body). Raw so hostile bytes reach the server as is."""
    host, port = url.removeprefix("http://").split(":")
    lines = [case.method.encode() + b" " + case.target + b" HTTP/1.1", b"Host: " + host.encode()]
    lines += [name + b": " + value for name, value in case.headers]
    if case.body or case.method == "POST":
        lines += [b"Content-Type: application/json", b"Content-Length: %d" % len(case.body)]
    lines.append(b"Connection: close")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        # A server may answer and close before reading all of a request it refuses.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            conn.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + case.body)
        received = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := conn.recv(65_536):
                received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.name for c in CASES])
def test_probe_finding_is_a_4xx_naming_the_field(stack: Stack, index: int) -> None:
    case = _cases()[index]  # rebuilt now: signatures carry the current time
    status, body = _exchange(stack.url(case.service), case)
    assert status == case.status, body[:500]
    if case.field is not None:
        answer: dict[str, Any] = json.loads(body)
        [problem, *_] = answer["detail"]
        assert problem["field"] == case.field, answer
        assert problem["reason"], answer
    assert case.says in body, body[:500]
