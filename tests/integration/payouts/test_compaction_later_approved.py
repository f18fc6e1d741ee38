"""A period is not compacted as fully paid while a later period approved sooner took
the money its own postings were owed.

Campaign ``cwl`` pays 10 % a sale, at least 10.00 a payout. Version 1 holds sales 60
days, version 2 (from February 1) not at all. Anna sells on January 20 (5.00, approved
March 21) and on February 2 (10.00, approved at once). The run of March 1 pays the
10.00 of February; the run of May 1 finds January's 5.00 below the minimum. Compaction
took the campaign's paid total (10.00) to settle the earliest periods first and judged
January fully paid: its 5.00, never paid, was frozen in a snapshot that takes no more
facts. Now what later periods have approved counts as owed before this period is paid.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from ledger_app import DAY, payouts_http, sale_fact
from redis.asyncio import Redis

from afflux.payouts.compaction import compact_pass
from afflux.payouts.store import Batch, LedgerStore
from afflux.shared.core.commission import RefundFact
from afflux.shared.core.journal.compaction import closes_at
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import CampaignTermsPublished
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.redis_client import connect_ready

pytestmark = pytest.mark.integration

CAMPAIGN = "cwl"
JAN_1 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
FEB_1 = JAN_1 + 31 * DAY
MAR_1 = JAN_1 + 59 * DAY
APR_1 = JAN_1 + 90 * DAY
MAY_1 = JAN_1 + 120 * DAY
TOKEN = "later-approved-token"


def _terms(lock_days: int, min_payout_minor: int = 1000) -> CampaignTerms:
    return CampaignTerms.model_validate(
        {
            "campaign_id": CAMPAIGN,
            "merchant_id": "m",
            "currency": "EUR",
            "lock_days": lock_days,
            "cookie_window_days": 30,
            "min_payout_minor": min_payout_minor,
            "plan": {"sale": {"rate": {"percent": "10"}}},
        }
    )


VERSIONS = (
    TermsVersion(version=1, effective_from=0, published_at=0, terms=_terms(60)),
    TermsVersion(version=2, effective_from=FEB_1, published_at=FEB_1 - DAY, terms=_terms(0)),
)


def _versions(campaign: str) -> tuple[TermsVersion, ...]:
    assert campaign == CAMPAIGN
    return VERSIONS


@pytest.fixture
async def redis(ledger_redis_url: str) -> AsyncIterator[Redis[bytes]]:
    client: Redis[bytes] = await connect_ready(ledger_redis_url)  # type: ignore[assignment]
    try:
        yield client
    finally:
        await client.aclose()  # type: ignore[attr-defined]


@asynccontextmanager
async def _payout_runs(
    store: LedgerStore, versions: tuple[TermsVersion, ...], infra: Any, now: list[int]
) -> AsyncIterator[Callable[[int, str], Awaitable[list[tuple[str, int]]]]]:
    """``pay(at, period)``: a payout run of the campaign at ``at`` over HTTP, its results
    as (status, amount); the app's clock is ``now``, moved to ``at``."""
    directory = CampaignDirectory()
    directory.apply(
        CampaignTermsPublished(
            event_id="terms", occurred_at=0, campaign_id=CAMPAIGN, versions=versions
        )
    )
    directory.ready.set()
    async with payouts_http(store, directory, infra.kafka_bootstrap, TOKEN, lambda: now[0]) as http:

        async def pay(at: int, period: str) -> list[tuple[str, int]]:
            now[0] = at
            body = {"as_of": at, "period": period, "campaign_id": CAMPAIGN}
            response = await http.post("/v1/payouts/run", json=body)
            assert response.status_code == 200, response.text
            return [(r["status"], r["amount_minor"]) for r in response.json()["results"]]

        yield pay


async def test_a_period_whose_money_a_later_period_took_is_not_compacted(
    redis: Redis[bytes], infra: Any
) -> None:
    now = [FEB_1 + 5 * DAY]
    store = LedgerStore(redis, clock=lambda: now[0])
    january = sale_fact("j1", "anna", JAN_1 + 19 * DAY, amount_minor=5_000)
    february = sale_fact("f1", "anna", FEB_1 + DAY, amount_minor=10_000, terms_version=2)
    batch = Batch(conversions=[(CAMPAIGN, "2026-01", january), (CAMPAIGN, "2026-02", february)])
    await store.apply(batch, _versions, lambda cid: "EUR")

    async with _payout_runs(store, VERSIONS, infra, now) as pay:
        assert await pay(MAR_1, "2026-03") == [("paid", 1_000)]  # February's, January pending
        assert await pay(MAY_1, "2026-05") == [("below_minimum", 500)]  # January's

    at = closes_at("2026-01", VERSIONS, 400 * DAY) + DAY
    outcomes = {o.period: o for o in await compact_pass(store, _versions, at, campaign=CAMPAIGN)}
    assert not outcomes["2026-01"].compacted
    assert outcomes["2026-01"].reason == "'anna' has 500 not paid yet"


async def test_a_later_periods_money_given_back_since_no_longer_holds_the_period(
    redis: Redis[bytes], infra: Any
) -> None:
    """The same campaign paying from 0.01: February's 10.00 is paid on March 1 and refunded
    on April 1, after January's approval; the creator has since been paid her net 10.00
    in all, so January is paid. Counting February's money as it stood at January's
    approval kept January uncompacted for good, reported as 1000 not paid."""
    versions = tuple(
        TermsVersion(
            version=v.version,
            effective_from=v.effective_from,
            published_at=v.published_at,
            terms=_terms(v.terms.lock_days, min_payout_minor=1),
        )
        for v in VERSIONS
    )
    now = [FEB_1 + 5 * DAY]
    store = LedgerStore(redis, clock=lambda: now[0])
    january = sale_fact("j1", "anna", JAN_1 + 19 * DAY)
    february = sale_fact("f1", "anna", FEB_1 + DAY, terms_version=2)
    batch = Batch(conversions=[(CAMPAIGN, "2026-01", january), (CAMPAIGN, "2026-02", february)])
    await store.apply(batch, lambda c: versions, lambda cid: "EUR")
    async with _payout_runs(store, versions, infra, now) as pay:
        assert await pay(MAR_1, "2026-03") == [("paid", 1_000)]  # February's
        now[0] = APR_1
        refund = RefundFact("rev-f1", "ev-rev-f1", "order-f1", 10_000, APR_1, "conv-f1")
        await store.apply(
            Batch(refunds=[(CAMPAIGN, "2026-02", refund)]), lambda c: versions, lambda cid: "EUR"
        )
        assert await pay(MAY_1, "2026-05") == [("nothing_due", 0)]  # January 10.00, February -10.00

    at = closes_at("2026-02", versions, 400 * DAY) + DAY
    outcomes = {
        o.period: o for o in await compact_pass(store, lambda c: versions, at, campaign=CAMPAIGN)
    }
    assert outcomes["2026-01"].compacted, outcomes["2026-01"]
