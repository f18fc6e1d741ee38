"""A what-if replay's inputs from the topics: a campaign's recorded clicks, orders,
refunds and lead confirmations, and every campaign's terms history.

Read without a consumer group (nothing is committed, no topic is written) from the
beginning of every partition to the high watermark a Fetch answered at the time of
reading (never ListOffsets, which the embedded broker answers wrongly for packed
batches). Bounded at entry: at most ``max_events`` events read, at most
``max_campaign_events`` of the campaign's held, and a deadline; past any the read stops
with ``ReplayRefused`` (docs/reliability.md, "What-if"). The decoder is given each
record's topic, timestamp and headers with its value, and the campaign's recorded terms
history, so that it leaves out the events the attribution worker refused
(``afflux.shared.whatif_decode``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from afflux.shared.core.event_time import DEFAULT_CLOCK_SKEW_MS
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.core.whatif.diff import WhatIfDiff, whatif
from afflux.shared.core.whatif.log import CampaignLog, DateRange
from afflux.shared.core.whatif.replay import ReplayStopped
from afflux.shared.io.campaign_view import CampaignDirectory, apply_record
from afflux.shared.io.kafka import stop_consumer, topic_partitions
from afflux.shared.topics import CAMPAIGNS, CLICKS, CONTENT, ORDERS, REFUNDS
from afflux.shared.whatif_decode import LogReader

INPUT_TOPICS = (CLICKS.name, ORDERS.name, REFUNDS.name)  # lead confirmations on orders
WHATIF_TOPICS = (*INPUT_TOPICS, CONTENT.name)  # what a replay reads, in one pass
MAX_EVENTS = 20_000_000
# The campaign's own events a replay holds in memory (about 500 bytes each, measured:
# docs/reliability.md): 2,000,000 is about 1 GB.
MAX_CAMPAIGN_EVENTS = 2_000_000
TIME_LIMIT_S = 60.0
_FETCH_BYTES = 16 * 1024 * 1024


class ReplayRefused(RuntimeError):
    """The replay's inputs are past a bound (events or time): narrow the range or ask
    an operator to raise the bound."""


@dataclass(frozen=True)
class ReplayBounds:
    max_events: int = MAX_EVENTS
    time_limit_s: float = TIME_LIMIT_S
    max_campaign_events: int = MAX_CAMPAIGN_EVENTS


async def read_to_end(
    bootstrap: str,
    topics: Sequence[str],
    on_value: Callable[[bytes | None], None] | Mapping[str, Callable[[bytes | None], None]],
    *,
    deadline: float,
    stop: Callable[[], bool] = lambda: False,
) -> int:
    """Give every record value of ``topics`` to ``on_value`` (or to the one it maps the
    record's topic to), up to each partition's high watermark; the records read.
    ``ReplayRefused`` past ``deadline`` (monotonic) or once ``stop()`` holds."""

    def take(record: ConsumerRecord[bytes, bytes]) -> None:
        (on_value if callable(on_value) else on_value[record.topic])(record.value)

    return await read_records_to_end(bootstrap, topics, take, deadline=deadline, stop=stop)


async def read_records_to_end(
    bootstrap: str,
    topics: Sequence[str],
    on_record: Callable[[ConsumerRecord[bytes, bytes]], None],
    *,
    deadline: float,
    stop: Callable[[], bool] = lambda: False,
    partitions: dict[str, int] | None = None,
) -> int:
    """``read_to_end`` giving ``on_record`` each whole record (its topic, timestamp and
    headers with its value); ``partitions``, when given, is filled with each topic's
    partition count before the first record."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_bytes=_FETCH_BYTES,
        max_partition_fetch_bytes=_FETCH_BYTES,
    )
    records = 0
    try:
        await consumer.start()  # inside: a broker away still closes what start opened
        tps: list[TopicPartition] = []
        for topic in topics:
            wait = min(5.0, max(0.1, deadline - time.monotonic()))  # a missing topic: none
            tps += await topic_partitions(consumer, topic, wait)
        if not tps:
            return 0
        if partitions is not None:
            for tp in tps:
                partitions[tp.topic] = partitions.get(tp.topic, 0) + 1
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while True:
            batches = await consumer.getmany(*tps, timeout_ms=200, max_records=50_000)
            for found in batches.values():
                records += len(found)
                for record in found:
                    on_record(record)
            if stop():
                raise ReplayRefused("stopped")
            if await _all_at_end(consumer, tps):
                return records
            if time.monotonic() >= deadline:
                raise ReplayRefused("the topics were not read within the time limit")
    finally:
        with contextlib.suppress(Exception):
            await stop_consumer(consumer)


async def _all_at_end(consumer: AIOKafkaConsumer, tps: Sequence[TopicPartition]) -> bool:
    for tp in tps:
        high = consumer.highwater(tp)  # from the last Fetch answer; None before the first
        if high is None or await consumer.position(tp) < high:
            return False
    return True


async def read_campaign_log(
    bootstrap: str,
    campaign_id: str,
    bounds: ReplayBounds,
    deadline: float | None = None,
    versions: Sequence[TermsVersion] = (),
    *,
    clock_skew_ms: int = DEFAULT_CLOCK_SKEW_MS,
    backfill_limit_days: int | None = None,
) -> LogReader:
    """The campaign's recorded inputs, without the events the attribution worker refused
    (``versions``: the campaign's recorded terms history, which the currency and
    backfill-limit refusals need; ``clock_skew_ms`` and ``backfill_limit_days``: the
    worker's settings); ``ReplayRefused`` past a bound."""
    reader = LogReader(
        CampaignLog(campaign_id),
        versions=versions,
        clock_skew_ms=clock_skew_ms,
        backfill_limit_days=backfill_limit_days,
    )
    end = deadline if deadline is not None else time.monotonic() + bounds.time_limit_s

    def too_many() -> bool:
        return reader.events > bounds.max_events or reader.log.events > bounds.max_campaign_events

    def take(record: ConsumerRecord[bytes, bytes]) -> None:
        if record.topic == CONTENT.name:
            reader.content_record(record.value, record.timestamp)
        else:
            reader.record(
                record.value, record.topic, record.timestamp, record.headers, record.partition
            )

    try:
        await read_records_to_end(
            bootstrap,
            WHATIF_TOPICS,
            take,
            deadline=end,
            stop=too_many,
            partitions=reader.partitions,  # the worker's key check
        )
    except ReplayRefused as exc:
        if reader.log.events > bounds.max_campaign_events:
            raise ReplayRefused(
                f"the campaign has more than {bounds.max_campaign_events} events to hold in"
                " memory: the replay's bound"
            ) from None
        if too_many():
            raise ReplayRefused(
                f"the topics hold more than {bounds.max_events} events: the replay's bound"
            ) from None
        raise ReplayRefused(
            f"reading the topics took longer than {bounds.time_limit_s:g} s: the replay's bound"
        ) from exc
    return reader


async def read_terms(bootstrap: str, timeout_s: float = 30.0) -> CampaignDirectory:
    """Every campaign's terms history, from the campaigns topic."""
    directory = CampaignDirectory()

    def take(value: bytes | None) -> None:
        apply_record(directory, value)

    await read_to_end(bootstrap, (CAMPAIGNS.name,), take, deadline=time.monotonic() + timeout_s)
    return directory


async def run_whatif(
    bootstrap: str,
    versions: Sequence[TermsVersion],
    draft: CampaignTerms,
    window: DateRange,
    bounds: ReplayBounds,
    *,
    clock_skew_ms: int = DEFAULT_CLOCK_SKEW_MS,
    backfill_limit_days: int | None = None,
) -> tuple[WhatIfDiff, LogReader]:
    """Read the campaign's inputs and compare ``draft`` with ``versions`` over ``window``;
    nothing is written anywhere. ``ReplayRefused`` past a bound. ``clock_skew_ms`` and
    ``backfill_limit_days``: the attribution worker's settings, which decide the events
    it refused (``read_campaign_log``)."""
    deadline = time.monotonic() + bounds.time_limit_s
    reader = await read_campaign_log(
        bootstrap,
        draft.campaign_id,
        bounds,
        deadline,
        versions,
        clock_skew_ms=clock_skew_ms,
        backfill_limit_days=backfill_limit_days,
    )
    try:
        diff = whatif(reader.log, versions, draft, window, lambda: time.monotonic() >= deadline)
    except ReplayStopped:
        raise ReplayRefused(
            f"reading and replaying took longer than {bounds.time_limit_s:g} s: the replay's bound"
        ) from None
    return diff, reader
