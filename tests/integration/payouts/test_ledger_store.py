"""The ledger store against a real Redis: offsets move with every batch, even an empty
one; several stores writing the same campaign-period at once stay exact."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from afflux.payouts import facts as ledger_facts
from afflux.payouts.store import Batch, LedgerStore
from afflux.shared.core.commission import ConversionFact, Line
from afflux.shared.core.terms import CampaignTerms, TermsVersion

pytestmark = pytest.mark.integration


def _no_terms(campaign_id: str) -> Any:
    raise AssertionError(f"no campaign should be looked up, got {campaign_id}")


def test_a_batch_of_dead_letters_only_still_stores_its_offsets(infra: Any) -> None:
    async def run() -> dict[str, int]:
        redis: Redis[bytes] = Redis.from_url(infra.redis_url, db=3)
        store = LedgerStore(redis, prefix=f"afx:test:{uuid.uuid4().hex[:8]}:")
        try:
            await store.apply(Batch(offsets={"conversions|0": 7}), _no_terms, _no_terms)
            await store.apply(Batch(offsets={"conversions|0": 5}), _no_terms, _no_terms)
            return await store.offsets()
        finally:
            await redis.aclose()  # type: ignore[attr-defined]

    # An older offset (a re-delivered poll) never moves the stored one back.
    assert asyncio.run(run()) == {"conversions|0": 7}


CAMPAIGN, PERIOD = "camp", "2026-11"
NOV_1 = 1_793_491_200_000  # 2026-11-01T00:00:00Z
CAP = 10_000
TERMS = (
    TermsVersion(
        version=1,
        effective_from=0,
        published_at=0,
        terms=CampaignTerms.model_validate(
            {
                "campaign_id": CAMPAIGN,
                "merchant_id": "m",
                "currency": "EUR",
                "plan": {"sale": {"rate": {"fixed_minor": 600}}, "creator_cap_minor": CAP},
            }
        ),
    ),
)


def _versions(campaign_id: str) -> tuple[TermsVersion, ...]:
    return TERMS


def _currency(campaign_id: str) -> str:
    return "EUR"


def _sale(n: int) -> Batch:
    fact = ConversionFact(
        conversion_id=f"conv-{n}",
        event_id=f"ev-{n}",
        order_id=f"o-{n}",
        affiliate_id="anna",
        kind="sale",
        action=None,
        amount_minor=10_000,
        currency="EUR",
        new_customer=False,
        occurred_at=NOV_1 + n * 60_000,
        terms_version=1,
    )
    key = ledger_facts.CONVERSION + fact.conversion_id
    return Batch(
        facts=[(CAMPAIGN, PERIOD, key, ledger_facts.dump(fact))],
        orders=[(CAMPAIGN, fact.order_id, PERIOD)],
        offsets={f"conversions|{n % 2}": n + 1},
    )


async def _two_stores_and_one(
    url: str,
    share: Callable[[LedgerStore, LedgerStore, list[Batch]], Awaitable[None]],
    cache_facts: int,
) -> tuple[list[Line], list[Line]]:
    """Lines after two stores shared the sales (as ``share`` does), and after one store alone."""
    prefix = f"afx:test:{uuid.uuid4().hex[:8]}:"
    clients: list[Redis[bytes]] = [Redis.from_url(url, db=3) for _ in range(3)]
    first, second = (LedgerStore(c, prefix=prefix, cache_facts=cache_facts) for c in clients[:2])
    alone = LedgerStore(clients[2], prefix=prefix + "alone:")
    try:
        sales = [_sale(n) for n in range(40)]
        await share(first, second, sales)
        for batch in sales:
            await alone.apply(batch, _versions, _currency)
        return await first.lines(CAMPAIGN, PERIOD), await alone.lines(CAMPAIGN, PERIOD)
    finally:
        for client in clients:
            await client.aclose()  # type: ignore[attr-defined]


async def _take_turns(first: LedgerStore, second: LedgerStore, sales: list[Batch]) -> None:
    for n, batch in enumerate(sales):
        await (first if n % 2 == 0 else second).apply(batch, _versions, _currency)


async def _at_once(first: LedgerStore, second: LedgerStore, sales: list[Batch]) -> None:
    async def feed(store: LedgerStore, share: list[Batch]) -> None:
        for batch in share:
            await store.apply(batch, _versions, _currency)
            await asyncio.sleep(0)

    await asyncio.gather(feed(first, sales[0::2]), feed(second, sales[1::2]))


@pytest.mark.parametrize("share", [_take_turns, _at_once], ids=["taking turns", "at once"])
@pytest.mark.parametrize("cache_facts", [100_000, 7, 0], ids=["cached", "evicted", "uncached"])
def test_two_stores_on_one_period_hold_the_cap_and_agree_with_one_store(
    infra: Any,
    share: Callable[[LedgerStore, LedgerStore, list[Batch]], Awaitable[None]],
    cache_facts: int,
) -> None:
    """Each store keeps the periods it wrote in memory; a write by the other store must
    make it read the period again, or it would compute lines on facts it never saw."""
    shared_lines, alone_lines = asyncio.run(
        _two_stores_and_one(infra.redis_url, share, cache_facts)
    )

    assert shared_lines == alone_lines
    assert len(shared_lines) == 40
    assert sum(line.amount_minor for line in shared_lines) == CAP
