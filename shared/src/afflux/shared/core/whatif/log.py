"""A campaign's recorded inputs, as the replay needs them: clicks, orders, refunds and
lead confirmations, each the first copy of its id, in the order they were read.

Plain frozen values built by the decoder (``afflux.shared.whatif_decode``) from the input
topics, or by a test. Nothing here reads a topic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from afflux.shared.core.attribution import ClickTouch, Content, LiveTouch, content_handles
from afflux.shared.core.currency import other_currency
from afflux.shared.core.engagement import ContentEvent
from afflux.shared.core.renewals import renewal_order_refusal

_MS_PER_DAY = 86_400_000


@dataclass(frozen=True, slots=True)
class LoggedOrder:
    order_id: str
    event_id: str
    key: str  # the visitor whose clicks it meets (``ids.order_partition_key``)
    at: int
    amount_minor: int
    currency: str
    kind: str = "sale"
    action: str | None = None
    click_id: str | None = None
    coupon_code: str | None = None
    new_customer: bool = False
    survey_affiliate_id: str | None = None
    survey_handle: str | None = None
    # Per-product rates: (sku, category, quantity, unit price) and what earns nothing.
    items: tuple[tuple[str, str | None, int, int], ...] = ()
    non_commissionable_minor: int = 0


@dataclass(frozen=True, slots=True)
class LoggedRefund:
    refund_id: str
    event_id: str
    order_id: str
    at: int
    amount_minor: int
    items: tuple[tuple[str, int | None, int | None], ...] = ()  # sku, quantity, amount
    # The refund's currency, held to its order's (``CampaignLog.add_refund``); "": not
    # known (a log built by hand), taken whatever the order's.
    currency: str = ""


@dataclass(frozen=True, slots=True)
class LoggedRenewal:
    """A subscription's renewal: an order of its own (``renewal_order_id``) paying whoever
    won the first order (``order_id``)."""

    order_id: str
    renewal_order_id: str
    number: int
    event_id: str
    at: int
    amount_minor: int
    currency: str


@dataclass(frozen=True, slots=True)
class LoggedConfirmation:
    order_id: str
    event_id: str
    at: int


@dataclass(frozen=True, slots=True)
class DateRange:
    """Event times ``start <= at < end`` (UTC ms); None: unbounded on that side."""

    start: int | None = None
    end: int | None = None

    def holds(self, at: int) -> bool:
        return (self.start is None or at >= self.start) and (self.end is None or at < self.end)


@dataclass(slots=True)
class CampaignLog:
    """One campaign's inputs. ``clicks`` maps a visitor to its clicks in the campaign
    (an order meets those of its key); ``valid`` marks the clicks without a quality flag
    (paid per click). Built with ``add_*``: the first copy of an id wins, as in the
    attribution worker and the ledger."""

    campaign_id: str
    clicks: dict[str, list[ClickTouch]] = field(default_factory=dict)
    click_ids: set[str] = field(default_factory=set)
    orders: list[LoggedOrder] = field(default_factory=list)
    order_ids: set[str] = field(default_factory=set)
    refunds: list[LoggedRefund] = field(default_factory=list)
    refund_ids: set[tuple[str, str]] = field(default_factory=set)  # (order, refund)
    confirmations: dict[str, LoggedConfirmation] = field(default_factory=dict)
    renewals: list[LoggedRenewal] = field(default_factory=list)
    renewal_ids: set[str] = field(default_factory=set)
    # Content of the campaign, in topic order: (key, its first publication's time, event);
    # ``content_routes``: key -> (first publication's time, creator).
    content: list[tuple[str, int, ContentEvent]] = field(default_factory=list)
    content_routes: dict[str, tuple[int, str]] = field(default_factory=dict)
    # What the choice needs of the campaign's content: each live stream's latest window
    # with an end, and the creators' handle claims (as the worker's content view keeps).
    streams: dict[str, LiveTouch] = field(default_factory=dict)
    handle_claims: set[tuple[str, str]] = field(default_factory=set)
    # A content first published with its creator's own key is held until released
    # (``held_for_release``): key -> its first publication's ``reported_by``, the keys
    # released, and a held content's handle claims, waiting for its release.
    first_reported_by: dict[str, str | None] = field(default_factory=dict)
    released: set[str] = field(default_factory=set)
    held_handles: dict[str, set[tuple[str, str]]] = field(default_factory=dict)

    def content_view(self) -> Content:
        return Content(tuple(self.streams.values()), content_handles(self.handle_claims))

    events: int = 0  # events of the campaign taken (copies left out; waiting refunds in)
    # Refunds in another currency than their order's: the worker dead-letters them
    # (``currency_mismatch``), so they are left out, counted here.
    refused_refunds: int = 0
    # Order (or renewal order) id -> its currency, from the first copy taken; the refunds
    # of an order not read yet wait for it, copies in each currency apart, in read order.
    currencies: dict[str, str] = field(default_factory=dict)
    waiting_refunds: dict[str, list[LoggedRefund]] = field(default_factory=dict)
    # UTC day number -> creator -> [valid clicks, first at, last at]: what click pay needs,
    # summed once here rather than once per replay.
    valid_days: dict[int, dict[str, list[int]]] = field(default_factory=dict)

    def add_click(self, visitor: str, click: ClickTouch) -> None:
        if click.click_id in self.click_ids:
            return
        self.click_ids.add(click.click_id)
        found = self.clicks.get(visitor)
        if found is None:
            self.clicks[visitor] = [click]
        else:
            found.append(click)
        self.events += 1
        if not click.flagged:
            day = self.valid_days.setdefault(click.at // _MS_PER_DAY, {})
            tally = day.get(click.affiliate_id)
            if tally is None:
                day[click.affiliate_id] = [1, click.at, click.at]
            else:
                tally[0] += 1
                tally[1] = min(tally[1], click.at)
                tally[2] = max(tally[2], click.at)

    def add_order(self, order: LoggedOrder) -> None:
        if order.order_id not in self.order_ids:
            self.order_ids.add(order.order_id)
            self.orders.append(order)
            self.events += 1
            self._currency_known(order.order_id, order.currency)

    def add_refund(self, refund: LoggedRefund) -> None:
        """The first copy of each refund in its order's currency. One in another currency
        is left out (``refused_refunds``) and does not take the refund's id, as the worker
        and the batch oracle dead-letter it; one whose order is not read yet waits for it
        (``waiting_refunds``: the topics are read in one pass, refunds before their
        orders as often as not) and is judged when it comes. A refund without a currency
        (a log built by hand) is taken as before."""
        if refund.currency:
            currency = self.currencies.get(refund.order_id)
            if currency is None:
                waiting = self.waiting_refunds.setdefault(refund.order_id, [])
                ident = (refund.refund_id, refund.currency)
                if all((w.refund_id, w.currency) != ident for w in waiting):
                    waiting.append(refund)  # (a copy in the same currency is a copy)
                    self.events += 1
                return
            if other_currency(refund.currency, currency):
                self.refused_refunds += 1
                return
        self._take_refund(refund)

    def _take_refund(self, refund: LoggedRefund) -> None:
        key = (refund.order_id, refund.refund_id)
        if key not in self.refund_ids:
            self.refund_ids.add(key)
            self.refunds.append(refund)
            self.events += 1

    def _currency_known(self, order_id: str, currency: str) -> None:
        """The order's currency, from its first copy taken (an order's before a renewal's
        of the same id that came first is not told apart: both are the campaign's); the
        refunds that waited for it are judged now, in the order they were read."""
        if order_id in self.currencies:
            return
        self.currencies[order_id] = currency
        for refund in self.waiting_refunds.pop(order_id, ()):
            self.events -= 1  # counted while it waited: counted again if taken
            if other_currency(refund.currency, currency):
                self.refused_refunds += 1
            else:
                self._take_refund(refund)

    def add_renewal(self, renewal: LoggedRenewal) -> None:
        """The first copy of each renewal order; one naming its first order's id as its
        own is left out, as the worker dead-letters it."""
        if renewal_order_refusal(renewal.order_id, renewal.renewal_order_id):
            return
        if renewal.renewal_order_id not in self.renewal_ids:
            self.renewal_ids.add(renewal.renewal_order_id)
            self.renewals.append(renewal)
            self.events += 1
            self._currency_known(renewal.renewal_order_id, renewal.currency)

    def add_content(
        self,
        key: str,
        event: ContentEvent,
        creator: str | None = None,
        published_at: int | None = None,
    ) -> None:
        """A publication (``creator`` and ``published_at`` given) routes its content here;
        a snapshot or release of a content not routed here is not the campaign's."""
        route = self.content_routes.get(key)
        if route is None:
            if creator is None or published_at is None:
                return
            route = self.content_routes[key] = (published_at, creator)
        elif creator is not None and creator != route[1]:
            return  # another creator's publication of the same content: the ledger refuses it
        self.content.append((key, route[0], event))
        self.events += 1

    def add_confirmation(self, confirmation: LoggedConfirmation) -> None:
        if confirmation.order_id not in self.confirmations:
            self.confirmations[confirmation.order_id] = confirmation
            self.events += 1


EVER = DateRange()  # every event time


MAX_RANGE_DAYS = 400  # the longest range a what-if takes (docs/reliability.md)


class RangeProblem(ValueError):
    """A range a what-if refuses, naming the field (``from`` or ``to``) and why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def day_range(first: date | None, last: date | None, max_days: int = MAX_RANGE_DAYS) -> DateRange:
    """Whole UTC days ``first`` to ``last``, both included; either may be open."""
    start = _day_ms(first) if first is not None else None
    end = _day_ms(last) + _MS_PER_DAY if last is not None else None
    if start is not None and end is not None:
        if end <= start:
            raise RangeProblem("to", f"{last} is before from {first}")
        if (end - start) // _MS_PER_DAY > max_days:
            raise RangeProblem("to", f"a range spans at most {max_days} days")
    return DateRange(start, end)


def _day_ms(day: date) -> int:
    return (day - date(1970, 1, 1)).days * _MS_PER_DAY
