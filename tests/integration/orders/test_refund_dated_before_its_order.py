"""A refund dated before the order it refunds is refused, on the real broker and Redis:
``POST /v1/refunds`` with a time three days before its order was answered 202 and the
ledger booked it. Refused before anything is produced or any of the order's refund room
is taken; a refund at the order's very time is taken."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from afflux.orders.claims import ClaimStore, NewOrder
from afflux.shared.core.clock import MS_PER_DAY, from_ms

from .conftest import ADMIN_TOKEN

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
HOUR_MS = 3_600_000


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def iso(ms: int) -> str:
    return from_ms(ms).isoformat(timespec="milliseconds")


def order(campaigns: Any, occurred_at: int, **extra: Any) -> dict[str, Any]:
    return {
        "order_id": new_id("o"),
        "campaign_id": campaigns.shop.campaign_id,
        "occurred_at": occurred_at,
        "amount_minor": 3000,
        "currency": "EUR",
        "visitor_id": new_id("v"),
    } | extra


def refund(
    of: dict[str, Any], occurred_at: int, amount: int = 3000, **extra: Any
) -> dict[str, Any]:
    return {
        "refund_id": new_id("r"),
        "order_id": of["order_id"],
        "campaign_id": of["campaign_id"],
        "occurred_at": occurred_at,
        "amount_minor": amount,
        "currency": "EUR",
    } | extra


def refused_as_before(response: Any, order_at: int, field: str = "occurred_at") -> None:
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["field"] == field
    assert problem["reason"] == f"the refund is dated before its order (order at {iso(order_at)})"


@pytest.mark.parametrize(
    ("refund_offset_ms", "status"),
    [
        pytest.param(-3 * MS_PER_DAY, 422, id="three days before the order"),
        pytest.param(-1, 422, id="1 ms before the order"),
        pytest.param(0, 202, id="at exactly the order's time"),
        pytest.param(1, 202, id="1 ms after the order"),
    ],
)
async def test_a_refund_dated_before_its_order_is_refused(
    api: Any, campaigns: Any, topics: Any, refund_offset_ms: int, status: int
) -> None:
    placed_at = int(time.time() * 1000) - HOUR_MS  # a late report: placed at its own time
    sale = order(campaigns, placed_at)
    assert (await api.post("/v1/orders", sale)).status_code == 202
    before = await topics.settle()

    answer = await api.post("/v1/refunds", refund(sale, placed_at + refund_offset_ms))

    if status == 422:
        refused_as_before(answer, placed_at)
    else:
        assert answer.status_code == 202, answer.text
    await topics.settle()
    produced = [e for e in topics.since(before, "refunds") if e["order_id"] == sale["order_id"]]
    assert len(produced) == (1 if status == 202 else 0)


async def test_a_refused_early_refund_takes_none_of_the_orders_refund_room(
    api: Any, campaigns: Any
) -> None:
    placed_at = int(time.time() * 1000) - HOUR_MS
    sale = order(campaigns, placed_at)
    assert (await api.post("/v1/orders", sale)).status_code == 202

    early = await api.post("/v1/refunds", refund(sale, placed_at - 1))
    whole = await api.post("/v1/refunds", refund(sale, placed_at))

    refused_as_before(early, placed_at)
    assert whole.status_code == 202, whole.text  # all 3000 were still there to refund


async def test_a_refund_before_the_merchants_time_of_an_order_placed_on_receipt_is_refused(
    api: Any, campaigns: Any
) -> None:
    """An order sent as it happens is placed at its receive time; the merchant's own time
    for it is kept, and a refund the merchant dates before that is refused too."""
    sent_at = int(time.time() * 1000)
    sale = order(campaigns, sent_at)
    assert (await api.post("/v1/orders", sale)).status_code == 202

    early = await api.post("/v1/refunds", refund(sale, sent_at - 1))
    same = await api.post("/v1/refunds", refund(sale, sent_at))

    refused_as_before(early, sent_at)
    assert same.status_code == 202, same.text


async def test_a_late_refund_after_its_order_by_the_merchants_clock_is_moved_to_the_orders_time(
    api: Any, campaigns: Any, topics: Any
) -> None:
    """A merchant clock 299 s slow sends an order at once: placed at its receive time. Its
    cancellation, 1 ms after the order by that clock, is reported once more than 300 s
    old by ours, so it keeps its own time: before its order on the event-time axis. It was
    refused as dated before its order, so the sale's commission stayed; it is taken at
    the order's time."""
    sent_at = int(time.time() * 1000) - 299_000  # the merchant's clock, 299 s behind ours
    sale = order(campaigns, sent_at)
    before = await topics.settle()
    assert (await api.post("/v1/orders", sale, t=sent_at // 1000)).status_code == 202
    cancelled_at = sent_at + 1
    while int(time.time() * 1000) - cancelled_at <= 300_000:
        await asyncio.sleep(0.05)  # until the refund is a late report by our clock

    answer = await api.post("/v1/refunds", refund(sale, cancelled_at))

    assert answer.status_code == 202, answer.text
    await topics.settle()
    [placed] = [e for e in topics.since(before, "orders") if e["order_id"] == sale["order_id"]]
    assert placed["occurred_at"] >= sent_at + 299_000  # on our clock: its receive time
    [taken] = [e for e in topics.since(before, "refunds") if e["order_id"] == sale["order_id"]]
    assert taken["occurred_at"] == placed["occurred_at"]
    assert taken["reported_occurred_at"] == cancelled_at


async def test_a_per_item_refund_dated_before_its_order_is_refused(
    api: Any, campaigns: Any
) -> None:
    placed_at = int(time.time() * 1000) - HOUR_MS
    items = [
        {"sku": "shoe", "quantity": 1, "price_minor": 2000},
        {"sku": "card", "quantity": 1, "price_minor": 1000},
    ]
    sale = order(campaigns, placed_at, items=items)
    assert (await api.post("/v1/orders", sale)).status_code == 202
    card = [{"sku": "card", "quantity": 1}]

    early = await api.post("/v1/refunds", refund(sale, placed_at - 1, 1000, items=card))
    on_time = await api.post("/v1/refunds", refund(sale, placed_at, 1000, items=card))

    refused_as_before(early, placed_at)
    assert on_time.status_code == 202, on_time.text


async def test_an_admin_backfill_refund_dated_before_its_order_is_refused(
    api: Any, campaigns: Any
) -> None:
    old = int(time.time() * 1000) - 400 * MS_PER_DAY
    sale = order(campaigns, old)
    placed = await api.http.post(
        "/v1/admin/backfill/orders", json={"orders": [sale]}, headers=ADMIN
    )
    assert placed.json()["results"][0]["status"] == "accepted", placed.text

    answer = await api.http.post(
        "/v1/admin/backfill/refunds",
        json={"refunds": [refund(sale, old - 1), refund(sale, old)]},
        headers=ADMIN,
    )

    early, on_time = answer.json()["results"]
    assert early["status"] == "rejected"
    assert early["error"]["field"] == "refunds.0.occurred_at"
    assert early["error"]["reason"] == (
        f"the refund is dated before its order (order at {iso(old)})"
    )
    assert on_time["status"] == "accepted", on_time


async def test_a_refund_of_a_renewal_dated_before_the_renewal_is_refused(
    api: Any, campaigns: Any
) -> None:
    """A renewal is an order of its own for refunds: they are dated from it."""
    first_at = int(time.time() * 1000) - 3 * HOUR_MS
    first = order(campaigns, first_at)
    assert (await api.post("/v1/orders", first)).status_code == 202
    renewed_at = first_at + HOUR_MS
    renewal = {
        "order_id": first["order_id"],
        "renewal_order_id": new_id("rn"),
        "renewal_number": 2,
        "campaign_id": first["campaign_id"],
        "occurred_at": renewed_at,
        "amount_minor": 1999,
        "currency": "EUR",
    }
    assert (await api.post("/v1/renewals", renewal)).status_code == 202, "renewal"
    of_renewal = {"order_id": renewal["renewal_order_id"], "campaign_id": first["campaign_id"]}

    early = await api.post("/v1/refunds", refund(of_renewal, renewed_at - 1, 1999))
    on_time = await api.post("/v1/refunds", refund(of_renewal, renewed_at, 1999))

    refused_as_before(early, renewed_at)
    assert on_time.status_code == 202, on_time.text


@pytest.fixture
async def claims(infra: Any) -> AsyncIterator[ClaimStore]:
    redis: Redis[bytes] = Redis.from_url(infra.redis_url.rsplit("/", 1)[0] + "/2")
    try:
        yield ClaimStore(redis, f"afx:dated-{uuid.uuid4().hex[:8]}", pending_ms=5_000, ttl_s=60)
    finally:
        await redis.aclose()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("claim", "status"),
    [
        pytest.param("reserved with its time", "before_order", id="a claim with its time"),
        pytest.param("written anew by a done mark", "before_order", id="written anew"),
        pytest.param("kept without a time", "reserved", id="a claim of an earlier version"),
        pytest.param("undated", "reserved", id="an order the merchant sent no time for"),
        pytest.param("undated, written anew", "reserved", id="undated, by a done mark"),
    ],
)
async def test_an_order_claim_kept_without_its_time_refuses_no_refund(
    claims: ClaimStore, claim: str, status: str
) -> None:
    """A claim written before the order's time was kept beside it, or of an order the
    merchant sent no time for: the merchant's time is unknown, so no refund of it is
    refused for its date."""
    now = int(time.time() * 1000)
    at = now - HOUR_MS
    sale = NewOrder("c", "o-1", "v-1", 3000, "sale", occurred_at=at, undated="undated" in claim)
    if claim in ("written anew by a done mark", "undated, written anew"):
        await claims.mark_done([sale])
    else:
        kept = NewOrder("c", "o-1", "v-1", 3000, "sale") if claim == "kept without a time" else sale
        assert await claims.reserve_orders([kept], now) == ["reserved"]
        await claims.mark_done([kept])

    answer = await claims.reserve_refund(
        "c", "o-1", "r-1", 100, now, occurred_at=at - 1, reported_at=at - 1
    )

    assert answer.status == status
    if status == "before_order":
        assert answer.order_at == at
