"""A produce the broker did not answer may still be stored: its claim is kept unsure, so
only the same order or refund is taken again, never one with other facts beside a copy
that may be on the topic; an acknowledged copy ends the doubt."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from afflux.orders.claims import ClaimStore, NewOrder

pytestmark = pytest.mark.integration


@pytest.fixture
async def claims(infra: Any) -> AsyncIterator[ClaimStore]:
    redis: Redis[bytes] = Redis.from_url(infra.redis_url.rsplit("/", 1)[0] + "/2")
    try:
        yield ClaimStore(redis, f"afx:unsure-{uuid.uuid4().hex[:8]}", pending_ms=5_000, ttl_s=60)
    finally:
        await redis.aclose()  # type: ignore[attr-defined]


def _order(amount: int) -> NewOrder:
    return NewOrder("c", "o-1", "v-1", amount, "sale", f'["sale",null,{amount}]')


@pytest.mark.parametrize(
    ("retry", "status"),
    [
        pytest.param(1000, "reserved", id="the same order is taken again"),
        pytest.param(5000, "unsure_conflict", id="another amount is refused"),
    ],
)
async def test_an_unsure_order_takes_only_the_same_order_again(
    claims: ClaimStore, retry: int, status: str
) -> None:
    now = int(time.time() * 1000)
    assert await claims.reserve_orders([_order(1000)], now) == ["reserved"]
    await claims.unsure_orders([("c", "o-1")])

    assert await claims.reserve_orders([_order(retry)], now) == [status]


async def test_an_acknowledged_retry_ends_the_doubt(claims: ClaimStore) -> None:
    now = int(time.time() * 1000)
    await claims.reserve_orders([_order(1000)], now)
    await claims.unsure_orders([("c", "o-1")])
    assert await claims.reserve_orders([_order(1000)], now) == ["reserved"]
    await claims.mark_done([_order(1000)])

    assert await claims.reserve_orders([_order(1000)], now) == ["duplicate"]
    assert await claims.reserve_orders([_order(5000)], now) == ["conflict"]


async def test_a_released_order_takes_any_facts(claims: ClaimStore) -> None:
    """Released (nothing was sent: the broker gone before the produce began)."""
    now = int(time.time() * 1000)
    await claims.reserve_orders([_order(1000)], now)
    await claims.release_orders([("c", "o-1")])

    assert await claims.reserve_orders([_order(5000)], now) == ["reserved"]


async def _refund(claims: ClaimStore, order: str, amount: int, now: int) -> Any:
    return await claims.reserve_refund(
        "c", order, "r-1", amount, now, occurred_at=now, reported_at=now
    )


@pytest.mark.parametrize(
    ("order", "amount", "status"),
    [
        pytest.param("o-1", 300, "reserved", id="the same refund is taken again"),
        pytest.param("o-1", 400, "unsure_conflict", id="another amount is refused"),
        pytest.param("o-2", 300, "unsure_conflict", id="another order is refused"),
    ],
)
async def test_an_unsure_refund_takes_only_the_same_refund_again(
    claims: ClaimStore, order: str, amount: int, status: str
) -> None:
    now = int(time.time() * 1000)
    assert (await _refund(claims, "o-1", 300, now)).status == "reserved"
    await claims.settle_refund("c", "o-1", "r-1", 300, done=False, unsure=True)

    claim = await _refund(claims, order, amount, now)

    assert claim.status == status
    if status == "unsure_conflict":
        assert (claim.remaining_minor, claim.unsure_order) == (300, "o-1")


def _renewal(order_id: str, amount: int) -> NewOrder:
    return NewOrder("c", order_id, "sub-1", amount, "renewal", renewal_number=2, currency="EUR")


@pytest.mark.parametrize(
    ("retry", "status"),
    [
        pytest.param(_renewal("sub-1-r2", 1999), "reserved", id="the same renewal is taken again"),
        pytest.param(_renewal("sub-1-r2", 2999), "unsure", id="another amount is refused"),
        pytest.param(_renewal("sub-1-x", 1999), "number_taken", id="its number stays taken"),
    ],
)
async def test_an_unsure_renewal_takes_only_the_same_renewal_again(
    claims: ClaimStore, retry: NewOrder, status: str
) -> None:
    now = int(time.time() * 1000)
    sent = _renewal("sub-1-r2", 1999)
    assert (await claims.reserve_renewal(sent, now)).status == "reserved"
    await claims.unsure_renewal(sent)

    assert (await claims.reserve_renewal(retry, now)).status == status


async def test_an_unsure_refund_still_counts_against_its_order(claims: ClaimStore) -> None:
    """It left its order's refunds: another refund of the whole amount was taken beside
    it, and the same refund sent again, as its 503 asks, was refused as exceeding."""
    now = int(time.time() * 1000)
    sale = NewOrder("c", "o-1", "v-1", 10_000, "sale", occurred_at=now - 1)
    assert await claims.reserve_orders([sale], now) == ["reserved"]
    await claims.mark_done([sale])
    assert (await _refund(claims, "o-1", 10_000, now)).status == "reserved"
    await claims.settle_refund("c", "o-1", "r-1", 10_000, done=False, unsure=True)

    other = await claims.reserve_refund(
        "c", "o-1", "r-2", 10_000, now, occurred_at=now, reported_at=now
    )
    again = await _refund(claims, "o-1", 10_000, now)

    assert (other.status, other.remaining_minor) == ("exceeds", 0)
    assert again.status == "reserved"


async def test_an_unsure_renewal_is_not_taken_as_another_first_orders(
    claims: ClaimStore,
) -> None:
    now = int(time.time() * 1000)
    sent = _renewal("sub-1-r2", 1999)
    await claims.reserve_renewal(sent, now)
    await claims.unsure_renewal(sent)
    elsewhere = NewOrder(
        "c", "sub-1-r2", "sub-9", 1999, "renewal", renewal_number=2, currency="EUR"
    )

    claim = await claims.reserve_renewal(elsewhere, now)

    assert (claim.status, claim.taken_by) == ("order_taken", "sub-1")


async def test_an_unsure_order_and_an_unsure_renewal_keep_their_ids_apart(
    claims: ClaimStore,
) -> None:
    now = int(time.time() * 1000)
    await claims.reserve_orders([_order(1999)], now)
    await claims.unsure_orders([("c", "o-1")])
    renewal = NewOrder("c", "o-1", "sub-1", 1999, "renewal", renewal_number=2, currency="EUR")
    assert (await claims.reserve_renewal(renewal, now)).status == "order_taken"

    sent = _renewal("sub-1-r3", 1999)
    await claims.reserve_renewal(sent, now)
    await claims.unsure_renewal(sent)
    as_order = NewOrder("c", "sub-1-r3", "v-1", 1999, "sale", '["sale",null,1999]')
    assert await claims.reserve_orders([as_order], now) == ["renewal"]
