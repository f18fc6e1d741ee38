"""A raised ``min_payout_minor`` holds only money approved after it took effect.

Campaign ``pmv`` pays 10 % a sale with no return window, from 0.01 a payout; version 2
(from February 1) raises the minimum to 1,000.00. Anna sold on January 20 (10.00,
approved then), Ben on February 2 (10.00, approved under version 2). The run of March 1
judged both by version 2 and paid neither: a brand publishing a large minimum held
every balance already approved under a smaller one. Now Anna is paid, Ben waits.
"""

from __future__ import annotations

from typing import Any

import pytest
from ledger_app import DAY, payouts_http, sale_fact
from redis.asyncio import Redis

from afflux.payouts.store import Batch, LedgerStore
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import CampaignTermsPublished
from afflux.shared.io.campaign_view import CampaignDirectory

pytestmark = pytest.mark.integration

CAMPAIGN = "pmv"
JAN_1 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
FEB_1 = JAN_1 + 31 * DAY
MAR_1 = JAN_1 + 59 * DAY
TOKEN = "payout-minimum-token"


def _terms(min_payout_minor: int) -> CampaignTerms:
    return CampaignTerms.model_validate(
        {
            "campaign_id": CAMPAIGN,
            "merchant_id": "m",
            "currency": "EUR",
            "lock_days": 0,
            "min_payout_minor": min_payout_minor,
            "plan": {"sale": {"rate": {"percent": "10"}}},
        }
    )


VERSIONS = (
    TermsVersion(version=1, effective_from=0, published_at=0, terms=_terms(1)),
    TermsVersion(version=2, effective_from=FEB_1, published_at=FEB_1 - DAY, terms=_terms(100_000)),
)


async def test_a_raised_minimum_holds_only_money_approved_after_it(
    empty_redis: Redis[bytes], infra: Any
) -> None:
    now = [MAR_1]
    store = LedgerStore(empty_redis, clock=lambda: now[0])
    anna = sale_fact("a1", "anna", JAN_1 + 19 * DAY)
    ben = sale_fact("b1", "ben", FEB_1 + DAY, terms_version=2)
    batch = Batch(conversions=[(CAMPAIGN, "2026-01", anna), (CAMPAIGN, "2026-02", ben)])
    await store.apply(batch, lambda cid: VERSIONS, lambda cid: "EUR")
    directory = CampaignDirectory()
    directory.apply(
        CampaignTermsPublished(
            event_id="terms", occurred_at=0, campaign_id=CAMPAIGN, versions=VERSIONS
        )
    )
    directory.ready.set()

    async with payouts_http(store, directory, infra.kafka_bootstrap, TOKEN, lambda: now[0]) as http:
        body = {"as_of": MAR_1, "period": "2026-03", "campaign_id": CAMPAIGN}
        answer = await http.post("/v1/payouts/run", json=body)
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        # Anna's second sale, under version 2: what is owed is still approved since
        # January, so her whole balance is paid.
        more = Batch(conversions=[(CAMPAIGN, "2026-03", sale_fact("a2", "anna", MAR_1 + DAY))])
        await store.apply(more, lambda cid: VERSIONS, lambda cid: "EUR")
        now[0] = MAR_1 + 2 * DAY
        body = {"as_of": now[0], "period": "2026-04", "campaign_id": CAMPAIGN}
        again = (await http.post("/v1/payouts/run", json=body)).json()["results"]

    assert [(r["affiliate_id"], r["status"], r["amount_minor"]) for r in results] == [
        ("anna", "paid", 1_000),
        ("ben", "below_minimum", 1_000),
    ]
    # Anna's January money is paid: her March sale, approved under version 2, waits.
    assert [(r["affiliate_id"], r["status"], r["amount_minor"]) for r in again] == [
        ("anna", "below_minimum", 1_000),
        ("ben", "below_minimum", 1_000),
    ]
