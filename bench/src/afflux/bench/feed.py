"""Feeding scenarios to the worker's input topics as afflux producers would:
routed by each event's key, packed per (topic, partition) in list order.

The scenarios replay history (their event times are fixed, months before the records'
timestamps), so their records carry the backfill header, as an operator's backfill
through the orders service does: the worker otherwise refuses orders and refunds dated
past their campaign's backfill limit (``afflux.shared.core.event_time``)."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from afflux.shared.core.event_time import BACKFILL_HEADERS
from afflux.shared.core.ids import order_partition_key
from afflux.shared.core.terms import TermsVersion
from afflux.shared.events import (
    CampaignTermsPublished,
    ClickRecorded,
    Envelope,
    LeadConfirmed,
    OrderPlaced,
    OrderRefunded,
)
from afflux.shared.io.kafka import new_producer, partition_for
from afflux.shared.topics import CAMPAIGNS, CLICKS, ORDERS, REFUNDS
from afflux.shared.wire import encode, encode_packed


def route(event: Envelope, order_keys: dict[tuple[str, str], str]) -> tuple[str, str]:
    """The topic and key a producer of afflux would use."""
    if isinstance(event, ClickRecorded):
        return CLICKS.name, event.visitor_id
    if isinstance(event, OrderPlaced):
        key = order_partition_key(event.order_id, event.visitor_id, event.click_id)
        order_keys[(event.campaign_id, event.order_id)] = key
        return ORDERS.name, key
    if isinstance(event, LeadConfirmed):
        return ORDERS.name, order_keys.get((event.campaign_id, event.order_id), event.order_id)
    if isinstance(event, OrderRefunded):
        return REFUNDS.name, event.order_id
    raise TypeError(event)


def partition_of(key: str, partitions: int) -> int:
    return partition_for(key.encode(), partitions)


async def produce(
    bootstrap: str,
    events: Sequence[Envelope],
    partitions: int,
    *,
    pack: int = 100,
    orders_from: Sequence[Envelope] = (),
    backfill: bool = True,
) -> None:
    """Events packed per (topic, partition) in list order, as afflux producers do;
    ``orders_from``: earlier events whose orders a confirmation may follow; ``backfill``:
    mark the records a backfill (the module's docstring).

    A record is stamped when its first event was taken from the list, not when it is
    sent: a pack fills at its own pace (clicks twenty times faster than orders), so a
    visitor's click left in a pack that filled last would otherwise be stamped after
    their order, by more than the grace at a few million events, and reach the worker
    as a late click the list order never meant."""
    producer = new_producer(bootstrap, linger_ms=5, max_batch_size=1024 * 1024)
    await producer.start()
    try:
        order_keys: dict[tuple[str, str], str] = {}
        for earlier in orders_from:
            if isinstance(earlier, OrderPlaced):
                route(earlier, order_keys)
        slots: dict[tuple[str, int], list[tuple[str, Envelope]]] = defaultdict(list)
        opened: dict[tuple[str, int], int] = {}  # when each pack took its first event
        futures = []
        for event in events:
            topic, key = route(event, order_keys)
            slot = (topic, partition_of(key, partitions))
            if slot not in opened:
                opened[slot] = time.time_ns() // 1_000_000
            slots[slot].append((key, event))
            if len(slots[slot]) >= pack:
                items = slots.pop(slot)
                futures.append(await _send(producer, slot, items, opened.pop(slot), backfill))
        for slot, items in slots.items():
            futures.append(await _send(producer, slot, items, opened[slot], backfill))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _send(
    producer: AIOKafkaProducer,
    slot: tuple[str, int],
    items: list[tuple[str, Envelope]],
    stamp_ms: int,
    backfill: bool = True,
) -> Any:
    topic, partition = slot
    value = encode(items[0][1]) if len(items) == 1 else encode_packed([e for _, e in items])
    key = items[0][0].encode()
    headers = list(BACKFILL_HEADERS) if backfill else None
    return await producer.send(
        topic, value, key=key, partition=partition, timestamp_ms=stamp_ms, headers=headers
    )


async def publish_campaigns(bootstrap: str, campaigns: dict[str, tuple[TermsVersion, ...]]) -> None:
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        for cid, versions in campaigns.items():
            record = CampaignTermsPublished(
                event_id=f"terms-{cid}-{len(versions)}",
                occurred_at=versions[-1].published_at,
                campaign_id=cid,
                versions=versions,
            )
            await producer.send_and_wait(CAMPAIGNS.name, encode(record), key=cid.encode())
    finally:
        await producer.stop()
