"""A payout is an amount like any other: at most the largest afflux carries (10^15).
A creator due more (the largest amount in each of two periods) is paid that much, and
the rest by the run of a later payout period."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka import TopicPartition
from redis.asyncio import Redis
from tests.integration.payouts.test_ledger_poison import (
    NOV_15,
    OCT_15,
    _conversion,
    _directory,
    _record,
    ledger_consumer,
)

from afflux.payouts.keys import Keys
from afflux.payouts.metrics import PayoutsMetrics
from afflux.payouts.run import run_payouts
from afflux.payouts.store import LedgerStore
from afflux.shared.core.money import MAX_AMOUNT_MINOR
from afflux.shared.io.kafka import new_producer
from afflux.shared.wire import encode

pytestmark = pytest.mark.integration

DAY = 86_400_000


def test_a_creator_due_more_than_the_largest_amount_is_paid_it_and_the_rest_later(
    infra: Any,
) -> None:
    run = uuid.uuid4().hex[:8]
    campaign = f"camp-{run}"
    prefix = f"afx:test:{run}:"
    directory = _directory(campaign, {"fixed_minor": MAX_AMOUNT_MINOR})

    async def scenario() -> list[list[tuple[str, int]]]:
        redis: Redis[bytes] = Redis.from_url(infra.redis_url, db=3)
        producer = new_producer(infra.kafka_bootstrap)
        await producer.start()
        store = LedgerStore(redis, Keys(prefix))
        consumer = ledger_consumer(infra, run, store, directory, producer)
        runs = []
        try:
            tp = TopicPartition("conversions", 0)
            october, november = (
                encode(_conversion(campaign, n, at)) for n, at in ((1, OCT_15), (2, NOV_15))
            )
            await consumer._apply({tp: [_record(0, run, october), _record(1, run, november)]})
            for name in ("2027-01", "2027-01", "2027-02", "2027-03"):
                results = await run_payouts(
                    store,
                    directory,
                    producer,
                    as_of=NOV_15 + 60 * DAY,
                    period=name,
                    campaign=campaign,
                    metrics=PayoutsMetrics(),
                )
                runs.append([(r["status"], r["amount_minor"]) for r in results])
        finally:
            await producer.stop()
            await redis.aclose()  # type: ignore[attr-defined]
        return runs

    runs = asyncio.run(scenario())

    assert runs == [
        [("paid", MAX_AMOUNT_MINOR)],
        [("already_paid", MAX_AMOUNT_MINOR)],
        [("paid", MAX_AMOUNT_MINOR)],  # the rest, in a later payout period
        [("nothing_due", 0)],
    ]
