"""Tracking links on the compacted ``links`` topic: the durable copy Redis is rebuilt from.

Every create and deactivation through the links API is published (key: the
code; value: the link as JSON, the same shape Redis holds) and acknowledged by
the broker before the API answers. Compaction keeps the latest record of each
code. A link's fields never change after creation and deactivation is final,
so restoring is exact without versions: an active record is written only where
Redis has nothing for the code, an inactive one always.

Each record is read on its own (``LinkLog.add``): one that is not a link (bounded
before parsing by ``decode_link``: too large, nested too deep, not JSON, a wrong
field; or anything else raised on it) is skipped with its reason logged, counted
(``afflux_clicks_links_unreadable_total{source="topic"}``) and, once Redis is
restored, sent to ``afflux.dlq`` (consumer ``clicks.links``; at most
``MAX_LETTERS`` per restore). The restore goes on with the next record, so no
record can stop it; each restore dead-letters a bad record again, under the same
derived letter id. A letter is sent again while the broker is away, so an outage
loses none; one refused for itself (too large for the producer or broker, a closed
producer), which no retry would cure, is logged, counted
(``afflux_clicks_dead_letters_unsent_total``) and passed over, so it cannot hold up
the letters after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord

from afflux.clicks.links import Link, LinkStore, decode_link, reason_label
from afflux.clicks.metrics import ClicksMetrics
from afflux.shared.events import DeadLetter
from afflux.shared.io.background import cancel_and_wait
from afflux.shared.io.kafka import (
    dead_letter_of,
    deliver_dead_letter,
    stop_consumer,
    topic_partitions,
)
from afflux.shared.topics import LINKS
from afflux.shared.wire import UndecodableRecord

log = logging.getLogger(__name__)

CONSUMER = "clicks.links"
# Dead letters (and log lines) per restore: a letter holds its record's value, up to 1 MiB.
MAX_LETTERS = 100
# Reads of the topic per restore while stored links keep being dropped (LinkStore.drops).
MAX_ROUNDS = 3


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


def _uncounted(reason: str) -> None:
    pass


@dataclass
class LinkLog:
    """What a read of the topic found: the links, and the records skipped."""

    on_skipped: Callable[[str], None] = _uncounted
    """Hears the ``reason_label`` of every record skipped."""
    links: dict[str, Link] = field(default_factory=dict)
    skipped: int = 0
    letters: list[tuple[DeadLetter, str]] = field(default_factory=list)
    """The first ``MAX_LETTERS`` skipped records' dead letters, each with its reason label."""

    def add(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Apply one record; one that is not a link is skipped, whatever it raises."""
        try:
            merge(self.links, decode_link(record.value))
            return
        except UndecodableRecord as exc:
            refused = exc
        except Exception as exc:  # decode_link raises only UndecodableRecord; to be sure
            refused = UndecodableRecord(f"failed: {exc!r}"[:500], type(exc).__name__)
        reason = reason_label(refused.error_class)
        self.skipped += 1
        self.on_skipped(reason)
        if len(self.letters) < MAX_LETTERS:
            log.warning(
                "skipping bad %s record %d@%d (%s: %s)",
                record.topic,
                record.partition,
                record.offset,
                refused.error_class,
                refused,
            )
            letter = dead_letter_of(
                record, consumer=CONSUMER, reason=str(refused), error_class=refused.error_class
            )
            self.letters.append((letter, reason))


async def read_links(
    bootstrap: str, timeout_s: float = 120.0, on_skipped: Callable[[str], None] = _uncounted
) -> LinkLog:
    """Every link on the topic, read to the high watermarks that fetches report, and the
    records skipped (``LinkLog.add``).

    (ListOffsets is not used: the embedded broker answers "latest" wrongly.)
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    await consumer.start()
    read = LinkLog(on_skipped)
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
                        read.add(record)
                if not batches and all(
                    consumer.highwater(tp) is not None
                    and consumed.get(tp, 0) >= (consumer.highwater(tp) or 0)
                    for tp in partitions
                ):
                    return read
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
    otherwise). Calling the restorer starts a restore, or joins the running one. The
    dead letters of the records a restore skipped are sent after it, in the background
    (through ``producer``, set once the service's producer is started), so neither the
    restore nor a redirect waiting for it waits on them; ``close`` stops that. A
    restore during which this process dropped an unreadable stored link (whose read of
    the topic may have ended before that link's record) reads the topic again before
    it marks Redis complete.
    """

    def __init__(
        self,
        store: LinkStore,
        bootstrap: str,
        on_restored: Callable[[], None] = lambda: None,
        metrics: ClicksMetrics | None = None,
    ) -> None:
        self.store = store
        self.bootstrap = bootstrap
        self.on_restored = on_restored
        self.metrics = metrics
        self.producer: AIOKafkaProducer | None = None
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._letters: set[asyncio.Task[None]] = set()

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
        for _ in range(MAX_ROUNDS):
            drops = self.store.drops
            read = await read_links(self.bootstrap, on_skipped=self._skipped)
            written = await self.store.restore(read.links.values(), drops_before=drops)
            if self.store.drops == drops:
                break
            log.warning("a stored link was dropped during the restore: reading the topic again")
        else:
            raise RuntimeError(f"stored links kept being dropped in {MAX_ROUNDS} restores")
        self.on_restored()
        self.ready.set()
        log.warning(
            "links restored: %d on the topic, %d written to Redis, %d bad records skipped, "
            "in %.1f s",
            len(read.links),
            written,
            read.skipped,
            time.monotonic() - started,
        )
        if read.letters:
            task = asyncio.create_task(self._send(read.letters), name="link-dead-letters")
            self._letters.add(task)
            task.add_done_callback(self._letters.discard)

    def _skipped(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.links_unreadable.labels("topic", reason).inc()

    async def _send(self, letters: list[tuple[DeadLetter, str]]) -> None:
        """Send each letter, waiting while the broker is away; one refused for itself is
        logged (by ``deliver_dead_letter``) and counted, and never stops the others."""
        producer = self.producer
        if producer is None:
            log.error("no producer: %d dead letters of %r not sent", len(letters), LINKS.name)
            for letter, _ in letters:
                self._unsent(letter)
            return
        for letter, reason in letters:
            if await deliver_dead_letter(producer, letter) is not None:
                self._unsent(letter)
            elif self.metrics is not None:
                self.metrics.dlq.labels(letter.source_topic, reason).inc()

    def _unsent(self, letter: DeadLetter) -> None:
        if self.metrics is not None:
            self.metrics.dead_letters_unsent.labels(letter.source_topic).inc()

    async def close(self) -> None:
        """Stop sending dead letters (at shutdown, before the producer stops)."""
        await cancel_and_wait(list(self._letters))
