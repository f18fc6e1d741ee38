"""The input topics' events as a what-if replay's log (``core.whatif.log.CampaignLog``).

Fast: a replay reads every click, order and refund ever recorded, so an event is taken
from its parsed JSON without building the pydantic model, checking only the fields the
replay reads, each for its type. Every event on these topics was validated by the
service that produced it; an item that is not of the current schema version goes
through ``wire.event_from_dict`` (upcasters, full validation), and one that still fails
is counted in ``skipped``, as the consumers dead-letter it.

What the attribution worker refuses before using an event (``Campaigns.refused``; the
batch oracle's ``admitted`` and ``attribute`` leave out the same) is left out the same
way, counted in ``skipped`` and, by reason, in ``refused``, so a what-if never includes an
event the worker never used: one on a topic it does not travel on (``wrong_topic``), an
order or renewal in another currency than the campaign's terms in force at its time and a
refund in another currency than its order's (``currency_mismatch``), an order whose items
do not make up its amount (``items``), one whose event time is more than the clock skew
after its record's timestamp (``event_time_in_future``), and an order, refund or renewal
dated more than the campaign's backfill limit plus the skew before it, its record not
marked a backfill (``event_time_too_old``). The rules are the shared ones
(``core.event_time``, ``core.currency``, ``schemas.wrong_topic``,
``products.items_problem``); each applies once what it needs is given: the record's
topic, timestamp and headers (``LogReader.record``) and the campaign's recorded terms
history (``LogReader.versions``).
An amount above ``max_order_minor`` is the replay's to leave unpaid, under each side's
terms (``core.whatif.replay``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import orjson

from afflux.shared.content_facts import content_fact, key_of, latest_time
from afflux.shared.core.attribution import ClickTouch, LiveTouch
from afflux.shared.core.content import handle_counts, held_for_release, takes_over
from afflux.shared.core.currency import CURRENCY_MISMATCH, other_currency
from afflux.shared.core.engagement import taken_over
from afflux.shared.core.event_time import (
    DEFAULT_CLOCK_SKEW_MS,
    EVENT_TIME_IN_FUTURE,
    EVENT_TIME_TOO_OLD,
    PLACED_KINDS,
    BackfillLimits,
    Headers,
    allowed_age_ms,
    event_time_in_future,
    event_time_too_old,
    is_backfill,
)
from afflux.shared.core.ids import order_partition_key
from afflux.shared.core.merchant import MERCHANT_MISMATCH, merchant_refusal
from afflux.shared.core.products import items_problem, order_bounds_problem
from afflux.shared.core.terms import TermsTimeline, TermsVersion, normalize_handle
from afflux.shared.core.whatif.log import (
    CampaignLog,
    LoggedConfirmation,
    LoggedOrder,
    LoggedRefund,
    LoggedRenewal,
)
from afflux.shared.events import (
    ClickRecorded,
    ContentPublished,
    ContentReleased,
    ContentStats,
    LeadConfirmed,
    OrderKind,
    OrderPlaced,
    OrderRefunded,
    SubscriptionRenewed,
)
from afflux.shared.placement import KEY_MISMATCH, checks_every_item, misplaced_by
from afflux.shared.schemas import WRONG_TOPIC, wrong_topic
from afflux.shared.wire import (
    MAX_PACKED_EVENTS,
    UndecodableRecord,
    check_bounds,
    event_from_dict,
    parse_value,
)

_ORDER_KINDS = frozenset(get_args(OrderKind))
# Events at or after 9999-12-01 have no period whose end a datetime holds: the ledger
# dead-letters them (BadPeriod), so the replay leaves them out rather than fail on them.
_LAST_MS = (datetime(9999, 12, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
    milliseconds=1
)
_TYPES = ("ClickRecorded", "OrderPlaced", "OrderRefunded", "LeadConfirmed", "SubscriptionRenewed")
ITEMS = "items"


class _Refused(Exception):
    """An event the attribution worker refuses before using it: left out, counted."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class LogReader:
    """Feeds one campaign's log from record values; counts what it read.

    ``versions``: the campaign's recorded terms history (not a draft), which the currency
    and backfill-limit refusals need; without it, they are not applied. ``clock_skew_ms``
    and ``backfill_limit_days``: the attribution worker's settings
    (``AFFLUX_ATTRIBUTION_CLOCK_SKEW_S``, ``AFFLUX_ORDERS_BACKFILL_LIMIT_DAYS``)."""

    log: CampaignLog
    events: int = 0  # every event read, of any campaign
    skipped: int = 0  # items that are not a valid event, or that the worker refuses
    versions: Sequence[TermsVersion] = ()
    clock_skew_ms: int = DEFAULT_CLOCK_SKEW_MS
    backfill_limit_days: int | None = None
    refused: dict[str, int] = field(default_factory=dict)  # reason -> events left out
    _needle: bytes = b""
    _timeline: TermsTimeline | None = None
    _limits: BackfillLimits | None = None
    # topic -> its partition count, for the worker's key check (``placement``); a topic
    # missing: not checked.
    partitions: dict[str, int] = field(default_factory=dict)
    # The record being read: its topic, timestamp and whether it is a backfill, its
    # partition and whether its items are checked for their partition.
    _topic: str | None = None
    _ts: int | None = None
    _backfill: bool = False
    _partition: int | None = None
    _check_placement: bool = False
    # <platform>:<content_id> -> the campaign of its first publication, any campaign's:
    # a content never moves across campaigns (``takes_over``), so another campaign's
    # publication of it counts nowhere, as the worker and the ledger refuse it.
    _content_campaigns: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._needle = b'"' + self.log.campaign_id.encode() + b'"'
        if self.versions:
            self._timeline = TermsTimeline.of(self.versions)
            self._limits = BackfillLimits.of(self.versions, self.backfill_limit_days)

    def record(
        self,
        value: bytes | None,
        topic: str | None = None,
        timestamp: int | None = None,
        headers: Headers = None,
        partition: int | None = None,
    ) -> None:
        """Every event of one record value; only those that may be the campaign's are
        parsed (see ``_parts``). ``topic``, ``timestamp`` (ms), ``headers`` and
        ``partition``: the record's, for the worker's refusals (None: that refusal is
        not applied)."""
        self._at(topic, timestamp, headers)
        self._partition = partition
        self._check_placement = (
            topic is not None and partition is not None and topic in self.partitions
        )
        if value is None:
            self.skipped += 1
            return
        try:
            check_bounds(value)
        except UndecodableRecord:
            self.skipped += 1
            return
        parts = _parts(value)
        if parts is None or len(parts) > MAX_PACKED_EVENTS:
            # Past the bound the worker refuses the record whole (``parse_value``).
            self._whole(value)
            return
        needle, last = self._needle, len(parts) - 1
        if self._check_placement and topic is not None and not checks_every_item(topic):
            # Clicks: the worker checks a record's first item, and its others only when
            # that one is misplaced (``placement``).
            self._check_placement = self._first_misplaced(_rebuilt(parts[0], 0, last))
        try:
            parsed = [
                orjson.loads(_rebuilt(part, index, last))
                for index, part in enumerate(parts)
                if needle in part
            ]
        except orjson.JSONDecodeError:  # not the shape it looked like: parse it whole
            self._whole(value)
            return
        self.events += len(parts)
        for item in parsed:
            self._take(item)

    def joined(self, key: str) -> str:
        """The key an order or click is joined under: the worker joins a click with the
        orders of its own partition only, so where partitions are known the key is
        qualified by the record's (a click the worker took on another partition than
        its visitor's, past a record's first item, never meets its visitor's orders)."""
        topic, partition = self._topic, self._partition
        if partition is None or topic is None or topic not in self.partitions:
            return key
        return f"{partition}\x1f{key}"

    def _first_misplaced(self, part: bytes) -> bool:
        try:
            first = orjson.loads(part)
        except orjson.JSONDecodeError:
            return False
        return isinstance(first, dict) and bool(self._misplaced(first))

    def _misplaced(self, item: dict[str, Any]) -> str:
        topic, partition = self._topic, self._partition
        if not self._check_placement or topic is None or partition is None:
            return ""
        kind = item.get("type")
        if not isinstance(kind, str):
            return ""
        return misplaced_by(topic, kind, item.get, partition, self.partitions.get(topic))

    def _at(self, topic: str | None, timestamp: int | None, headers: Headers) -> None:
        self._partition, self._check_placement = None, False
        self._topic, self._ts = topic, timestamp
        self._backfill = is_backfill(headers)

    def content_record(self, value: bytes | None, timestamp: int | None = None) -> None:
        """A record of the ``content`` topic: the campaign's publications route their
        content here, and that content's snapshots and releases follow (they name no
        campaign). Few next to clicks: each item is validated in full. ``timestamp``: the
        record's; a publication, snapshot or release stating a time more than the clock skew
        after it is left out, as the worker's content view and the ledger refuse it."""
        try:
            parsed = parse_value(value)
        except UndecodableRecord:
            self.skipped += 1
            return
        for item in parsed if isinstance(parsed, list) else [parsed]:
            self.events += 1
            try:
                event = event_from_dict(item) if isinstance(item, dict) else None
            except UndecodableRecord:
                event = None
            if event is not None and event.occurred_at >= _LAST_MS:
                event = None  # no period holds it (see ``_LAST_MS``): skipped
            if (
                isinstance(event, ContentPublished | ContentStats | ContentReleased)
                and timestamp is not None
                and event_time_in_future(latest_time(event), timestamp, self.clock_skew_ms)
            ):
                if self._ours(event):
                    self._tally(EVENT_TIME_IN_FUTURE)
                continue
            if isinstance(event, ContentPublished):
                first = self._content_campaigns.setdefault(key_of(event), event.campaign_id)
                if first == event.campaign_id and _accepted(self.log, event):
                    self.log.add_content(
                        key_of(event), content_fact(event), event.affiliate_id, event.published_at
                    )
                    _claims(self.log, event)
            elif isinstance(event, ContentStats | ContentReleased):
                self.log.add_content(key_of(event), content_fact(event))
                # One before any publication of the content releases nothing (the ledger
                # refuses it: unknown_content), nor does another campaign's content.
                if isinstance(event, ContentReleased) and key_of(event) in self.log.content_routes:
                    _released(self.log, key_of(event))
            elif event is None:
                self.skipped += 1

    def _ours(self, event: ContentPublished | ContentStats | ContentReleased) -> bool:
        """A publication of the campaign, or a snapshot or release of a content it routes
        here."""
        if isinstance(event, ContentPublished):
            return event.campaign_id == self.log.campaign_id
        return key_of(event) in self.log.content_routes

    def _whole(self, value: bytes) -> None:
        try:
            parsed = parse_value(value)
        except UndecodableRecord:
            self.skipped += 1
            return
        items = parsed if isinstance(parsed, list) else [parsed]
        topic = self._topic
        if self._check_placement and topic is not None and not checks_every_item(topic):
            first = items[0] if items else None
            self._check_placement = isinstance(first, dict) and bool(self._misplaced(first))
        for item in items:
            self.events += 1
            self._take(item)

    def item(
        self,
        item: Any,
        topic: str | None = None,
        timestamp: int | None = None,
        headers: Headers = None,
    ) -> None:
        """One parsed event, of a record of ``topic`` stamped ``timestamp`` (see ``record``)."""
        self._at(topic, timestamp, headers)
        self.events += 1
        self._take(item)

    def _take(self, item: Any) -> None:
        if not isinstance(item, dict):
            self.skipped += 1
            return
        if item.get("campaign_id") != self.log.campaign_id:
            return
        if self._misplaced(item):  # the worker's first refusal
            self._tally(KEY_MISMATCH)
            return
        at = item.get("occurred_at")
        if type(at) is int and at >= _LAST_MS:
            self.skipped += 1
            return
        refused = self.log.refused_refunds
        try:
            # type(...) is int: true and 1.0 equal 1 but are refused by the worker
            version = item.get("schema_version", 1)
            if type(version) is not int or version != 1 or not _fast(self, item):
                _slow(self, item)
        except _Refused as exc:
            self._tally(exc.reason)
        except (UndecodableRecord, KeyError, TypeError, ValueError):
            self.skipped += 1
        if self.log.refused_refunds != refused:  # refunds in another currency than their order's
            self._tally(CURRENCY_MISMATCH, self.log.refused_refunds - refused)

    def _tally(self, reason: str, count: int = 1) -> None:
        self.skipped += count
        self.refused[reason] = self.refused.get(reason, 0) + count

    def _check(
        self,
        kind: str,
        at: int,
        currency: str | None = None,
        items: str = "",
        merchant: str | None = None,
    ) -> None:
        """Raise ``_Refused`` for an event of type ``kind`` at ``at`` that the attribution
        worker refuses before using it, in the worker's order (``Campaigns.refused``):
        its topic, its currency (an order's or a renewal's: the campaign's terms in force
        at ``at``), an order's merchant (``merchant``), its items (``items``:
        ``products.items_problem``'s answer), its time against the record's timestamp."""
        topic = self._topic
        if topic is not None and wrong_topic(kind, topic):
            raise _Refused(WRONG_TOPIC)
        timeline = self._timeline
        if (
            currency is not None
            and timeline is not None
            and other_currency(currency, timeline.at(at).terms.currency)
        ):
            raise _Refused(CURRENCY_MISMATCH)
        if (
            merchant is not None
            and timeline is not None
            and merchant_refusal(merchant, timeline.at(at).terms.merchant_id)
        ):
            raise _Refused(MERCHANT_MISMATCH)
        if items:
            raise _Refused(ITEMS)
        ts = self._ts
        if ts is None:
            return
        if event_time_in_future(at, ts, self.clock_skew_ms):
            raise _Refused(EVENT_TIME_IN_FUTURE)
        if (
            timeline is not None
            and self._limits is not None
            and not self._backfill
            and kind in PLACED_KINDS
            and event_time_too_old(at, ts, allowed_age_ms(self._limits.at(at), self.clock_skew_ms))
        ):
            raise _Refused(EVENT_TIME_TOO_OLD)


_START = b'{"event_id":'
_BOUNDARY = b"}," + _START


def _parts(value: bytes) -> list[bytes] | None:
    """The events of a record as byte slices, without parsing; None: not the compact shape
    afflux producers write (``model_dump_json``, every event starting with its
    ``event_id``), so the record is parsed whole.

    A packed record is split at ``},{"event_id":``. That sequence never occurs inside a
    JSON string (a quote in a string is always escaped, so ``{"`` there is ``{\\"``), and no
    input event holds a nested object that starts with ``event_id``: each split is an
    item boundary. A part may be the campaign's only if it holds the campaign id as a JSON
    string (an id is ``[A-Za-z0-9_.-]+``, which no encoder escapes); the others are
    counted, never parsed. A part that then fails to parse sends the record to the whole
    parse, so a record of another shape is never half taken."""
    if value.startswith(_START) and value.endswith(b"}"):
        return [value]
    if value.startswith(b"[" + _START) and value.endswith(b"}]"):
        return value[1:-1].split(_BOUNDARY)
    return None


def _rebuilt(part: bytes, index: int, last: int) -> bytes:
    """Part ``index`` of ``last + 1`` as the whole event it was before the split."""
    return (_START if index else b"") + part + (b"}" if index < last else b"")


def _str(item: dict[str, Any], name: str) -> str:
    value = item[name]
    if type(value) is not str or not value:
        raise TypeError(name)
    return value


def _opt(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    if value is not None and type(value) is not str:
        raise TypeError(name)
    return value or None


def _int(item: dict[str, Any], name: str, default: int | None = None) -> int:
    value = item.get(name, default)
    if type(value) is not int:
        raise TypeError(name)
    return value


def _kind(item: dict[str, Any]) -> str:
    value = item.get("kind", "sale")
    if value not in _ORDER_KINDS:
        raise TypeError("kind")
    return str(value)


def _over_bounds(item: dict[str, Any]) -> bool:
    """Text past the orders API's bounds: the model path applies the worker's rule."""
    action, coupon, customer = (
        _text(item, name) for name in ("action", "coupon_code", "customer_id")
    )
    return bool(order_bounds_problem(action, coupon, customer, 0))


def _text(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return value if type(value) is str else None


def _fast(reader: LogReader, item: dict[str, Any]) -> bool:
    """Take the item without its model; False: it needs the full validation."""
    log = reader.log
    kind = item.get("type")
    if kind == "ClickRecorded":  # most events: checked inline
        click_id, affiliate = item["click_id"], item["affiliate_id"]
        visitor, at = item["visitor_id"], item["occurred_at"]
        if not (
            type(click_id) is str
            and type(affiliate) is str
            and type(visitor) is str
            and type(at) is int
            and click_id
            and affiliate
            and visitor
        ):
            raise TypeError("click")
        flagged = bool(item.get("is_bot") or item.get("is_duplicate") or item.get("flags"))
        reader._check(kind, at)
        log.add_click(
            reader.joined(visitor), ClickTouch(click_id, affiliate, log.campaign_id, at, flagged)
        )
        return True
    if kind == "OrderPlaced":
        if item.get("items") or item.get("non_commissionable_minor") or item.get("survey"):
            return False  # rarer: the model reads them
        if _over_bounds(item):
            return False  # the model refuses it, as the worker does
        order_id = _str(item, "order_id")
        visitor, click_id = _opt(item, "visitor_id"), _opt(item, "click_id")
        order = LoggedOrder(
            order_id=order_id,
            event_id=_str(item, "event_id"),
            key=reader.joined(order_partition_key(order_id, visitor, click_id)),
            at=_int(item, "occurred_at"),
            amount_minor=_int(item, "amount_minor", 0),
            currency=_str(item, "currency"),
            kind=_kind(item),
            action=_opt(item, "action"),
            click_id=click_id,
            coupon_code=_opt(item, "coupon_code"),
            new_customer=item.get("new_customer", False) is True,
        )
        merchant = item.get("merchant_id")
        reader._check(
            kind, order.at, order.currency, merchant=merchant if type(merchant) is str else ""
        )
        log.add_order(order)
        return True
    if kind == "OrderRefunded":
        if item.get("items"):
            return False
        refund = LoggedRefund(
            refund_id=_str(item, "refund_id"),
            event_id=_str(item, "event_id"),
            order_id=_str(item, "order_id"),
            at=_int(item, "occurred_at"),
            amount_minor=_int(item, "amount_minor"),
            currency=_str(item, "currency"),
        )
        reader._check(kind, refund.at)
        log.add_refund(refund)
        return True
    if kind == "LeadConfirmed":
        confirmation = LoggedConfirmation(
            _str(item, "order_id"), _str(item, "event_id"), _int(item, "occurred_at")
        )
        reader._check(kind, confirmation.at)
        log.add_confirmation(confirmation)
        return True
    return kind not in _TYPES  # another event type: nothing for the replay


def _slow(reader: LogReader, item: dict[str, Any]) -> None:
    log = reader.log
    event = event_from_dict(item)
    kind = type(event).__name__
    if isinstance(event, ClickRecorded):
        touch = ClickTouch(
            event.click_id, event.affiliate_id, log.campaign_id, event.occurred_at, event.flagged
        )
        reader._check(kind, event.occurred_at)
        log.add_click(reader.joined(event.visitor_id), touch)
    elif isinstance(event, OrderPlaced):
        items = tuple((i.sku, i.category, i.quantity, i.price_minor) for i in event.items)
        # Items that do not make up the amount: the worker dead-letters the order.
        problem = order_bounds_problem(
            event.action, event.coupon_code, event.customer_id, len(event.items)
        ) or items_problem(event.amount_minor, items, event.non_commissionable_minor)
        reader._check(kind, event.occurred_at, event.currency, problem, event.merchant_id)
        log.add_order(
            LoggedOrder(
                order_id=event.order_id,
                event_id=event.event_id,
                key=reader.joined(
                    order_partition_key(event.order_id, event.visitor_id, event.click_id)
                ),
                at=event.occurred_at,
                amount_minor=event.amount_minor,
                currency=event.currency,
                kind=event.kind,
                action=event.action,
                click_id=event.click_id,
                coupon_code=event.coupon_code,
                new_customer=event.new_customer,
                survey_affiliate_id=event.survey.affiliate_id if event.survey else None,
                survey_handle=event.survey.handle if event.survey else None,
                items=items,
                non_commissionable_minor=event.non_commissionable_minor,
            )
        )
    elif isinstance(event, OrderRefunded):
        reader._check(kind, event.occurred_at)
        log.add_refund(
            LoggedRefund(
                event.refund_id,
                event.event_id,
                event.order_id,
                event.occurred_at,
                event.amount_minor,
                tuple((i.sku, i.quantity, i.amount_minor) for i in event.items),
                event.currency,
            )
        )
    elif isinstance(event, SubscriptionRenewed):
        reader._check(kind, event.occurred_at, event.currency)
        log.add_renewal(
            LoggedRenewal(
                event.order_id,
                event.renewal_order_id,
                event.renewal_number,
                event.event_id,
                event.occurred_at,
                event.amount_minor,
                event.currency,
            )
        )
    elif isinstance(event, LeadConfirmed):
        reader._check(kind, event.occurred_at)
        log.add_confirmation(LoggedConfirmation(event.order_id, event.event_id, event.occurred_at))


def _accepted(log: CampaignLog, event: ContentPublished) -> bool:
    """Whether the campaign takes a publication: its own, of a content not routed here or
    routed here for the same creator. One naming another campaign or creator than a content
    routed here is refused, as the ledger and the worker refuse it, unless it takes the
    content over (``takes_over``: held, and the brand's publication for this campaign):
    the content then leaves what it was here (a ``TakenOver`` where it was, its held
    stream and handles forgotten)."""
    key = key_of(event)
    route = log.content_routes.get(key)
    ours = event.campaign_id == log.campaign_id
    if route is None or (ours and route[1] == event.affiliate_id):
        return ours
    first_by = log.first_reported_by.get(key)
    released = key in log.released
    if not takes_over(first_by, released, event.reported_by, log.campaign_id, event.campaign_id):
        return False
    log.content.append((key, route[0], taken_over(key, event.event_id)))
    del log.content_routes[key]
    log.first_reported_by.pop(key, None)
    log.streams.pop(key, None)
    log.held_handles.pop(key, None)
    return ours


def _claims(log: CampaignLog, event: ContentPublished) -> None:
    """A live stream's window once its end is known (the latest such publication of the
    stream wins), and the creator's handle, as the attribution worker's content view
    keeps them: held (the stream claiming nothing, the handle no claim) while the content
    was first published with its creator's own key and is not released."""
    key = key_of(event)
    first_by = log.first_reported_by.setdefault(key, event.reported_by)
    held = held_for_release(first_by, key in log.released)
    if event.handle and not handle_counts(first_by, key in log.released, event.reported_by):
        event = event.model_copy(update={"handle": None})  # the creator's word alone
    start, end = event.live_started_at, event.live_ended_at
    if event.kind == "live" and start is not None and end is not None and end >= start:
        log.streams[key] = LiveTouch(key, event.affiliate_id, event.campaign_id, start, end, held)
    if event.handle and normalize_handle(event.handle):
        claim = (normalize_handle(event.handle), event.affiliate_id)
        (log.held_handles.setdefault(key, set()) if held else log.handle_claims).add(claim)


def _released(log: CampaignLog, key: str) -> None:
    """The brand released a content: held, its stream claims and its handles count."""
    log.released.add(key)
    stream = log.streams.get(key)
    if stream is not None and stream.held:
        log.streams[key] = replace(stream, held=False)
    log.handle_claims |= log.held_handles.pop(key, set())
