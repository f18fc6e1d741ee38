"""The Faust application: two agents, a grace timer, /healthz and /metrics (web.py).

Faust delivers records, runs the consumer group (static membership, commits
after processing) and the timer; the state lives in ``Runtime``'s stages with
their own changelogs (see ``stage.py`` for why).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import faust
from faust.contrib.asgi import serve_asgi
from mode import Service
from prometheus_client import generate_latest

from afflux.attribution import faust_bridge
from afflux.attribution.content_view import ContentBook, follow_content
from afflux.attribution.metrics import AttributionMetrics
from afflux.attribution.rebuild import read_epoch
from afflux.attribution.runtime import Runtime, run_forever
from afflux.attribution.settings import AttributionSettings
from afflux.attribution.stage import Record, Stage
from afflux.attribution.store import DiskStores, StateEpoch
from afflux.attribution.web import WorkerWeb
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.io.campaign_view import CampaignDirectory, follow_campaigns
from afflux.shared.io.clock_source import system_clock
from afflux.shared.io.http_limits import HttpLimits
from afflux.shared.io.limited_http import uvicorn_limits
from afflux.shared.io.terms_barrier import TermsBarrier
from afflux.shared.topics import CLICKS, CONVERSIONS, DLQ, ORDERS, REFUNDS, REVERSALS, UNMATCHED

log = logging.getLogger(__name__)

INPUTS = (CLICKS.name, ORDERS.name, REFUNDS.name)


def create_app(settings: AttributionSettings) -> tuple[faust.App, Runtime]:
    """The worker's Faust app and its runtime, wired; nothing starts until the app runs."""
    bootstrap = settings.kafka_bootstrap
    directory = CampaignDirectory()
    content = ContentBook(settings.attribution_clock_skew_s * 1000, system_clock)
    metrics = AttributionMetrics()
    instance = settings.instance_id or None
    app = faust.App(
        settings.attribution_group,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        autodiscover=False,
        topic_partitions=settings.topic_partitions,
        topic_allow_declare=False,
        topic_disable_leader=True,
        web_enabled=True,
        web_bind=settings.host,
        web_host=settings.host,
        web_port=settings.attribution_port,
        # The worker's identity in its group metadata: the instance, not the port. On
        # Apache Kafka a static member that restarts gets its previous assignment back
        # without a rebalance, carrying the URL it had; Faust refuses one that differs.
        canonical_url=f"http://{settings.host}/attribution/{settings.instance_id}",
        datadir=str(settings.data_dir / f"attribution{settings.instance_id}"),
        consumer_group_instance_id=instance,
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=min(1.0, settings.session_timeout_seconds / 3),
        broker_rebalance_timeout=max(10.0, settings.session_timeout_seconds * 2),
        broker_commit_interval=1.0,
        broker_max_poll_records=2000,
        producer_linger_ms=2,
        producer_max_batch_size=1024 * 1024,
        producer_max_request_size=8 * 1024 * 1024,
        stream_buffer_maxsize=8192,
        consumer_auto_offset_reset="earliest",
        TableManager=faust_bridge.TablelessManager,
    )
    epoch = StateEpoch()  # read at the start, before any local store is opened
    runtime = Runtime(
        bootstrap=bootstrap,
        group=settings.attribution_group,
        directory=directory,
        metrics=metrics,
        transport=faust_bridge.transport(app, bootstrap),
        refund_wait_ms=int(settings.refund_wait_seconds * 1000),
        order_retention_ms=settings.order_retention_days * MS_PER_DAY,
        redecide=settings.attribution_redecide,
        clicks_per_visitor=settings.attribution_clicks_per_visitor,
        clock_skew_ms=settings.attribution_clock_skew_s * 1000,
        backfill_limit_days=settings.orders_backfill_limit_days,
        arrival_margin_ms=settings.arrival_margin_ms,
        disk=_disk_stores(settings, epoch),
        content=content,
    )
    # Orders are decided only once the view holds the terms published before them.
    runtime.join.barrier = TermsBarrier(directory, bootstrap)
    runtime.join.barrier_topics = frozenset({ORDERS.name})
    started = asyncio.Event()
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw", "internal": False}
    join_topic = app.topic(CLICKS.name, ORDERS.name, **raw)
    refund_topic = app.topic(REFUNDS.name, CONVERSIONS.name, UNMATCHED.name, **raw)

    background: set[asyncio.Future[None]] = set()

    # The campaign and content views, and the disk store's recovery, start with the app,
    # ahead of its consumer: an app task would start them only after the group join and
    # the first assignment, and the first decisions wait for all three.
    early = EarlyStart(directory, content, bootstrap, runtime)
    if settings.state_store == "disk":
        early.epoch, early.group = epoch, settings.attribution_group
    app.add_dependency(early)

    @app.task  # type: ignore[untyped-decorator]
    async def start() -> None:
        faust_bridge.require_private_paths(app)
        background.add(asyncio.ensure_future(faust_bridge.shorten_fetch_wait(app)))
        await faust_bridge.learn_partition_counts(
            app, (CONVERSIONS.name, REVERSALS.name, UNMATCHED.name, DLQ.name)
        )
        # The inputs' before any record: an event on another partition than its key's
        # is refused, the same in every run.
        await faust_bridge.require_partition_counts(app, INPUTS)
        started.set()

    # Acks are manual: a record of a partition that diverged is never acked, so its
    # offset is never committed (see divergence.py).
    @app.agent(join_topic, name="join")
    async def join(stream: Any) -> None:
        await _watched(app, runtime, "join", _feed(stream, started, directory, runtime.join))

    @app.agent(refund_topic, name="refunds")
    async def refunds(stream: Any) -> None:
        await _watched(app, runtime, "refunds", _feed(stream, started, directory, runtime.refunds))

    @app.timer(interval=settings.timer_interval_seconds)  # type: ignore[untyped-decorator]
    async def grace_timer() -> None:
        if directory.ready.is_set():
            await runtime.tick()

    async def on_assigned(sender: Any, assigned: Any = None, **kwargs: Any) -> None:
        log.info("assigned %d partitions", len(assigned or ()))
        runtime.assigned({(tp.topic, tp.partition) for tp in (assigned or ())})

    async def on_revoked(sender: Any, revoked: Any = None, **kwargs: Any) -> None:
        # Sent once the records taken were acknowledged (their state written), before
        # the group assigns the partitions again, perhaps to another worker.
        runtime.revoked({(tp.topic, tp.partition) for tp in (revoked or ())})

    async def on_before_shutdown(sender: Any, **kwargs: Any) -> None:
        # The records taken are acknowledged by now, and the consumer leaves the group
        # next (then another worker recovers the partitions) while a timer tick may
        # still be running: it must write nothing of them.
        runtime.release_all()

    app.on_partitions_assigned.connect(on_assigned)  # type: ignore[arg-type]
    app.on_partitions_revoked.connect(on_revoked)  # type: ignore[arg-type]
    app.on_before_shutdown.connect(on_before_shutdown)  # type: ignore[arg-type]

    serve_asgi(
        app,
        WorkerWeb(lambda: runtime.health(app.rebalancing), lambda: _scrape(runtime, metrics)),
        host=settings.host,
        port=settings.attribution_port,
        lifespan="off",
        log_level="warning",
        access_log=False,
        proxy_headers=False,  # as every afflux port (afflux.shared.io.serving)
        **uvicorn_limits(HttpLimits.from_settings(settings)),
    )

    return app, runtime


def _scrape(runtime: Runtime, metrics: AttributionMetrics) -> bytes:
    runtime.gauges()
    return generate_latest(metrics.registry)


class EarlyStart(Service):
    """What runs from the app's start, during the group join (about 6 s on the embedded
    broker, see docs/attribution.md): the campaigns and content topics followed into
    the process's views (own consumers without a group, see ``follow_whole_topic``)
    until the app stops, and the disk store's partitions recovered
    (``Runtime.warm_up``)."""

    def __init__(
        self, directory: CampaignDirectory, content: ContentBook, bootstrap: str, runtime: Runtime
    ) -> None:
        super().__init__()
        self.directory, self.content, self.bootstrap = directory, content, bootstrap
        self.runtime = runtime
        self.epoch: StateEpoch | None = None  # the disk store's, read before it is opened
        self.group = ""

    async def on_start(self) -> None:
        directory, content, bootstrap = self.directory, self.content, self.bootstrap
        self.add_future(run_forever(lambda: follow_campaigns(directory, bootstrap)))
        self.add_future(run_forever(lambda: follow_content(content, bootstrap)))
        if self.epoch is not None:
            self.epoch.value = await _epoch_when_readable(bootstrap, self.group)
        self.runtime.warm_up()

    async def on_stop(self) -> None:
        if self.runtime.join.barrier is not None:
            await self.runtime.join.barrier.close()


async def _epoch_when_readable(bootstrap: str, group: str) -> str:
    """The group's state epoch, read again (backing off) while the broker does not answer:
    no local store is opened before it is known."""
    delay = 0.5
    while True:
        try:
            return await read_epoch(bootstrap, group)
        except Exception as exc:
            log.warning("reading the state epoch: %r; again in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(10.0, delay * 2)


def _disk_stores(
    settings: AttributionSettings, epoch: StateEpoch
) -> Callable[[str], DiskStores] | None:
    """Per stage, its partitions' local stores (``AFFLUX_STATE_STORE=disk``); None: memory."""
    if settings.state_store != "disk":
        return None
    # Per instance: two workers sharing a data dir never open the same database.
    root = settings.state_dir or settings.data_dir / f"attribution{settings.instance_id}-state"
    group = settings.attribution_group

    def stores(stage: str) -> DiskStores:
        return DiskStores(
            root / f"{group}-{stage}",
            settings.state_cache_keys,
            checkpoint_s=settings.state_checkpoint_seconds,
            epoch=epoch,
        )

    return stores


async def _wait_started(started: asyncio.Event, directory: CampaignDirectory) -> None:
    await started.wait()
    await directory.ready.wait()


async def _feed(
    stream: Any, started: asyncio.Event, directory: CampaignDirectory, stage: Stage[Any]
) -> None:
    """A stage agent's work: once the worker has started, its stream into the stage."""
    await _wait_started(started, directory)
    await _consume(stream.noack(), stage.handle_many, faust_bridge.forget_unacked(stream.app))


async def _watched(app: faust.App, runtime: Runtime, name: str, work: Awaitable[None]) -> None:
    """Run a stage agent's ``work``; should it raise or end while the worker runs, the
    agent stays dead and says so (``Runtime.agent_died``: logged at error, /healthz 503
    until the worker restarts).

    A batch that raises does not end the agent: the stage stops the batch's partitions
    and retries them from their changelogs (``Stage.failed``, ``Stage.retry_failed``).
    What still can is outside any batch (the stream itself). Raised on to Faust, the
    exception would be logged and the agent restarted at once on the same stream (its
    default supervisor), answering /healthz 200 while the records in hand were neither
    processed nor acknowledged; and the exception Faust keeps would hold those records,
    which its next rebalance waits for."""
    try:
        await work
    except asyncio.CancelledError:  # the worker stopping: no death
        raise
    except Exception as exc:
        runtime.agent_died(name, exc)
        return
    if not app.should_stop:
        runtime.agent_died(name, None)


# Records handled as one batch at most: a stage holds its lock (and the timer waits)
# while it processes them.
MAX_BATCH_RECORDS = 64


async def _consume(
    manual: Any,
    handle_many: Callable[[list[Record]], Awaitable[list[bool]]],
    held: Callable[[Any], None] = lambda message: None,
) -> None:
    """Hand the stage each run of records the consumer already holds as one batch, so
    their outputs are awaited and their state written once rather than once per record
    (stage.Stage.handle_many); a record that comes alone is handled at once, never
    held back waiting for more.

    The stream is read by a task of its own (``_take``) into a small queue, and a
    batch is what that queue holds: a record taken from the stream is never held
    while the stream waits for the next one. Faust's rebalance empties the stream's
    channel (``flow_control.clear``) and then waits until every record already taken
    is acknowledged; a batch still being gathered when the channel was emptied waited
    for a next record that only comes after the rebalance, so the rebalance waited
    for ever and the worker never rejoined its group."""
    taken: asyncio.Queue[Any] = asyncio.Queue(MAX_BATCH_RECORDS)
    reader = asyncio.ensure_future(_take(manual, taken))
    try:
        while True:
            first = asyncio.ensure_future(taken.get())
            await asyncio.wait((first, reader), return_when=asyncio.FIRST_COMPLETED)
            if not first.done():
                first.cancel()
                reader.result()  # the stream ended (or raised): so does the agent
                return
            await _handle(manual, handle_many, _batch(first.result(), taken), held)
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


def _batch(first: Any, taken: asyncio.Queue[Any]) -> list[Any]:
    batch = [first]
    while len(batch) < MAX_BATCH_RECORDS and not taken.empty():
        batch.append(taken.get_nowait())
    return batch


async def _handle(
    manual: Any,
    handle_many: Callable[[list[Record]], Awaitable[list[bool]]],
    batch: list[Any],
    held: Callable[[Any], None] = lambda message: None,
) -> None:
    """Acknowledge what the stage handled; hand the messages it held (a diverged
    partition's, a failed batch's) to ``held``. Nothing here outlives the call: Faust
    waits for unacknowledged records only while something still refers to them, and the
    stream itself refers to the last one it delivered until the next comes
    (``faust_bridge.forget_unacked``)."""
    done = await handle_many([_record(e.message) for e in batch])
    for e, ok in zip(batch, done, strict=True):
        if ok:
            await manual.ack(e)
        else:
            held(e.message)


async def _take(manual: Any, taken: asyncio.Queue[Any]) -> None:
    """Move the stream's records to ``taken`` as they come (see ``_consume``)."""
    async for event in manual.events():
        await taken.put(event)


def _record(message: Any) -> Record:
    """A Faust message as a stage's input record (timestamp in ms; headers as pairs).

    Faust hands the broker's integer milliseconds over as float seconds; ``round``
    gets them back exactly, where ``int`` truncated one in forty a millisecond early
    (and the backfill bound, read from it, then differed from the oracle's)."""
    m = message
    headers = m.headers or ()
    if isinstance(headers, Mapping):
        headers = headers.items()
    return Record(
        m.topic, m.partition, m.offset, m.key, m.value, round(m.timestamp * 1000), tuple(headers)
    )
