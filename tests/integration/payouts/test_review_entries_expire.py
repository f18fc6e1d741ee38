"""Where the review queue finds a conversion for a decision, and the decision claimed
for it, expire with the conversion's period's facts, on a plain Redis and a Redis Cluster.

Before, both were fields of two hashes under ``{ledger}`` that never expired: one entry
for every conversion of every campaign with review terms, kept for good. A ledger written
then keeps its hashes, and they are still read: a conversion indexed there is decided as
before, and a decision claimed there still stands.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from ledger_app import HOUR, NOV_1, first_version, ledger_and_http, reviewed_batch, sale_fact

from afflux.payouts.review_claims import REVIEW_DECISION, REVIEW_DECISIONS
from afflux.payouts.store import REVIEW_ENTRY, REVIEW_INDEX, LedgerStore
from afflux.shared.core.commission import ConversionFact

pytestmark = pytest.mark.integration

TOKEN = "review-entries-admin-token"
CAMPAIGN = "rx"
TERMS = first_version(
    {
        "campaign_id": CAMPAIGN,
        "merchant_id": "merchant-rx",
        "currency": "EUR",
        "lock_days": 0,
        "plan": {"sale": {"rate": {"percent": "10"}}},
        "review": {"hold_on": ["self_referral"]},
    }
)
DAY_MS = 86_400_000


def _held(name: str) -> ConversionFact:
    return sale_fact(name, "ana", NOV_1 + HOUR, risk_signals=("self_referral",))


@dataclass
class Ledger:
    store: LedgerStore
    http: httpx.AsyncClient

    async def apply(self, *conversions: ConversionFact) -> None:
        batch = reviewed_batch(CAMPAIGN, lambda at: "2026-11", *conversions)
        await self.store.apply(batch, lambda cid: (TERMS,), lambda cid: "EUR")

    async def pttl(self, key: str) -> int:
        return int(await self.store.redis.pttl(key))

    async def decide(self, conversion_id: str, decision: str) -> httpx.Response:
        return await self.http.post(
            f"/v1/reviews/{conversion_id}/{decision}", json={"reason": "checked"}
        )


@pytest.fixture
async def ledger(ledger_redis_url: str, infra: Any) -> AsyncIterator[Ledger]:
    async with ledger_and_http(
        ledger_redis_url, [TERMS], infra.kafka_bootstrap, TOKEN, lambda: NOV_1 + 40 * DAY_MS
    ) as (store, http):
        yield Ledger(store, http)


async def test_a_conversions_entry_expires_with_its_periods_line_records(ledger: Ledger) -> None:
    held = _held("entry")
    await ledger.apply(held)

    keys = ledger.store.keys
    entry = await ledger.pttl(keys.review(held.conversion_id, REVIEW_ENTRY))
    lines = await ledger.pttl(keys.period(CAMPAIGN, "2026-11", "lines"))
    assert entry > 300 * DAY_MS
    assert abs(entry - lines) < 60_000  # written in the same second, the same expiry
    assert not await ledger.store.redis.exists(keys.ledger(REVIEW_INDEX))


async def test_a_decisions_claim_expires_no_later_than_its_entry(ledger: Ledger) -> None:
    held = _held("claim")
    await ledger.apply(held)

    answer = await ledger.decide(held.conversion_id, "approve")
    assert answer.status_code == 202, answer.text

    keys = ledger.store.keys
    claim = await ledger.pttl(keys.review(held.conversion_id, REVIEW_DECISION))
    entry = await ledger.pttl(keys.review(held.conversion_id, REVIEW_ENTRY))
    assert 0 < claim <= entry + 1_000  # read a moment apart
    assert not await ledger.store.redis.exists(keys.ledger(REVIEW_DECISIONS))
    again = await ledger.decide(held.conversion_id, "decline")
    assert again.status_code == 409, again.text
    assert "already_decided" in again.json()["detail"][0]["reason"]


async def test_a_conversion_indexed_by_an_earlier_ledger_is_still_decided(
    ledger: Ledger,
) -> None:
    held = _held("legacy")
    await ledger.apply(held)
    keys = ledger.store.keys
    redis = ledger.store.redis
    await redis.delete(keys.review(held.conversion_id, REVIEW_ENTRY))
    await redis.hset(
        keys.ledger(REVIEW_INDEX),
        held.conversion_id,
        orjson.dumps([CAMPAIGN, "2026-11", held.order_id, "ana", held.occurred_at]),
    )

    answer = await ledger.decide(held.conversion_id, "decline")

    assert answer.status_code == 202, answer.text
    assert answer.json()["decision"] == "decline"


async def test_a_decision_claimed_by_an_earlier_ledger_still_stands(ledger: Ledger) -> None:
    held = _held("legacy-claim")
    await ledger.apply(held)
    keys = ledger.store.keys
    await ledger.store.redis.hset(keys.ledger(REVIEW_DECISIONS), held.conversion_id, "decline")

    answer = await ledger.decide(held.conversion_id, "approve")

    assert answer.status_code == 409, answer.text
    assert "already_decided" in answer.json()["detail"][0]["reason"]
    assert not await ledger.store.redis.exists(keys.review(held.conversion_id, REVIEW_DECISION))
