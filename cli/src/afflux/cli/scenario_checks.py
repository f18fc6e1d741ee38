"""Invariants over what the stack answered and what it put on its topics.

Each check returns human-readable differences; an empty list means it holds.
Used by ``afflux verify`` and the fault tests.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from aiokafka import AIOKafkaConsumer

from afflux.cli.topic_to_end import at_end
from afflux.shared.core.event_time import is_backfill
from afflux.shared.events import (
    AnyEvent,
    ClickRecorded,
    ConversionAttributed,
    DeadLetter,
    OrderPlaced,
)
from afflux.shared.wire import UndecodableRecord, decode_record

END_WAIT_S = 60.0  # past idle: how long a read waits for partitions to reach their end


async def read_topic(bootstrap: str, topic: str, *, idle_s: float = 2.0) -> list[AnyEvent]:
    """Every decodable event on ``topic``, read until nothing new arrives for ``idle_s``."""
    return [event for event, *_ in await read_topic_timed(bootstrap, topic, idle_s=idle_s)]


async def read_topic_timed(
    bootstrap: str, topic: str, *, idle_s: float = 2.0
) -> list[tuple[AnyEvent, int, bool]]:
    """Every decodable event on ``topic`` with its record's timestamp (ms) and whether the
    record carries the backfill header, read until nothing new arrives for ``idle_s``.

    The end is found by reading, never from ListOffsets (the embedded broker
    answers those wrongly when batches hold several records). Idle counts only once
    every partition has reached the high watermark its last Fetch answered: a loaded
    broker slow to answer the first Fetch, or a long decode, once ended the read
    before the records already on the topic were read. A partition that never gets
    there ends the read ``END_WAIT_S`` later, with what was read.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    events: list[tuple[AnyEvent, int, bool]] = []
    last_record_at = time.monotonic()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=250, max_records=10_000)
            for records in batches.values():
                for record in records:
                    try:
                        decoded = decode_record(record.value)
                    except UndecodableRecord:
                        continue
                    backfill = is_backfill(record.headers)
                    events += [(event, record.timestamp, backfill) for event in decoded]
                last_record_at = time.monotonic()
            quiet = time.monotonic() - last_record_at
            if quiet >= END_WAIT_S + idle_s or (
                quiet >= idle_s and await _every_partition_at_end(consumer)
            ):
                break
    finally:
        await consumer.stop()
    return events


async def _every_partition_at_end(consumer: AIOKafkaConsumer) -> bool:
    # No partition assigned: no such topic (its metadata comes with the start).
    return all([await at_end(consumer, tp) for tp in consumer.assignment()])


def read_topic_sync(bootstrap: str, topic: str, *, idle_s: float = 2.0) -> list[AnyEvent]:
    return asyncio.run(read_topic(bootstrap, topic, idle_s=idle_s))


def _limited(lines: list[str], limit: int = 20) -> list[str]:
    if len(lines) <= limit:
        return lines
    return [*lines[:limit], f"... and {len(lines) - limit} more"]


def every_redirect_is_one_click_event(
    sent_click_ids: Sequence[str], events: Iterable[AnyEvent]
) -> list[str]:
    """Each 302 answered is exactly one click event (redeliveries of the same event
    id are allowed: transport is at least once, consumers dedupe by event id)."""
    ids_per_click: dict[str, set[str]] = {}
    for event in events:
        if isinstance(event, ClickRecorded):
            ids_per_click.setdefault(event.click_id, set()).add(event.event_id)
    differences = [f"click {c}: answered 302 but no click event" for c in sent_click_ids]
    differences = [
        d for d, c in zip(differences, sent_click_ids, strict=True) if c not in ids_per_click
    ]
    sent = Counter(sent_click_ids)
    differences += [
        f"click {c}: {n} redirects share one click id" for c, n in sent.items() if n > 1
    ]
    differences += [
        f"click {c}: {len(ids)} different click events"
        for c, ids in ids_per_click.items()
        if len(ids) > 1
    ]
    return _limited(differences)


def every_accepted_order_is_on_the_topic(
    accepted: Sequence[tuple[str, str]], events: Iterable[AnyEvent]
) -> list[str]:
    """``accepted`` holds (campaign_id, order_id) of every order answered 202 or 200."""
    placed = {(e.campaign_id, e.order_id) for e in events if isinstance(e, OrderPlaced)}
    return _limited(
        [
            f"order {c}/{o}: accepted but not on the orders topic"
            for c, o in accepted
            if (c, o) not in placed
        ]
    )


def one_live_conversion_per_order(events: Iterable[AnyEvent]) -> list[str]:
    """Per campaign and order, one conversion that no correction superseded; a redelivered
    record has the same id and content."""
    by_id: dict[str, ConversionAttributed] = {}
    superseded: set[str] = set()
    differences = []
    for event in events:
        if not isinstance(event, ConversionAttributed):
            continue
        first = by_id.setdefault(event.conversion_id, event)
        if first.affiliate_id != event.affiliate_id:
            differences.append(
                f"conversion {event.conversion_id}: two creators"
                f" ({first.affiliate_id}, {event.affiliate_id})"
            )
        if event.supersedes is not None:
            superseded.add(event.supersedes)
    live: dict[tuple[str, str], list[str]] = {}
    for cid, event in by_id.items():
        if cid not in superseded:
            live.setdefault((event.campaign_id, event.order_id), []).append(event.affiliate_id)
    differences += [
        f"order {c}/{o}: attributed twice ({', '.join(who)})"
        for (c, o), who in live.items()
        if len(who) > 1
    ]
    return _limited(differences)


def dead_letters_by_reason(events: Iterable[AnyEvent]) -> dict[str, list[DeadLetter]]:
    grouped: dict[str, list[DeadLetter]] = {}
    for event in events:
        if isinstance(event, DeadLetter):
            grouped.setdefault(event.source_topic, []).append(event)
    return grouped


# The signature's whole second and the request's transit, retries included: the demo
# client signs each attempt anew (an order is placed on our clock by the signature's
# offset, so a retry sent with its first signature landed it as much later).
PLACED_SLACK_MS = 5_000


def every_order_is_placed_at_its_purchase(
    purchased: Mapping[tuple[str, str], int], orders: Iterable[AnyEvent]
) -> list[str]:
    """Each order is on the topic at the moment it was bought, on our clock (the orders
    service moves the merchant's time by its clock's offset, which the signature tells),
    whatever the merchant's clock and however late it reported. The oracle decides from
    the time on the topic, so a misplaced order (a merchant clock's offset left in it)
    looks right to it: an order before the click that led to it, or after clicks made
    after the purchase. ``purchased``: (campaign, order) -> the purchase on our clock."""
    differences = []
    for event in orders:
        if not isinstance(event, OrderPlaced):
            continue
        bought_at = purchased.get((event.campaign_id, event.order_id))
        if bought_at is None:
            continue
        off = event.occurred_at - bought_at
        if not -50 <= off <= PLACED_SLACK_MS:
            differences.append(
                f"order {event.campaign_id}/{event.order_id}: placed {off} ms"
                f" {'after' if off > 0 else 'before'} its purchase on our clock"
                f" (merchant's time {event.reported_occurred_at})"
            )
    return differences
