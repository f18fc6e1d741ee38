"""Producing events and waiting for the broker's acknowledgement, packed per partition.

Events submitted in the same event-loop turn are grouped by the partition their
key maps to (the default murmur2 partitioner, as every afflux producer uses)
and sent as one packed record (a JSON array, see afflux.shared.wire) per
partition, so a packed record only ever holds events of its own partition. A
lone event is sent as a plain record. Every caller's future resolves when the
record holding its event is acknowledged, or fails with the send's error.

Events sent with record ``headers`` (an operator's backfill carries
``afflux.shared.core.event_time.BACKFILL_HEADER``) are never packed with others: each
is a record of its own with those headers, so the headers speak for exactly the
events they were given with. Backfills are rare and at most a batch's size.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Collection, Sequence
from typing import TypeVar

from aiokafka import AIOKafkaProducer

from afflux.orders.broker_watch import SendWatch
from afflux.shared.events import Envelope
from afflux.shared.io.kafka import broker_away, mark_not_sent, partition_for, send_chunks
from afflux.shared.wire import Chunk, chunk_by_partition, encode

Waiter = asyncio.Future[None]
Outcome = TypeVar("Outcome", bound=Collection[object])
Headers = Sequence[tuple[str, bytes]]


class Publisher:
    """``await publish(topic, key, event)`` returns once the broker acknowledged the event."""

    def __init__(self, producer: AIOKafkaProducer, *, pack: bool = True) -> None:
        self.producer = producer
        self.pack = pack
        self.watch = SendWatch()
        self._partitions: dict[str, int] = {}
        self._pending: dict[tuple[str, int], Chunk[Waiter]] = {}
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def _partition_count(self, topic: str) -> int:
        count = self._partitions.get(topic)
        if count is None:
            # The first send to a topic waits for its metadata: a broker that does not
            # answer then is stalled as surely as one that does not acknowledge.
            try:
                count = len(await self._watched(self.producer.partitions_for(topic)))
            except Exception as exc:
                raise mark_not_sent(exc) from None
            self._partitions[topic] = count
        return count

    async def publish(
        self, topic: str, key: str, event: Envelope, *, headers: Headers = ()
    ) -> None:
        value, raw_key = encode(event), key.encode()
        if headers or not self.pack:
            await self._send_one(topic, value, raw_key, list(headers) or None)
            return
        count = self._partitions.get(topic) or await self._partition_count(topic)
        partition = partition_for(raw_key, count)
        loop = asyncio.get_running_loop()
        waiter: Waiter = loop.create_future()
        slot = (topic, partition)
        pending = self._pending.get(slot)
        if pending is not None and not pending.fits(value):
            self._start(topic, self._pending.pop(slot))
            pending = None
        if pending is None:
            pending = self._pending[slot] = Chunk(partition, raw_key)
        pending.add(value, waiter)
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        await waiter

    async def publish_many(
        self, topic: str, items: Sequence[tuple[str, Envelope]], *, headers: Headers = ()
    ) -> list[Exception | None]:
        """Publish a batch; per item None once acknowledged, else the send's error."""
        encoded = [(key.encode(), encode(event), index) for index, (key, event) in enumerate(items)]
        chunks: list[Chunk[int]]
        if self.pack and not headers:
            count = self._partitions.get(topic) or await self._partition_count(topic)
            chunks = chunk_by_partition((partition_for(k, count), k, v, i) for k, v, i in encoded)
        else:
            # A record of its own each: headers speak only for the events given with them.
            chunks = [Chunk(None, k, [v], [i]) for k, v, i in encoded]
        results: list[Exception | None] = [None] * len(items)
        sent = await self._watched(send_chunks(self.producer, topic, chunks, headers=headers))
        for chunk, outcome in zip(chunks, sent, strict=True):
            if isinstance(outcome, Exception):
                for index in chunk.members:
                    results[index] = outcome
        return results

    def _flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, {}
        for (topic, _), chunk in pending.items():
            self._start(topic, chunk)

    def _start(self, topic: str, chunk: Chunk[Waiter]) -> None:
        task = asyncio.get_running_loop().create_task(self._send(topic, chunk))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_one(
        self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]] | None
    ) -> None:
        async def acknowledged() -> tuple[()]:
            try:
                sending = await self.producer.send(topic, value, key=key, headers=headers)
            except Exception as exc:
                raise mark_not_sent(exc) from None
            await sending
            return ()

        await self._watched(acknowledged())

    async def _watched(self, sending: Awaitable[Outcome]) -> Outcome:
        """``sending`` counted in and out by the watch: failed if it raised or any of its
        outcomes (``send_chunks``'s list) is an error."""
        token = self.watch.begin()
        try:
            outcome = await sending
        except asyncio.CancelledError:
            self.watch.abandon(token)
            raise
        except Exception as error:
            self.watch.end(token, error)
            raise
        failures = [o for o in outcome if isinstance(o, Exception)]
        # The broker away in any chunk is what the watch must hear of, not a chunk refused.
        away = [f for f in failures if broker_away(f)]
        shown = away or failures
        self.watch.end(token, shown[0] if shown else None)
        return outcome

    async def _send(self, topic: str, chunk: Chunk[Waiter]) -> None:
        try:
            [outcome] = await self._watched(send_chunks(self.producer, topic, [chunk]))
        except asyncio.CancelledError:
            for waiter in chunk.members:
                waiter.cancel()
            raise
        for waiter in chunk.members:
            if waiter.done():
                continue
            if isinstance(outcome, Exception):
                waiter.set_exception(outcome)
            else:
                waiter.set_result(None)
