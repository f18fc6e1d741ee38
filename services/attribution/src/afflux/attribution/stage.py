"""One driver for both stages: records and timer ticks in, outputs then state out.

Each stage (the click-order join, the refunds) is a ``StageHandler``: what one
event does to a partition's state, what a tick finds due, what pruning drops.
``Stage`` does the rest the same way for both: it owns partitions, recovers
them and checks them against their input logs (partitions.py), reads back
records the consumer skipped (gaps.py), dead-letters what cannot be used
(outbox.py) and writes.

Why the stages keep their own changelogs instead of Faust tables:

- Faust's table recovery reads a changelog up to the end offset that
  ListOffsets reports, and the embedded broker answers that with the base
  offset of the newest batch + 1: the last batch of updates of every changelog
  partition would be lost on every restart (docs/attribution.md, "State and
  restarts"). A stage reads its changelog up to the fetch high watermark.
- A table write goes out whenever Faust flushes, independently of the outputs
  it belongs to. A stage decides the order: an output may be sent twice, never
  forgotten, so state is never ahead of what was emitted.
- With the state a stage writes its input position (per input topic, the
  offset and a fingerprint of the last record consumed), which tells at the
  next assignment whether the state still belongs to the input log
  (divergence.py); a table knows nothing of the inputs it was built from.

Write order, for every batch (the records a stage takes together, a timer
tick, a pruning pass):

1. send the outputs and dead letters, and wait until the broker acknowledged
   every one of them;
2. write the changed state keys to the stage's changelog;
3. write the partition's input position (``POSITION_KEY``) to the changelog;
4. acknowledge the input record to Faust, which commits its offset later,
   after flushing the producer (so after steps 2 and 3 reached the broker).

A crash between two steps leaves the old state (and position): the input is
read again from the committed offset and the same events are emitted again
with the same ids. So state is never ahead of what was emitted, and the
position never ahead of the state.

A batch that raises instead (a send the broker refused, a ``ProducerSendError``,
any exception outside the per-record dead letters) leaves its partitions' state in
memory ahead of what was sent and written: its records are applied, their position
noted. Written by a later batch or tick, that state would claim outputs that never
went out. So the partitions of a failed batch are stopped (``failed``): dropped
from ``owned``, their state in memory thrown away, nothing of them written, their
records held unacknowledged and fetching paused. ``/healthz`` answers 503
meanwhile. They are retried (``retry_failed``, from the timer) after a back-off
doubling from ``RETRY_FIRST_S`` to at most ``RETRY_MAX_S``: each is recovered from
its changelog and checked against its input as at an assignment, and its input is
fetched again from the group's committed offsets. That is what a restart of the
worker does for every partition, and what a worker killed at the moment of the
failure would do: the changelog holds a state never ahead of what was emitted, with
its position (the write order above), outputs the failed batch sent already go out
again with the same ids, and nothing is skipped. Should the cause persist, the
retried batch fails again and waits longer; a partition whose input no longer
matches its state is stopped as diverged, for good.

Progress: each batch written (records, a read-back, a tick) notes the time
(``turned_at``, monotonic); a stage with input waiting and no batch for
``runtime.STALL_S`` is reported stalled.

Safe time: an order waits until everything that reached the broker before its
deadline has been read. Each timer tick notes the high watermarks of the
stage's input partitions; once everything up to a note has been processed, the
note's wall-clock time is safe.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Sequence
from contextlib import aclosing, contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, cast

from aiokafka import TopicPartition

from afflux.attribution.decode import Event, decode_items, item_of
from afflux.attribution.divergence import Position, committed_offsets, fingerprint
from afflux.attribution.gaps import READ_BACK_FETCH_BYTES, read_chunks
from afflux.attribution.join import Output
from afflux.attribution.outbox import Outbox, OutRecord
from afflux.attribution.partitions import (
    POSITION_KEY,
    Note,
    Owned,
    Partitions,
    PartitionState,
    S,
)
from afflux.attribution.store import DiskStores, LocalStore
from afflux.attribution.timer_indexes import dump_indexes
from afflux.shared.core.event_time import is_backfill
from afflux.shared.events import DeadLetter
from afflux.shared.io.terms_barrier import TermsBarrier
from afflux.shared.io.terms_recheck import TermsRecheck
from afflux.shared.placement import checks_every_item, misplaced

__all__ = [
    "ARRIVAL_MARGIN_MS",
    "CATCH_UP_AFTER_MS",
    "POSITION_KEY",
    "InputRecord",
    "Owned",
    "PartitionState",
    "Record",
    "Stage",
    "StageHandler",
    "Transport",
]

log = logging.getLogger(__name__)

HighWater = Callable[[str, int], tuple[int, int] | None]  # (high watermark, seen at ms)
# How long after its timestamp (stamped by its producer) a record is taken to be in its
# log (``Stage.note``); the default of AFFLUX_ARRIVAL_MARGIN_MS.
ARRIVAL_MARGIN_MS = 50
# An owned input partition without progress this long is reported (``_watch_progress``).
STALLED_WARN_MS = 30_000
# An owned input partition behind its high watermark without progress this long is read
# back from where its state stands (``catch_up``): the consumer may never hand over
# records it dropped at a rebalance when no later record reveals the jump (gaps.py).
CATCH_UP_AFTER_MS = 5_000
# A partition's fetch high watermark last answered this long ago is stale: the consumer
# does not fetch a partition whose fetched records it has not handed over, so records
# appended since are past it, and a partition whose state reached it looked caught up
# (``_watch_progress``). Its log end is then asked of the broker (``Transport.log_end``).
STALE_FETCH_MS = 15_000
# A partition stopped by a failed batch is retried after this long, then twice as long
# after each failure in a row, at most ``RETRY_MAX_S`` apart (``Stage.retry_failed``).
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 30.0
Send = Callable[[str, bytes | None, bytes | None, int | None], Awaitable[Awaitable[Any]]]
# Fetch input partitions again from these offsets (topic, partition) -> offset.
Rewind = Callable[[dict[tuple[str, int], int]], Awaitable[None]]
LogEnd = Callable[[str, int], Awaitable[int]]
# Records (key, value) to one partition of a topic: their acknowledgements, fewer than the
# records (one per batch the producer sends).
SendMany = Callable[
    [str, int, Sequence[tuple[bytes | None, bytes | None]]], Awaitable[list[Awaitable[Any]]]
]


class InputRecord(Protocol):
    """A consumed record (an aiokafka ``ConsumerRecord`` is one); ``timestamp`` in ms."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


@dataclass(frozen=True, slots=True)
class Record:
    """An ``InputRecord`` built from what the delivery layer hands over."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int
    headers: Sequence[tuple[str, bytes]] = ()


@dataclass(frozen=True)
class Transport:
    """What the stages need of Kafka, given at construction (see faust_bridge.py)."""

    send: Send
    # The fetch high watermark of an input partition and when it was seen; None: unknown.
    highwater: HighWater = lambda topic, p: None
    # A topic's partition count (outputs are packed per partition); None: unknown.
    partition_count: Callable[[str], int | None] = lambda topic: None
    # Stop fetching input partitions (topic, partition): their stage diverged.
    pause: Callable[[set[tuple[str, int]]], None] = lambda tps: None
    # Many records to one partition at a time (the changelog writes); None: ``send`` each.
    send_many: SendMany | None = None
    # Fetch input partitions paused after a failed batch again, from the given offsets
    # (their records are delivered again: ``Stage.retry_failed``).
    rewind: Rewind | None = None
    # The log end of an input partition, asked of the broker (``catch_up`` when the
    # fetch high watermark is unknown or stale), raising within seconds when the broker
    # does not answer; None: not asked.
    log_end: LogEnd | None = None

    async def send_all(
        self, topic: str, partition: int, items: Sequence[tuple[bytes | None, bytes | None]]
    ) -> list[Awaitable[Any]]:
        """Send ``items`` in their order to ``partition``; their acknowledgements."""
        if self.send_many is not None:
            return await self.send_many(topic, partition, items)
        return [await self.send(topic, key, value, partition) for key, value in items]


@dataclass(slots=True)
class Pending(Generic[S]):
    """A partition's outputs and dead letters to send before its state is written;
    ``owned`` and ``consumed``: the input offsets processed (none for a tick)."""

    p: int
    state: S
    out: list[Output]
    letters: list[DeadLetter]
    owned: Owned[S] | None = None
    consumed: dict[str, int] = field(default_factory=dict)


class StageHandler(Protocol[S]):
    """What one stage does to one partition's state; no Kafka, no clock reads."""

    # The topic named on the dead letters of decisions that raised in ``due``.
    failed_topic: str

    def new_state(self, local: LocalStore | None = None) -> S:
        """A partition's empty state: in memory, or over ``local`` (the disk store)."""
        ...

    def on_event(
        self, state: S, topic: str, event: Event, ts: int, *, backfill: bool = False
    ) -> tuple[Sequence[Output], str]:
        """Apply one event of a record stamped ``ts`` (``backfill``: the record carries the
        backfill header): its outputs, and why it was refused ('' when it was used; a
        refused event changes nothing)."""
        ...

    def due(self, state: S, safe_ms: int) -> list[Output]:
        """What is decided once everything before ``safe_ms`` has been read."""
        ...

    def terms_current(self, state: S, current: bool) -> None:
        """Whether the campaign view held every terms version the broker had when the
        batch about to be applied was fetched (``terms_barrier``); False: it could not be
        known or waited for, and nothing is decided at once from the terms."""
        ...

    def prune(self, state: S, safe_ms: int) -> None:
        """Forget what no future event can need (marking the keys dirty)."""
        ...


class Stage(Partitions[S]):
    """One stage's partitions on this worker (see partitions.py), driven by its handler."""

    def __init__(
        self,
        name: str,
        inputs: tuple[str, ...],
        changelog: str,
        handler: StageHandler[S],
        transport: Transport,
        outbox: Outbox,
        bootstrap: str,
        group: str | None = None,
        disk: DiskStores | None = None,
        arrival_margin_ms: int = ARRIVAL_MARGIN_MS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(name, inputs, changelog, handler.new_state, bootstrap, group, disk)
        self.handler = handler
        self.arrival_margin_ms = arrival_margin_ms
        self.transport = transport
        self.outbox = outbox
        # Refusals newer campaign terms could lift are held to the end of their batch and
        # asked again once the campaign view caught up (terms_recheck.py); None: never.
        self.recheck: TermsRecheck | None = None
        # Records of these topics are applied only once the campaign view holds every
        # terms version published before they were fetched (terms_barrier.py); None: not.
        self.barrier: TermsBarrier | None = None
        self.barrier_topics: frozenset[str] = frozenset()
        # (record, item index, event, raw item, catch-up, the record's is_backfill)
        self._held: list[tuple[InputRecord, int, Event, Any, int, bool]] = []
        self.read_back_bytes = READ_BACK_FETCH_BYTES  # a read-back's fetch (gaps.py)
        # Per input partition behind its high watermark (or never answered by a fetch):
        # since when (clock ms), the offset processed then, and whether it was reported.
        self._behind: dict[tuple[str, int], tuple[int, int, bool]] = {}
        self._caught_up_at: dict[tuple[str, int], int] = {}  # last read-back (clock ms)
        self._ask_after = 0  # no log end asked of the broker before (clock ms)
        # Partitions stopped because a batch of theirs raised, with why (module docstring),
        # until their retry recovers them; when that is due (monotonic) and the failures
        # in a row (reset by a batch written).
        self.failed: dict[int, str] = {}
        self.retry_at: dict[int, float] = {}
        self.attempts: dict[int, int] = {}
        self.assignment: set[int] = set()  # the partitions the group gave this stage
        self._retrying: asyncio.Future[None] | None = None
        self.monotonic = monotonic
        self.turned_at = monotonic()  # when a batch was last written (module docstring)

    def ready(self) -> bool:
        return super().ready() and not self.failed

    def assigned(self, partitions: set[int]) -> None:
        """As ``Partitions.assigned``; a failed partition kept waits for its retry, one
        given away is forgotten (its new owner recovers it)."""
        self.assignment = set(partitions)
        for p in [p for p in self.failed if p not in partitions]:
            del self.failed[p]
            self.retry_at.pop(p, None)
            self.attempts.pop(p, None)
        super().assigned({p for p in partitions if p not in self.failed})

    def revoked(self, partitions: set[int]) -> None:
        """As ``Partitions.revoked``; a failed partition waits for the assignment to be
        retried (or forgotten, if it went to another worker)."""
        self.assignment -= partitions
        super().revoked(partitions)

    # -- records and ticks -------------------------------------------------------

    async def handle(self, record: InputRecord) -> bool:
        """Process one record; False: hold it unacknowledged (its partition diverged:
        its offset is never committed, and fetching the partition stops)."""
        return (await self.handle_many([record]))[0]

    async def handle_many(self, records: Sequence[InputRecord]) -> list[bool]:
        """Process records the consumer had ready together, per partition in their order,
        as one batch: the outputs of all of them are sent and acknowledged once, then the
        changed keys and the position written once (the module docstring's write order,
        for the batch as for a single record). Per record, False: hold it
        unacknowledged (see ``handle``)."""
        done = [True] * len(records)
        by_partition: dict[int, list[int]] = {}
        for n, record in enumerate(records):
            by_partition.setdefault(record.partition, []).append(n)
        ours: list[tuple[Owned[S], list[InputRecord]]] = []
        for p, indexes in by_partition.items():
            owned = await self.partition(p)
            if owned is None:
                if p in self.diverged or p in self.failed:
                    self.transport.pause({(t, p) for t in self.inputs})
                    for n in indexes:
                        done[n] = False
                continue  # not ours (revoked meanwhile) unless diverged or failed
            ours.append((owned, [records[n] for n in indexes]))
        # One ask of the terms barrier for the whole batch, and before the lock: asked per
        # partition, each ask started after the last one and so made a round trip of its
        # own, and the timer deciding due orders waited for all of them.
        fetched = self.monotonic()
        await self._pass_barrier(records, fetched)
        try:
            async with self.lock:
                with self._stop_on_failure([(batch[0].partition, o.state) for o, batch in ours]):
                    # Every partition's outputs are awaited together: one round trip.
                    await self._emit_all(
                        [await self._process_batch(o, batch, fetched) for o, batch in ours]
                    )
        except Exception:  # stopped and logged (``_stop``): held until the retry
            held = {batch[0].partition for _, batch in ours}
            return [ok and r.partition not in held for ok, r in zip(done, records, strict=True)]
        return done

    async def _pass_barrier(self, records: Sequence[InputRecord], fetched: float) -> bool:
        """False when the batch holds orders and the view could not be brought up to the
        terms the broker held when it was fetched (the ask failed, or waiting ran past its
        share of the time): under load the at-once decisions then took the old version."""
        if self.barrier is not None and any(r.topic in self.barrier_topics for r in records):
            return await self.barrier.passed(fetched)
        return True

    async def _process_batch(
        self, owned: Owned[S], records: list[InputRecord], fetched: float | None = None
    ) -> Pending[S]:
        # Here too, not only where the consumer hands records over: a read-back
        # (``catch_up``, ``_skipped``'s callers) applies records as well. A batch whose
        # barrier was passed already (``handle_many``) shares that ask: no round trip.
        current = await self._pass_barrier(
            records, self.monotonic() if fetched is None else fetched
        )
        p = records[0].partition
        state = owned.state
        self.handler.terms_current(state, current)
        out: list[Output] = []
        letters: list[DeadLetter] = []
        consumed = dict(owned.consumed)
        last: dict[str, InputRecord] = {}
        for record in records:
            expected = consumed.get(record.topic, _after(owned.last.get(record.topic)))
            if record.offset < expected and record.topic in consumed:
                continue  # read back already (``catch_up``) before the consumer handed it
            if record.offset > expected:  # skipped records: never on the common path
                read_back = 0
                async with aclosing(self._skipped(record, expected)) as chunks:
                    async for chunk in chunks:
                        # A long read-back is written as it goes: memory stays bounded.
                        if read_back:
                            await self._conclude(state, p, out, letters)
                            _note_last(owned, last)
                            await self._emit_all([Pending(p, state, out, letters, owned, consumed)])
                            out, letters = [], []
                        for missed in chunk:
                            self._apply(state, missed, out, letters)
                            offset = missed.offset + 1
                            consumed[missed.topic] = max(consumed.get(missed.topic, 0), offset)
                            last[missed.topic] = missed
                        read_back += len(chunk)
            self._apply(state, record, out, letters)
            consumed[record.topic] = max(consumed.get(record.topic, 0), record.offset + 1)
            last[record.topic] = record
        await self._conclude(state, p, out, letters)
        _note_last(owned, last)
        return Pending(p, state, out, letters, owned, consumed)

    async def _conclude(
        self, state: S, p: int, out: list[Output], letters: list[DeadLetter]
    ) -> None:
        """What the records applied so far still owe before their position is written:
        the held events applied again, the decisions that raised dead-lettered."""
        if self._held:
            await self._apply_held(state, out, letters)
        letters += self.outbox.undecided(self.handler.failed_topic, p, state.take_failed())

    def _apply(
        self, state: S, record: InputRecord, out: list[Output], letters: list[DeadLetter]
    ) -> None:
        """Apply one record's events to ``state``: outputs to ``out``, refusals to
        ``letters`` (one bad item alone is dead-lettered)."""
        outbox = self.outbox
        topic, p, offset, key = record.topic, record.partition, record.offset, record.key
        value = record.value
        own = outbox.own.take(value) if topic in outbox.read_back else None
        items = (
            decode_items(value)
            if own is None
            else [(index, cast(Event, e), "", None, "") for index, e in enumerate(own)]
        )
        backfill = is_backfill(record.headers)  # the record's, the same for each of its items
        partitions = self.transport.partition_count(topic)
        check_all, checked_one = checks_every_item(topic), False
        for index, event, reason, raw, error_class in items:
            if event is None:
                letters.append(
                    outbox.letter(topic, p, offset, index, key, raw, reason, value, error_class)
                )
                continue
            if check_all or not checked_one:
                checked_one = True
                wrong = misplaced(topic, event, p, partitions)
                if wrong:
                    check_all = True  # the record's other items may be misplaced too
                    raw = item_of(value, index, event) if raw is None else raw
                    letters.append(
                        outbox.letter(topic, p, offset, index, key, raw, wrong, None, "Rejected")
                    )
                    continue
            self._take(state, record, index, event, raw, out, letters, self.recheck, backfill)
        metrics = outbox.metrics
        metrics.child(metrics.events, topic).inc(len(items))

    def _take(
        self,
        state: S,
        record: InputRecord,
        index: int,
        event: Event,
        raw: Any,
        out: list[Output],
        letters: list[DeadLetter],
        recheck: TermsRecheck | None,
        backfill: bool,
    ) -> None:
        """Apply one decoded item of ``record``; a refusal ``recheck`` says newer terms
        could lift is held (``_held``), any other is dead-lettered, and so is whatever
        the item raises (it alone). ``backfill``: the record carries the backfill header
        (``is_backfill``, read once per record)."""
        topic, p, offset, key = record.topic, record.partition, record.offset, record.key
        ts = record.timestamp
        outbox = self.outbox
        try:
            outputs, refused = self.handler.on_event(state, topic, event, ts, backfill=backfill)
            if not refused:
                out += outputs
                return
            until = recheck.may_lift(refused, ts) if recheck is not None else None
            if until is not None:
                self._held.append((record, index, event, raw, until, backfill))
                return
            raw = item_of(record.value, index, event) if raw is None else raw
            letter = outbox.letter(topic, p, offset, index, key, raw, refused, None, "Rejected")
        except Exception as exc:
            raw = item_of(record.value, index, event) if raw is None else raw
            letter = outbox.failed(topic, p, offset, index, key, raw, exc)
        letters.append(letter)

    async def _apply_held(self, state: S, out: list[Output], letters: list[DeadLetter]) -> None:
        """Once the campaign view caught up with the held events' records, apply them
        again; what is still refused is dead-lettered as usual."""
        held, self._held = self._held, []
        assert self.recheck is not None
        await self.recheck.caught_up(max(until for *_, until, _ in held))
        for record, index, event, raw, _, backfill in held:
            self._take(state, record, index, event, raw, out, letters, None, backfill)

    async def _skipped(
        self, record: InputRecord, expected: int
    ) -> AsyncGenerator[Sequence[InputRecord], None]:
        """Records before ``record`` that the consumer skipped (see gaps.py), read back a
        fetch at a time; ``expected``: the offset after the last record of its topic the
        partition's state holds (0: none). A state with no position on a long log reads
        the whole log back: each fetch is applied, and what came before it written,
        before the next one is read."""
        topic, p, offset = record.topic, record.partition, record.offset
        if offset <= expected:
            return
        log.warning(
            "%s[%d]: offsets %d..%d were skipped by the consumer; reading them back",
            topic,
            p,
            expected,
            offset - 1,
        )
        chunks = read_chunks(self.bootstrap, topic, p, expected, offset, self.read_back_bytes)
        async with aclosing(chunks):
            async for chunk in chunks:
                self.outbox.metrics.refetched.inc(len(chunk))
                yield chunk

    async def tick(self) -> None:
        """Emit what is due in every partition (call ``note`` first); the partitions'
        outputs are awaited together, then each one's state written."""
        async with self.lock:
            pending: list[Pending[S]] = []
            for p, owned in list(self.owned.items()):
                state = owned.state
                try:
                    out = self.handler.due(state, owned.safe_ms)
                except Exception:  # one partition's failure never stops the timer
                    log.exception("%s[%d]: deciding what is due failed", self.name, p)
                    continue
                letters = self.outbox.undecided(self.handler.failed_topic, p, state.take_failed())
                if out or letters or state.dirty:
                    pending.append(Pending(p, state, out, letters))
            try:
                await self._emit_all(pending)
            except Exception:  # stopped and logged (``_stop``): retried; the timer goes on
                return
            for p, owned in list(self.owned.items()):
                local = owned.local
                if local is None or not local.due():
                    continue
                # Changes stopped: checkpoint anyway. A changelog write the broker refused
                # surfaces here, as it would in a batch: the partition stops and is retried
                # from its changelog; raised, it would end the timer and the worker.
                with suppress(Exception), self._stop_on_failure([(p, owned.state)]):
                    await local.checkpoint_acked(dump_indexes(owned.state))

    async def prune(self) -> None:
        """Let the handler forget what is no longer needed; write what it dropped."""
        for p, owned in list(self.owned.items()):
            async with self.lock:
                if self.owned.get(p) is not owned:
                    continue
                try:
                    self.handler.prune(owned.state, owned.safe_ms)
                except Exception:  # in the timer: one partition's failure never stops it
                    log.exception("%s[%d]: pruning failed", self.name, p)
                    continue
                if owned.state.dirty:
                    with suppress(Exception):  # stopped and logged (``_stop``): retried
                        await self._emit(p, owned.state, [], [])

    def lag(self, topic: str) -> int:
        """Records of ``topic`` in the owned partitions not processed yet."""
        lag = 0
        for p, owned in self.owned.items():
            known = self.transport.highwater(topic, p)
            if known is not None:
                lag += max(0, known[0] - _next_offset(owned, topic))
        return lag

    # -- safe time -------------------------------------------------------------

    def note(self) -> None:
        """Advance each partition's safe time; note the current high watermarks.

        A note holds as of the oldest fetch answer it uses, less the arrival margin for
        records stamped by their producer a little before the broker took them. A record
        that took longer than the margin is read after times it was due in were decided:
        it is handled as a late arrival (a late click re-decides its orders, a late
        conversion settles refunds that expired waiting), so the margin trades how often
        that happens against how soon decisions are made, never the money.
        """
        highwater = self.transport.highwater
        for p, owned in self.owned.items():
            highs = {}
            seen_at = []
            for topic in self.inputs:
                known = highwater(topic, p)
                if known is None:
                    break
                highs[topic], polled = known
                seen_at.append(polled)
            else:
                at = min(seen_at) - self.arrival_margin_ms
                if not owned.notes or owned.notes[-1].at_ms < at:
                    owned.notes.append(Note(at, highs))
            while owned.notes:
                first = owned.notes[0]
                if all(_next_offset(owned, t) >= h for t, h in first.highs.items()):
                    owned.safe_ms = first.at_ms
                    owned.notes.popleft()
                else:
                    break
        self._watch_progress()

    def _watch_progress(self) -> None:
        """Warn once when an owned input partition has made no progress for
        ``STALLED_WARN_MS``: no fetch has answered for it, or records below its high
        watermark stay unprocessed. Neither happens while records flow, however slowly;
        either holds the partition's safe time, and so every decision waiting on it."""
        now = self.outbox.clock()
        highwater = self.transport.highwater
        behind: dict[tuple[str, int], tuple[int, int, bool]] = {}
        for p, owned in self.owned.items():
            for topic in self.inputs:
                known = highwater(topic, p)
                done = _next_offset(owned, topic)
                if known is not None and done >= known[0] and now - known[1] < STALE_FETCH_MS:
                    continue
                since, then, told = self._behind.get((topic, p), (now, done, False))
                if then != done:  # progress: a new episode, if any
                    since, then, told = now, done, False
                if not told and now - since >= STALLED_WARN_MS:
                    told = True
                    log.warning(
                        "%s[%d]: no progress on %s[%d] for %d s: processed to offset %d, "
                        "fetch high watermark %s; the partition's safe time, and every "
                        "decision waiting on it, is held",
                        self.name,
                        p,
                        topic,
                        p,
                        (now - since) // 1000,
                        done,
                        "unknown (no fetch answered)"
                        if known is None
                        else f"{known[0]} (answered {(now - known[1]) // 1000} s ago)",
                    )
                behind[(topic, p)] = (since, then, told)
        self._behind = behind

    async def catch_up(self) -> None:
        """Read back what an owned input partition left below its high watermark for
        ``CATCH_UP_AFTER_MS`` without progress (call ``note`` first), from where its
        state stands, and apply it as records the consumer handed over.

        The consumer drops records below its read offset, which a rebalance can leave
        past records it never handed out (gaps.py). A later record reveals the jump and
        ``_process_batch`` reads the range back; when none comes (the partition's last
        records, a quiet topic), nothing would: the partition's safe time, and every
        order and refund waiting on it, would be held for good. Should the consumer hand
        the records over after all, they are skipped as already processed. The high
        watermark is the last fetch answer's; when there is none, or it is
        ``STALE_FETCH_MS`` old (the consumer does not fetch a partition whose fetched
        records it still holds, so a record appended since is past it, and a state that
        reached it looked caught up), the log end is asked of the broker."""
        now = self.outbox.clock()
        for (topic, p), (since, _, _) in list(self._behind.items()):
            known = self.transport.highwater(topic, p)
            tried = self._caught_up_at.get((topic, p), since)
            stale = known is None or now - known[1] >= STALE_FETCH_MS
            ask = self.transport.log_end
            waiting = now - max(since, tried) < CATCH_UP_AFTER_MS
            if waiting or (stale and (ask is None or now < self._ask_after)):
                continue
            self._caught_up_at[(topic, p)] = now
            if stale and ask is not None:
                # Outside the lock, bounded (``Transport.log_end``): a broker that stalls
                # must not hold the stage.
                try:
                    high = await ask(topic, p)
                except Exception as exc:  # the broker away: nothing is asked of it
                    self._ask_after = now + CATCH_UP_AFTER_MS  # for CATCH_UP_AFTER_MS
                    log.debug("%s[%d]: the log end of %s[%d]: %r", self.name, p, topic, p, exc)
                    continue
            else:
                assert known is not None
                high = known[0]
            async with self.lock:
                owned = self.owned.get(p)
                if owned is None:
                    continue
                try:
                    await self._read_back(owned, topic, p, high)
                except Exception:  # a read: tried again after CATCH_UP_AFTER_MS; a batch
                    # that failed stopped the partition, and said so (``_stop``)
                    if p not in self.failed:
                        log.exception("%s[%d]: reading back %s[%d] failed", self.name, p, topic, p)

    async def _read_back(self, owned: Owned[S], topic: str, p: int, high: int) -> None:
        start = _next_offset(owned, topic)
        if start < high:
            log.warning(
                "%s[%d]: offsets %d..%d of %s[%d] were never handed over; reading them back",
                self.name,
                p,
                start,
                high - 1,
                topic,
                p,
            )
            chunks = read_chunks(self.bootstrap, topic, p, start, high, self.read_back_bytes)
            async with aclosing(chunks) as reading:
                async for chunk in reading:
                    if self.owned.get(p) is not owned:
                        return  # revoked meanwhile: the new owner reads its own inputs
                    self.outbox.metrics.refetched.inc(len(chunk))
                    with self._stop_on_failure([(p, owned.state)]):
                        await self._emit_all([await self._process_batch(owned, list(chunk))])
        # Read to the end (offsets without a record included: gaps.py) or held already.
        owned.consumed[topic] = max(owned.consumed.get(topic, 0), start, high)

    # -- writing ---------------------------------------------------------------

    async def _emit(self, p: int, state: S, out: list[Output], letters: list[DeadLetter]) -> None:
        await self._emit_all([Pending(p, state, out, letters)])

    async def _emit_all(self, pending: Sequence[Pending[S]]) -> None:
        """Steps 1 to 3 of the module docstring for several partitions at once: every
        partition's outputs sent and acknowledged, then each one's keys and position.
        Should any of it raise, the partitions are stopped (``_stop_on_failure``)."""
        out = [o for batch in pending for o in batch.out]
        letters = [letter for batch in pending for letter in batch.letters]
        with self._stop_on_failure([(batch.p, batch.state) for batch in pending]):
            if out or letters:
                await self._send_and_wait(
                    self.outbox.records(out, letters, self.transport.partition_count)
                )
            for batch in pending:
                await self._write_state(batch.p, batch.state)
                if batch.owned is not None:  # processed input: its offsets now count as read
                    for topic, offset in batch.consumed.items():
                        batch.owned.consumed[topic] = max(
                            batch.owned.consumed.get(topic, 0), offset
                        )
        self.turned_at = self.monotonic()
        if self.attempts:  # written: a later failure starts its back-off afresh
            for batch in pending:
                self.attempts.pop(batch.p, None)
        self.outbox.sent(out)

    @contextmanager
    def _stop_on_failure(self, partitions: Sequence[tuple[int, S]]) -> Iterator[None]:
        """Stop each (partition, state) still owned should the block raise (see the
        module docstring); the exception goes on. Not on cancellation: that is the
        worker stopping, and nothing is written after it."""
        try:
            yield
        except Exception as exc:
            self._stop(partitions, exc)
            raise

    def _stop(self, partitions: Sequence[tuple[int, S]], exc: Exception) -> None:
        why = f"a batch failed: {exc!r}"[:1000]
        stopped = []
        for p, state in partitions:
            owned = self.owned.get(p)
            if owned is None or owned.state is not state:
                continue  # revoked meanwhile, or stopped already (a nested batch)
            del self.owned[p]
            self._retry_later(p, why)
            self.transport.pause({(t, p) for t in self.inputs})
            stopped.append(p)
        if stopped:  # one line, with the traceback
            self.outbox.metrics.child(self.outbox.metrics.batch_failures, self.name).inc()
            log.error(
                "%s%s stopped: %s. Their state in memory may hold what was never sent or"
                " written: it is dropped, and they are retried from their changelogs in"
                " %.0f s",
                self.name,
                stopped,
                why,
                max(self.retry_at[p] for p in stopped) - self.monotonic(),
                exc_info=exc,
            )

    def _retry_later(self, p: int, why: str) -> None:
        """Stop ``p`` (already out of ``owned``) until its next retry, with why."""
        attempts = self.attempts.get(p, 0) + 1
        self.attempts[p] = attempts
        wait = min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** min(attempts - 1, 16))
        self.retry_at[p] = self.monotonic() + wait
        self.failed[p] = f"{why}; retried in {wait:.0f} s (failure {attempts} in a row)"

    def start_retries(self) -> asyncio.Future[None] | None:
        """Start ``retry_failed`` in the background when a retry is due and none runs (the
        timer goes on meanwhile); the task, or None."""
        running = self._retrying
        if running is not None and not running.done():
            return None
        now = self.monotonic()
        if not any(at <= now for at in self.retry_at.values()):
            return None
        self._retrying = asyncio.ensure_future(self.retry_failed())
        return self._retrying

    async def retry_failed(self) -> None:
        """Recover the failed partitions whose back-off has passed (module docstring):
        each from its changelog, checked against its input as at an assignment, then its
        input fetched again from the group's committed offsets. A recovery that raises
        waits for the next retry."""
        now = self.monotonic()
        due = sorted(
            p
            for p, at in self.retry_at.items()
            if at <= now and p not in self.loading and p in self.assignment
        )
        if not due:
            return
        for p in due:
            del self.retry_at[p]
        task = asyncio.ensure_future(self._load(due))
        for p in due:
            self.loading[p] = task
        try:
            await asyncio.shield(task)
            inputs = [TopicPartition(t, p) for p in due if p in self.owned for t in self.inputs]
            offsets = {}
            if inputs and self.group is not None:
                offsets = await committed_offsets(self.bootstrap, self.group, inputs)
            if inputs and self.transport.rewind is not None:
                # Nothing committed: from the log's start, as a new group reads.
                await self.transport.rewind(
                    {(tp.topic, tp.partition): offsets.get(tp, 0) for tp in inputs}
                )
        except Exception as exc:
            for p in due:
                if self.loading.get(p) is task:
                    del self.loading[p]
                self.owned.pop(p, None)
                if p in self.diverged:  # reported, and stopped for good
                    self.failed.pop(p, None)
                elif p in self.failed and p in self.assignment:
                    self._retry_later(p, f"its recovery failed: {exc!r}"[:1000])
            log.warning(
                "%s%s: recovery after a failed batch failed (%r); retried later",
                self.name,
                due,
                exc,
            )
            return
        resumed = [p for p in due if p in self.owned]
        for p in due:
            self.failed.pop(p, None)  # recovered, diverged (reported so), or given away
        if resumed:
            log.info(
                "%s%s recovered from the changelog after a failed batch; their input is"
                " read again from the committed offsets",
                self.name,
                resumed,
            )

    async def flush(self, p: int, state: S, records: Sequence[OutRecord]) -> int:
        """Write in the order of the module docstring (steps 1 to 3): send ``records`` and
        wait for them, then the changed keys, then the input position; return the count."""
        count = await self._send_and_wait(records)
        await self._write_state(p, state)
        return count

    async def _send_and_wait(self, records: Sequence[OutRecord]) -> int:
        send = self.transport.send
        pending = [await send(topic, key, value, part) for topic, key, value, part in records]
        if pending:
            await asyncio.gather(*pending)
        return len(pending)

    async def _write_state(self, p: int, state: S) -> None:
        """The partition's changed keys, then its input position (steps 2 and 3)."""
        send = self.transport.send
        owned = self.owned.get(p)
        if owned is None or owned.state is not state:
            # Revoked (perhaps assigned again and recovered afresh) while this batch or
            # tick waited for its outputs: the partition's changelog is its new owner's.
            # Written now, these keys would land after that owner's recovery read and
            # come back at the next one over what it wrote; unwritten, the new owner
            # reads the input again from the committed offsets, or from its position
            # (gaps.py), and makes the same outputs with the same ids.
            return
        local = owned.local
        on_disk = local is not None and local.keys is not None
        writes: list[tuple[str, bytes | None]] = state.take_dirty() if state.dirty else []
        position = None
        if owned.last != owned.written:
            position = json.dumps(owned.last, sort_keys=True).encode()
            writes.append((POSITION_KEY, position))
        if writes:
            encoded = [(key.encode(), value) for key, value in writes]
            if on_disk:  # the store's checkpoint needs each record's own offset
                acks = [await send(self.changelog, k, v, p) for k, v in encoded]
            else:  # the position last: it is never ahead of the keys
                acks = await self.transport.send_all(self.changelog, p, encoded)
            if position is not None:
                owned.written = dict(owned.last)
            if local is not None and local.keys is not None:
                local.acks += acks
                local.keys.written(writes)
        if local is not None and local.due():
            await local.checkpoint_acked(dump_indexes(state))


def _note_last(owned: Owned[S], last: dict[str, InputRecord]) -> None:
    """Record the partition's input position: the last record applied of each topic."""
    for topic, r in last.items():
        owned.last[topic] = (r.offset, fingerprint(r.key, r.value, r.timestamp))


def _next_offset(owned: Owned[S], topic: str) -> int:
    """The offset of the next record of ``topic`` the partition's state needs: past the
    last one processed since it was assigned, or else past its recorded position."""
    return owned.consumed.get(topic, _after(owned.last.get(topic)))


def _after(position: Position | None) -> int:
    """Where a topic's next record is, by the partition's recorded input position: past
    the last record consumed, or the log's start (0: afflux topics are never compacted)
    when the state holds none of the topic. A partition's first record of a topic is
    checked against it as any later one is against the one before it: the consumer may
    hand out, after a rebalance, records past ones it then drops (gaps.py)."""
    return 0 if position is None else position[0] + 1
