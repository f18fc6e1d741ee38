"""An order's postings read from the journal by a pattern on its order id: exactly that
order's, whatever characters the merchant's order id holds (on Redis and Redis Cluster)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest
from redis.asyncio import Redis

from afflux.oracle.ledger_scenarios import CAMPAIGN, PERIOD, START, plan_versions
from afflux.payouts.routes.orders import order_postings
from afflux.payouts.store import Batch, LedgerStore
from afflux.shared.core.commission import ConversionFact, RefundFact
from afflux.shared.core.terms import TermsVersion
from afflux.shared.io.redis_client import connect_ready

pytestmark = pytest.mark.integration

# Order ids a merchant may send: glob characters, quotes, escapes, non-ASCII, a prefix of
# another id.
TRICKY = ["o-1", "o-1*", "o-[12]", "o-?", 'o-"quoted"', "o-back\\slash", "o-ümlaut", "o-1-long"]


@pytest.fixture
async def redis(ledger_redis_url: str) -> AsyncIterator[Redis[bytes]]:
    client = await connect_ready(ledger_redis_url)
    try:
        yield client  # type: ignore[misc]  # a RedisCluster speaks the same commands
    finally:
        await client.aclose()  # type: ignore[union-attr]


def _versions(campaign_id: str) -> Sequence[TermsVersion]:
    return plan_versions()


def _sale(order: str, affiliate: str, n: int) -> ConversionFact:
    return ConversionFact(
        f"conv-{n}", f"ev-{n}", order, affiliate, "sale", None, 10_000 + n, "EUR", False,
        START + n * 60_000, 1,
    )  # fmt: skip


async def test_each_order_gets_exactly_its_own_postings_with_its_refund(
    redis: Redis[bytes],
) -> None:
    store = LedgerStore(redis)
    sales = [_sale(order, "ana", n) for n, order in enumerate(TRICKY)]
    refund = RefundFact(
        "rev-0", "rev-ev-0", TRICKY[1], 5_000, START + 3_600_000, "conv-1", "refund"
    )
    batch = Batch(
        conversions=[(CAMPAIGN, PERIOD, s) for s in sales],
        refunds=[(CAMPAIGN, PERIOD, refund)],
    )
    await store.apply(batch, _versions, lambda _: "EUR")

    for order in TRICKY:
        found = await order_postings(store, CAMPAIGN, order, ["ana"])
        assert found, order
        assert {p.order_id for p in found} == {order}
    refunded = await order_postings(store, CAMPAIGN, TRICKY[1], ["ana"])
    assert "refund_reduction" in {p.kind for p in refunded} or "clawback" in {
        p.kind for p in refunded
    }
    # Another creator, another campaign, an unknown creator: nothing.
    assert await order_postings(store, CAMPAIGN, "o-1", ["ben"]) == []
    assert await order_postings(store, "elsewhere", "o-1", ["ana"]) == []
