"""The input topics' events as a what-if replay's log (``core.whatif.log.CampaignLog``).

Fast: a replay reads every click, order and refund ever recorded, so an event is taken
from its parsed JSON without building the pydantic model, checking only the fields the
replay reads, each for its type. Every event on these topics was validated by the
service that produced it; an item that is not of the current schema version goes
through ``wire.event_from_dict`` (upcasters, full validation), and one that still fails
is counted in ``skipped``, as the consumers dead-letter it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import orjson

from afflux.shared.content_facts import content_fact, key_of
from afflux.shared.core.attribution import ClickTouch, LiveTouch
from afflux.shared.core.ids import order_partition_key
from afflux.shared.core.products import items_problem
from afflux.shared.core.terms import normalize_handle
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
from afflux.shared.wire import UndecodableRecord, check_bounds, event_from_dict, parse_value

_ORDER_KINDS = frozenset(get_args(OrderKind))
# Events at or after 9999-12-01 have no period whose end a datetime holds: the ledger
# dead-letters them (BadPeriod), so the replay leaves them out rather than fail on them.
_LAST_MS = (datetime(9999, 12, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
    milliseconds=1
)
_TYPES = ("ClickRecorded", "OrderPlaced", "OrderRefunded", "LeadConfirmed", "SubscriptionRenewed")


@dataclass(slots=True)
class LogReader:
    """Feeds one campaign's log from record values; counts what it read."""

    log: CampaignLog
    events: int = 0  # every event read, of any campaign
    skipped: int = 0  # items that are not a valid event
    _needle: bytes = b""

    def __post_init__(self) -> None:
        self._needle = b'"' + self.log.campaign_id.encode() + b'"'

    def record(self, value: bytes | None) -> None:
        """Every event of one record value; only those that may be the campaign's are
        parsed (see ``_parts``)."""
        if value is None:
            self.skipped += 1
            return
        try:
            check_bounds(value)
        except UndecodableRecord:
            self.skipped += 1
            return
        parts = _parts(value)
        if parts is None:
            self._whole(value)
            return
        needle, last = self._needle, len(parts) - 1
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

    def content_record(self, value: bytes | None) -> None:
        """A record of the ``content`` topic: the campaign's publications route their
        content here, and that content's snapshots and releases follow (they name no
        campaign). Few next to clicks: each item is validated in full."""
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
            if isinstance(event, ContentPublished):
                if event.campaign_id == self.log.campaign_id:
                    self.log.add_content(
                        key_of(event), content_fact(event), event.affiliate_id, event.published_at
                    )
                    _claims(self.log, event)
            elif isinstance(event, ContentStats | ContentReleased):
                self.log.add_content(key_of(event), content_fact(event))
            elif event is None:
                self.skipped += 1

    def _whole(self, value: bytes) -> None:
        try:
            parsed = parse_value(value)
        except UndecodableRecord:
            self.skipped += 1
            return
        for item in parsed if isinstance(parsed, list) else [parsed]:
            self.item(item)

    def item(self, item: Any) -> None:
        self.events += 1
        self._take(item)

    def _take(self, item: Any) -> None:
        if not isinstance(item, dict):
            self.skipped += 1
            return
        if item.get("campaign_id") != self.log.campaign_id:
            return
        at = item.get("occurred_at")
        if type(at) is int and at >= _LAST_MS:
            self.skipped += 1
            return
        try:
            if item.get("schema_version", 1) == 1 and _fast(self.log, item):
                return
            _slow(self.log, item)
        except (UndecodableRecord, KeyError, TypeError, ValueError):
            self.skipped += 1


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


def _fast(log: CampaignLog, item: dict[str, Any]) -> bool:
    """Take the item without its model; False: it needs the full validation."""
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
        log.add_click(visitor, ClickTouch(click_id, affiliate, log.campaign_id, at, flagged))
        return True
    if kind == "OrderPlaced":
        if item.get("items") or item.get("non_commissionable_minor") or item.get("survey"):
            return False  # rarer: the model reads them
        order_id = _str(item, "order_id")
        visitor, click_id = _opt(item, "visitor_id"), _opt(item, "click_id")
        log.add_order(
            LoggedOrder(
                order_id=order_id,
                event_id=_str(item, "event_id"),
                key=order_partition_key(order_id, visitor, click_id),
                at=_int(item, "occurred_at"),
                amount_minor=_int(item, "amount_minor", 0),
                currency=_str(item, "currency"),
                kind=_kind(item),
                action=_opt(item, "action"),
                click_id=click_id,
                coupon_code=_opt(item, "coupon_code"),
                new_customer=item.get("new_customer", False) is True,
            )
        )
        return True
    if kind == "OrderRefunded":
        if item.get("items"):
            return False
        log.add_refund(
            LoggedRefund(
                refund_id=_str(item, "refund_id"),
                event_id=_str(item, "event_id"),
                order_id=_str(item, "order_id"),
                at=_int(item, "occurred_at"),
                amount_minor=_int(item, "amount_minor"),
            )
        )
        return True
    if kind == "LeadConfirmed":
        log.add_confirmation(
            LoggedConfirmation(
                _str(item, "order_id"), _str(item, "event_id"), _int(item, "occurred_at")
            )
        )
        return True
    return kind not in _TYPES  # another event type: nothing for the replay


def _slow(log: CampaignLog, item: dict[str, Any]) -> None:
    event = event_from_dict(item)
    if isinstance(event, ClickRecorded):
        touch = ClickTouch(
            event.click_id, event.affiliate_id, log.campaign_id, event.occurred_at, event.flagged
        )
        log.add_click(event.visitor_id, touch)
    elif isinstance(event, OrderPlaced):
        items = tuple((i.sku, i.category, i.quantity, i.price_minor) for i in event.items)
        if items_problem(event.amount_minor, items, event.non_commissionable_minor):
            raise ValueError("items")  # the worker dead-letters it: skipped, as there
        log.add_order(
            LoggedOrder(
                order_id=event.order_id,
                event_id=event.event_id,
                key=order_partition_key(event.order_id, event.visitor_id, event.click_id),
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
        log.add_refund(
            LoggedRefund(
                event.refund_id,
                event.event_id,
                event.order_id,
                event.occurred_at,
                event.amount_minor,
                tuple((i.sku, i.quantity, i.amount_minor) for i in event.items),
            )
        )
    elif isinstance(event, SubscriptionRenewed):
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
        log.add_confirmation(LoggedConfirmation(event.order_id, event.event_id, event.occurred_at))


def _claims(log: CampaignLog, event: ContentPublished) -> None:
    """A live stream's window once its end is known (the latest such publication of the
    stream wins), and the creator's handle, as the attribution worker's content view
    keeps them."""
    start, end = event.live_started_at, event.live_ended_at
    if event.kind == "live" and start is not None and end is not None and end >= start:
        key = key_of(event)
        log.streams[key] = LiveTouch(key, event.affiliate_id, event.campaign_id, start, end)
    if event.handle and normalize_handle(event.handle):
        log.handle_claims.add((normalize_handle(event.handle), event.affiliate_id))
