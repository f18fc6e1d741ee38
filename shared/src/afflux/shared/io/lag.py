"""Consumer lag from the Fetch high watermark: ``afflux_consumer_lag_messages{service,topic}``.

Lag is the number of records on a partition that this consumer has not yet
processed: the high watermark that the broker returned with the latest Fetch
response, minus the offset of the next record to process. It is summed per
topic (partition labels would multiply series without helping an alert).

ListOffsets "latest" (``consumer.end_offsets``) is deliberately not used: the
embedded broker answers it with the base offset of the newest batch + 1, which
hides the rest of that batch; the Fetch high watermark is right on every
broker. Until a partition's first Fetch response there is no high watermark
and the partition is left out rather than guessed.

Usage, in a service that owns an ``AIOKafkaConsumer``::

    lag = ConsumerLag("payouts", registry)          # once, beside the other metrics
    task = asyncio.create_task(lag.run(consumer))   # refreshes every few seconds
    # or, where the loop already wakes up regularly:
    await lag.update(consumer)

A consumer that applies records after ``getmany`` returns them (and so knows
better than ``consumer.position`` what is done) passes ``processed``: a mapping
from partition to the next offset it will apply.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry, Gauge

METRIC = "afflux_consumer_lag_messages"
DEFAULT_INTERVAL_S = 5.0


class PartitionLike(Protocol):
    """aiokafka's TopicPartition and Faust's TP both have these."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...


P = TypeVar("P", bound=PartitionLike)


def lag_per_topic(
    partitions: Iterable[P],
    highwater: Callable[[P], int | None],
    next_offset: Callable[[P], int | None],
) -> dict[str, int]:
    """Unprocessed records per topic; partitions without a known high watermark are skipped.

    ``next_offset`` is the offset of the next record to process (None: nothing
    processed yet on that partition, counted from the start of what is known).
    """
    lags: dict[str, int] = {}
    for tp in partitions:
        high = highwater(tp)
        if high is None:
            continue
        position = next_offset(tp)
        behind = high - position if position is not None else high
        lags[tp.topic] = lags.get(tp.topic, 0) + max(0, behind)
    return lags


def lag_gauge(registry: CollectorRegistry | None) -> Gauge:
    """The lag gauge on ``registry`` (each afflux service keeps a registry of its own)."""
    return Gauge(
        METRIC,
        "Records not yet processed: Fetch high watermark minus the next offset to process",
        ["service", "topic"],
        registry=registry,
    )


class ConsumerLag:
    """Keeps ``afflux_consumer_lag_messages{service=<service>,topic=...}`` current."""

    def __init__(
        self, service: str, registry: CollectorRegistry | None = None, *, gauge: Gauge | None = None
    ) -> None:
        self.service = service
        self.gauge = gauge if gauge is not None else lag_gauge(registry)
        self._topics: set[str] = set()

    def publish(self, lags: Mapping[str, int]) -> None:
        """Set the gauge per topic; topics no longer assigned here drop out of the output."""
        for topic, value in lags.items():
            self.gauge.labels(self.service, topic).set(value)
        for gone in self._topics - set(lags):
            with contextlib.suppress(KeyError):
                self.gauge.remove(self.service, gone)
        self._topics = set(lags)

    async def measure(
        self,
        consumer: AIOKafkaConsumer,
        processed: Mapping[TopicPartition, int] | None = None,
    ) -> dict[str, int]:
        """Lag per topic of ``consumer``'s assigned partitions (no request to the broker)."""
        assigned = list(consumer.assignment())
        positions: dict[TopicPartition, int | None] = {}
        for tp in assigned:
            if processed is not None and tp in processed:
                positions[tp] = processed[tp]
            elif consumer.highwater(tp) is not None:
                # A fetched partition has a valid position: this returns at once.
                positions[tp] = await consumer.position(tp)
        return lag_per_topic(
            assigned,
            consumer.highwater,
            positions.get,
        )

    async def update(
        self,
        consumer: AIOKafkaConsumer,
        processed: Mapping[TopicPartition, int] | None = None,
    ) -> dict[str, int]:
        """Measure and publish; returns what was published."""
        lags = await self.measure(consumer, processed)
        self.publish(lags)
        return lags

    async def run(
        self,
        consumer: AIOKafkaConsumer,
        interval_s: float = DEFAULT_INTERVAL_S,
        processed: Callable[[], Mapping[TopicPartition, int]] | None = None,
    ) -> None:
        """Refresh every ``interval_s`` until cancelled; a failed measurement is skipped."""
        while True:
            with contextlib.suppress(Exception):
                await self.update(consumer, processed() if processed is not None else None)
            await asyncio.sleep(interval_s)
