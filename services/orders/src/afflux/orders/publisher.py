"""Producing events and waiting for the broker's acknowledgement, packed per partition.

Events submitted in the same event-loop turn are grouped by the partition their
key maps to (the default murmur2 partitioner, as every afflux producer uses)
and sent as one packed record (a JSON array, see afflux.shared.wire) per
partition, so a packed record only ever holds events of its own partition. A
lone event is sent as a plain record. Every caller's future resolves when the
record holding its event is acknowledged, or fails with the send's error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer

from afflux.shared.events import Envelope
from afflux.shared.kafka import partition_for
from afflux.shared.wire import MAX_PACKED_BYTES, MAX_PACKED_EVENTS, encode, pack_values


@dataclass
class _Pending:
    key: bytes
    values: list[bytes] = field(default_factory=list)
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    size: int = 0


class Publisher:
    """``await publish(topic, key, event)`` returns once the broker acknowledged the event."""

    def __init__(self, producer: AIOKafkaProducer, *, pack: bool = True) -> None:
        self.producer = producer
        self.pack = pack
        self._partitions: dict[str, int] = {}
        self._pending: dict[tuple[str, int], _Pending] = {}
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def _partition_count(self, topic: str) -> int:
        count = self._partitions.get(topic)
        if count is None:
            count = len(await self.producer.partitions_for(topic))
            self._partitions[topic] = count
        return count

    async def publish(self, topic: str, key: str, event: Envelope) -> None:
        value, raw_key = encode(event), key.encode()
        if not self.pack:
            await (await self.producer.send(topic, value, key=raw_key))
            return
        count = self._partitions.get(topic) or await self._partition_count(topic)
        partition = partition_for(raw_key, count)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        slot = (topic, partition)
        pending = self._pending.get(slot)
        if pending is not None and (
            len(pending.values) >= MAX_PACKED_EVENTS or pending.size + len(value) > MAX_PACKED_BYTES
        ):
            self._start(slot, self._pending.pop(slot))
            pending = None
        if pending is None:
            pending = self._pending[slot] = _Pending(raw_key)
        pending.values.append(value)
        pending.waiters.append(waiter)
        pending.size += len(value) + 1
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        await waiter

    async def publish_many(
        self, topic: str, items: Sequence[tuple[str, Envelope]]
    ) -> list[Exception | None]:
        """Publish a batch; per item None once acknowledged, else the send's error."""
        results: list[Exception | None] = [None] * len(items)
        count = self._partitions.get(topic) or await self._partition_count(topic)
        groups: dict[int, list[_Pending]] = {}
        indices: dict[int, list[list[int]]] = {}
        for index, (key, event) in enumerate(items):
            value, raw_key = encode(event), key.encode()
            partition = partition_for(raw_key, count) if self.pack else -1 - index
            chunks = groups.setdefault(partition, [])
            if not chunks or (
                len(chunks[-1].values) >= MAX_PACKED_EVENTS
                or chunks[-1].size + len(value) > MAX_PACKED_BYTES
            ):
                chunks.append(_Pending(raw_key))
                indices.setdefault(partition, []).append([])
            chunks[-1].values.append(value)
            chunks[-1].size += len(value) + 1
            indices[partition][-1].append(index)
        sent: list[tuple[asyncio.Future[Any], list[int]]] = []
        for partition, chunks in groups.items():
            for chunk, members in zip(chunks, indices[partition], strict=True):
                values = chunk.values
                value = pack_values(values)
                try:
                    future = await self.producer.send(
                        topic, value, key=chunk.key, partition=partition if partition >= 0 else None
                    )
                except Exception as exc:
                    for member in members:
                        results[member] = exc
                    continue
                sent.append((future, members))
        for future, members in sent:
            try:
                await future
            except Exception as exc:
                for member in members:
                    results[member] = exc
        return results

    def _flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, {}
        for slot, group in pending.items():
            self._start(slot, group)

    def _start(self, slot: tuple[str, int], group: _Pending) -> None:
        task = asyncio.get_running_loop().create_task(self._send(slot, group))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, slot: tuple[str, int], group: _Pending) -> None:
        topic, partition = slot
        values = group.values
        value = pack_values(values)
        try:
            sent = await self.producer.send(topic, value, key=group.key, partition=partition)
            await sent
        except asyncio.CancelledError:
            for waiter in group.waiters:
                waiter.cancel()
            raise
        except Exception as exc:
            for waiter in group.waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
            return
        for waiter in group.waiters:
            if not waiter.done():
                waiter.set_result(None)
