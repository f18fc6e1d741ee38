"""Event time through the real orders service: real-time reports are placed at the receive
time, late ones keep theirs (moved by a skewed clock's offset), and orders past the
backfill limit need an admin backfill."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from afflux.orders.app import create_app
from afflux.orders.signing import sign_query
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.event_time import BACKFILL_HEADERS

from .conftest import ADMIN_TOKEN, Api, orders_settings

pytestmark = pytest.mark.integration

SLOW, FAST = -240_000, 240_000  # a merchant clock 4 minutes off


class FrozenClock:
    """The service's clock, held still so that 'the receive time' is one known number."""

    def __init__(self) -> None:
        self.now = int(time.time() * 1000)

    def __call__(self) -> int:
        return self.now


@pytest.fixture(scope="module")
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture(scope="module")
async def frozen_app(infra: Any, campaigns: Any, clock: FrozenClock) -> AsyncIterator[FastAPI]:
    app = create_app(orders_settings(infra), clock=clock)
    async with app.router.lifespan_context(app):
        directory = app.state.directory
        await asyncio.wait_for(directory.ready.wait(), 30)
        for _ in range(200):
            if campaigns.shop.campaign_id in directory:
                break
            await asyncio.sleep(0.05)
        yield app


@pytest.fixture
async def merchant(frozen_app: FastAPI, clock: FrozenClock) -> AsyncIterator[Api]:
    clock.now = int(time.time() * 1000)
    transport = httpx.ASGITransport(app=frozen_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://orders") as http:
        yield Api(http)


def order(campaigns: Any, occurred_at: int) -> dict[str, Any]:
    return {
        "order_id": Api.new_id("o"),
        "campaign_id": campaigns.shop.campaign_id,
        "occurred_at": occurred_at,
        "amount_minor": 2500,
        "currency": "EUR",
        "visitor_id": Api.new_id("v"),
    }


def refund(campaigns: Any, occurred_at: int) -> dict[str, Any]:
    return {
        "refund_id": Api.new_id("r"),
        "order_id": Api.new_id("o"),
        "campaign_id": campaigns.shop.campaign_id,
        "occurred_at": occurred_at,
        "amount_minor": 100,
        "currency": "EUR",
    }


def admin(token: str = ADMIN_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("offset", [SLOW, FAST], ids=["4 minutes slow", "4 minutes fast"])
async def test_a_skewed_merchant_clock_places_the_order_at_the_receive_time(
    merchant: Api, clock: FrozenClock, campaigns: Any, topics: Any, offset: int
) -> None:
    before = await topics.settle()
    merchant_now = clock.now + offset
    body = order(campaigns, merchant_now)

    response = await merchant.post("/v1/orders", body, t=merchant_now // 1000)

    assert response.status_code == 202, response.text
    await topics.settle()
    [event] = [e for e in topics.since(before, "orders") if e["order_id"] == body["order_id"]]
    assert (event["occurred_at"], event["reported_occurred_at"]) == (clock.now, merchant_now)


async def test_a_refund_from_a_slow_clock_is_placed_at_the_receive_time(
    merchant: Api, clock: FrozenClock, campaigns: Any, topics: Any
) -> None:
    before = await topics.settle()
    merchant_now = clock.now + SLOW
    body = refund(campaigns, merchant_now)

    response = await merchant.post("/v1/refunds", body, t=merchant_now // 1000)

    assert response.status_code == 202, response.text
    await topics.settle()
    [event] = [e for e in topics.since(before, "refunds") if e["refund_id"] == body["refund_id"]]
    assert (event["occurred_at"], event["reported_occurred_at"]) == (clock.now, merchant_now)


@pytest.mark.parametrize("route", ["/v1/orders", "/v1/refunds"])
async def test_a_report_sent_minutes_late_by_a_right_clock_keeps_the_purchase_time(
    merchant: Api, clock: FrozenClock, campaigns: Any, topics: Any, route: str
) -> None:
    """Sent 4 minutes after the purchase by a merchant whose clock agrees with ours (its
    signature's timestamp says so): placed at the purchase. It was placed at the receive
    time, so a creator's link clicked in those 4 minutes (a thank-you page, an
    extension) came before the order and took it."""
    before = await topics.settle()
    bought_at = clock.now + SLOW
    body = (order if route == "/v1/orders" else refund)(campaigns, bought_at)
    signed = clock.now // 1000  # the merchant's clock, right

    response = await merchant.post(route, body, t=signed)

    assert response.status_code == 202, response.text
    await topics.settle()
    topic, key = ("orders", "order_id") if route == "/v1/orders" else ("refunds", "refund_id")
    [event] = [e for e in topics.since(before, topic) if e[key] == body[key]]
    # On our clock by the signature's offset (under a second: it is in whole seconds).
    moved_by = clock.now - signed * 1000
    assert (event["occurred_at"], event["reported_occurred_at"]) == (
        bought_at + moved_by,
        bought_at,
    )


LATE_CASES = [
    # (merchant clock offset, how long after the purchase it reports)
    (SLOW, 65_000),  # just past the skew by the merchant's clock
    (FAST, 560_000),  # the same past it the other way
    (SLOW, MS_PER_DAY),  # a nightly batch
]


@pytest.mark.parametrize("route", ["/v1/orders", "/v1/orders:batch", "/v1/refunds"])
@pytest.mark.parametrize(
    ("offset", "late_by"), LATE_CASES, ids=["slow, 65 s late", "fast, 560 s late", "slow, a day"]
)
async def test_a_late_report_from_a_skewed_clock_is_moved_onto_the_purchase_time(
    merchant: Api,
    clock: FrozenClock,
    campaigns: Any,
    topics: Any,
    route: str,
    offset: int,
    late_by: int,
) -> None:
    """A clock 4 minutes off that reports past the skew: only a report inside it was
    moved, so an order 65 s late from a slow clock landed 4 minutes before the purchase
    (before the click that led to it: unattributed) and one 560 s late from a fast clock
    4 minutes after it (after a click made on the thank-you page: the wrong creator)."""
    before = await topics.settle()
    bought_at = clock.now - late_by  # on our clock
    merchant_now = clock.now + offset
    make = refund if route == "/v1/refunds" else order
    body = make(campaigns, bought_at + offset)  # dated by the merchant's clock
    sent = {"orders": [body]} if route == "/v1/orders:batch" else body

    response = await merchant.post(route, sent, t=merchant_now // 1000)

    assert response.status_code == (200 if route == "/v1/orders:batch" else 202), response.text
    await topics.settle()
    topic, key = ("refunds", "refund_id") if route == "/v1/refunds" else ("orders", "order_id")
    [event] = [e for e in topics.since(before, topic) if e[key] == body[key]]
    # On our clock, up to the second the signature's whole seconds leave.
    assert bought_at <= event["occurred_at"] < bought_at + 1_000
    assert event["reported_occurred_at"] == bought_at + offset


@pytest.mark.parametrize("signed_ago_s", [0, 300], ids=["signed now", "at the tolerance"])
async def test_a_postback_without_a_time_is_placed_at_its_receive_time(
    merchant: Api, clock: FrozenClock, campaigns: Any, topics: Any, signed_ago_s: int
) -> None:
    """An order without ``occurred_at`` has no merchant's time to move onto our clock.
    Dated by its signature's ``t`` instead, a ``t`` the tolerance still took, 300 s back,
    made it a late report placed 300 s before its receive time."""
    before = await topics.settle()
    body = order(campaigns, 0)
    del body["occurred_at"]
    params = [("merchant", "merchant-a"), *((k, str(v)) for k, v in body.items())]
    query = sign_query(params, "a-secret-new", clock.now // 1000 - signed_ago_s)

    response = await merchant.http.get(f"/v1/postback?{query}")

    assert response.status_code == 202, response.text
    await topics.settle()
    [event] = [e for e in topics.since(before, "orders") if e["order_id"] == body["order_id"]]
    assert event["occurred_at"] == clock.now
    assert (event["reported_occurred_at"], event["undated"]) == (None, True)


@pytest.mark.parametrize("sold_to_refund_s", [1, 60], ids=["a second later", "a minute later"])
async def test_a_refund_of_a_postback_order_without_a_time_is_taken_from_a_slow_clock(
    merchant: Api, clock: FrozenClock, campaigns: Any, topics: Any, sold_to_refund_s: int
) -> None:
    """A merchant clock 4 minutes slow sends an order without a time, then its refund,
    dated by that clock after the sale. The receive time stood in the order's claim for
    the merchant's time, so the refund, 4 minutes "before" it, was refused as dated before
    its order for good, and the sale kept its commission."""
    before = await topics.settle()
    body = order(campaigns, 0)
    del body["occurred_at"]
    params = [("merchant", "merchant-a"), *((k, str(v)) for k, v in body.items())]
    sold_at = clock.now + SLOW  # the merchant's clock
    query = sign_query(params, "a-secret-new", sold_at // 1000)
    assert (await merchant.http.get(f"/v1/postback?{query}")).status_code == 202
    placed_at = clock.now
    clock.now += sold_to_refund_s * 1000
    cancelled_at = sold_at + sold_to_refund_s * 1000
    cancel = refund(campaigns, cancelled_at) | {"order_id": body["order_id"]}

    answer = await merchant.post("/v1/refunds", cancel, t=cancelled_at // 1000)

    assert answer.status_code == 202, answer.text
    await topics.settle()
    [taken] = [e for e in topics.since(before, "refunds") if e["order_id"] == body["order_id"]]
    assert taken["occurred_at"] >= placed_at
    assert taken["reported_occurred_at"] == cancelled_at


async def test_an_order_an_hour_old_keeps_its_own_time(
    merchant: Api, clock: FrozenClock, campaigns: Any, topics: Any
) -> None:
    before = await topics.settle()
    body = order(campaigns, clock.now - 3_600_000)

    assert (await merchant.post("/v1/orders", body)).status_code == 202

    await topics.settle()
    [event] = [e for e in topics.since(before, "orders") if e["order_id"] == body["order_id"]]
    assert (event["occurred_at"], event["reported_occurred_at"]) == (body["occurred_at"], None)


async def test_orders_and_refunds_400_days_old_are_refused_on_every_endpoint(
    merchant: Api, clock: FrozenClock, campaigns: Any, topics: Any
) -> None:
    old = clock.now - 400 * MS_PER_DAY
    before = await topics.settle()

    single = await merchant.post("/v1/orders", order(campaigns, old))
    batch = await merchant.post(
        "/v1/orders:batch", {"orders": [order(campaigns, old), order(campaigns, clock.now)]}
    )
    params = [("merchant", "merchant-a"), *((k, str(v)) for k, v in order(campaigns, old).items())]
    query = sign_query(params, "a-secret-new", clock.now // 1000)
    postback = await merchant.http.get(f"/v1/postback?{query}")
    refunded = await merchant.post("/v1/refunds", refund(campaigns, old))

    # The shop's terms: a 30-day cookie window and a 30-day lock.
    for response in (single, postback, refunded):
        assert response.status_code == 422, response.text
        [problem] = response.json()["detail"]
        assert problem["field"] == "occurred_at"
        assert "backfill limit of 60 days" in problem["reason"]
    assert batch.status_code == 200
    first, second = batch.json()["results"]
    assert first["status"] == "rejected"
    assert first["error"]["field"] == "orders.0.occurred_at"
    assert "/v1/admin/backfill/orders" in first["error"]["reason"]
    assert second["status"] == "accepted"
    after = await topics.settle()
    assert after.get("orders", 0) - before.get("orders", 0) == 1  # only the batch's fresh order
    assert after.get("refunds", 0) == before.get("refunds", 0)


async def test_an_admin_backfill_takes_old_orders_and_refunds_at_their_own_time(
    merchant: Api, clock: FrozenClock, campaigns: Any, topics: Any
) -> None:
    old = clock.now - 400 * MS_PER_DAY
    before = await topics.settle()
    body = order(campaigns, old)
    late_refund = refund(campaigns, old + 1000) | {"order_id": body["order_id"]}

    orders = await merchant.http.post(
        "/v1/admin/backfill/orders", json={"orders": [body]}, headers=admin()
    )
    again = await merchant.http.post(
        "/v1/admin/backfill/orders", json={"orders": [body]}, headers=admin()
    )
    refunds = await merchant.http.post(
        "/v1/admin/backfill/refunds", json={"refunds": [late_refund]}, headers=admin()
    )

    assert orders.status_code == 200, orders.text
    assert orders.json()["results"][0]["status"] == "accepted"
    assert again.json()["results"][0]["status"] == "duplicate"
    assert refunds.json()["results"][0]["status"] == "accepted", refunds.text
    await topics.settle()
    [placed] = [e for e in topics.since(before, "orders") if e["order_id"] == body["order_id"]]
    assert (placed["occurred_at"], placed["reported_occurred_at"]) == (old, None)
    assert placed["merchant_id"] == "merchant-a"  # the campaign's own merchant
    [refunded] = [e for e in topics.since(before, "refunds") if e["order_id"] == body["order_id"]]
    assert (refunded["occurred_at"], refunded["amount_minor"]) == (old + 1000, 100)
    # Each is a record of its own marked a backfill: the attribution worker takes it
    # however old (it refuses an older one written straight to the topic without the mark).
    assert topics.headers_since(before, "orders") == [BACKFILL_HEADERS]
    assert topics.headers_since(before, "refunds") == [BACKFILL_HEADERS]


async def test_a_merchants_late_report_is_no_backfill(
    merchant: Api, clock: FrozenClock, campaigns: Any, topics: Any
) -> None:
    before = await topics.settle()
    body = order(campaigns, clock.now - 3_600_000)
    late_refund = refund(campaigns, clock.now - 3_600_000) | {"order_id": body["order_id"]}

    assert (await merchant.post("/v1/orders", body)).status_code == 202
    assert (await merchant.post("/v1/refunds", late_refund)).status_code == 202

    await topics.settle()
    assert topics.headers_since(before, "orders") == [()]
    assert topics.headers_since(before, "refunds") == [()]


async def test_a_backfill_still_refuses_a_time_in_the_future(
    merchant: Api, clock: FrozenClock, campaigns: Any
) -> None:
    response = await merchant.http.post(
        "/v1/admin/backfill/orders",
        json={"orders": [order(campaigns, clock.now + 301_000)]},
        headers=admin(),
    )

    assert response.json()["results"][0]["error"]["field"] == "orders.0.occurred_at"


@pytest.mark.parametrize(
    "headers",
    [{}, admin("not-the-token"), {"Authorization": "Basic b3BzOm9wcw=="}],
    ids=["no token", "wrong token", "not a bearer token"],
)
async def test_a_backfill_without_the_admin_token_is_401_and_produces_nothing(
    merchant: Api, clock: FrozenClock, campaigns: Any, topics: Any, headers: dict[str, str]
) -> None:
    before = await topics.settle()
    old = clock.now - 400 * MS_PER_DAY

    orders = await merchant.http.post(
        "/v1/admin/backfill/orders", json={"orders": [order(campaigns, old)]}, headers=headers
    )
    refunds = await merchant.http.post(
        "/v1/admin/backfill/refunds", json={"refunds": [refund(campaigns, old)]}, headers=headers
    )

    for response in (orders, refunds):
        assert response.status_code == 401, response.text
        assert response.json()["detail"][0]["field"] == "Authorization"
    after = await topics.settle()
    assert (after.get("orders"), after.get("refunds")) == (
        before.get("orders"),
        before.get("refunds"),
    )


async def test_a_merchant_signature_does_not_open_the_backfill(
    merchant: Api, clock: FrozenClock, campaigns: Any
) -> None:
    response = await merchant.post(
        "/v1/admin/backfill/orders", {"orders": [order(campaigns, clock.now - 400 * MS_PER_DAY)]}
    )

    assert response.status_code == 401
