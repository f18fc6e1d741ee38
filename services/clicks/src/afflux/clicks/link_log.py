"""Tracking links on the compacted ``links`` topic: the durable copy Redis is rebuilt from.

Every create and deactivation through the links API is published (key: the
code; value: the link as JSON, the same shape Redis holds) and acknowledged by
the broker before the API answers. Compaction keeps the latest record of each
code. A link's fields never change after creation and deactivation is final,
so restoring is exact without versions: an active record is written only where
Redis has nothing for the code, an inactive one always.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from afflux.clicks.links import Link, LinkStore
from afflux.shared.io.kafka import stop_consumer, topic_partitions
from afflux.shared.topics import LINKS

log = logging.getLogger(__name__)


def link_record(link: Link) -> bytes:
    return json.dumps(asdict(link), separators=(",", ":")).encode()


async def publish_link(producer: AIOKafkaProducer, link: Link, timeout_s: float) -> None:
    """Put ``link`` on the topic; raises when the broker did not acknowledge it in time."""
    await asyncio.wait_for(
        producer.send_and_wait(LINKS.name, link_record(link), key=link.code.encode()), timeout_s
    )


def merge(known: dict[str, Link], link: Link) -> None:
    """Apply one record: the latest wins, but a deactivation is never undone."""
    earlier = known.get(link.code)
    if earlier is not None and not earlier.active and link.active:
        return
    known[link.code] = link


async def read_links(bootstrap: str, timeout_s: float = 120.0) -> dict[str, Link]:
    """Every link on the topic, read to the high watermarks that fetches report.

    (ListOffsets is not used: the embedded broker answers "latest" wrongly.)
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    await consumer.start()
    links: dict[str, Link] = {}
    try:
        partitions = await _partitions(consumer)
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, 0)
        consumed: dict[TopicPartition, int] = {}
        async with asyncio.timeout(timeout_s):
            while True:
                batches = await consumer.getmany(timeout_ms=100, max_records=10_000)
                for tp, records in batches.items():
                    for record in records:
                        consumed[tp] = record.offset + 1
                        try:
                            merge(links, Link(**json.loads(record.value or b"")))
                        except (ValueError, TypeError) as exc:
                            log.warning("skipping bad links record at %s: %s", record.offset, exc)
                if not batches and all(
                    consumer.highwater(tp) is not None
                    and consumed.get(tp, 0) >= (consumer.highwater(tp) or 0)
                    for tp in partitions
                ):
                    return links
    finally:
        with contextlib.suppress(Exception):
            await stop_consumer(consumer)


async def _partitions(consumer: AIOKafkaConsumer) -> list[TopicPartition]:
    partitions = await topic_partitions(consumer, LINKS.name)
    if partitions:
        return partitions
    raise RuntimeError(f"topic {LINKS.name!r} does not exist: create the topics (afflux topics)")


class LinkRestorer:
    """Restores Redis's links from the topic when Redis lost them; one restore at a time.

    ``ready`` is set while Redis is known to hold every link (``/healthz`` is 503
    otherwise). Calling the restorer starts a restore, or joins the running one.
    """

    def __init__(
        self, store: LinkStore, bootstrap: str, on_restored: Callable[[], None] = lambda: None
    ) -> None:
        self.store = store
        self.bootstrap = bootstrap
        self.on_restored = on_restored
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self, retry_s: float = 1.0) -> None:
        """At start-up: ready at once when Redis is complete, else after a restore (retried
        until it succeeds: the broker or Redis may still be coming up)."""
        while True:
            try:
                if await self.store.is_complete():
                    self.ready.set()
                else:
                    await self()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("cannot restore links yet (%r); retrying", exc)
                await asyncio.sleep(retry_s)

    async def __call__(self) -> None:
        if self._task is None or self._task.done():
            self.ready.clear()
            self._task = asyncio.create_task(self._restore(), name="link-restore")
        await asyncio.shield(self._task)

    async def _restore(self) -> None:
        started = time.monotonic()
        log.warning(
            "Redis does not hold a complete set of links: restoring them from %r", LINKS.name
        )
        links = await read_links(self.bootstrap)
        written = await self.store.restore(links.values())
        self.on_restored()
        self.ready.set()
        log.warning(
            "links restored: %d on the topic, %d written to Redis, in %.1f s",
            len(links),
            written,
            time.monotonic() - started,
        )
