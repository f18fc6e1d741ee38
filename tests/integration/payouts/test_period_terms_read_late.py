"""Terms of a period that the ledger read only after it had opened the period.

Campaign ``late-terms``: 10 per valid click. Version 2, effective at December's start
and published before it, adds a campaign budget of 30. A consumer whose campaign view
had not read version 2 yet opened December with version 1's terms (no budget) for the
first clicks; once version 2 was read, it kept those opening terms for the period in
memory, while any other consumer, or the same one after a restart, loads the period
with version 2's. So the same clicks paid 60 there and 30 here; the batch reference
pays 30. A cached period whose opening terms are not the ones the versions now give is
loaded again.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from ledger_app import DAY, NOV_1

from afflux.payouts.store import Batch, ClickItem, LedgerStore
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.io.redis_client import connect_ready

pytestmark = pytest.mark.integration

CAMPAIGN = "late-terms"
DEC_1 = NOV_1 + 30 * DAY
PLAN: dict[str, Any] = {
    "campaign_id": CAMPAIGN,
    "merchant_id": "merchant-late",
    "currency": "EUR",
    "lock_days": 0,
    "plan": {"click": {"per_click_minor": 10}},
}
V1 = TermsVersion(version=1, effective_from=0, published_at=0, terms=CampaignTerms(**PLAN))
V2 = TermsVersion(
    version=2,
    effective_from=DEC_1,
    published_at=DEC_1 - DAY,
    terms=CampaignTerms(**{**PLAN, "plan": {**PLAN["plan"], "campaign_budget_minor": 30}}),
)


def _clicks(day: int, n: int) -> Batch:
    at = DEC_1 + day * DAY + 3_600_000
    return Batch(
        clicks=[ClickItem(CAMPAIGN, "2026-12", f"c-{day}-{i}", "ana", at + i) for i in range(n)]
    )


async def _paid(store: LedgerStore) -> int:
    journal = store.keys.period(CAMPAIGN, "2026-12", "journal:ana")
    raws = await store.redis.zrange(journal, 0, -1)
    return sum(int(orjson.loads(raw)["amount_minor"]) for raw in raws)


async def test_a_period_opened_before_its_terms_were_read_is_priced_as_a_reload_would(
    ledger_redis_url: str,
) -> None:
    redis = await connect_ready(ledger_redis_url)
    try:
        store = LedgerStore(redis)  # type: ignore[arg-type]
        await store.apply(_clicks(0, 3), lambda cid: (V1,), lambda cid: "EUR")  # v2 unread
        await store.apply(_clicks(1, 3), lambda cid: (V1, V2), lambda cid: "EUR")

        assert await _paid(store) == 30

        restarted = LedgerStore(redis)  # type: ignore[arg-type]
        await restarted.apply(_clicks(2, 1), lambda cid: (V1, V2), lambda cid: "EUR")
        assert await _paid(restarted) == 30
    finally:
        await redis.aclose()  # type: ignore[union-attr]
