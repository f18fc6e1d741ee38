"""A click produced straight to the topic with a far-future event time must not move the
join's event-time watermark: pruning behind it would drop a click an order still needs.

Driven in-process on the test's own broker: real records with real timestamps go
through the worker's runtime, and pruning is called when the timer would call it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness as h
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from afflux.attribution.changelog import ensure_changelogs
from afflux.attribution.gaps import read_range
from afflux.attribution.metrics import AttributionMetrics
from afflux.attribution.runtime import Runtime
from afflux.attribution.stage import Transport
from afflux.bench.feed import partition_of
from afflux.shared.core.event_time import DEFAULT_CLOCK_SKEW_MS
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import (
    CampaignTermsPublished,
    ClickRecorded,
    ConversionAttributed,
    DeadLetter,
    Envelope,
    OrderPlaced,
)
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.kafka import new_producer
from afflux.shared.topics import CLICKS, CONVERSIONS, DLQ, ORDERS, UNMATCHED
from afflux.shared.wire import encode

pytestmark = pytest.mark.integration

PARTITIONS = 4
DAY = 86_400_000
MINUTE = 60_000


@dataclass(frozen=True)
class Case:
    name: str
    skew_ms: int
    needed_click_kept: bool


CASES = [
    # The future click is refused: the watermark stays, the needed click stays, it wins.
    Case("guarded", DEFAULT_CLOCK_SKEW_MS, True),
    # Without the bound the watermark jumps 120 days (past the 30-day window, the 60-day
    # late-report age and a day) and pruning drops the needed click.
    Case("unguarded", 365 * DAY, False),
]


def directory_with(campaign: str) -> CampaignDirectory:
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": campaign,
            "merchant_id": "merchant",
            "currency": "EUR",
            "cookie_window_days": 30,
            "grace_seconds": 1,
            "plan": {"sale": {"rate": {"percent": "10"}}},
        }
    )
    version = TermsVersion(version=1, effective_from=0, published_at=0, terms=terms)
    directory = CampaignDirectory()
    directory.apply(
        CampaignTermsPublished(
            event_id=f"terms-{campaign}", occurred_at=0, campaign_id=campaign, versions=(version,)
        )
    )
    return directory


async def scenario(bootstrap: str, case: Case) -> tuple[bool, Envelope, list[Envelope]]:
    """(needed click still held after pruning, the order's outcome, dead letters)."""
    now = int(time.time() * 1000)
    visitor, campaign = f"v-future-{case.name}", f"camp-future-{case.name}"
    p = partition_of(visitor, PARTITIONS)

    def click(n: int, at: int) -> ClickRecorded:
        return ClickRecorded(
            event_id=f"click-ev-{case.name}-{n}",
            occurred_at=at,
            click_id=f"click-{case.name}-{n}",
            link_code="code",
            affiliate_id="creator",
            campaign_id=campaign,
            visitor_id=visitor,
        )

    needed, future = click(1, now - 10 * MINUTE), click(2, now + 120 * DAY)
    order = OrderPlaced(
        event_id=f"order-ev-{case.name}",
        occurred_at=now,
        order_id=f"order-{case.name}",
        campaign_id=campaign,
        merchant_id="merchant",
        currency="EUR",
        amount_minor=1_000,
        visitor_id=visitor,
    )
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        # The needed click reached the broker ten minutes ago; the future one now.
        for event, ts in ((needed, now - 10 * MINUTE), (future, now)):
            await producer.send_and_wait(
                CLICKS.name, encode(event), key=visitor.encode(), partition=p, timestamp_ms=ts
            )
        await producer.send_and_wait(
            ORDERS.name, encode(order), key=visitor.encode(), partition=p, timestamp_ms=now
        )

        async def send(topic: str, key: bytes | None, value: bytes | None, q: int | None) -> Any:
            return await producer.send(topic, value, key=key, partition=q)

        runtime = Runtime(
            transport=Transport(send),
            bootstrap=bootstrap,
            group=f"future-{case.name}",
            directory=directory_with(campaign),
            metrics=AttributionMetrics(),
            refund_wait_ms=0,
            order_retention_ms=400 * DAY,
            clock_skew_ms=case.skew_ms,
        )
        await ensure_changelogs(bootstrap, runtime.changelogs, PARTITIONS)
        runtime.assigned({(CLICKS.name, p), (ORDERS.name, p)})
        owned = await runtime.join.partition(p)
        assert owned is not None
        clicks = await _ours(bootstrap, CLICKS.name, p, visitor)
        for r in clicks:
            await runtime.join.handle(r)
        # Everything up to now has been read: the timer's notes would make now safe.
        owned.safe_ms = now
        await runtime.prune()
        kept = needed.click_id in owned.state.keys[visitor].clicks
        for r in await _ours(bootstrap, ORDERS.name, p, visitor):
            await runtime.join.handle(r)
        owned.safe_ms = now + 2_000  # past the order's grace
        await runtime.tick()
    finally:
        await producer.stop()
    topics = await h.read_topics(bootstrap, (CONVERSIONS.name, UNMATCHED.name, DLQ.name))
    [outcome] = [
        e
        for t in (CONVERSIONS.name, UNMATCHED.name)
        for e in topics[t]
        if getattr(e, "order_id", None) == order.order_id
    ]
    letters = [
        e for e in topics[DLQ.name] if isinstance(e, DeadLetter) and future.click_id in e.value
    ]
    return kept, outcome, letters


async def _ours(bootstrap: str, topic: str, p: int, visitor: str) -> list[Any]:
    records = await read_range(bootstrap, topic, p, 0, await _end(bootstrap, topic, p))
    return [r for r in records if r.key == visitor.encode()]


async def _end(bootstrap: str, topic: str, p: int) -> int:
    """The partition's end from a fetch's high watermark (never ListOffsets)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        tp = TopicPartition(topic, p)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        while consumer.highwater(tp) is None:
            await consumer.getmany(tp, timeout_ms=200)
        return int(consumer.highwater(tp) or 0)
    finally:
        await consumer.stop()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_far_future_click_does_not_prune_a_click_an_order_needs(
    private_broker: tuple[str, Path], case: Case
) -> None:
    bootstrap, _ = private_broker
    kept, outcome, letters = asyncio.run(scenario(bootstrap, case))
    assert kept is case.needed_click_kept
    if case.needed_click_kept:
        assert isinstance(outcome, ConversionAttributed)
        assert outcome.click_id == f"click-{case.name}-1"
        [letter] = letters
        assert letter.reason.startswith("event_time_in_future")
    else:
        assert not isinstance(outcome, ConversionAttributed)
        assert letters == []
