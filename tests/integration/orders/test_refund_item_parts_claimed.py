"""What refunds took of each of an order's skus is claimed with them, atomically: a refund
released after its produce failed, or whose pending claim expired, frees its part, and the
parts of the live refunds add up per sku however many refunds name it."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from afflux.orders.claims import MAX_REFUNDS_PER_ORDER, ClaimStore, NewOrder
from afflux.shared.core.products import ItemRefundPart

pytestmark = pytest.mark.integration

PENDING_MS = 5_000


@pytest.fixture
async def claims(infra: Any) -> AsyncIterator[ClaimStore]:
    redis: Redis[bytes] = Redis.from_url(infra.redis_url.rsplit("/", 1)[0] + "/2")
    try:
        yield ClaimStore(
            redis, f"afx:parts-{uuid.uuid4().hex[:8]}", pending_ms=PENDING_MS, ttl_s=60
        )
    finally:
        await redis.aclose()  # type: ignore[attr-defined]


async def _order(claims: ClaimStore, now: int) -> None:
    sale = NewOrder("c", "o-1", "v-1", 2 * 10**15 // 2, "sale", occurred_at=now - 1)
    assert await claims.reserve_orders([sale], now) == ["reserved"]
    await claims.mark_done([sale])


def _shoe(part: int) -> tuple[ItemRefundPart, ...]:
    # amounts beyond what Lua prints with 14 digits: kept and compared exactly
    return (ItemRefundPart("shoe", part, 999_999_999_999_999),)


async def _refund(claims: ClaimStore, rid: str, part: int, now: int) -> Any:
    return await claims.reserve_refund(
        "c", "o-1", rid, part, now, occurred_at=now, reported_at=now, item_parts=_shoe(part)
    )


async def test_a_released_refund_frees_its_part_of_the_item(claims: ClaimStore) -> None:
    now = int(time.time() * 1000)
    await _order(claims, now)
    assert (await _refund(claims, "r-1", 999_999_999_999_998, now)).status == "reserved"
    await claims.settle_refund("c", "o-1", "r-1", 999_999_999_999_998, done=False)

    assert (await _refund(claims, "r-2", 999_999_999_999_999, now)).status == "reserved"


async def test_a_pending_refund_that_expired_frees_its_part(claims: ClaimStore) -> None:
    now = int(time.time() * 1000)
    await _order(claims, now)
    assert (await _refund(claims, "r-1", 999_999_999_999_999, now)).status == "reserved"

    live = await _refund(claims, "r-2", 1, now + PENDING_MS - 1)
    later = await _refund(claims, "r-3", 1, now + PENDING_MS + 1)

    assert (live.status, live.item_sku, live.item_taken_minor, live.item_whole_minor) == (
        "item_exceeds",
        "shoe",
        999_999_999_999_999,
        999_999_999_999_999,
    )
    assert later.status == "reserved"


async def test_parts_add_up_to_the_item_exactly_and_one_minor_unit_more_is_refused(
    claims: ClaimStore,
) -> None:
    now = int(time.time() * 1000)
    await _order(claims, now)
    for n, part in enumerate((333_333_333_333_333, 333_333_333_333_333, 333_333_333_333_332)):
        answer = await _refund(claims, f"r-{n}", part, now)
        assert answer.status == "reserved"
        await claims.settle_refund("c", "o-1", f"r-{n}", part, done=True)

    full = await _refund(claims, "r-last", 2, now)
    fits = await _refund(claims, "r-fits", 1, now)

    assert (full.status, full.item_taken_minor) == ("item_exceeds", 999_999_999_999_998)
    assert fits.status == "reserved"


@pytest.mark.parametrize("order_known", [True, False], ids=["order known", "refunds first"])
async def test_an_order_takes_at_most_a_bounded_number_of_refunds(
    claims: ClaimStore, order_known: bool
) -> None:
    """Each reservation reads the order's refunds in Redis's one thread: unbounded, one
    order's refunds slowed every merchant's claims (50,000 refunds: 57 ms per claim)."""
    now = int(time.time() * 1000)
    if order_known:
        await _order(claims, now)

    async def refund(rid: str) -> Any:
        return await claims.reserve_refund(
            "c", "o-1", rid, 1, now, occurred_at=now, reported_at=now
        )

    for n in range(MAX_REFUNDS_PER_ORDER):
        assert (await refund(f"r-{n}")).status == "reserved"
        await claims.settle_refund("c", "o-1", f"r-{n}", 1, done=True)

    one_more = await refund("r-more")
    again = await refund("r-0")

    assert (one_more.status, one_more.remaining_minor) == ("too_many", MAX_REFUNDS_PER_ORDER)
    assert again.status == "duplicate"  # a refund already taken is still answered as such
