"""What a stage sends: its outputs packed per partition, its dead letters, and the
metrics that count them once the broker has acknowledged them."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from afflux.attribution.join import CONFLICTING_DUPLICATE, Failed, Output
from afflux.attribution.metrics import AttributionMetrics
from afflux.attribution.own_records import OwnRecords
from afflux.shared.core.currency import CURRENCY_MISMATCH
from afflux.shared.core.event_time import EVENT_TIME_IN_FUTURE, EVENT_TIME_TOO_OLD
from afflux.shared.core.ids import derived_id
from afflux.shared.core.merchant import MERCHANT_MISMATCH
from afflux.shared.events import (
    ConversionAttributed,
    ConversionReversed,
    DeadLetter,
    Envelope,
    OrderUnattributed,
    RefundUnmatched,
)
from afflux.shared.io.kafka import partition_for
from afflux.shared.placement import KEY_MISMATCH
from afflux.shared.schemas import WRONG_TOPIC
from afflux.shared.topics import DLQ
from afflux.shared.wire import chunk_by_partition, encode

log = logging.getLogger(__name__)

CONSUMER = "afflux-attribution"
OutRecord = tuple[str, bytes, bytes, int | None]  # topic, key, value, partition
PartitionCount = Callable[[str], int | None]


class Outbox:
    """Builds the records a stage sends and counts what was sent."""

    def __init__(
        self,
        metrics: AttributionMetrics,
        clock: Callable[[], int],
        read_back: frozenset[str] = frozenset(),
    ) -> None:
        self.metrics = metrics
        self.clock = clock
        # What it writes to these topics the worker reads again (own_records.py).
        self.read_back = read_back
        self.own = OwnRecords()

    def records(
        self, out: list[Output], letters: list[DeadLetter], partition_count: PartitionCount
    ) -> list[OutRecord]:
        """The outputs packed per partition, then the dead letters (counted here)."""
        for letter in letters:
            self.metrics.child(self.metrics.dlq, letter.source_topic, _reason(letter.reason)).inc()
        records = _packed(out, partition_count, self.read_back, self.own)
        records += [(DLQ.name, (lt.key or "").encode(), encode(lt), None) for lt in letters]
        return records

    def sent(self, out: list[Output]) -> None:
        """Count outputs the broker acknowledged."""
        now = self.clock()
        for _, _, event in out:
            self._count(event, now)

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

    def letter(
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
        """The dead letter of one item of an input record (``raw`` None: the whole value)."""
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
            value=value,
        )

    def failed(
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
        return self.letter(topic, p, offset, index, key, raw, reason, None, type(exc).__name__)

    def undecided(self, topic: str, p: int, failed: list[Failed]) -> list[DeadLetter]:
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
                    value=json.dumps(f.facts, sort_keys=True),
                )
            )
        return letters


def _packed(
    out: list[Output],
    partition_count: PartitionCount,
    read_back: frozenset[str] = frozenset(),
    own: OwnRecords | None = None,
) -> list[OutRecord]:
    """Outputs packed per partition (in order), which cuts the per-record cost of
    everything downstream; one event per record while a topic's size is unknown. A
    record of a ``read_back`` topic is remembered in ``own`` with its events."""
    by_topic: dict[str, list[tuple[bytes, bytes, Envelope]]] = {}
    for topic, key, event in out:
        by_topic.setdefault(topic, []).append((key.encode(), encode(event), event))
    records: list[OutRecord] = []
    for topic, items in by_topic.items():
        count = partition_count(topic)
        kept = own if own is not None and topic in read_back else None
        if count is None:
            for raw_key, value, event in items:
                records.append((topic, raw_key, value, None))
                if kept is not None:
                    kept.remember(value, (event,))
            continue
        chunks = chunk_by_partition(
            (partition_for(raw_key, count), raw_key, value, event)
            for raw_key, value, event in items
        )
        for chunk in chunks:
            value = chunk.record_value()
            records.append((topic, chunk.key, value, chunk.partition))
            if kept is not None:
                kept.remember(value, chunk.members)
    return records


def _reason(reason: str) -> str:
    """A bounded label for a dead-letter reason."""
    for known in (
        "not JSON",
        "invalid event",
        "unknown campaign",
        "unknown order",
        EVENT_TIME_IN_FUTURE,
        EVENT_TIME_TOO_OLD,
        CURRENCY_MISMATCH,
        MERCHANT_MISMATCH,
        CONFLICTING_DUPLICATE,
        WRONG_TOPIC,
        KEY_MISMATCH,
        "unexpected event type",
        "amount_minor",
        "failed",
    ):
        if reason.startswith(known):
            return known.replace(" ", "_").lower()
    return "undecodable"
