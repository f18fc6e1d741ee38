"""Getting click events to the broker without ever making a redirect wait.

``submit`` is synchronous and O(1): it appends the event to an in-memory
queue. One background task (``run``) drains the queue in batches, encodes the
events, packs them per partition (one JSON-array record per partition and
batch, the murmur2 partitioner as every afflux producer uses) and awaits the
broker's acknowledgement.

When a send fails (broker unreachable for ``send_timeout``) or the queue
reaches ``queue_max``, the shipper switches to *spooling*: the failed batch,
the queue and every new event go to the on-disk spool (afflux.clicks.spool),
written and fsynced every ``flush_interval``. It retries the oldest spool
segment every ``retry_interval`` and, once the spool is empty, goes back to
the in-memory path. Events therefore reach the broker in the order they were
submitted. Event ids are derived from click ids, so a batch re-sent after an
ambiguous failure is deduplicated downstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer

from afflux.clicks.spool import Item, Spool
from afflux.shared.kafka import partition_for
from afflux.shared.wire import MAX_PACKED_BYTES, MAX_PACKED_EVENTS, compact_json, pack_values

log = logging.getLogger(__name__)

# Encoding a batch holds the event loop: keep it to a few milliseconds so redirects that
# arrive meanwhile are not delayed.
MAX_BATCH = 500


def encode_event(event: dict[str, Any]) -> bytes:
    """The record value of one event: compact JSON (ASCII, so any byte-level split is safe)."""
    return compact_json(event).encode()


class ClickShipper:
    def __init__(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        partitions: int,
        spool: Spool,
        *,
        queue_max: int,
        flush_interval_s: float,
        retry_interval_s: float,
        send_timeout_s: float,
        linger_s: float = 0.0,
        on_sent: Callable[[int], None] = lambda _: None,
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.partitions = partitions
        self.spool = spool
        self.queue_max = queue_max
        self.flush_interval_s = flush_interval_s
        self.retry_interval_s = retry_interval_s
        self.send_timeout_s = send_timeout_s
        self.linger_s = linger_s
        self.on_sent = on_sent
        self.spooling = spool.depth > 0
        self._queue: deque[tuple[str, dict[str, Any]]] = deque()
        self._buffer: list[Item] = []
        self._wake = asyncio.Event()
        self._partition_cache: dict[bytes, int] = {}

    # -- the hot path -------------------------------------------------------------------

    def submit(self, key: str, event: dict[str, Any]) -> None:
        """Hand over one event; never blocks, never fails."""
        if self.spooling:
            self._buffer.append((key.encode(), encode_event(event)))
        elif len(self._queue) >= self.queue_max:
            self._start_spooling()
            self._buffer.append((key.encode(), encode_event(event)))
        else:
            self._queue.append((key, event))
        if not self._wake.is_set():
            self._wake.set()

    @property
    def pending(self) -> int:
        """Events not yet acknowledged: queued, buffered for the spool, or on disk."""
        return len(self._queue) + len(self._buffer) + self.spool.depth

    @property
    def spool_depth(self) -> int:
        return len(self._buffer) + self.spool.depth

    # -- the background task ------------------------------------------------------------

    async def run(self) -> None:
        """Ship until cancelled; an unexpected error (a full disk, say) is logged and retried."""
        while True:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("click shipper failed; retrying in %.1f s", self.retry_interval_s)
                await asyncio.sleep(self.retry_interval_s)

    async def _step(self) -> None:
        if self.spooling:
            await self._replay()
            return
        if not self._queue:
            self._wake.clear()
            await self._wake.wait()
            return
        if self.linger_s and len(self._queue) < MAX_BATCH:
            # Fewer, larger packed records cost the broker and this process less CPU.
            await asyncio.sleep(self.linger_s)
        batch = [self._queue.popleft() for _ in range(min(MAX_BATCH, len(self._queue)))]
        items = [(key.encode(), encode_event(event)) for key, event in batch]
        reserved = self.spool.reserve()
        failed = await self._send(items)
        if failed:
            log.warning(
                "broker did not take %d click events; spooling to %s until it is back",
                len(failed),
                self.spool.directory,
            )
            self._start_spooling()
            try:
                await asyncio.to_thread(self.spool.append, failed, reserved)
            except Exception:
                self._buffer[:0] = failed  # keep them; written with the buffer later
                raise
            await self._flush()

    async def drain(self, timeout_s: float) -> bool:
        """Wait until everything submitted was acknowledged (True) or ``timeout_s`` passed."""
        deadline = time.monotonic() + timeout_s
        while self.pending and time.monotonic() < deadline:  # noqa: ASYNC110 - polls counters
            await asyncio.sleep(0.05)
        return not self.pending

    async def close(self, task: asyncio.Task[None] | None, timeout_s: float = 5.0) -> None:
        """Stop: try to deliver what is pending, then keep the rest on disk."""
        if task is not None and not self.spooling:
            await self.drain(timeout_s)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        leftover = [(k.encode(), encode_event(e)) for k, e in self._queue]
        self._queue.clear()
        self._buffer[:0] = leftover
        await self._flush()

    # -- internals ----------------------------------------------------------------------

    def _start_spooling(self) -> None:
        self.spooling = True
        self._buffer[:0] = [(k.encode(), encode_event(e)) for k, e in self._queue]
        self._queue.clear()

    async def _flush(self) -> None:
        if self._buffer:
            pending, self._buffer = self._buffer, []
            try:
                await asyncio.to_thread(self.spool.append, pending)
            except Exception:
                self._buffer[:0] = pending
                raise

    async def _replay(self) -> None:
        """Send the spool oldest segment first; return when empty or after a failed attempt."""
        await self._flush()
        while True:
            oldest = await asyncio.to_thread(self.spool.oldest)
            if oldest is None:
                if self._buffer:
                    await self._flush()
                    continue
                self.spooling = False
                log.info("click spool drained; back to direct sending")
                return
            number, items = oldest
            failed = await self._send(items)
            await asyncio.to_thread(self.spool.done, number, failed)
            if failed:
                await self._pause(self.retry_interval_s)
                return

    async def _pause(self, seconds: float) -> None:
        """Sleep, still writing the spool buffer out every flush interval."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(left, self.flush_interval_s))
            await self._flush()

    async def _send(self, items: list[Item]) -> list[Item]:
        """Send packed; return the items the broker did not acknowledge (in order)."""
        task = asyncio.create_task(self._send_packed(items))
        while True:
            done, _ = await asyncio.wait({task}, timeout=self.flush_interval_s)
            await self._flush()
            if done:
                return task.result()

    async def _send_packed(self, items: list[Item]) -> list[Item]:
        chunks: dict[int, list[list[Item]]] = {}
        sizes: dict[int, int] = {}
        cache = self._partition_cache
        for item in items:
            partition = cache.get(item[0])
            if partition is None:
                if len(cache) >= 100_000:
                    cache.clear()
                partition = cache[item[0]] = partition_for(item[0], self.partitions)
            groups = chunks.setdefault(partition, [[]])
            if len(groups[-1]) >= MAX_PACKED_EVENTS or (
                sizes.get(partition, 0) + len(item[1]) > MAX_PACKED_BYTES
            ):
                groups.append([])
                sizes[partition] = 0
            groups[-1].append(item)
            sizes[partition] = sizes.get(partition, 0) + len(item[1]) + 1
        futures: list[tuple[asyncio.Future[Any] | None, list[Item]]] = []
        for partition, groups in chunks.items():
            for group in groups:
                value = pack_values([v for _, v in group])
                try:
                    future = await asyncio.wait_for(
                        self.producer.send(self.topic, value, key=group[0][0], partition=partition),
                        self.send_timeout_s,
                    )
                except Exception as exc:
                    log.debug("send to partition %d failed: %r", partition, exc)
                    futures.append((None, group))
                    continue
                futures.append((future, group))
        failed: list[Item] = []
        sent = 0
        for future, group in futures:
            if future is None:
                failed.extend(group)
                continue
            try:
                await asyncio.wait_for(asyncio.shield(future), self.send_timeout_s * 2)
            except Exception:
                failed.extend(group)
            else:
                sent += len(group)
        if sent:
            self.on_sent(sent)
        if failed:
            position = {id(item): index for index, item in enumerate(items)}
            failed.sort(key=lambda item: position[id(item)])
        return failed
