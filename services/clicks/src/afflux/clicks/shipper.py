"""Getting click events durably to disk before the redirect, and from there to the broker.

``submit`` is synchronous and O(1): it encodes the event as one write-ahead-log
line, adds it to the current *group* and returns the group's future. The
redirect awaits that future before answering: a 302 means the click is on disk.

Two background tasks:

- the flusher writes each group with one ``write`` and one ``fsync`` (in a
  thread of its own) and resolves the group's future. A group is what arrived
  during ``window_s`` after its first click plus whatever arrived while the
  previous fsync ran, so the disk sees one fsync per few milliseconds however
  many clicks come in;
- the shipper reads the log in order, packs the events per partition (one
  JSON-array record per partition and batch, the murmur2 partitioner every
  afflux producer uses), awaits the broker's acknowledgement and then moves
  the log's acknowledged cursor, which deletes finished segments. Once caught up
  (a batch of less than half a read) it gathers for ``linger_s`` before the next
  batch, so a steady stream goes out as a few large records a second instead of a
  record per few clicks; a log that is behind goes out without a pause. A batch the
  broker does not take is retried (only its unacknowledged events) every
  ``retry_interval_s`` until it does; clicks meanwhile keep going to disk.

The log is bounded (``max_bytes``): a click that would exceed it is refused
(``submit`` resolves to False) and the redirect goes to the destination
without a click id. At start-up whatever the log holds after the acknowledged
cursor is sent first.

Only one batch is in flight at a time, so after a crash or a send without an
answer only that batch may already be on the topic: before sending it again
the shipper looks for its events on the topic after the offsets recorded with
the last acknowledged batch (afflux.clicks.reconcile) and leaves out what it
finds. Event ids are derived from click ids, so anything still sent twice (the
broker storing a batch after that look) is recognised downstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from afflux.clicks.reconcile import already_on_topic, end_offsets
from afflux.clicks.wal import Cursor, Item, WriteAheadLog, line
from afflux.shared.io.background import cancel_and_wait
from afflux.shared.io.kafka import partition_for, send_chunks
from afflux.shared.wire import chunk_by_partition

log = logging.getLogger(__name__)

# One read of the log; about 500 events, which encode and pack in a few milliseconds.
READ_BYTES = 256 * 1024


def encode_event(event: dict[str, Any]) -> bytes:
    """The record value of one event: compact UTF-8 JSON, on one line (orjson escapes
    control characters, and no byte of a multi-byte character is a newline or a tab, so
    the log's line and field splits hold)."""
    return orjson.dumps(event)


class ClickShipper:
    def __init__(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        partitions: int,
        wal: WriteAheadLog,
        *,
        max_bytes: int,
        window_s: float,
        retry_interval_s: float,
        send_timeout_s: float,
        linger_s: float = 0.0,
        on_sent: Callable[[int], None] = lambda _: None,
        on_fsync: Callable[[float], None] = lambda _: None,
        bootstrap: str | None = None,
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.partitions = partitions
        self.wal = wal
        self.max_bytes = max_bytes
        self.window_s = window_s
        self.retry_interval_s = retry_interval_s
        self.send_timeout_s = send_timeout_s
        self.linger_s = linger_s
        self.on_sent = on_sent
        self.on_fsync = on_fsync
        self.unsent = wal.recovered
        """Events on disk the broker has not acknowledged yet."""
        self.broker_ok = True
        self._disk_ok = True
        self.bootstrap = bootstrap
        """Where to look for a batch that may already be on the topic (None: never look)."""
        self._cursor = wal.cursor
        self._progress = dict(wal.acked_offsets)  # partition -> offset after our last record
        self._suspect = wal.recovered > 0  # the first batch may have been in flight at a crash
        self._acked_offsets = dict(wal.acked_offsets)  # as recorded with the cursor
        self._lines: list[bytes] = []
        self._lines_bytes = 0
        self._group: asyncio.Future[bool] | None = None
        self._refused: asyncio.Future[bool] | None = None
        self._flush_wake = asyncio.Event()
        self._ship_wake = asyncio.Event()
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="click-wal")
        self._partition_cache: dict[bytes, int] = {}

    # -- the hot path -------------------------------------------------------------------

    def submit(self, key: str, event: dict[str, Any]) -> asyncio.Future[bool]:
        """Add one event to the current group; the future is True once it is fsynced.

        False: the log is full (or the disk failed) and the event was not recorded.
        """
        data = line(key.encode(), encode_event(event))
        if self.wal.size_bytes + self._lines_bytes + len(data) > self.max_bytes:
            if self._refused is None:
                self._refused = asyncio.get_running_loop().create_future()
                self._refused.set_result(False)
            return self._refused
        self._lines.append(data)
        self._lines_bytes += len(data)
        if self._group is None:
            self._group = asyncio.get_running_loop().create_future()
            self._flush_wake.set()
        return self._group

    # -- the flusher ----------------------------------------------------------------------

    async def flush_forever(self) -> None:
        """Write and fsync one group at a time until cancelled."""
        while True:
            await self._flush_wake.wait()
            if self.window_s:
                await asyncio.sleep(self.window_s)
            self._flush_wake.clear()
            await self._flush()

    @property
    def log_ok(self) -> bool:
        """Whether the last write to the click log succeeded (False: clicks go unrecorded
        until a write succeeds again, which the next click tries)."""
        return self._disk_ok

    async def _flush(self) -> None:
        group, self._group = self._group, None
        lines, self._lines, self._lines_bytes = self._lines, [], 0
        if group is None:
            return
        started = time.perf_counter()
        try:
            await asyncio.get_running_loop().run_in_executor(
                self._writer, self.wal.append, b"".join(lines)
            )
        except Exception:
            if self._disk_ok:  # once per failure spell, not once per group
                log.exception("cannot write clicks to the click log; they are not recorded")
            self._disk_ok = False
            group.set_result(False)
            return
        if not self._disk_ok:
            log.warning("the click log takes writes again")
            self._disk_ok = True
        self.on_fsync(time.perf_counter() - started)
        self.unsent += len(lines)
        group.set_result(True)
        self._ship_wake.set()

    # -- the shipper ----------------------------------------------------------------------

    async def ship_forever(self) -> None:
        """Send the log to the broker in order until cancelled."""
        if self.bootstrap is not None and len(self._progress) < self.partitions:
            # Partitions we never sent to: where a look for our records would start.
            with contextlib.suppress(Exception):
                known = await end_offsets(self.bootstrap, self.topic, self.partitions, 10.0)
                self._progress = {**known, **self._progress}
                self._acked_offsets = {**known, **self._acked_offsets}
        while True:
            try:
                await self._ship_next()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("click shipper failed; retrying in %.1f s", self.retry_interval_s)
                await asyncio.sleep(self.retry_interval_s)

    async def _ship_next(self) -> None:
        self._ship_wake.clear()
        items, end = await asyncio.to_thread(self.wal.read, self._cursor, READ_BYTES)
        if not items:
            if end != self._cursor:  # past a finished segment
                await self._acknowledge(end, 0)
                return
            await self._ship_wake.wait()
            if self.linger_s:
                # Fewer, larger packed records cost the broker and this process less CPU.
                await asyncio.sleep(self.linger_s)
            return
        pending = items
        while pending:
            if self._suspect:
                left = await self._not_on_topic(pending)
                if left is None:  # cannot tell yet: the broker does not answer
                    self.broker_ok = False
                    await asyncio.sleep(self.retry_interval_s)
                    continue
                pending = left
                if not pending:
                    break
            self._suspect = True  # until the broker answers for every event of the batch
            pending = await self._send_packed(pending)
            if pending:
                if self.broker_ok:
                    log.warning(
                        "broker did not take %d click events; they stay in the click log %s "
                        "and are retried every %.1f s",
                        len(pending),
                        self.wal.directory,
                        self.retry_interval_s,
                    )
                self.broker_ok = False
                await asyncio.sleep(self.retry_interval_s)
        if not self.broker_ok:
            log.info("broker takes click events again")
            self.broker_ok = True
        await self._acknowledge(end, len(items))
        self._suspect = False
        if self.linger_s and sum(len(value) for _, value in items) < READ_BYTES // 2:
            # Caught up: let the next batch gather as well. Sending again at once would
            # send a batch per few clicks, which costs the broker (and a durable
            # broker's object store) more CPU than the clicks cost this process.
            await asyncio.sleep(self.linger_s)

    async def _not_on_topic(self, items: list[Item]) -> list[Item] | None:
        """``items`` without those already on the topic; None when the broker cannot tell."""
        if self.bootstrap is None:
            return items
        ids = [json.loads(value).get("event_id") for _, value in items]
        try:
            found = await already_on_topic(
                self.bootstrap,
                self.topic,
                self._acked_offsets,
                {i for i in ids if i},
                self.send_timeout_s,
            )
        except Exception as exc:
            log.debug("cannot read the topic back: %r", exc)
            return None
        if found:
            log.info("%d click events were already on the topic: not sent again", len(found))
        return [item for item, event_id in zip(items, ids, strict=True) if event_id not in found]

    async def _acknowledge(self, end: Cursor, count: int) -> None:
        offsets = dict(self._progress)
        await asyncio.to_thread(self.wal.acknowledge, end, offsets)
        self._acked_offsets = offsets
        self._cursor = end
        self.unsent -= count

    async def drain(self, timeout_s: float) -> bool:
        """Wait until everything written was acknowledged (True) or ``timeout_s`` passed."""
        deadline = time.monotonic() + timeout_s
        while (self.unsent or self._lines) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        return not (self.unsent or self._lines)

    async def close(self, tasks: list[asyncio.Task[None]], timeout_s: float = 5.0) -> None:
        """Stop: write what was submitted, give the broker ``timeout_s`` to take the log."""
        if self.broker_ok:
            await self.drain(timeout_s)
        await cancel_and_wait(tasks)
        with contextlib.suppress(Exception):
            await self._flush()  # anything submitted after the flusher stopped
        self._writer.shutdown(wait=True)

    # -- sending ------------------------------------------------------------------------

    async def _send_packed(self, items: list[Item]) -> list[Item]:
        """Send packed; return the items the broker did not acknowledge (in order)."""
        chunks = chunk_by_partition(
            (self._partition_of(key), key, value, index) for index, (key, value) in enumerate(items)
        )
        outcomes = await send_chunks(
            self.producer, self.topic, chunks, timeout_s=self.send_timeout_s
        )
        failed: list[int] = []
        sent = 0
        for chunk, outcome in zip(chunks, outcomes, strict=True):
            if isinstance(outcome, Exception):
                log.debug("send to partition %s failed: %r", chunk.partition, outcome)
                failed += chunk.members
                continue
            sent += len(chunk.members)
            partition = outcome.partition
            if outcome.offset + 1 > self._progress.get(partition, 0):
                self._progress[partition] = outcome.offset + 1
        if sent:
            self.on_sent(sent)
        return [items[index] for index in sorted(failed)]

    def _partition_of(self, key: bytes) -> int:
        cache = self._partition_cache
        partition = cache.get(key)
        if partition is None:
            if len(cache) >= 100_000:
                cache.clear()
            partition = cache[key] = partition_for(key, self.partitions)
        return partition
