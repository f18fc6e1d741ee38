"""Replay: schedule again an endpoint's events published on the topics since a time.

Reads the endpoint's topics without a consumer group (nothing is committed), from the
first offset at or after ``since`` (record timestamps), to the high watermark each
fetch reports, and schedules the events routed to that endpoint with their usual
webhook ids; a delivery still scheduled is left as it is.

At most ``max_events``: the earliest by record time (then webhook id), whatever
partition they were read from, and ``resume_since`` says where the next call starts:
the earliest time of an event left out. It kept the first ``max_events`` of whatever
the fetches returned first, so a call could schedule one partition's newest event and
none of another's oldest, and no later ``since`` resumed without a gap. Every partition
is read to its end: record times need not rise with offsets (a producer may stamp a
record earlier than one before it), so no earlier stop is safe; what is kept stays
within twice ``max_events``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from afflux.payouts.webhooks.intake import decoded_items
from afflux.payouts.webhooks.policy import DEFAULT_MAX_BODY_BYTES, EVENT_TYPES, Endpoint
from afflux.payouts.webhooks.redis_store import Job, WebhookStore
from afflux.payouts.webhooks.routing import jobs_for
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.kafka import stop_consumer, topic_partitions

# Empty fetches in a row (300 ms each, nothing for any partition) of a partition still
# below its high watermark after which the replay gives up: a partition was closed after
# 3 such fetches as if read, and the events past that point were silently left out.
IDLE_POLLS_BEFORE_GIVING_UP = 20


class ReplayIncomplete(Exception):
    """The broker returned no records of some partitions below their end for a while:
    nothing was scheduled (the earliest events are known only once every partition is
    read); the replay should be run again."""

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
    # When truncated: the earliest record time of an event left out; a replay from it
    # schedules the rest (events of that very millisecond already sent are sent again,
    # under the same webhook ids).
    resume_since: int | None = None


class _Earliest:
    """The ``size`` earliest jobs by (record time, webhook id), and the earliest time of
    those left out. Candidates are cut back to ``size`` whenever twice as many gather."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._kept: list[tuple[int, str, Job]] = []
        self.left_out_from: int | None = None
        # No job later than this is kept in the end (None: not full yet).
        self.bound: int | None = None

    def offer(self, at: int, job: Job) -> None:
        if self.bound is not None and at > self.bound:
            self.left_out(at)
            return
        self._kept.append((at, job.webhook_id, job))
        if len(self._kept) >= 2 * self.size:
            self._cut()

    def jobs(self) -> list[Job]:
        self._cut()
        return [job for _, _, job in self._kept]

    def _cut(self) -> None:
        self._kept.sort(key=lambda entry: entry[:2])
        for at, _, _ in self._kept[self.size :]:
            self.left_out(at)
        del self._kept[self.size :]
        if len(self._kept) >= self.size:
            self.bound = self._kept[-1][0]

    def left_out(self, at: int) -> None:
        if self.left_out_from is None or at < self.left_out_from:
            self.left_out_from = at


async def replay(
    store: WebhookStore,
    directory: CampaignDirectory,
    bootstrap: str,
    endpoint: Endpoint,
    *,
    since_ms: int,
    now: int,
    max_events: int,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> ReplayResult:
    topics = sorted({EVENT_TYPES[t] for t in endpoint.event_types})
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    totals = {"scheduled": 0, "already_scheduled": 0, "queue_full": 0}
    earliest = _Earliest(max_events)
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
        while open_parts:
            polled = await consumer.getmany(*open_parts, timeout_ms=300, max_records=500)
            fresh = {
                tp: [r for r in records if r.timestamp >= since_ms]
                for tp, records in polled.items()
            }
            items = decoded_items(fresh)[0]  # the intake dead-lettered the rest
            at: dict[str, int] = {}
            for item in items:
                at.setdefault(item.event.event_id, item.record.timestamp)
            jobs = (
                await jobs_for(
                    store,
                    directory,
                    [item.event for item in items],
                    now=now,
                    only_endpoint=endpoint.endpoint_id,
                    max_body_bytes=max_body_bytes,
                )
            ).jobs  # what it cannot make a job of the intake dead-lettered
            for job in jobs:
                earliest.offer(at.get(job.event_id, since_ms), job)
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
                elif verdict == "stuck":
                    raise ReplayIncomplete([tp])
        kept = earliest.jobs()
        for outcome, count in (await store.enqueue([(j, now) for j in kept], now=now)).items():
            totals[outcome] += count
    finally:
        with contextlib.suppress(Exception):
            await stop_consumer(consumer)
    truncated = earliest.left_out_from is not None
    return ReplayResult(
        len(kept),
        totals["scheduled"],
        totals["already_scheduled"],
        totals["queue_full"],
        truncated,
        earliest.left_out_from,
    )
