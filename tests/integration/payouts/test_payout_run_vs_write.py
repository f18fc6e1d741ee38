"""A payout run reads each period's figures at one instant. It once read a period's
sums, then its approval schedule in later round trips: a ledger step landing in between
that lowered a creator's total and pending part together (a refund before approval, a
declined review) read as the old total less the new pending part, and the run paid money
that was never approved. The step here lands right after the run has found its creators."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from redis.asyncio import Redis
from tests.integration.payouts.test_ledger_poison import (
    NOV_15,
    _conversion,
    _directory,
    ledger_consumer,
)

from afflux.payouts import run as payout_run
from afflux.payouts.keys import Keys
from afflux.payouts.metrics import PayoutsMetrics
from afflux.payouts.run import run_payouts
from afflux.payouts.store import LedgerStore
from afflux.shared.events import ConversionReversed, ConversionReviewed, Envelope
from afflux.shared.io.kafka import new_producer
from afflux.shared.wire import encode

pytestmark = pytest.mark.integration

DAY = 86_400_000


def _on(topic: str, offset: int, event: Envelope) -> ConsumerRecord[bytes, bytes]:
    value, key = encode(event), event.event_id
    return ConsumerRecord(
        topic, 0, offset, 0, 0, key.encode(), value, None, len(key), len(value), []
    )


def _refund_of_order_1(campaign: str) -> ConversionReversed:
    return ConversionReversed(
        event_id="rev-1", occurred_at=NOV_15 + 3 * DAY, reversal_id="rev-1", refund_id="ref-1",
        conversion_id="conv-1", order_id="order-1", campaign_id=campaign, affiliate_id="anna",
        amount_minor=10_000, requested_minor=10_000, refunded_total_minor=10_000,
        order_amount_minor=10_000, currency="EUR", order_occurred_at=NOV_15 + 1,
    )  # fmt: skip


def _decline_of_order_2(campaign: str) -> ConversionReviewed:
    return ConversionReviewed(
        event_id="review-2", occurred_at=NOV_15 + 5 * DAY, conversion_id="conv-2",
        order_id="order-2", campaign_id=campaign, affiliate_id="anna",
        order_occurred_at=NOV_15 + 2, decision="decline", reason="self purchase",
        decided_by="admin",
    )  # fmt: skip


@pytest.mark.parametrize("write", ["refund before approval", "declined review"])
def test_a_step_landing_during_a_payout_run_never_gets_pending_money_paid(
    infra: Any, write: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = uuid.uuid4().hex[:8]
    campaign = f"camp-{run}"
    prefix = f"afx:test:{run}:"
    # 30 lock days; a self-referral holds its conversion for review.
    directory = _directory(
        campaign, more={"lock_days": 30, "review": {"hold_on": ["self_referral"]}}
    )

    async def scenario() -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        redis: Redis[bytes] = Redis.from_url(infra.redis_url, db=3)
        producer = new_producer(infra.kafka_bootstrap)
        await producer.start()
        store = LedgerStore(redis, Keys(prefix))
        consumer = ledger_consumer(infra, run, store, directory, producer)
        sale = _conversion(campaign, 1, NOV_15 + 1)  # 10 % of 100.00, pending for 30 days
        held = _conversion(campaign, 2, NOV_15 + 2, amount=50_000).model_copy(
            update={"risk_signals": ("self_referral",)}
        )
        await consumer._apply(
            {
                TopicPartition("conversions", 0): [
                    _on("conversions", 0, sale),
                    _on("conversions", 1, held),
                ]
            }
        )
        landing = (
            {TopicPartition("reversals", 0): [_on("reversals", 0, _refund_of_order_1(campaign))]}
            if write == "refund before approval"
            else {TopicPartition("reviews", 0): [_on("reviews", 0, _decline_of_order_2(campaign))]}
        )
        found_creators = payout_run.reads.period_creator_sums

        async def then_a_step_lands(*args: Any) -> Any:
            found = await found_creators(*args)
            await consumer._apply(landing)
            return found

        monkeypatch.setattr(payout_run.reads, "period_creator_sums", then_a_step_lands)

        async def pay(name: str) -> list[tuple[str, int]]:
            results = await run_payouts(
                store, directory, producer, as_of=NOV_15 + 10 * DAY, period=name,
                campaign=campaign, metrics=PayoutsMetrics(),
            )  # fmt: skip
            return [(r["status"], r["amount_minor"]) for r in results]

        try:
            during = await pay("2026-11")
            monkeypatch.setattr(payout_run.reads, "period_creator_sums", found_creators)
            after = await pay("2026-12")
        finally:
            await producer.stop()
            await redis.aclose()  # type: ignore[attr-defined]
        return during, after

    during, after = asyncio.run(scenario())

    # Ten days in, nothing is approved: the sale waits for its lock, the other for review.
    assert during == [("nothing_due", 0)]
    assert after == [("nothing_due", 0)]
