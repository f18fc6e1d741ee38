"""Every use of Faust's (and aiokafka's) private attributes, in one place.

The worker needs four things Faust keeps to itself:

- the fetch high watermark of an input partition and when the fetch that reported
  it was sent (the stages' safe time and consumer lag), from the aiokafka consumer
  inside Faust's consumer thread: ``app.consumer._thread._ensure_consumer()``, whose
  fetcher's ``_proc_fetch_request`` is wrapped to note each request's send time
  (``time_fetches``);
- a topic's partition count, to pack outputs per partition, from the producer's
  cluster metadata: ``app.producer._ensure_producer().client.cluster``;
- how long a fetch may wait for records, which Faust fixes at 1500 ms, on the
  aiokafka consumer's fetcher: ``_fetcher._fetch_max_wait_ms`` (``shorten_fetch_wait``);
- the table manager's start without its fixed one-second wait for late table
  declarations, as the worker declares no Faust table: ``tables._update_channels``
  (``TablelessManager``).

``afflux attribution rebuild`` deletes the consumer group with a request
aiokafka's admin client has no public method for (``send_admin_request``).

A faust-streaming (or aiokafka) upgrade may rename any of them. Each accessor below answers
"unknown" while the app is starting, as before; ``PRIVATE_PATHS`` names every
path and ``missing_private_paths`` checks them: the worker at start-up (it
refuses to go on, naming the path), and
``tests/integration/attribution/test_faust_bridge.py`` on a running app of the
installed faust-streaming.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faust.tables import TableManager
from faust.types import TP

from afflux.attribution import gaps
from afflux.attribution.stage import Transport

log = logging.getLogger(__name__)

# (what the worker uses it for, the path from the app) for every private attribute.
PRIVATE_PATHS: tuple[tuple[str, str], ...] = (
    ("fetch high watermarks", "consumer._thread._ensure_consumer"),
    ("partition counts", "producer._ensure_producer"),
    ("a start without the tables' fixed wait", "tables._update_channels"),
)


class FaustChanged(RuntimeError):
    """The installed faust-streaming no longer has a private attribute the worker uses."""


def missing_private_paths(app: faust.App, *, running: bool = False) -> list[str]:
    """The private paths (see ``PRIVATE_PATHS``) ``app`` lacks; empty when all are there.

    ``running``: the app's consumer and producer have started, so also check what the
    objects behind the paths must offer (an aiokafka consumer, a producer's cluster
    metadata); before that, Faust refuses to hand them out.
    """
    missing = []
    for purpose, path in PRIVATE_PATHS:
        target: Any = app
        for name in path.split("."):
            target = getattr(target, name, _MISSING)
            if target is _MISSING:
                missing.append(f"app.{path} ({purpose})")
                break
    if missing or not running:
        return missing
    if not isinstance(_aiokafka_consumer(app), AIOKafkaConsumer):
        missing.append("app.consumer._thread._ensure_consumer() is no AIOKafkaConsumer")
    fetcher = getattr(_aiokafka_consumer(app), "_fetcher", None)
    if not hasattr(fetcher, "_fetch_max_wait_ms"):
        missing.append("app.consumer._thread._ensure_consumer()._fetcher._fetch_max_wait_ms")
    if not callable(getattr(fetcher, "_proc_fetch_request", None)):
        missing.append("app.consumer._thread._ensure_consumer()._fetcher._proc_fetch_request")
    cluster = getattr(getattr(_producer(app), "client", None), "cluster", None)
    if not callable(getattr(cluster, "partitions_for_topic", None)):
        missing.append("app.producer._ensure_producer().client.cluster.partitions_for_topic")
    return missing


def require_private_paths(app: faust.App) -> None:
    """Raise ``FaustChanged`` naming each missing path: without them the safe time never
    advances and no order is ever decided, so the worker must not start."""
    missing = missing_private_paths(app)
    if missing:
        raise FaustChanged(
            "faust-streaming changed; the attribution worker needs: " + "; ".join(missing)
        )


class TablelessManager(TableManager):
    """Faust's table manager, started without its fixed one-second sleep.

    Faust sleeps a second at start so that tables declared late (in an ``on_start``)
    are registered before the consumer subscribes; the group join, and so every
    restart, waited for it. The worker keeps its state in its own stages and declares
    no Faust table, so nothing is waited for. Were a table ever declared, the manager
    starts as Faust's own, wait included; one declared after the start is refused by
    Faust ("Too late to add tables")."""

    async def on_start(self) -> None:
        if len(self):
            await super().on_start()
            return
        if not self.should_stop:
            await self._update_channels()  # registers none, sets "tables registered"
            await self.recovery.start()


def transport(app: faust.App, bootstrap: str = "") -> Transport:
    """The stages' transport over a Faust app (usable once the app has started)."""

    async def send(
        topic: str, key: bytes | None, value: bytes | None, partition: int | None
    ) -> Any:
        return await app.producer.send(topic, key, value, partition, None, None)

    async def send_many(
        topic: str, partition: int, items: Sequence[tuple[bytes | None, bytes | None]]
    ) -> list[Any]:
        return await send_batches(_producer(app), topic, partition, items)

    async def rewind(offsets: dict[tuple[str, int], int]) -> None:
        """Fetch the paused partitions again from ``offsets``: Faust's seek also moves its
        read offset back, so the records from there are delivered (and acknowledged) again."""
        consumer: Any = app.consumer
        thread = consumer._thread
        for (t, p), offset in offsets.items():
            tp = TP(t, p)
            await thread.call_thread(thread.seek, tp, offset)  # in the consumer's own loop
            consumer._read_offset[tp] = offset or None  # as Faust's ``Consumer.seek``
        consumer.resume_partitions({TP(t, p) for t, p in offsets})

    return Transport(
        send=send,
        highwater=lambda t, p: highwater(app, t, p),
        partition_count=lambda topic: partition_count(app, topic),
        pause=lambda tps: app.consumer.pause_partitions({TP(t, p) for t, p in tps}),
        send_many=send_many,
        rewind=rewind,
        log_end=(lambda t, p: gaps.log_end(bootstrap, t, p)) if bootstrap else None,
    )


def forget_unacked(app: faust.App) -> Callable[[Any], None]:
    """Stop Faust waiting for a message the stages hold unacknowledged (its partition
    diverged, or a batch of it failed and waits for its retry).

    Before a rebalance and at stop Faust waits until every message it handed out is
    acknowledged or gone; its stream keeps the last message it delivered until the next
    one comes, so a held message on a quiet stream held the rebalance (and the stop)
    back. A held message is never acknowledged: its offset is not committed, and the
    partition's next owner, or its retry, reads it again from the committed offset."""

    def forget(message: Any) -> None:
        app.consumer._unacked_messages.discard(message)  # type: ignore[attr-defined]

    return forget


async def send_batches(
    producer: AIOKafkaProducer,
    topic: str,
    partition: int,
    items: Sequence[tuple[bytes | None, bytes | None]],
) -> list[Any]:
    """Send ``items`` in their order as few record batches (aiokafka's ``send_batch``):
    one future per batch instead of one per record, which made the changelog writes of
    a busy partition cost more than deciding what to write. The producer's flush (before
    Faust commits offsets) waits for them as for any send."""
    futures: list[Any] = []
    batch = producer.create_batch()
    for key, value in items:
        if batch.append(key=key, value=value, timestamp=None) is None:
            if batch.record_count():
                futures.append(await producer.send_batch(batch, topic, partition=partition))
            batch = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:  # too large alone
                futures.append(await producer.send(topic, value, key=key, partition=partition))
                batch = producer.create_batch()
    if batch.record_count():
        futures.append(await producer.send_batch(batch, topic, partition=partition))
    return futures


# How long a fetch waits for records. Faust builds its consumer with 1500 ms; the embedded
# broker answers such a fetch a few hundred ms after a record came rather than at once
# (measured: p50 320 ms at 1500, 8 ms at 100), and every order, click and safe-time note
# waited for it. A safe-time note is as old as the fetch answer it uses, so an order after
# its grace waits up to this long too; but each idle fetch costs the broker on durable
# storage (its object store): at 50 ms the latency bench's stack fell seconds behind on
# two cores where at 100 ms it kept up.
FETCH_WAIT_MS = 100


async def shorten_fetch_wait(app: faust.App, wait_ms: int = FETCH_WAIT_MS) -> None:
    """Set the fetch wait of Faust's aiokafka consumer once it exists (its fetcher builds
    every fetch request from ``_fetch_max_wait_ms``), and time its fetches."""
    while True:
        try:
            fetcher = _aiokafka_consumer(app)._fetcher
        except Exception:  # not started yet
            fetcher = None
        if fetcher is not None and hasattr(fetcher, "_fetch_max_wait_ms"):
            fetcher._fetch_max_wait_ms = wait_ms
            time_fetches(fetcher)
            return
        await asyncio.sleep(0.1)


def highwater(app: faust.App, topic: str, partition: int) -> tuple[int, int] | None:
    """The fetch high watermark and when the fetch request that reported it was sent;
    None until a fetch timed by ``time_fetches`` has answered for the partition."""
    try:
        fetcher = _aiokafka_consumer(app)._fetcher
    except Exception:
        return None
    if fetcher is None:
        return None
    times = getattr(fetcher, FETCH_TIMES, None)
    if times is None:  # a consumer Faust built anew: time its fetches from now on
        time_fetches(fetcher)
        return None
    return times.get(TopicPartition(topic, partition))  # type: ignore[no-any-return]


# Where ``time_fetches`` keeps, per partition, the high watermark of the last fetch
# answer and when that fetch's request was sent (ms).
FETCH_TIMES = "_afflux_fetch_times"


def time_fetches(fetcher: Any) -> None:
    """Note, per partition, when the fetch request that reported its high watermark was
    sent, not when its answer was read.

    aiokafka stamps a partition's high watermark with the time it processes the answer
    (``last_poll_timestamp``). The broker built the answer earlier: a record appended
    in between is past that high watermark though stamped before that time. In Faust's
    consumer thread, waiting for the GIL behind the stages' work, the gap reached
    hundreds of milliseconds under load, more than the arrival margin, and a safe time
    taken from it could pass records not yet read (each then handled as a late arrival).
    Every record appended before the request was sent is within the answer's high
    watermark, so the request's time is a bound the margin alone has to cover."""
    if getattr(fetcher, FETCH_TIMES, None) is not None:
        return
    times: dict[TopicPartition, tuple[int, int]] = {}
    original = fetcher._proc_fetch_request

    async def timed(assignment: Any, node_id: int, request: Any) -> Any:
        sent_ms = int(time.time() * 1000)
        asked = [TopicPartition(t, p[0]) for t, partitions in request.topics for p in partitions]
        before = {tp: _answered_at(assignment, tp) for tp in asked}
        try:
            return await original(assignment, node_id, request)
        finally:
            for tp, was in before.items():
                state = assignment.state_value(tp)
                if state is not None and state.timestamp != was and state.highwater is not None:
                    times[tp] = (int(state.highwater), sent_ms)  # answered by this request

    fetcher._proc_fetch_request = timed
    setattr(fetcher, FETCH_TIMES, times)


def _answered_at(assignment: Any, tp: TopicPartition) -> int | None:
    state = assignment.state_value(tp)
    return None if state is None else state.timestamp


async def learn_partition_counts(app: faust.App, topics: Iterable[str]) -> None:
    """Ask the broker for the output topics' partitions before the first send: the
    producer's metadata knows a topic only once it has sent to it (Apache Kafka answers
    a metadata request for the topics asked, not for every topic), and until then
    outputs go out one event per record. A topic that does not answer is learnt later."""
    producer = _producer(app)
    for topic in topics:
        try:
            await asyncio.wait_for(producer.partitions_for(topic), timeout=10)
        except Exception as exc:  # the broker away, the topic not created yet
            log.warning("partitions of %s not known yet (%r); packing starts later", topic, exc)


async def require_partition_counts(
    app: faust.App, topics: Iterable[str], limit_s: float = 120.0
) -> None:
    """Learn the input topics' partitions before the first record: the key check
    (``afflux.shared.placement``) is skipped while a topic's count is unknown, and a
    record checked in one run and not in the next would be decided two ways. Asked
    again until known, for up to ``limit_s`` (the topics exist: the worker reads them)."""
    deadline = time.monotonic() + limit_s
    while True:
        missing = [t for t in topics if partition_count(app, t) is None]
        if not missing:
            return
        if time.monotonic() >= deadline:
            log.error("partitions of %s still unknown: their keys go unchecked", missing)
            return
        await learn_partition_counts(app, missing)
        if any(partition_count(app, t) is None for t in missing):
            await asyncio.sleep(1.0)


def partition_count(app: faust.App, topic: str) -> int | None:
    """The topic's partition count from the producer's metadata; None while unknown."""
    try:
        partitions = _producer(app).client.cluster.partitions_for_topic(topic)
    except Exception:
        return None
    return len(partitions) if partitions else None


async def send_admin_request(admin: AIOKafkaAdminClient, request: Any, node_id: int) -> Any:
    """Send a request the admin client has no public method for (DeleteGroups)."""
    return await admin._send_request(request, node_id)


def _aiokafka_consumer(app: faust.App) -> Any:
    return app.consumer._thread._ensure_consumer()  # type: ignore[attr-defined]


def _producer(app: faust.App) -> Any:
    return app.producer._ensure_producer()  # type: ignore[attr-defined]


_MISSING = object()
