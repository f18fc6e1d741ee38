"""The ledger consumer: conversions, lead confirmations, reversals, clicks and content into
Redis.

Each poll becomes one ``Batch`` applied atomically with the partitions' next
offsets (see ``store``). On every assignment the consumer seeks to the offsets
stored in Redis, never to the group's committed ones, so what Redis holds is
exactly what was consumed. Records (or items of packed records) that cannot be
decoded, belong to a campaign without terms, carry another currency or an amount
above the campaign's ``max_order_minor``, or raise anything at all while placed,
go to the dead-letter topic with the reason; the consumer goes on. So do content stats
or releases of a content never published (reason ``unknown_content``), content events
(publications, stats and releases) whose time is more than the clock skew after their
record's timestamp (``event_time_in_future``), a publication that names another campaign or creator
than the content's first one (``content_identity_changed``), and an event on a topic
it does not travel on (``wrong_topic``: a conversion written to ``content``, which
outside integrations write to, is never paid). When applying
a batch raises anything but a Redis outage, the batch is applied again one item
at a time (a failed apply writes nothing) and the item that fails is dead-lettered.

The consumer never trusts its stored offsets blindly (see ``divergence``): at every
assignment, before every batch (the record just before it) and every
``verify_interval_s``, each partition's stored offset and last applied record are
checked against the log; a partition whose log no longer holds them is paused,
never skipped, and ``afflux_ledger_ready`` drops to 0 until ``afflux ledger
rebuild``, which the consumer notices (the ledger's generation changes) and
answers by replaying from the start. After each write to Redis the offsets are also committed
to the consumer group, for lag exporters and ``kafka-consumer-groups`` only: the
consumer itself always resumes from Redis.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from aiokafka import AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from afflux.payouts import refused_conversions
from afflux.payouts.divergence import Divergence, Fingerprint, LogProbe, judge
from afflux.payouts.metrics import PayoutsMetrics
from afflux.payouts.placement import TERMS_REFUSALS, Placement, Rejected
from afflux.payouts.snapshots import PeriodCompacted, PeriodExpired
from afflux.payouts.store import (
    Applied,
    Batch,
    LedgerReset,
    LedgerStore,
    PeriodsRefused,
    Versions,
    refusal_cause,
)
from afflux.shared.click_decode import DecodedClick, decoded_clicks
from afflux.shared.content_facts import key_of, latest_time
from afflux.shared.core.event_time import (
    DEFAULT_CLOCK_SKEW_MS,
    EVENT_TIME_IN_FUTURE,
    OWN_CLOCK_TOLERANCE_MS,
    ahead_of_own_clock,
    event_time_in_future,
)
from afflux.shared.core.journal.bounds import CreatorSumOutOfRange
from afflux.shared.core.journal.conversion_copies import ConversionConflict
from afflux.shared.events import (
    ClickRecorded,
    ContentPublished,
    ContentReleased,
    ContentStats,
    ConversionAttributed,
)
from afflux.shared.io.background import stop_if_cancelled
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.clock_source import system_clock
from afflux.shared.io.gc_policy import Refreezer
from afflux.shared.io.kafka import (
    dead_letter_of,
    deliver_dead_letter,
    new_group_consumer,
    stop_consumer,
    topics_end_offsets,
)
from afflux.shared.io.lag import ConsumerLag
from afflux.shared.io.paced_commits import PacedCommits
from afflux.shared.io.redis_client import (
    CLUSTER_IN_FLUX,
    PASSING_REPLIES,
    KeyOfAnotherType,
    client_broke,
    redis_away,
)
from afflux.shared.io.terms_recheck import TermsRecheck
from afflux.shared.schemas import wrong_topic
from afflux.shared.topics import CLICKS, CONTENT, CONVERSIONS, PAYOUTS, REVERSALS, REVIEWS
from afflux.shared.wire import UndecodableRecord, event_from_dict, parse_value

log = logging.getLogger(__name__)
T = TypeVar("T")
CONSUMER = "payouts.ledger"
# The payouts topic too: a payout record Redis lost is written back from it.
TOPICS = (
    CONVERSIONS.name,
    REVERSALS.name,
    CLICKS.name,
    CONTENT.name,
    REVIEWS.name,
    PAYOUTS.name,
)


# Redis unreachable, restarting or still loading its AOF: wait for it, never skip a batch.
# ... or refusing writes for now (out of memory, read-only during a failover): the same
# batch is applied once it is back, never dead-lettered item by item.
# ... or a cluster moving its slots (``CLUSTER_IN_FLUX``). A connection redis-py broke
# under its own command (``client_broke``) is the same; ``_store_apply`` turns it
# into a ``ConnectionError`` where these are caught.
REDIS_DOWN: tuple[type[Exception], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    *PASSING_REPLIES,
    *CLUSTER_IN_FLUX,
)
RETRY_MAX_S = 2.0
REFUSED_FIRST_DELAY_S = 0.05
LAG_INTERVAL_S = 0.5
# A turn of the consume loop takes a poll of 200 ms and one batch; one that has not
# ended for this long is waiting on something that is not coming (/healthz says so).
STALL_S = 120.0
# Writes refused or unanswered this long in a row make /healthz say so: a Redis out of
# memory refused every batch while /healthz answered ok for half an hour.
WRITES_FAILING_S = 10.0


@dataclass
class Placed:
    """One item of a consumed record, placed in the poll's batch."""

    record: ConsumerRecord[bytes, bytes]
    index: int | None  # None: the record is one event
    event: object
    occurred_at: int
    # A content event's placement in a batch of its own: placing it again would not
    # repeat what its first placement noted (a publication's route). Other events are
    # placed again, into a batch of their own, only if the poll's batch fails.
    own: Batch | None = None


async def until_redis_answers(attempt: Callable[[], Awaitable[T]], what: str) -> T:
    """``attempt()`` again and again while Redis is down, backing off up to ``RETRY_MAX_S``."""
    delay = 0.05
    while True:
        try:
            return await attempt()
        except Exception as exc:
            # redis_away: also a reply Redis 6 wrapped in a script's error (OOM, READONLY)
            if not isinstance(exc, REDIS_DOWN) and not redis_away(exc):
                raise
            log.warning("%s: Redis unavailable (%s); retrying in %.2fs", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(RETRY_MAX_S, delay * 2)


class _Assignments(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, ledger: LedgerConsumer) -> None:
        self.ledger = ledger

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.ledger.forget(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self.ledger.take(assigned)


def slot(tp: TopicPartition) -> str:
    """A partition's field in the ``offsets`` and ``last`` hashes."""
    return f"{tp.topic}|{tp.partition}"


class LedgerConsumer:
    def __init__(
        self,
        *,
        bootstrap: str,
        group_id: str,
        instance_id: str | None,
        store: LedgerStore,
        directory: CampaignDirectory,
        producer: AIOKafkaProducer,
        metrics: PayoutsMetrics,
        clock: Callable[[], int] = system_clock,
        max_records: int = 500,
        verify_interval_s: float = 30.0,
    ) -> None:
        self.store = store
        self.directory = directory
        self.placement = Placement(directory)
        self.producer = producer
        self.metrics = metrics
        self.clock = clock
        # Positions come from Redis. A position the broker no longer has is reset to the
        # log's start; ``_same_log`` sees the jump and checks the log before reading.
        self.consumer = new_group_consumer(
            bootstrap,
            group_id,
            group_instance_id=instance_id,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        self.commits = PacedCommits(self.consumer)
        self.lag = ConsumerLag("payouts", metrics.registry)
        self.ready = asyncio.Event()
        self.probe = LogProbe(bootstrap)
        self.bootstrap = bootstrap
        self.max_records = max_records
        self.verify_interval_s = verify_interval_s
        self.diverged: dict[TopicPartition, Divergence] = {}
        # Assigned partitions positioned from Redis; the others may hold a position the
        # consumer chose itself (committed offsets, reset) and are never read.
        self.owned: set[TopicPartition] = set()
        self.unverified: set[TopicPartition] = set()  # paused until their log is checked
        self.stored: dict[TopicPartition, int] = {}  # next offset in Redis, as last known
        self.last: dict[TopicPartition, Fingerprint] = {}  # last applied record, as stored
        self.halted: str | None = None  # why nothing is consumed (a rebuild under way)
        self.turned_at = time.monotonic()  # when the consume loop last began a turn
        self.check_at = 0.0  # when to check the unverified partitions (again)
        self.refreezer = Refreezer()
        self.clock_skew_ms = DEFAULT_CLOCK_SKEW_MS
        self._refused_delay_s = REFUSED_FIRST_DELAY_S  # the next pause after refused writes
        self.failing_since: float | None = None  # first of the failed writes in a row
        self.failing_reason = ""
        self._replay_ends: asyncio.Task[None] | None = None  # reading them for the mark
        # An event of a campaign or terms version this process has not read yet is asked
        # again once its campaign view caught up, not dead-lettered at once.
        self.terms_recheck = TermsRecheck(directory, clock, TERMS_REFUSALS)

    async def run(self) -> None:
        await self.directory.ready.wait()
        await self.consumer.start()
        await self.probe.start()
        if await until_redis_answers(self.store.rebuilding, "reading the ledger's state"):
            self._halt("the ledger is being rebuilt")
        else:
            await until_redis_answers(self.store.join_generation, "joining the ledger")
            await self._hold_payout_runs_while_replaying()
        self.consumer.subscribe(list(TOPICS), listener=_Assignments(self))
        self.ready.set()
        self._publish_health()
        # Lag of what Redis holds, not of what was fetched, in a task of its own: it stays
        # current while a batch waits for Redis, and /metrics only reads the gauge.
        lag = asyncio.create_task(self.lag.run(self.consumer, LAG_INTERVAL_S, self._applied))
        tick_at = verify_at = 0.0
        try:
            while True:
                stop_if_cancelled()  # a cancellation aiokafka's getmany swallowed
                self.turned_at = time.monotonic()
                polled = await self.consumer.getmany(timeout_ms=200, max_records=self.max_records)
                live = {
                    tp: records
                    for tp, records in polled.items()
                    if records
                    and not self.halted
                    and tp in self.owned
                    and tp not in self.unverified
                    and tp not in self.diverged
                }
                if live:
                    await self._apply(live)
                else:
                    await self.commits.stored({})  # a burst's last offsets, within the interval
                await asyncio.sleep(0)  # let the HTTP side answer between batches
                now = time.monotonic()
                if self.unverified and not self.halted and now >= self.check_at:
                    await self._verify(self.unverified)
                    # Unanswered (the broker away, a topic missing): once a second, so the
                    # other partitions are still read meanwhile.
                    self.check_at = time.monotonic() + 1.0 if self.unverified else 0.0
                if now >= tick_at:
                    tick_at = now + 1.0
                    # The period cache is long-lived and cycle-free: keep collections off it.
                    self.refreezer.maybe_refreeze()
                    await self._tick(verify=now >= verify_at)
                    if now >= verify_at:
                        verify_at = now + self.verify_interval_s
        finally:
            lag.cancel()
            if self._replay_ends is not None:
                self._replay_ends.cancel()
            await self.probe.stop()
            await self.commits.flush()
            await stop_consumer(self.consumer)

    # -- knowing the log still holds what the ledger applied -------------------

    def _applied(self) -> dict[TopicPartition, int]:
        """The next offset Redis holds per partition with one (lag counts from there)."""
        return dict(self.stored)

    def health(self) -> list[str]:
        """Why the ledger is not complete and current; empty when it is."""
        problems = [f"{self.halted}: nothing is consumed"] if self.halted else []
        problems += [d.message() for d in self.diverged.values()]
        stuck_s = time.monotonic() - self.turned_at
        if self.ready.is_set() and not self.halted and stuck_s > STALL_S:
            problems.append(
                f"stalled: no batch finished for {stuck_s:.0f} s (waiting for Redis or the "
                "broker, or stuck on one record: see the log)"
            )
        failing_s = 0.0 if self.failing_since is None else time.monotonic() - self.failing_since
        if failing_s > WRITES_FAILING_S:
            problems.append(
                f"ledger writes failing for {failing_s:.0f} s: {self.failing_reason}; nothing"
                " new is applied until Redis takes them"
            )
        return problems

    def forget(self, revoked: Iterable[TopicPartition]) -> None:
        revoked = list(revoked)
        self.failing_since = None  # the next write tells again
        for tp in revoked:
            self.owned.discard(tp)
            self.diverged.pop(tp, None)
            self.unverified.discard(tp)
            self.stored.pop(tp, None)
            self.last.pop(tp, None)
        self.commits.drop(revoked)
        self._publish_health()

    async def take(self, assigned: Iterable[TopicPartition]) -> None:
        """A new assignment: seek to what Redis holds, and consume no partition with a
        stored offset before its log is checked (the next turn of the loop)."""
        partitions = list(assigned)
        # Before anything awaits: the fetcher may already be reading from a position of
        # its own choosing (a committed offset, the log's start).
        self.owned -= set(partitions)
        if partitions:
            self.consumer.pause(*partitions)
        for tp in partitions:
            self.diverged.pop(tp, None)
        await self._seek_to_stored(partitions)
        self.owned |= set(partitions)
        self.unverified |= {tp for tp in partitions if tp in self.stored}
        self.check_at = 0.0
        self._sync_pause()
        self._publish_health()

    async def _seek_to_stored(self, partitions: Iterable[TopicPartition]) -> None:
        """Position each partition at the offset Redis holds for it (what the ledger
        contains), else at its beginning, and remember the last applied records."""
        offsets, last = await until_redis_answers(self.store.positions, "reading positions")
        partitions = list(partitions)
        self.commits.drop(partitions)  # Redis may hold less than what was pending
        for tp in partitions:
            self.stored.pop(tp, None)
            self.last.pop(tp, None)
            offset = offsets.get(slot(tp))
            if offset is None:
                await self.consumer.seek_to_beginning(tp)
                continue
            self.consumer.seek(tp, offset)
            self.stored[tp] = offset
            if slot(tp) in last:
                self.last[tp] = Fingerprint.parse(last[slot(tp)])

    async def _tick(self, *, verify: bool) -> None:
        """Once a second: a rebuild started or finished, the log end fell below what was
        applied (cheap: the high watermark of the ledger's own fetches), lag; every
        ``verify_interval_s`` the full check of every partition."""
        try:
            changed = await self.store.generation_changed()
            rebuilding = await self.store.rebuilding()
            if self.halted and not rebuilding:
                await self._start_over()
            elif changed and not self.halted:
                self._halt("the ledger was cleared or is being rebuilt")
            if not self.halted:
                assigned = self.consumer.assignment()
                below = {
                    tp
                    for tp, offset in self.stored.items()
                    if tp in assigned
                    and tp not in self.diverged
                    and (end := self.consumer.highwater(tp)) is not None
                    and offset > end
                }
                if verify:
                    below |= {tp for tp in assigned if tp not in self.diverged}
                if below:
                    await self._verify(below)
        except Exception as exc:
            if not isinstance(exc, REDIS_DOWN) and not client_broke(exc):
                raise
            log.warning("ledger check skipped: Redis unavailable (%s)", exc)
        self._publish_health()

    async def _verify(self, partitions: Iterable[TopicPartition]) -> None:
        """Check each partition's stored offset and last applied record against the log;
        pause the ones that diverged, resume the ones that check out."""
        assigned = self.consumer.assignment()
        todo = [tp for tp in partitions if tp in assigned]
        offsets, last = await until_redis_answers(self.store.positions, "reading positions")
        fingerprints = {tp: Fingerprint.parse(last[slot(tp)]) for tp in todo if slot(tp) in last}
        wanted = {tp: fp.offset if (fp := fingerprints.get(tp)) else None for tp in todo}
        looks = await self.probe.look({tp: at for tp, at in wanted.items() if slot(tp) in offsets})
        for tp in todo:
            stored = offsets.get(slot(tp))
            if stored is None:
                self.unverified.discard(tp)  # nothing applied from it: read it all
                continue
            self.stored[tp] = stored
            if tp in fingerprints:
                self.last[tp] = fingerprints[tp]
            look = looks.get(tp)
            if look is None:
                log.warning("%s[%d]: the broker did not answer the log check; retrying", *tp)
                self.unverified.add(tp)
                self.consumer.seek(tp, stored)  # what is read meanwhile is read again
                continue
            self.unverified.discard(tp)
            reason = judge(stored, fingerprints.get(tp), look)
            if reason is not None:
                self._diverge(Divergence(tp.topic, tp.partition, stored, look.log_end, reason))
        self._sync_pause()
        self._publish_health()

    def _diverge(self, divergence: Divergence) -> None:
        tp = TopicPartition(divergence.topic, divergence.partition)
        if tp not in self.diverged:
            log.error(divergence.message())
        self.diverged[tp] = divergence
        self.consumer.pause(tp)

    def _halt(self, reason: str) -> None:
        if self.halted is None:
            log.error("%s; consuming stops until it is done", reason)
        self.halted = reason
        self._sync_pause()
        self._publish_health()

    async def _start_over(self) -> None:
        """The rebuild is done (or the ledger was found empty): replay from the start."""
        await self.store.join_generation()
        await self._hold_payout_runs_while_replaying()
        self.diverged.clear()
        self.unverified.clear()
        self.stored.clear()
        self.last.clear()
        assigned = list(self.consumer.assignment())
        await self._seek_to_stored(assigned)
        self.halted = None
        self.unverified |= set(self.stored)
        self.check_at = 0.0
        log.warning(
            "ledger cleared; replaying %d partitions from what Redis holds (%d stored offsets)",
            len(assigned),
            len(self.stored),
        )
        self._sync_pause()
        self._publish_health()

    async def _hold_payout_runs_while_replaying(self) -> None:
        """A ledger this consumer found without a generation (new, or Redis lost it)
        replays the topics: until it reaches their present ends no payout run pays and no
        compaction judges a period (``replay-until``, as ``afflux ledger rebuild`` sets;
        ``pending`` from the moment the generation began until the ends are read here,
        in the background and again until the broker answers). A half-replayed ledger
        holds sales without the refunds that reduced them, and, after Redis lost its
        data, no payout records yet: a run would pay all again. A consumer that finds
        the mark still ``pending`` reads the ends too (the one that set it may have died
        before it had: runs would wait for good)."""
        if not self.store.started_generation and not await until_redis_answers(
            self.store.replay_ends_pending, "reading the replay mark"
        ):
            return
        if self._replay_ends is not None:
            self._replay_ends.cancel()
        self._replay_ends = asyncio.create_task(self._read_replay_ends(), name="replay-ends")

    async def _read_replay_ends(self) -> None:
        delay = 0.5
        while True:
            try:
                ends = await topics_end_offsets(self.bootstrap, TOPICS)
                if await self.store.hold_until_replayed(ends):
                    log.warning("a new ledger generation: payout runs wait for its replay")
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker or Redis away: the replay waits too
                log.warning("reading the topics' ends for the replay mark: %r; again", exc)
                await asyncio.sleep(delay)
                delay = min(10.0, delay * 2)

    def _sync_pause(self) -> None:
        """Pause what must not be read (everything while halted; diverged and unchecked
        partitions), resume the rest."""
        assigned = self.consumer.assignment()
        stopped = set(assigned) if self.halted else (set(self.diverged) | self.unverified)
        stopped = (stopped | (assigned - self.owned)) & assigned
        if stopped:
            self.consumer.pause(*stopped)
        if assigned - stopped:
            self.consumer.resume(*(assigned - stopped))

    def _publish_health(self) -> None:
        ok = self.ready.is_set() and not self.halted and not self.diverged
        self.metrics.ready.set(1 if ok else 0)
        self.metrics.diverged.set(len(self.diverged))

    # -- applying ---------------------------------------------------------------

    async def _same_log(
        self, polled: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        """The partitions of a poll whose log still holds, right before the polled records,
        the record the ledger applied last: one fetch for all of them. A log recreated and
        grown past the stored offset while the consumer was away is caught here, before a
        record of it is applied (afterwards the new log would look continuous)."""
        kept: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {}
        holes = await self._holes(polled)
        for tp, records in polled.items():
            stored = self.stored.get(tp)
            if stored is not None and records[0].offset != stored and tp not in holes:
                # The consumer's position jumped (reset to the log's start because the
                # broker no longer has the stored offset): read nothing before the check.
                log.warning("%s[%d]: read from %d, stored %d", *tp, records[0].offset, stored)
                self.unverified.add(tp)
                self.consumer.seek(tp, stored)
                self.check_at = 0.0
            else:
                kept[tp] = records
        wanted = {tp: fp.offset for tp in kept if (fp := self.last.get(tp)) is not None}
        looks = await self.probe.look(wanted) if wanted else {}
        for tp in wanted:
            if tp not in self.owned:  # revoked while the log was read
                del kept[tp]
                continue
            look, stored = looks.get(tp), self.stored.get(tp)
            if look is None or stored is None:  # unanswered: read again once checked
                self.unverified.add(tp)
                self.consumer.seek(tp, stored if stored is not None else kept[tp][0].offset)
                del kept[tp]
                continue
            reason = judge(stored, self.last[tp], look)
            if reason is not None:
                self._diverge(Divergence(tp.topic, tp.partition, stored, look.log_end, reason))
                del kept[tp]
        if len(kept) < len(polled):
            self._sync_pause()
            self._publish_health()
        return kept

    async def _holes(
        self, polled: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> set[TopicPartition]:
        """The partitions of a poll that start after their stored offset only because the
        log holds no record in between: the first record the log holds at or after the
        stored offset is the one polled. A broker that crashed mid-write can leave such a
        hole (the embedded broker does); nothing can ever be read there, so waiting for
        it would stop the partition for good. Whether the log is still the one the ledger
        applied is checked next, as for any poll (``judge``)."""
        jumped = {
            tp: stored
            for tp, records in polled.items()
            if (stored := self.stored.get(tp)) is not None and records[0].offset > stored
        }
        if not jumped:
            return set()
        looks = await self.probe.look(jumped)
        holes = set()
        for tp, stored in jumped.items():
            look, first = looks.get(tp), polled[tp][0]
            if look is not None and look.record == Fingerprint.of_record(first):
                log.warning(
                    "%s[%d]: offsets %d..%d are not in the log (a hole a broker left); "
                    "reading on from %d",
                    *tp,
                    stored,
                    first.offset - 1,
                    first.offset,
                )
                self.metrics.offset_holes.inc(first.offset - stored)
                holes.add(tp)
        return holes

    async def _apply(
        self, polled: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        polled = await self._same_log(polled)
        if not polled:
            return
        batch = Batch()
        items: list[Placed] = []
        for tp, records in polled.items():
            for n, record in enumerate(records, 1):
                items += await self.placed(record, batch)
                if n % 100 == 0:
                    await asyncio.sleep(0)  # decoding is CPU: let the HTTP side answer
            batch.offsets[slot(tp)] = records[-1].offset + 1
            batch.last[slot(tp)] = Fingerprint.of_record(records[-1]).encode()
        try:
            applied = await self._store_apply(batch, self.directory.versions, self.currency)
        except REDIS_DOWN as exc:
            await self._resume_from_stored(exc)
            return
        except LedgerReset as exc:
            self._halt(str(exc))
            return
        except Exception as exc:
            try:
                if isinstance(exc, PeriodsRefused):
                    log.warning("applying a batch: %s; applying their items one by one", exc)
                    await self._apply_around(items, batch, exc)
                else:
                    log.exception("applying a batch failed; applying its items one by one")
                    await self._apply_one_by_one(items, batch)
                self.failing_since = None  # written, the refused items dead-lettered
            except REDIS_DOWN as exc:
                await self._resume_from_stored(exc)
            except LedgerReset as exc:
                self._halt(str(exc))
            return
        self.metrics.applied(applied, [i.occurred_at for i in items], self.clock())
        self._refused_delay_s = REFUSED_FIRST_DELAY_S
        self.failing_since = None
        await self._stored_and_committed(batch)

    async def _stored_and_committed(self, batch: Batch) -> None:
        """Remember what Redis now holds and commit it to the group, paced: for lag
        exporters and ``kafka-consumer-groups`` only (the consumer resumes from Redis,
        never from here)."""
        moved: dict[TopicPartition, int] = {}
        for tp in self.consumer.assignment():
            offset = batch.offsets.get(slot(tp))
            if offset is not None and offset > self.stored.get(tp, -1):
                self.stored[tp] = offset
                if slot(tp) in batch.last:
                    self.last[tp] = Fingerprint.parse(batch.last[slot(tp)])
                moved[tp] = offset
        await self.commits.stored(moved)

    async def _resume_from_stored(self, exc: Exception) -> None:
        # Redis may come back without its last writes (AOF fsync policy), so after
        # any failure the ledger's own offsets, not our position, say where to resume.
        if isinstance(exc, KeyOfAnotherType):
            log.error("ledger write refused, nothing of it written; retrying: %s", exc)
        else:
            log.warning("ledger write failed (%s); resuming from the offsets in Redis", exc)
        self.metrics.write_failures.inc()
        if self.failing_since is None:
            self.failing_since = time.monotonic()
        self.failing_reason = f"{type(exc).__name__}: {exc}"[:300]
        if isinstance(exc, ResponseError):
            # Redis answers but refuses these writes (memory, a key of another type): the
            # same batch again, paced, until an operator or Redis clears it.
            await asyncio.sleep(self._refused_delay_s)
            self._refused_delay_s = min(RETRY_MAX_S, self._refused_delay_s * 2)
        await until_redis_answers(self.store.redis.ping, "waiting for Redis")
        # A sync of creators' running sums may be what Redis lost: bring them up to
        # every outbox left, whichever periods the replay touches.
        await until_redis_answers(self.store.drain_outboxes, "draining running-sum outboxes")
        await self._seek_to_stored(self.consumer.assignment())

    async def _apply_around(
        self, items: list[Placed], whole: Batch, refused: PeriodsRefused
    ) -> None:
        """The items of the refused periods one by one (of a creator past the largest
        amount, that creator's only); the rest as one batch again (its periods were
        written: it finds their facts known and brings the creators' running sums up), so
        one hostile item costs its own period's or creator's items, not the poll's. If the
        rest is refused too (an agency's sum past the bound), every item one by one."""
        rest = Batch()
        suspects: list[Placed] = []
        for item in items:
            alone = item.own if item.own is not None else self._placed_alone(item.event)
            if alone is None or suspect(item.event, alone.periods(), refused):
                suspects.append(item)
            else:
                rest.merge(alone)
        try:
            applied = await self._store_apply(rest, self.directory.versions, self.currency)
        except REDIS_DOWN:
            raise
        except LedgerReset:
            raise
        except Exception:
            log.exception("applying the rest of a batch failed; applying it item by item")
            await self._apply_one_by_one(items, whole)
            return
        now, apart = self.clock(), {id(item) for item in suspects}
        self.metrics.applied(refused.written, [], now)
        self.metrics.applied(applied, [i.occurred_at for i in items if id(i) not in apart], now)
        await self._apply_one_by_one(suspects, whole)

    def _placed_alone(self, event: object) -> Batch | None:
        """``event`` in a batch of its own; None if it no longer places (it is then
        applied alone, and dead-lettered with the reason)."""
        alone = Batch()
        try:
            self.placement.place(event, alone)
        except Exception as exc:
            log.info("an item placed before no longer places (%r): applying it alone", exc)
            return None
        return alone

    async def _apply_one_by_one(self, items: list[Placed], whole: Batch) -> None:
        """Each item on its own, stored with its record's offset (so a crash re-reads the
        record: facts are keyed by id, applying one twice changes nothing); the item that
        raises is dead-lettered. Then the batch's offsets, past everything, with the
        fingerprints of its last records."""
        for item in items:
            record = item.record
            try:
                alone = item.own
                if alone is None:
                    alone = Batch()
                    self.placement.place(item.event, alone)
                alone.offsets = {f"{record.topic}|{record.partition}": record.offset}
                applied = await self._store_apply(alone, self.directory.versions, self.currency)
            except REDIS_DOWN:
                raise
            except LedgerReset:
                raise
            except Exception as raised:
                exc = refusal_cause(raised)
                if isinstance(exc, EXPECTED_REFUSALS):  # what the data asks: no traceback
                    log.warning("ledger item at %s[%d]@%d refused: %r", *_where(record), exc)
                else:
                    log.exception("ledger item at %s[%d]@%d refused", *_where(record))
                reason = f"failed: {exc!r}"
                await self._dead_letter(record, reason, type(exc).__name__, item.index)
                await self._note_refused(item.event, reason, type(exc).__name__)
                continue
            self.metrics.applied(applied, [item.occurred_at], self.clock())
        past = Batch(offsets=whole.offsets, last=whole.last)
        await self._store_apply(past, self.directory.versions, self.currency)
        await self._stored_and_committed(whole)

    async def _store_apply(
        self, batch: Batch, versions: Versions, currency: Callable[[str], str]
    ) -> Applied:
        """``store.apply``; a connection redis-py broke under it (``client_broke``) as the
        ``ConnectionError`` it is: the batch waits for Redis instead of going item by item
        to the dead-letter topic."""
        try:
            return await self.store.apply(batch, versions, currency)
        except (RuntimeError, AttributeError) as exc:
            if client_broke(exc):
                raise RedisConnectionError(f"the Redis client's connection broke: {exc!r}") from exc
            raise

    async def placed(self, record: ConsumerRecord[bytes, bytes], batch: Batch) -> list[Placed]:
        """Every good item of one record placed in ``batch``; each bad one dead-lettered.

        ``_place`` checks everything that can refuse an event before it adds anything to
        a batch, so a refused item leaves ``batch`` as it was."""
        clicks = decoded_clicks(record.value) if record.topic == CLICKS.name else None
        if clicks is not None:
            return await self._placed_clicks(record, clicks, batch)
        try:
            parsed = parse_value(record.value)
        except UndecodableRecord as exc:
            await self._dead_letter(record, str(exc), exc.error_class)
            return []
        packed = isinstance(parsed, list)
        out: list[Placed] = []
        for index, item in enumerate(parsed if packed else [parsed]):
            at = index if packed else None
            own: Batch | None = None
            event: object | None = None
            try:
                if not isinstance(item, dict):
                    raise UndecodableRecord("record must be a JSON object or an array of objects")
                event = event_from_dict(item)
                misplaced = wrong_topic(type(event).__name__, record.topic)
                if misplaced:
                    raise Rejected(misplaced)
                if isinstance(event, ContentPublished | ContentStats | ContentReleased):
                    await self._content_checked(event, record.timestamp)
                    own = Batch()
                elif isinstance(event, ClickRecorded):
                    self._click_in_time(event.occurred_at, record.timestamp, self.clock())
                await self._place_rechecked(event, batch if own is None else own, record)
            except Exception as exc:  # whatever one item raises, it alone is dead-lettered
                reason, error_class = await self._refused(record, exc, at)
                if event is not None:
                    await self._note_refused(event, reason, error_class)
                continue
            if own is not None:
                batch.merge(own)
            out.append(Placed(record, at, event, event.occurred_at, own))
        return out

    async def _placed_clicks(
        self, record: ConsumerRecord[bytes, bytes], clicks: list[DecodedClick], batch: Batch
    ) -> list[Placed]:
        """``_placed`` for a record of clicks the fast path decoded: the same placing and
        refusals, without the general path's dicts and models."""
        packed = record.value is not None and record.value.lstrip()[:1] == b"["
        out: list[Placed] = []
        now = self.clock()
        for index, click in enumerate(clicks):
            at = index if packed else None
            try:
                self._click_in_time(click.occurred_at, record.timestamp, now)
                await self._place_rechecked(click, batch, record)
            except Exception as exc:  # whatever one item raises, it alone is dead-lettered
                await self._refused(record, exc, at)
                continue
            out.append(Placed(record, at, click, click.occurred_at))
        return out

    async def _refused(
        self, record: ConsumerRecord[bytes, bytes], exc: Exception, at: int | None
    ) -> tuple[str, str]:
        """Dead-letter item ``at`` of ``record`` for ``exc``: an undecodable item under
        its own error class, a ``Rejected`` one with its reason, anything else named by
        its exception's class. The reason and class it gave."""
        error_class: str | None
        if isinstance(exc, UndecodableRecord):
            reason, error_class = str(exc), exc.error_class
        elif isinstance(exc, Rejected):
            reason, error_class = str(exc), "Rejected"
        else:
            reason, error_class = f"{type(exc).__name__}: {exc}", type(exc).__name__
        await self._dead_letter(record, reason, error_class, at)
        return reason, error_class or type(exc).__name__

    async def _note_refused(self, event: object, reason: str, error_class: str) -> None:
        """A refused conversion noted under its order, for the order's outcome
        (``refused_conversions``). The dead letter is the record of it: a note Redis
        refuses is logged, and the ledger goes on."""
        if not isinstance(event, ConversionAttributed) or event.campaign_id not in self.directory:
            # Only the orders of known campaigns have an outcome to tell: forged conversions
            # of campaigns that do not exist would each leave a key for the retention.
            return
        now = self.clock()
        note = refused_conversions.refused(event, reason, error_class, now)
        try:
            await refused_conversions.note(
                self.store.redis, self.store.keys, event, note, now + self.store.retention_ms
            )
        except Exception as exc:
            log.warning("a refused conversion's note under its order failed (%r)", exc)

    async def _place_rechecked(
        self, event: object, batch: Batch, record: ConsumerRecord[bytes, bytes]
    ) -> None:
        """``_place``; a refusal that terms published since the record could lift is
        asked again once the terms have caught up with the record's time."""
        try:
            self.placement.place(event, batch)
        except Rejected as exc:
            until = self.terms_recheck.may_lift(str(exc), record.timestamp)
            if until is None:
                raise
            await self.terms_recheck.caught_up(until)
            self.placement.place(event, batch)

    def _click_in_time(self, occurred_at: int, record_ts: int, now: int) -> None:
        """Refuse a click dated more than the clock skew after its record's timestamp or
        this consumer's clock, as the attribution worker and the oracle leave it out: paid
        per click here, it made the ledger differ from them (a click written straight to
        the topic 60 days ahead was paid in a period to come)."""
        skew = self.clock_skew_ms
        if event_time_in_future(occurred_at, record_ts, skew):
            raise Rejected(
                f"{EVENT_TIME_IN_FUTURE}: occurred_at {occurred_at} is"
                f" {occurred_at - record_ts} ms after the record's timestamp {record_ts}"
                f" (allowed: {skew} ms)"
            )
        if ahead_of_own_clock(occurred_at, now, skew):
            raise Rejected(
                f"{EVENT_TIME_IN_FUTURE}: occurred_at {occurred_at} is"
                f" {occurred_at - now} ms after this consumer's clock {now}"
                f" (allowed: {max(skew, OWN_CLOCK_TOLERANCE_MS)} ms)"
            )

    async def _content_checked(
        self, event: ContentPublished | ContentStats | ContentReleased, record_ts: int
    ) -> None:
        """Refuse a content event dated beyond the clock skew, and know where its content
        was published (Redis, unless placed or read before)."""
        stated = latest_time(event)
        # A release too: written straight to the topic it carries whatever time its writer
        # gave it, and the attribution worker and the oracle leave such a release out.
        if event_time_in_future(stated, record_ts, self.clock_skew_ms):
            raise Rejected(
                f"{EVENT_TIME_IN_FUTURE}: a time of {stated} is"
                f" {stated - record_ts} ms after the record's timestamp {record_ts}"
                f" (allowed: {self.clock_skew_ms} ms)"
            )
        now = self.clock()
        if ahead_of_own_clock(stated, now, self.clock_skew_ms):  # the producer stamps it
            raise Rejected(
                f"{EVENT_TIME_IN_FUTURE}: a time of {stated} is"
                f" {stated - now} ms after this consumer's clock {now}"
                f" (allowed: {max(self.clock_skew_ms, OWN_CLOCK_TOLERANCE_MS)} ms)"
            )
        key = key_of(event)
        if self.placement.knows_route(key):
            return
        stored = await until_redis_answers(
            lambda: self.store.content_route_awaiting(key), "reading a content's period"
        )
        if stored is not None:
            self.placement.remember_route(key, *stored)

    def place(self, events: Iterable[object]) -> Batch:
        """The ledger changes of decoded events, in one batch without offsets, as a poll
        places them before ``LedgerStore.apply``; raises ``Rejected`` for an event the
        ledger refuses (the consumer dead-letters it)."""
        batch = Batch()
        for event in events:
            self.placement.place(event, batch)
        return batch

    def currency(self, campaign_id: str) -> str:
        """The campaign's currency, as ``LedgerStore.apply`` asks for it."""
        return self.placement.currency(campaign_id)

    async def _dead_letter(
        self,
        record: ConsumerRecord[bytes, bytes],
        reason: str,
        error_class: str = "Rejected",
        item: int | None = None,
    ) -> None:
        letter = dead_letter_of(
            record, consumer=CONSUMER, reason=_at(item) + reason, error_class=error_class, item=item
        )
        # While the broker is away the batch waits here, so nothing is skipped; a letter
        # refused for itself is counted and passed, or one record would stop the ledger.
        if await deliver_dead_letter(self.producer, letter) is None:
            self.metrics.dead_letter(record.topic, reason)
        else:
            self.metrics.dlq_unsent.labels(record.topic).inc()


# Refusals the rules make of what an item says (a sum past the largest amount, a fact for
# a compacted period): logged as warnings, without the traceback a failure gets, since
# a merchant can send them as often as it likes.
EXPECTED_REFUSALS = (CreatorSumOutOfRange, PeriodCompacted, PeriodExpired, ConversionConflict)


def suspect(event: object, periods: set[tuple[str, str]] | None, refused: PeriodsRefused) -> bool:
    """Whether an event placed in ``periods`` (None: known only when applied) may be what
    ``refused`` refused: it is in a refused period, and, when that period refused
    creators past the largest amount, it is one of theirs (or names no creator)."""
    if periods is None:
        return True
    creator = getattr(event, "affiliate_id", None)
    for period in periods & refused.refused.keys():
        cause = refused.refused[period]
        if not isinstance(cause, CreatorSumOutOfRange) or not cause.creators:
            return True
        if not isinstance(creator, str) or creator in cause.creators:
            return True
    return False


def _at(index: int | None) -> str:
    return "" if index is None else f"item {index}: "


def _where(record: ConsumerRecord[bytes, bytes]) -> tuple[str, int, int]:
    return record.topic, record.partition, record.offset
