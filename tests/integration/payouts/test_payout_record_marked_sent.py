"""A payout record is rewritten once its ``PayoutIssued`` is on the topic (``emitted``).
Where Redis lost the record between the run's write and that rewrite, the rewrite is the
record's only way back (the ledger's read of the topic finds it there and adds nothing):
it must bring the creator's paid total with it, or the portal's "paid" figure misses a
payout that was made and announced."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from afflux.payouts import payout_records
from afflux.payouts.store import LedgerStore

pytestmark = pytest.mark.integration

PAYOUT: dict[str, Any] = {
    "payout_id": "p-1",
    "affiliate_id": "creator-1",
    "campaign_id": "shop",
    "currency": "EUR",
    "period": "2026-11",
    "amount_minor": 12_345,
    "as_of": 1_764_547_200_000,
    "line_ids": ["l-1"],
}


async def test_marking_a_payout_sent_keeps_its_paid_total_once(
    empty_redis: Redis[bytes],
) -> None:
    store = LedgerStore(empty_redis)
    assert await payout_records.record(store, PAYOUT, 0) == payout_records.RECORDED

    await payout_records.mark_emitted(store, PAYOUT)

    assert await payout_records.paid_of(store, "creator-1") == {"EUR": 12_345}
    records = await payout_records.records_of(store, "creator-1")
    assert records["shop|2026-11"]["emitted"] is True


async def test_a_record_redis_lost_before_it_was_marked_sent_comes_back_with_its_paid_total(
    empty_redis: Redis[bytes],
) -> None:
    store = LedgerStore(empty_redis)
    assert await payout_records.record(store, PAYOUT, 0) == payout_records.RECORDED
    await empty_redis.flushdb()  # Redis restarted empty between the write and the send

    await payout_records.mark_emitted(store, PAYOUT)
    # The ledger then reads the same payout back from the topic: nothing more to add.
    restored = await payout_records.restore(
        store, [payout_records.from_event(payout_records.event_of(PAYOUT))]
    )

    assert await payout_records.paid_of(store, "creator-1") == {"EUR": 12_345}
    assert await payout_records.records_of(store, "creator-1") == {
        "shop|2026-11": {**PAYOUT, "emitted": True}
    }
    assert restored == 0
