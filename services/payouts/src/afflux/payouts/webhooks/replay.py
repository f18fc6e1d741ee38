"""Replay: schedule again an endpoint's events published on the topics since a time.

Reads the endpoint's topics without a consumer group (nothing is committed), from the
first offset at or after ``since`` (record timestamps), to the high watermark each
fetch reports, and schedules the events routed to that endpoint with their usual
webhook ids; a delivery still scheduled is left as it is. At most ``max_events``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from afflux.payouts.webhooks.intake import decoded_events
from afflux.payouts.webhooks.policy import EVENT_TYPES, Endpoint
from afflux.payouts.webhooks.redis_store import WebhookStore
from afflux.payouts.webhooks.routing import jobs_for
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.kafka import stop_consumer, topic_partitions

# Empty fetches in a row (300 ms each, nothing for any partition) of a partition still
# below its high watermark after which the replay gives up: a partition was closed after
# 3 such fetches as if read, and the events past that point were silently left out.
IDLE_POLLS_BEFORE_GIVING_UP = 20


class ReplayIncomplete(Exception):
    """The broker returned no records of some partitions below their end for a while:
    what was scheduled stays (once, by webhook id); the replay should be run again."""

    def __init__(self, partitions: list[TopicPartition]) -> None:
        named = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(partitions))
        super().__init__(f"the broker returned nothing more of {named} before its end")
        self.partitions = partitions


def partition_verdict(high: int | None, position: int, idle_polls: int) -> str:
    """ "read" once the position reaches the high watermark the last fetch reported;
    "stuck" after ``IDLE_POLLS_BEFORE_GIVING_UP`` empty fetches in a row below it (or with
    no fetch answered); else "reading"."""
    if high is not None and position >= high:
        return "read"
    return "stuck" if idle_polls >= IDLE_POLLS_BEFORE_GIVING_UP else "reading"


@dataclass(frozen=True, slots=True)
class ReplayResult:
    events: int  # the endpoint's events found since the time
    scheduled: int
    already_scheduled: int
    queue_full: int
    truncated: bool  # stopped at max_events


async def replay(
    store: WebhookStore,
    directory: CampaignDirectory,
    bootstrap: str,
    endpoint: Endpoint,
    *,
    since_ms: int,
    now: int,
    max_events: int,
) -> ReplayResult:
    topics = sorted({EVENT_TYPES[t] for t in endpoint.event_types})
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    totals = {"scheduled": 0, "already_scheduled": 0, "queue_full": 0}
    seen = 0
    truncated = False
    try:
        partitions: list[TopicPartition] = []
        for topic in topics:
            partitions += await topic_partitions(consumer, topic)
        if not partitions:
            return ReplayResult(0, 0, 0, 0, False)
        consumer.assign(partitions)
        starts = await consumer.offsets_for_times(dict.fromkeys(partitions, since_ms))
        for tp in partitions:
            found = starts.get(tp)
            if found is None:
                await consumer.seek_to_end(tp)
            else:
                consumer.seek(tp, found.offset)
        open_parts = set(partitions)
        idle = dict.fromkeys(partitions, 0)
        while open_parts and not truncated:
            polled = await consumer.getmany(*open_parts, timeout_ms=300, max_records=500)
            fresh = {
                tp: [r for r in records if r.timestamp >= since_ms]
                for tp, records in polled.items()
            }
            jobs = (
                await jobs_for(
                    store,
                    directory,
                    decoded_events(fresh),
                    now=now,
                    only_endpoint=endpoint.endpoint_id,
                )
            ).jobs  # what it cannot make a job of the intake dead-lettered
            if len(jobs) > max_events - seen:
                jobs, truncated = jobs[: max_events - seen], True
            seen += len(jobs)
            for outcome, count in (await store.enqueue([(j, now) for j in jobs], now=now)).items():
                totals[outcome] += count
            for tp in list(open_parts):
                high = consumer.highwater(tp)
                position = await consumer.position(tp)
                # Only a fetch that returned nothing at all counts as quiet: the consumer
                # hands out one partition's buffered records before another's, so a busy
                # partition leaves the others without records for many calls.
                idle[tp] = 0 if polled.get(tp) or polled else idle[tp] + 1
                verdict = partition_verdict(high, position, idle[tp])
                if verdict == "read":
                    open_parts.discard(tp)
                elif verdict == "stuck" and not truncated:
                    raise ReplayIncomplete([tp])
    finally:
        with contextlib.suppress(Exception):
            await stop_consumer(consumer)
    return ReplayResult(
        seen, totals["scheduled"], totals["already_scheduled"], totals["queue_full"], truncated
    )
