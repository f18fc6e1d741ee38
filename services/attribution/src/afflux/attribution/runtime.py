"""The worker's behaviour per record and per timer tick; Faust only delivers records.

``Runtime`` owns both stages and the campaign view. Agents call
``join_record``/``refund_record`` with each record; the timer calls ``tick``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka.structs import ConsumerRecord

from afflux.attribution.decode import decode_items
from afflux.attribution.divergence import fingerprint
from afflux.attribution.gaps import read_range
from afflux.attribution.join import Failed, JoinPartition, Output, VisitorState
from afflux.attribution.metrics import SERVICE, AttributionMetrics
from afflux.attribution.refunds import RefundPartition
from afflux.attribution.stage import HighWater, OutRecord, Owned, Send, Stage
from afflux.shared.campaign_view import CampaignDirectory
from afflux.shared.clock_source import system_clock
from afflux.shared.core.attribution import largest_window_ms
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.event_time import (
    DEFAULT_CLOCK_SKEW_MS,
    EVENT_TIME_IN_FUTURE,
    event_time_in_future,
)
from afflux.shared.core.ids import derived_id, order_partition_key
from afflux.shared.core.terms import TermsVersion, terms_in_force
from afflux.shared.events import (
    ClickRecorded,
    ConversionAttributed,
    ConversionReversed,
    DeadLetter,
    Envelope,
    LeadConfirmed,
    OrderPlaced,
    OrderRefunded,
    OrderUnattributed,
    RefundUnmatched,
)
from afflux.shared.gc_policy import Refreezer
from afflux.shared.kafka import partition_for
from afflux.shared.topics import CLICKS, CONVERSIONS, DLQ, ORDERS, REFUNDS, UNMATCHED
from afflux.shared.wire import encode, pack_by_partition

log = logging.getLogger(__name__)

CONSUMER = "afflux-attribution"
PRUNE_EVERY_S = 10.0
# Clicks that arrived this recently (behind the partition's safe time) are never pruned:
# their order may still be on its way through the other input topic.
RECENT_ARRIVAL_MS = 60_000
LEAD_PREFIX = "\x00lead\x1f"
# Inputs produced outside the worker; conversions and unmatched orders are its own.
OUTSIDE_INPUTS = frozenset((CLICKS.name, ORDERS.name, REFUNDS.name))


class Runtime:
    def __init__(
        self,
        *,
        bootstrap: str,
        group: str,
        directory: CampaignDirectory,
        metrics: AttributionMetrics,
        refund_wait_ms: int,
        order_retention_ms: int,
        clock: Callable[[], int] = system_clock,
        redecide: bool = True,
        clock_skew_ms: int = DEFAULT_CLOCK_SKEW_MS,
    ) -> None:
        self.directory = directory
        self.metrics = metrics
        self.refund_wait_ms = refund_wait_ms
        self.order_retention_ms = order_retention_ms
        self.clock = clock
        self.clock_skew_ms = clock_skew_ms
        self.join: Stage[JoinPartition] = Stage(
            "join",
            (CLICKS.name, ORDERS.name),
            f"{group}-join-state",
            functools.partial(JoinPartition, redecide),
            bootstrap,
            group,
        )
        self.refunds: Stage[RefundPartition] = Stage(
            "refunds",
            (REFUNDS.name, CONVERSIONS.name, UNMATCHED.name),
            f"{group}-refund-state",
            RefundPartition,
            bootstrap,
            group,
        )
        self.send: Send | None = None
        self.highwater: HighWater = lambda t, p: None
        self.start_offset: Callable[[str, int], int] = lambda t, p: 0
        self.partition_count: Callable[[str], int | None] = lambda topic: None
        # Stops fetching input partitions (topic, partition) whose stage diverged.
        self.pause: Callable[[set[tuple[str, int]]], None] = lambda tps: None
        self.assigned_once = False
        self._last_prune = 0.0
        self.refreezer = Refreezer()

    @property
    def changelogs(self) -> tuple[str, str]:
        return (self.join.changelog, self.refunds.changelog)

    def ready(self) -> bool:
        return (
            self.send is not None
            and self.directory.ready.is_set()
            and self.assigned_once
            and self.join.ready()
            and self.refunds.ready()
        )

    def diverged(self) -> list[str]:
        """Why partitions were stopped (see Stage.diverged); empty while all is well."""
        return [
            f"{stage.name}[{p}]: {why}"
            for stage in (self.join, self.refunds)
            for p, why in sorted(stage.diverged.items())
        ]

    async def _held(self, stage: Stage[Any], topic: str, p: int) -> bool:
        """True for a record of a diverged partition: it is neither processed nor acked,
        so its offset is never committed; fetching the partition stops."""
        if p not in stage.diverged:
            return False
        self.pause({(t, p) for t in stage.inputs})
        return True

    def assigned(self, tps: set[tuple[str, int]]) -> None:
        self.assigned_once = True
        for stage in (self.join, self.refunds):
            stage.assigned({p for t, p in tps if t in stage.inputs})

    def terms(self, campaign_id: str, at_ms: int) -> TermsVersion | None:
        if campaign_id not in self.directory:
            return None
        return terms_in_force(self.directory.versions(campaign_id), at_ms)

    # -- stage 1 -------------------------------------------------------------

    async def join_record(
        self, topic: str, p: int, offset: int, key: bytes | None, value: bytes | None, ts: int
    ) -> bool:
        """Process one record; False: hold it unacknowledged (its partition diverged)."""
        owned = await self.join.partition(p)
        if owned is None:
            return not await self._held(self.join, topic, p)
        async with self.join.lock:
            for missed in await self._skipped(self.join, owned, topic, p, offset):
                await self._join_locked(
                    owned, topic, p, missed.offset, missed.key, missed.value, missed.timestamp
                )
            await self._join_locked(owned, topic, p, offset, key, value, ts)
        return True

    async def _join_locked(
        self,
        owned: Owned[JoinPartition],
        topic: str,
        p: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        ts: int,
    ) -> None:
        state = owned.state
        out: list[Output] = []
        letters: list[DeadLetter] = []
        late: list[str] = []
        items = decode_items(value)
        for index, event, reason, raw, error_class in items:
            if event is None:
                letters.append(
                    self._letter(topic, p, offset, index, key, raw, reason, value, error_class)
                )
                continue
            try:  # whatever one item raises, it alone is dead-lettered
                refused = self._refused_order(event) or self._in_future(topic, event, ts)
                if refused:
                    letters.append(
                        self._letter(topic, p, offset, index, key, raw, refused, None, "Rejected")
                    )
                elif isinstance(event, ClickRecorded):
                    clicked = state.click(event.visitor_id, event, ts, self.terms)
                    late += clicked.outcomes
                    out += clicked.outputs
                elif isinstance(event, OrderPlaced):
                    okey = order_partition_key(event.order_id, event.visitor_id, event.click_id)
                    if state.order(okey, event, ts):
                        self._adopt_confirmation(state, okey, event)
                elif isinstance(event, LeadConfirmed):
                    out += self._lead(state, event)
                else:
                    letters.append(
                        self._letter(
                            topic,
                            p,
                            offset,
                            index,
                            key,
                            raw,
                            "unexpected event type",
                            None,
                            "Rejected",
                        )
                    )
            except Exception as exc:
                letters.append(self._failed(topic, p, offset, index, key, raw, exc))
        letters += self._undecided(ORDERS.name, p, state.take_failed())
        self.metrics.child(self.metrics.events, topic).inc(len(items))
        for outcome in late:
            self.metrics.child(self.metrics.late_clicks, outcome).inc()
        owned.last[topic] = (offset, fingerprint(key, value, ts))
        await self._emit(p, self.join, state, out, letters)
        owned.consumed[topic] = max(owned.consumed.get(topic, 0), offset + 1)

    def _refused_order(self, event: Any) -> str:
        """Why an order (or a conversion) is refused before it is used: an order of an
        unknown campaign, or an amount above the campaign's ``max_order_minor`` (the terms
        in force at the order's time)."""
        if not isinstance(event, OrderPlaced | ConversionAttributed):
            return ""
        if event.campaign_id not in self.directory:
            return "unknown campaign" if isinstance(event, OrderPlaced) else ""
        version = self.terms(event.campaign_id, event.occurred_at)
        if version is not None and event.amount_minor > version.terms.max_order_minor:
            return (
                f"amount_minor {event.amount_minor} above the campaign's max_order_minor "
                f"{version.terms.max_order_minor}"
            )
        return ""

    def _in_future(self, topic: str, event: Any, ts: int) -> str:
        """Why an outside input's event time is refused: more than the clock skew after its
        record's timestamp. Such a time would move the event-time watermark, and pruning
        behind it would drop clicks that other orders still need."""
        if topic not in OUTSIDE_INPUTS or not event_time_in_future(
            event.occurred_at, ts, self.clock_skew_ms
        ):
            return ""
        return (
            f"{EVENT_TIME_IN_FUTURE}: occurred_at {event.occurred_at} is "
            f"{event.occurred_at - ts} ms after the record's timestamp {ts}"
            f" (allowed: {self.clock_skew_ms} ms)"
        )

    def _lead(self, state: JoinPartition, confirm: LeadConfirmed) -> list[Output]:
        okey = (confirm.campaign_id, confirm.order_id)
        key = state.index.get(okey)
        if key is None:
            key = f"{LEAD_PREFIX}{confirm.campaign_id}\x1f{confirm.order_id}"
        return state.lead(key, confirm)

    def _adopt_confirmation(self, state: JoinPartition, key: str, order: OrderPlaced) -> None:
        parked_key = f"{LEAD_PREFIX}{order.campaign_id}\x1f{order.order_id}"
        parked = state.keys.get(parked_key)
        if parked is not None:
            target: VisitorState = state.keys[key]
            target.confirms.update(parked.confirms)
            parked.confirms.clear()
            state.dirty.add(parked_key)

    # -- stage 2 -------------------------------------------------------------

    async def refund_record(
        self, topic: str, p: int, offset: int, key: bytes | None, value: bytes | None, ts: int
    ) -> bool:
        """Process one record; False: hold it unacknowledged (its partition diverged)."""
        owned = await self.refunds.partition(p)
        if owned is None:
            return not await self._held(self.refunds, topic, p)
        async with self.refunds.lock:
            for missed in await self._skipped(self.refunds, owned, topic, p, offset):
                await self._refund_locked(
                    owned, topic, p, missed.offset, missed.key, missed.value, missed.timestamp
                )
            await self._refund_locked(owned, topic, p, offset, key, value, ts)
        return True

    async def _refund_locked(
        self,
        owned: Owned[RefundPartition],
        topic: str,
        p: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        ts: int,
    ) -> None:
        state = owned.state
        out: list[Output] = []
        letters: list[DeadLetter] = []
        items = decode_items(value)
        for index, event, reason, raw, error_class in items:
            if event is None:
                letters.append(
                    self._letter(topic, p, offset, index, key, raw, reason, value, error_class)
                )
                continue
            try:  # whatever one item raises, it alone is dead-lettered
                refused = self._refused_order(event) or self._in_future(topic, event, ts)
                if refused:
                    letters.append(
                        self._letter(topic, p, offset, index, key, raw, refused, None, "Rejected")
                    )
                elif isinstance(event, OrderRefunded):
                    out += state.refund(event.order_id, event, ts)
                elif isinstance(event, ConversionAttributed):
                    out += state.conversion(event.order_id, event)
                elif isinstance(event, OrderUnattributed):
                    out += state.unattributed(event.order_id, event)
                elif not isinstance(event, LeadConfirmed | RefundUnmatched):
                    letters.append(
                        self._letter(
                            topic,
                            p,
                            offset,
                            index,
                            key,
                            raw,
                            "unexpected event type",
                            None,
                            "Rejected",
                        )
                    )
            except Exception as exc:
                letters.append(self._failed(topic, p, offset, index, key, raw, exc))
        self.metrics.child(self.metrics.events, topic).inc(len(items))
        owned.last[topic] = (offset, fingerprint(key, value, ts))
        await self._emit(p, self.refunds, state, out, letters)
        owned.consumed[topic] = max(owned.consumed.get(topic, 0), offset + 1)

    async def _skipped(
        self, stage: Stage[Any], owned: Owned[Any], topic: str, p: int, offset: int
    ) -> list[ConsumerRecord[bytes, bytes]]:
        """Records before ``offset`` that the consumer skipped (see gaps.py), read back."""
        expected = owned.consumed.get(topic)
        if expected is None or offset <= expected:
            return []
        log.warning(
            "%s[%d]: offsets %d..%d were skipped by the consumer; reading them back",
            topic,
            p,
            expected,
            offset - 1,
        )
        missed = await read_range(stage.bootstrap, topic, p, expected, offset)
        self.metrics.refetched.inc(len(missed))
        return missed

    # -- timers --------------------------------------------------------------

    async def tick(self) -> None:
        """Decide orders whose grace has passed and refunds that waited long enough."""
        if self.send is None:
            return
        for stage in (self.join, self.refunds):
            stage.note(self.highwater, self.start_offset)
        wait = self.refund_wait_ms + self._max_grace_ms()
        for p, owned in list(self.join.owned.items()):
            async with self.join.lock:
                if self.join.owned.get(p) is not owned:
                    continue
                try:
                    out = owned.state.due(owned.safe_ms, self.terms)
                    for outcome in owned.state.take_late():
                        self.metrics.child(self.metrics.late_clicks, outcome).inc()
                except Exception:  # one partition's failure never stops the timer
                    log.exception("join[%d]: deciding due orders failed", p)
                    continue
                letters = self._undecided(ORDERS.name, p, owned.state.take_failed())
                if out or letters or owned.state.dirty:
                    await self._emit(p, self.join, owned.state, out, letters)
        for p, held in list(self.refunds.owned.items()):
            async with self.refunds.lock:
                if self.refunds.owned.get(p) is not held:
                    continue
                try:
                    out = held.state.due(held.safe_ms, wait)
                except Exception:  # one partition's failure never stops the timer
                    log.exception("refunds[%d]: deciding due refunds failed", p)
                    continue
                letters = self._undecided(REFUNDS.name, p, held.state.take_failed())
                if out or letters or held.state.dirty:
                    await self._emit(p, self.refunds, held.state, out, letters)
        if time.monotonic() - self._last_prune > PRUNE_EVERY_S:
            self._last_prune = time.monotonic()
            await self.prune()
        self.refreezer.maybe_refreeze()
        self._gauges()

    def _max_grace_ms(self) -> int:
        return max(
            (self.directory.latest(c).terms.grace_ms for c in self.directory.campaign_ids()),
            default=0,
        )

    async def prune(self) -> None:
        """Drop clicks older than the largest window plus grace behind the partition's
        event-time watermark (unless recent or wanted by a waiting order), and decided
        orders and refund records past the retention."""
        versions = [v for c in self.directory.campaign_ids() for v in self.directory.versions(c)]
        keep_ms = largest_window_ms(versions) + self._max_grace_ms() + MS_PER_DAY
        for p, owned in list(self.join.owned.items()):
            async with self.join.lock:
                state = owned.state
                if state.watermark:
                    state.prune(
                        state.watermark - keep_ms,
                        state.watermark - self.order_retention_ms,
                        owned.safe_ms - self._max_grace_ms() - RECENT_ARRIVAL_MS,
                    )
                    if state.dirty:
                        await self._emit(p, self.join, state, [], [])
        for p, held in list(self.refunds.owned.items()):
            async with self.refunds.lock:
                if self.refunds.owned.get(p) is held and held.state.watermark:
                    held.state.prune(held.state.watermark - self.order_retention_ms)
                    if held.state.dirty:
                        await self._emit(p, self.refunds, held.state, [], [])

    def _gauges(self) -> None:
        m = self.metrics
        m.ready.set(1 if self.ready() else 0)
        for stage in (self.join, self.refunds):
            m.child(m.diverged, stage.name).set(len(stage.diverged))
        m.child(m.state_keys, "join").set(sum(len(o.state.keys) for o in self.join.owned.values()))
        m.child(m.state_keys, "refunds").set(
            sum(len(o.state.keys) for o in self.refunds.owned.values())
        )
        for stage in (self.join, self.refunds):
            for topic in stage.inputs:
                lag = 0
                for p, owned in stage.owned.items():
                    known = self.highwater(topic, p)
                    if known is not None:
                        done = owned.consumed.get(topic, self.start_offset(topic, p))
                        lag += max(0, known[0] - done)
                m.child(m.consumer_lag, SERVICE, topic).set(lag)

    # -- output --------------------------------------------------------------

    async def _emit(
        self,
        p: int,
        stage: Stage[Any],
        state: Any,
        out: list[Output],
        letters: list[DeadLetter],
    ) -> None:
        assert self.send is not None
        for letter in letters:
            self.metrics.child(self.metrics.dlq, letter.source_topic, _reason(letter.reason)).inc()
        records = self._packed(out)
        records += [(DLQ.name, (lt.key or "").encode(), encode(lt), None) for lt in letters]
        await stage.flush(p, state, records, self.send)
        now = self.clock()
        for _, _, event in out:
            self._count(event, now)

    def _packed(self, out: list[Output]) -> list[OutRecord]:
        """Outputs packed per partition (in order), which cuts the per-record cost of
        everything downstream; one event per record while a topic's size is unknown."""
        by_topic: dict[str, list[tuple[bytes, bytes]]] = {}
        for topic, key, event in out:
            by_topic.setdefault(topic, []).append((key.encode(), encode(event)))
        records: list[OutRecord] = []
        for topic, items in by_topic.items():
            count = self.partition_count(topic)
            if count is None:
                records += [(topic, key, value, None) for key, value in items]
                continue
            packed = pack_by_partition(items, functools.partial(_partition_of, count))
            records += [(topic, key, value, part) for part, key, value in packed]
        return records

    def _count(self, event: Envelope, now: int) -> None:
        m = self.metrics
        if isinstance(event, ConversionAttributed):
            m.child(m.conversions, event.campaign_id, event.reason).inc()
            m.lag.observe(max(0, now - event.occurred_at) / 1000)
        elif isinstance(event, OrderUnattributed):
            m.child(m.unattributed, event.campaign_id, event.reason).inc()
            m.lag.observe(max(0, now - event.occurred_at) / 1000)
        elif isinstance(event, ConversionReversed):
            m.child(m.reversals, event.campaign_id).inc()
        elif isinstance(event, RefundUnmatched):
            m.child(m.refunds_unmatched, event.campaign_id, event.reason).inc()

    def _letter(
        self,
        topic: str,
        p: int,
        offset: int,
        index: int,
        key: bytes | None,
        raw: Any,
        reason: str,
        whole: bytes | None = None,
        error_class: str = "",
    ) -> DeadLetter:
        value = (whole or b"").decode("utf-8", "replace") if raw is None else json.dumps(raw)
        return DeadLetter(
            event_id=derived_id("dlq", CONSUMER, topic, str(p), str(offset), str(index)),
            occurred_at=self.clock(),
            source_topic=topic,
            source_partition=p,
            source_offset=offset,
            consumer=CONSUMER,
            reason=reason[:2000],
            error_class=error_class or None,
            key=key.decode("utf-8", "replace") if key is not None else None,
            value=value[:100_000],
        )

    def _failed(
        self,
        topic: str,
        p: int,
        offset: int,
        index: int,
        key: bytes | None,
        raw: Any,
        exc: Exception,
    ) -> DeadLetter:
        """The dead letter of an item whose processing raised."""
        log.exception("%s[%d]@%d item %d refused", topic, p, offset, index)
        reason = f"failed: {type(exc).__name__}: {exc}"
        return self._letter(topic, p, offset, index, key, raw, reason, None, type(exc).__name__)

    def _undecided(self, topic: str, p: int, failed: list[Failed]) -> list[DeadLetter]:
        """Dead letters of orders (refunds) whose deciding raised. They are decided in a
        timer tick, not while a record is read: the source offset is -1 and the value
        holds the order's (refund's) fields."""
        letters = []
        for f in failed:
            log.error("%s[%d]: %s (%s)", topic, p, f.reason, f.facts, exc_info=f.error)
            ident = [str(f.facts.get(k, "")) for k in ("campaign_id", "order_id", "refund_id")]
            letters.append(
                DeadLetter(
                    event_id=derived_id("dlq", CONSUMER, "decide", f.step, *ident),
                    occurred_at=self.clock(),
                    source_topic=topic,
                    source_partition=p,
                    source_offset=-1,
                    consumer=CONSUMER,
                    reason=f.reason[:2000],
                    error_class=type(f.error).__name__,
                    key=f.key,
                    value=json.dumps(f.facts, sort_keys=True)[:100_000],
                )
            )
        return letters


def _partition_of(count: int, key: bytes) -> int:
    return partition_for(key, count)


def _reason(reason: str) -> str:
    """A bounded label for a dead-letter reason."""
    for known in (
        "not JSON",
        "invalid event",
        "unknown campaign",
        EVENT_TIME_IN_FUTURE,
        "unexpected event type",
        "amount_minor",
        "failed",
    ):
        if reason.startswith(known):
            return known.replace(" ", "_").lower()
    return "undecodable"


async def run_forever(coro_factory: Callable[[], Any]) -> None:
    while True:
        try:
            await coro_factory()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("campaign follower failed; restarting")
            await asyncio.sleep(1)
