"""Every bad request gets a 4xx naming the field and the reason, and puts nothing on any topic."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from afflux.orders.signing import MERCHANT_HEADER, SIGNATURE_HEADER

pytestmark = pytest.mark.integration

Request = tuple[bytes, dict[str, str]]


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Any, Any], Request]  # (api, campaigns) -> (body, headers)
    status: int
    field: str
    reason: str  # a fragment of the reason


def order(campaigns: Any, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_id": f"o-{uuid.uuid4().hex[:12]}",
        "campaign_id": campaigns.shop.campaign_id,
        "occurred_at": int(time.time() * 1000),
        "kind": "sale",
        "amount_minor": 2500,
        "currency": "EUR",
        "visitor_id": f"v-{uuid.uuid4().hex[:12]}",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def signed(api: Any, body: dict[str, Any], **sign_args: Any) -> Request:
    content = api.raw(body)
    return content, api.headers(content, **sign_args)


def tampered(api: Any, campaigns: Any) -> Request:
    content, headers = signed(api, order(campaigns, amount_minor=2500))
    return content.replace(b"2500", b"2501"), headers


def unsigned(api: Any, campaigns: Any) -> Request:
    content, headers = signed(api, order(campaigns))
    del headers[SIGNATURE_HEADER]
    return content, headers


def malformed(api: Any, campaigns: Any) -> Request:
    content = b'{"order_id": "o-1", "campaign_id": '
    return content, api.headers(content)


def sent_as(content_type: str | None = None, encoding: str | None = None) -> Any:
    """A signed order sent with another Content-Type (or a Content-Encoding)."""

    def request(api: Any, campaigns: Any) -> Request:
        content, headers = signed(api, order(campaigns))
        if content_type is None:
            del headers["Content-Type"]
        else:
            headers["Content-Type"] = content_type
        if encoding is not None:
            headers["Content-Encoding"] = encoding
        return content, headers

    return request


def amount_named_twice(api: Any, campaigns: Any) -> Request:
    """A signed body whose amount a first-wins parser reads as 1 and a last-wins one as
    250000."""
    content = api.raw(order(campaigns, amount_minor=1)).replace(
        b'"amount_minor":1', b'"amount_minor":1,"amount_minor":250000'
    )
    assert content.count(b"amount_minor") == 2
    return content, api.headers(content)


def oversized(api: Any, campaigns: Any) -> Request:
    return signed(api, order(campaigns, customer_id=None, items=[{"sku": "x" * 180}] * 30))


CASES = [
    Case(
        "bad signature",
        lambda api, c: signed(api, order(c), secret="not-the-secret"),
        401,
        SIGNATURE_HEADER,
        "does not match",
    ),
    Case("missing signature", unsigned, 401, SIGNATURE_HEADER, "missing"),
    Case(
        "stale timestamp",
        lambda api, c: signed(api, order(c), t=int(time.time()) - 301),
        401,
        SIGNATURE_HEADER,
        "stale",
    ),
    Case(
        "future timestamp",
        lambda api, c: signed(api, order(c), t=int(time.time()) + 301),
        401,
        SIGNATURE_HEADER,
        "future",
    ),
    Case("body changed by one byte", tampered, 401, SIGNATURE_HEADER, "does not match"),
    # one service parsed text/plain as JSON, the others answered "a valid dictionary"
    Case(
        "text/plain",
        sent_as("text/plain"),
        415,
        "Content-Type",
        "'text/plain' is not accepted: send the body as JSON with Content-Type: application/json",
    ),
    Case("a form", sent_as("application/x-www-form-urlencoded"), 415, "Content-Type", "not"),
    Case(
        "gzip",
        sent_as("application/json", "gzip"),
        415,
        "Content-Encoding",
        "'gzip' is not accepted: send the body uncompressed",
    ),
    Case(
        # as a wrong signature: which merchant ids exist cannot be probed
        "unknown merchant",
        lambda api, c: signed(api, order(c), merchant="merchant-zz", secret="whatever"),
        401,
        SIGNATURE_HEADER,
        "signature does not match the body under a current secret of the merchant"
        " X-Afflux-Merchant names",
    ),
    Case(
        # as an unknown campaign: another merchant's campaign ids cannot be probed
        "merchant signing for another merchant's campaign",
        lambda api, c: signed(api, order(c), merchant="merchant-b"),
        422,
        "campaign_id",
        "unknown campaign",
    ),
    Case(
        "unknown campaign",
        lambda api, c: signed(api, order(c, campaign_id="no-such-campaign")),
        422,
        "campaign_id",
        "unknown campaign",
    ),
    Case(
        "currency not the campaign's",
        lambda api, c: signed(api, order(c, currency="USD")),
        422,
        "currency",
        "EUR",
    ),
    Case(
        "negative sale amount",
        lambda api, c: signed(api, order(c, amount_minor=-1)),
        422,
        "amount_minor",
        "positive",
    ),
    Case(
        "zero sale amount",
        lambda api, c: signed(api, order(c, amount_minor=0)),
        422,
        "amount_minor",
        "positive",
    ),
    Case(
        "sale without an amount",
        lambda api, c: signed(api, order(c, amount_minor=None)),
        422,
        "amount_minor",
        "required",
    ),
    Case(
        "amount as a numeric string (never coerced)",
        lambda api, c: signed(api, order(c, amount_minor="4999")),
        422,
        "amount_minor",
        "integer",
    ),
    Case(
        "amount as an integral float",
        lambda api, c: signed(api, order(c, amount_minor=4999.0)),
        422,
        "amount_minor",
        "integer",
    ),
    Case(
        "amount as a boolean",
        lambda api, c: signed(api, order(c, amount_minor=True)),
        422,
        "amount_minor",
        "integer",
    ),
    Case(
        "amount one past the campaign's max_order_minor (10^12 by default)",
        lambda api, c: signed(api, order(c, amount_minor=10**12 + 1)),
        422,
        "amount_minor",
        "at most 1000000000000",
    ),
    Case(
        "amount of 10^30, which overflowed the ledger's rounding",
        lambda api, c: signed(api, order(c, amount_minor=10**30)),
        422,
        "amount_minor",
        "at most",
    ),
    Case(
        "amount of 3,800 digits",
        lambda api, c: signed(api, order(c, amount_minor=int("9" * 3800))),
        422,
        "amount_minor",
        "at most",
    ),
    Case(
        "no visitor id, click id or coupon",
        lambda api, c: signed(api, order(c, visitor_id=None)),
        422,
        "visitor_id",
        "at least one of visitor_id, click_id or coupon_code",
    ),
    Case(
        "event time too far in the future",
        lambda api, c: signed(api, order(c, occurred_at=int(time.time() * 1000) + 3_600_000)),
        422,
        "occurred_at",
        "future",
    ),
    Case(
        "event time without a zone",
        lambda api, c: signed(api, order(c, occurred_at="2026-11-01T10:00:00")),
        422,
        "occurred_at",
        "zone",
    ),
    Case("malformed JSON", malformed, 400, "body", "malformed JSON"),
    Case("a field named twice", amount_named_twice, 400, "body", "'amount_minor' appears twice"),
    Case("body over the size limit", oversized, 413, "body", "4096 byte limit"),
    Case(
        "unknown field",
        lambda api, c: signed(api, order(c, amount=12)),
        422,
        "amount",
        "unknown field",
    ),
    Case(
        "unknown order kind",
        lambda api, c: signed(api, order(c, kind="purchase")),
        422,
        "kind",
        "sale",
    ),
    Case(
        "action without its name",
        lambda api, c: signed(api, order(c, kind="action", amount_minor=None)),
        422,
        "action",
        "required",
    ),
    # "yes" was read as true: a new customer's bonus paid on a word the merchant never meant.
    Case(
        "new_customer given as a string",
        lambda api, c: signed(api, order(c, new_customer="yes")),
        422,
        "new_customer",
        "Input should be a valid boolean",
    ),
    Case(
        "new_customer given as a number",
        lambda api, c: signed(api, order(c, new_customer=1)),
        422,
        "new_customer",
        "Input should be a valid boolean",
    ),
    # An order id that looks like another: a retry whose id gained an invisible character
    # was a second order, paid twice.
    Case(
        "zero-width space in the order id",
        lambda api, c: signed(api, order(c, order_id=f"o-{uuid.uuid4().hex[:12]}\u200b")),
        422,
        "order_id",
        "contains U+200B (an invisible format character)",
    ),
    Case(
        "byte order mark before the order id",
        lambda api, c: signed(api, order(c, order_id=f"\ufeffo-{uuid.uuid4().hex[:12]}")),
        422,
        "order_id",
        "contains U+FEFF (an invisible format character)",
    ),
    Case(
        "C1 control in the order id",
        lambda api, c: signed(api, order(c, order_id=f"o-\x85{uuid.uuid4().hex[:12]}")),
        422,
        "order_id",
        "contains U+0085 (a control character)",
    ),
    Case(
        "word joiner in the order id",
        lambda api, c: signed(api, order(c, order_id=f"o\u2060-{uuid.uuid4().hex[:12]}")),
        422,
        "order_id",
        "contains U+2060",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_rejected_order_names_field_and_reason_and_emits_nothing(
    case: Case, api: Any, campaigns: Any, topics: Any
) -> None:
    before = await topics.settle()
    content, headers = case.build(api, campaigns)

    response = await api.http.post("/v1/orders", content=content, headers=headers)

    assert response.status_code == case.status, response.text
    error = response.json()["detail"][0]
    assert error["field"] == case.field
    assert case.reason in error["reason"]
    assert await topics.written_since(before) == {}


@pytest.mark.parametrize(
    "build",
    [
        sent_as(None),
        sent_as("application/json; charset=utf-8"),
        sent_as("application/json", "identity"),
    ],
    ids=["no content type", "json with a charset", "identity encoding"],
)
async def test_an_order_sent_as_json_or_without_a_content_type_is_accepted(
    build: Any, api: Any, campaigns: Any
) -> None:
    content, headers = build(api, campaigns)

    response = await api.http.post("/v1/orders", content=content, headers=headers)

    assert response.status_code == 202, response.text


def refund(campaigns: Any, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "refund_id": f"r-{uuid.uuid4().hex[:12]}",
        "order_id": f"o-{uuid.uuid4().hex[:12]}",
        "campaign_id": campaigns.shop.campaign_id,
        "occurred_at": int(time.time() * 1000),
        "amount_minor": 100,
        "currency": "EUR",
    }
    body.update(changes)
    return body


REFUND_CASES = [
    Case(
        "refund in another currency",
        lambda api, c: signed(api, refund(c, currency="USD")),
        422,
        "currency",
        "EUR",
    ),
    Case(
        "zero refund",
        lambda api, c: signed(api, refund(c, amount_minor=0)),
        422,
        "amount_minor",
        "positive",
    ),
    Case(
        "refund amount as a numeric string",
        lambda api, c: signed(api, refund(c, amount_minor="100")),
        422,
        "amount_minor",
        "integer",
    ),
    Case(
        "refund of 10^30",
        lambda api, c: signed(api, refund(c, amount_minor=10**30)),
        422,
        "amount_minor",
        "at most",
    ),
    Case(
        "refund for an unknown campaign",
        lambda api, c: signed(api, refund(c, campaign_id="nope")),
        422,
        "campaign_id",
        "unknown",
    ),
    Case(
        "refund signed by another merchant",
        lambda api, c: signed(api, refund(c), merchant="merchant-b"),
        422,
        "campaign_id",
        "unknown campaign",
    ),
    Case(
        "zero-width space in the refund id",
        lambda api, c: signed(api, refund(c, refund_id=f"r-{uuid.uuid4().hex[:12]}\u200b")),
        422,
        "refund_id",
        "contains U+200B (an invisible format character)",
    ),
    Case(
        "refund with a stale signature",
        lambda api, c: signed(api, refund(c), t=int(time.time()) - 400),
        401,
        SIGNATURE_HEADER,
        "stale",
    ),
]


@pytest.mark.parametrize("case", REFUND_CASES, ids=[case.name for case in REFUND_CASES])
async def test_rejected_refund_names_field_and_reason_and_emits_nothing(
    case: Case, api: Any, campaigns: Any, topics: Any
) -> None:
    before = await topics.settle()
    content, headers = case.build(api, campaigns)

    response = await api.http.post("/v1/refunds", content=content, headers=headers)

    assert response.status_code == case.status, response.text
    error = response.json()["detail"][0]
    assert (error["field"], case.reason in error["reason"]) == (case.field, True)
    assert await topics.written_since(before) == {}


async def test_refund_beyond_a_known_orders_amount_is_rejected_and_emits_nothing(
    api: Any, campaigns: Any, topics: Any
) -> None:
    placed = order(campaigns, amount_minor=500)
    assert (await api.post("/v1/orders", placed)).status_code == 202
    before = await topics.settle()

    response = await api.post(
        "/v1/refunds", refund(campaigns, order_id=placed["order_id"], amount_minor=501)
    )

    assert response.status_code == 422
    assert response.json()["detail"][0] == {
        "field": "amount_minor",
        "reason": "cumulative refunds would exceed the order amount: 500 left to refund",
    }
    assert await topics.written_since(before) == {}


@pytest.mark.parametrize(
    ("make_order", "status", "field"),
    [
        pytest.param(False, 404, "order_id", id="unknown order"),
        pytest.param(True, 409, "order_id", id="order that is not a lead"),
    ],
)
async def test_lead_confirmation_of_a_non_lead_is_rejected_and_emits_nothing(
    make_order: bool, status: int, field: str, api: Any, campaigns: Any, topics: Any
) -> None:
    placed = order(campaigns, campaign_id=campaigns.leads.campaign_id)
    if make_order:
        assert (await api.post("/v1/orders", placed)).status_code == 202
    before = await topics.settle()

    response = await api.post(
        f"/v1/leads/{placed['order_id']}/confirm", {"campaign_id": campaigns.leads.campaign_id}
    )

    assert response.status_code == status, response.text
    assert response.json()["detail"][0]["field"] == field
    assert await topics.written_since(before) == {}


async def test_metrics_count_rejections_under_unknown_for_unconfigured_campaigns(
    api: Any, campaigns: Any
) -> None:
    await api.post("/v1/orders", order(campaigns, campaign_id="never-configured-" + "x" * 8))

    text = (await api.http.get("/metrics")).text

    assert 'afflux_orders_total{campaign="unknown",kind="unknown",outcome="rejected"}' in text
    assert "never-configured" not in text


async def test_metrics_count_an_order_for_another_merchants_campaign_under_unknown(
    api: Any, campaigns: Any
) -> None:
    """Counted under the other merchant's campaign, it fired the rejected-orders alert
    against that merchant, whose integration was fine."""
    other = campaigns.other.campaign_id
    refused = await api.post("/v1/orders", order(campaigns, campaign_id=other, currency="USD"))
    assert refused.status_code == 422

    text = (await api.http.get("/metrics")).text

    assert 'afflux_orders_total{campaign="unknown",kind="unknown",outcome="rejected"}' in text
    assert f'campaign="{other}"' not in text


@pytest.mark.parametrize("header", [MERCHANT_HEADER, SIGNATURE_HEADER])
async def test_a_signing_header_given_twice_is_401_naming_it(
    api: Any, campaigns: Any, header: str
) -> None:
    """Of two merchant ids the first was taken (the signature bound to it); a postback's
    ``merchant`` twice is refused. A copy a proxy or client added is refused alike."""
    content, headers = signed(api, order(campaigns))
    pairs = [*headers.items(), (header, headers[header])]
    answer = await api.http.post("/v1/orders", content=content, headers=pairs)
    assert answer.status_code == 401, answer.text
    assert answer.json()["detail"] == [
        {"field": header, "reason": f"{header} given more than once"}
    ]
    once = await api.http.post("/v1/orders", content=content, headers=headers)
    assert once.status_code == 202, once.text
