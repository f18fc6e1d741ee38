"""The two stages' handlers (see ``stage.StageHandler``): what an event, a tick and a
pruning pass do to one partition's state, with the campaign terms they need."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from afflux.attribution.content_view import ContentBook
from afflux.attribution.decode import DecodedClick, Event
from afflux.attribution.join import (
    DEFAULT_CLICKS_PER_VISITOR,
    JoinPartition,
    Output,
    decode_state,
    handle_touches,
    live_touches,
)
from afflux.attribution.metrics import AttributionMetrics
from afflux.attribution.refunds import RefundPartition, decode_ledger
from afflux.attribution.store import LocalStore
from afflux.shared.core.attribution import largest_window_ms
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.currency import campaign_currency_refusal
from afflux.shared.core.event_time import (
    DEFAULT_CLOCK_SKEW_MS,
    EVENT_TIME_IN_FUTURE,
    OWN_CLOCK_TOLERANCE_MS,
    BackfillLimits,
    ahead_of_own_clock,
    allowed_age_ms,
    event_time_in_future,
    event_time_too_old,
    too_old_reason,
)
from afflux.shared.core.ids import order_partition_key
from afflux.shared.core.merchant import merchant_refusal
from afflux.shared.core.products import items_problem, order_bounds_problem
from afflux.shared.core.renewals import renewal_order_refusal
from afflux.shared.core.terms import TermsTimeline, TermsVersion
from afflux.shared.events import (
    PLACED_TYPES,
    CampaignTermsPublished,
    ClickRecorded,
    ConversionAttributed,
    LeadConfirmed,
    OrderPlaced,
    OrderRefunded,
    OrderUnattributed,
    RefundUnmatched,
    SubscriptionRenewed,
    SurveyAnswered,
)
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.schemas import wrong_topic
from afflux.shared.topics import CLICKS, ORDERS, REFUNDS

# Clicks that arrived this recently (behind the partition's safe time) are never pruned:
# their order may still be on its way through the other input topic.
RECENT_ARRIVAL_MS = 60_000
# Inputs produced outside the worker; conversions and unmatched orders are its own.
OUTSIDE_INPUTS = frozenset((CLICKS.name, ORDERS.name, REFUNDS.name))
UNEXPECTED = "unexpected event type"
UNKNOWN_ORDER = "unknown order: a survey answer for an order this worker does not hold"
# isinstance against tuples built once: a union written in the call builds a new
# type object on every event.
_PRICED = (OrderPlaced, ConversionAttributed)
_CLICKS = (DecodedClick, ClickRecorded)
_JOIN_OTHERS = (LeadConfirmed, RefundUnmatched)
Handled = tuple[Sequence[Output], str]
USED: Handled = ((), "")


def _on_wrong_topic(topic: str, event: Event) -> str:
    """Why an event is refused on ``topic``: an order written to ``clicks``, or a click
    to ``orders``, was used (and paid) as if it had come the right way."""
    name = _EVENT_NAMES.get(type(event))
    if name is None:
        name = _EVENT_NAMES[type(event)] = type(event).__name__
    return wrong_topic(name, topic)


# The fast path's clicks travel as ClickRecorded.
_EVENT_NAMES: dict[type, str] = {DecodedClick: "ClickRecorded"}


class Campaigns:
    """The campaign terms both stages read, and the checks every input event passes."""

    def __init__(
        self,
        directory: CampaignDirectory,
        clock_skew_ms: int = DEFAULT_CLOCK_SKEW_MS,
        backfill_limit_days: int | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        """``backfill_limit_days``: the orders service's ``AFFLUX_ORDERS_BACKFILL_LIMIT_DAYS``
        (None: per campaign, its longest window plus its longest lock). ``clock``: the
        worker's own, which an event time may not pass by more than the skew either (None:
        the record's timestamp alone bounds it, for replays on a fixed clock)."""
        self.directory = directory
        self.clock_skew_ms = clock_skew_ms
        self.clock = clock
        self.backfill_limit_days = backfill_limit_days
        # Asked per click and per order: a timeline per campaign, rebuilt when the
        # directory holds a new tuple of versions for it.
        self._timelines: dict[str, tuple[tuple[TermsVersion, ...], TermsTimeline]] = {}
        self._limits: dict[str, tuple[tuple[TermsVersion, ...], BackfillLimits]] = {}
        self.changes = 0  # versions the directory applied since: deadlines read again
        directory.on_change(self._changed)

    def _changed(self, published: CampaignTermsPublished) -> None:
        self.changes += 1

    def terms(self, campaign_id: str, at_ms: int) -> TermsVersion | None:
        if campaign_id not in self.directory:
            return None
        versions = self.directory.versions(campaign_id)
        cached = self._timelines.get(campaign_id)
        if cached is None or cached[0] is not versions:
            cached = self._timelines[campaign_id] = (versions, TermsTimeline.of(versions))
        return cached[1].at(at_ms)

    def max_grace_ms(self) -> int:
        """The longest grace of any version of any campaign: an order placed under an
        earlier version waits for that version's grace, even after a later one shortened
        it (the latest versions alone let refunds time out before such orders' outcome)."""
        d = self.directory
        return max((v.terms.grace_ms for c in d.campaign_ids() for v in d.versions(c)), default=0)

    def largest_window_ms(self) -> int:
        d = self.directory
        return largest_window_ms([v for c in d.campaign_ids() for v in d.versions(c)])

    def late_report_ms(self) -> int:
        """How old an order's event time may be when its record is written: the longest
        backfill limit of any campaign (older is dead-lettered; the clock skew on top,
        minutes, is within the day of margin pruning keeps)."""
        d = self.directory
        return max((self.backfill_limits(c).at(None) for c in d.campaign_ids()), default=0)

    def backfill_limits(self, campaign_id: str) -> BackfillLimits:
        """The campaign's backfill limits, as the orders service computes them."""
        versions = self.directory.versions(campaign_id)
        cached = self._limits.get(campaign_id)
        if cached is None or cached[0] is not versions:
            limits = BackfillLimits.of(versions, self.backfill_limit_days)
            cached = self._limits[campaign_id] = (versions, limits)
        return cached[1]

    def refused(self, topic: str, event: Event, ts: int, backfill: bool = False) -> str:
        """Why an event is refused before it is used ('' when it is not); ``backfill``:
        its record carries the backfill header."""
        if type(event) is DecodedClick and topic == CLICKS.name:
            # The fast path's click on its own topic, most of what the join reads: no
            # order check concerns it and its age is never refused, only its event time.
            return self._in_future(topic, event, ts)
        return (
            _on_wrong_topic(topic, event)
            or self._refused_order(event)
            or self._in_future(topic, event, ts)
            or self._too_old(topic, event, ts, backfill)
        )

    def _refused_order(self, event: Event) -> str:
        """Why an order (or a conversion, or a renewal) is refused before it is used: an
        order of an unknown campaign, an amount above the campaign's ``max_order_minor``
        (the terms in force at the order's time), an order or renewal in another currency
        than the campaign's (``currency_mismatch``), or items that do not make up the
        order's amount (``products.items_problem``), or text and items past the orders
        API's bounds (``products.order_bounds_problem``); the orders service refuses each
        of them at entry."""
        if isinstance(event, SubscriptionRenewed):
            return self._other_currency(event, "renewal")
        if not isinstance(event, _PRICED):
            return ""
        if event.campaign_id not in self.directory:
            return "unknown campaign" if isinstance(event, OrderPlaced) else ""
        version = self.terms(event.campaign_id, event.occurred_at)
        if version is not None and event.amount_minor > version.terms.max_order_minor:
            return (
                f"amount_minor {event.amount_minor} above the campaign's max_order_minor "
                f"{version.terms.max_order_minor}"
            )
        if not isinstance(event, OrderPlaced):
            return ""
        if version is not None:
            refused = campaign_currency_refusal(
                "order", event.currency, version.terms.currency
            ) or merchant_refusal(event.merchant_id, version.terms.merchant_id)
            if refused:
                return refused
        bounds = order_bounds_problem(
            event.action, event.coupon_code, event.customer_id, len(event.items)
        )
        if bounds:
            return bounds
        rows = [(i.sku, i.category, i.quantity, i.price_minor) for i in event.items]
        return items_problem(event.amount_minor, rows, event.non_commissionable_minor)

    def _other_currency(self, event: SubscriptionRenewed, what: str) -> str:
        """``currency_mismatch`` when ``event`` is in another currency than its campaign's
        terms in force at its time ('' for an unknown campaign: the stage answers that)."""
        if event.campaign_id not in self.directory:
            return ""
        version = self.terms(event.campaign_id, event.occurred_at)
        if version is None:
            return ""
        return campaign_currency_refusal(what, event.currency, version.terms.currency)

    def _in_future(self, topic: str, event: Event, ts: int) -> str:
        """Why an outside input's event time is refused: more than the clock skew after its
        record's timestamp, or after the worker's clock. Such a time would move the
        event-time watermark, and pruning behind it would drop clicks that other orders
        still need. The record's timestamp alone is not enough: a producer sets it, and
        one dated a year ahead with its record stamped the same passed, so that the next
        prune dropped every click of the partition."""
        if topic not in OUTSIDE_INPUTS:
            return ""
        skew = self.clock_skew_ms
        if event_time_in_future(event.occurred_at, ts, skew):
            return (
                f"{EVENT_TIME_IN_FUTURE}: occurred_at {event.occurred_at} is "
                f"{event.occurred_at - ts} ms after the record's timestamp {ts}"
                f" (allowed: {skew} ms)"
            )
        now = self.clock() if self.clock is not None else None
        if now is None or not ahead_of_own_clock(event.occurred_at, now, skew):
            return ""
        return (
            f"{EVENT_TIME_IN_FUTURE}: occurred_at {event.occurred_at} is "
            f"{event.occurred_at - now} ms after this worker's clock {now}, its record stamped"
            f" {ts} (allowed: {max(skew, OWN_CLOCK_TOLERANCE_MS)} ms)"
        )

    def _too_old(self, topic: str, event: Event, ts: int, backfill: bool) -> str:
        """Why an order, refund or renewal written straight to its topic is refused for its
        age: more than its campaign's backfill limit plus the clock skew before its
        record's timestamp, the record not marked a backfill. Taken, it would be paid at
        once, its return window long past (``core.event_time``)."""
        if backfill or not isinstance(event, PLACED_TYPES) or topic not in OUTSIDE_INPUTS:
            return ""
        if event.campaign_id not in self.directory:
            return ""  # an order is refused as of an unknown campaign; a refund waits
        limit = self.backfill_limits(event.campaign_id).at(event.occurred_at)
        skew = self.clock_skew_ms
        if not event_time_too_old(event.occurred_at, ts, allowed_age_ms(limit, skew)):
            return ""
        return too_old_reason(event.occurred_at, ts, limit, skew)


class JoinHandler:
    """Stage 1: clicks and orders (and lead confirmations), keyed by visitor."""

    failed_topic = ORDERS.name

    def __init__(
        self,
        campaigns: Campaigns,
        metrics: AttributionMetrics,
        order_retention_ms: int,
        redecide: bool = True,
        content: ContentBook | None = None,
        clicks_per_visitor: int = DEFAULT_CLICKS_PER_VISITOR,
    ) -> None:
        self.campaigns = campaigns
        self.metrics = metrics
        self.order_retention_ms = order_retention_ms
        self.redecide = redecide
        self.book = content if content is not None else ContentBook.without_content()
        self.clicks_per_visitor = clicks_per_visitor

    def new_state(self, local: LocalStore | None = None) -> JoinPartition:
        keys = local.bind(decode_state) if local else None
        return JoinPartition(self.redecide, keys, self.book.content, self.clicks_per_visitor)

    def terms_current(self, state: JoinPartition, current: bool) -> None:
        state.at_once = current

    def on_event(
        self, state: JoinPartition, topic: str, event: Event, ts: int, *, backfill: bool = False
    ) -> Handled:
        refused = self.campaigns.refused(topic, event, ts, backfill)
        if refused:
            return (), refused
        if isinstance(event, _CLICKS):
            clicked = state.click(event.visitor_id, event, ts, self.campaigns.terms)
            if clicked.dropped:
                self.metrics.visitor_clicks_dropped.inc(clicked.dropped)
            if clicked.refused:  # a copy of a click held here, naming another creator
                return (), clicked.refused
            self._late(clicked.outcomes)
            return clicked.outputs, ""
        if isinstance(event, OrderPlaced):
            key = order_partition_key(event.order_id, event.visitor_id, event.click_id)
            # A copy of an order held here that pays another amount, or someone else:
            # refused with its record, the order's decision staying as it was. One lookup
            # of the key for both (``take_order``): on the disk store it may be a disk read.
            decided, conflicting = state.take_order(key, event, ts, self.campaigns.terms)
            if conflicting:
                return (), conflicting
            self._count(state)
            return decided, ""
        if isinstance(event, LeadConfirmed):
            return state.confirm(event), ""
        if isinstance(event, SurveyAnswered):
            answered = state.survey(event, ts, self.campaigns.terms)
            if answered.outcomes == ["unknown_order"]:
                return (), UNKNOWN_ORDER
            self._late(answered.outcomes, "survey")
            return answered.outputs, ""
        return (), UNEXPECTED

    def due(self, state: JoinPartition, safe_ms: int) -> list[Output]:
        """Apply creators' content read since the last tick, then decide every order whose
        grace has passed; nothing is decided before the content view caught up once."""
        if not self.book.ready.is_set():
            return []
        out = self._content(state)
        out += state.due(safe_ms, self.campaigns.terms, self.campaigns.changes)
        self._late(state.take_late())
        self._count(state)
        return out

    def prune(self, state: JoinPartition, safe_ms: int) -> None:
        """Clicks older than the largest window plus the late-report age plus grace
        behind the partition's event-time watermark (unless recent or wanted by a waiting
        order), and decided orders past the retention."""
        if not state.watermark:
            return
        grace = self.campaigns.max_grace_ms()
        # A late report (up to its campaign's backfill limit old) is joined against the
        # clicks of its own window: kept that much longer behind the watermark.
        keep_ms = (
            self.campaigns.largest_window_ms()
            + self.campaigns.late_report_ms()
            + grace
            + MS_PER_DAY
        )
        state.prune(
            state.watermark - keep_ms,
            state.watermark - self.order_retention_ms,
            safe_ms - grace - RECENT_ARRIVAL_MS,
        )

    def _count(self, state: JoinPartition) -> None:
        for when, count in state.take_decisions().items():
            if count:
                self.metrics.child(self.metrics.decisions, when).inc(count)

    def _content(self, state: JoinPartition) -> list[Output]:
        """Re-decide the orders each content change since the last tick concerns."""
        out: list[Output] = []
        changes = self.book.changes
        while state.content_seen < len(changes):
            change = changes[state.content_seen]
            state.content_seen += 1
            if state.content_applied(*change.position):
                continue  # applied before this partition was restored from its changelog
            state.mark_content(*change.position)
            touches = (
                live_touches(change.stream)
                if change.stream is not None
                else handle_touches(change.handles)
            )
            terms = self.campaigns.terms
            late = state.content_changed(change.campaign_id, touches, change.at, terms)
            self._late(late.outcomes, "content")
            out.extend(late.outputs)
        return out

    def _late(self, outcomes: list[str], cause: str = "click") -> None:
        for outcome in outcomes:
            if cause == "click":
                self.metrics.child(self.metrics.late_clicks, outcome).inc()
            else:
                self.metrics.child(self.metrics.late_signals, cause, outcome).inc()


class RefundHandler:
    """Stage 2: refunds against the join's outcomes, keyed by order id."""

    failed_topic = REFUNDS.name

    def __init__(self, campaigns: Campaigns, refund_wait_ms: int, order_retention_ms: int) -> None:
        self.campaigns = campaigns
        self.refund_wait_ms = refund_wait_ms
        self.order_retention_ms = order_retention_ms

    def new_state(self, local: LocalStore | None = None) -> RefundPartition:
        return RefundPartition(local.bind(decode_ledger) if local else None, self.campaigns.terms)

    def terms_current(self, state: RefundPartition, current: bool) -> None:
        """Nothing here is decided at once from the terms."""

    def on_event(
        self, state: RefundPartition, topic: str, event: Event, ts: int, *, backfill: bool = False
    ) -> Handled:
        refused = self.campaigns.refused(topic, event, ts, backfill)
        if refused:
            return (), refused
        if isinstance(event, OrderRefunded):
            # In another currency than its order's outcome held here (a copy of a refund
            # taken or not: the currency is asked first), or a copy of a refund taken (or
            # waiting) here of another amount: refused with its record (one that waits is
            # held to its order's currency when the outcome comes, ``refunds``). One
            # lookup of the key for the checks and the refund (``take_refund``).
            taken, refused = state.take_refund(event.order_id, event, ts)
            if refused:
                return (), refused
            return taken, ""
        if isinstance(event, SubscriptionRenewed):
            refused = renewal_order_refusal(event.order_id, event.renewal_order_id)
            if refused:
                return (), refused
            return state.renewal(event.order_id, event, ts), ""
        if isinstance(event, ConversionAttributed):
            return state.conversion(event.order_id, event), ""
        if isinstance(event, OrderUnattributed):
            return state.unattributed(event.order_id, event), ""
        if isinstance(event, _JOIN_OTHERS):
            return USED  # the join's other outputs: nothing to do here
        return (), UNEXPECTED

    def due(self, state: RefundPartition, safe_ms: int) -> list[Output]:
        """Refunds that waited for their order's outcome longer than the refund wait
        plus the longest grace."""
        return state.due(safe_ms, self.refund_wait_ms + self.campaigns.max_grace_ms())

    def prune(self, state: RefundPartition, safe_ms: int) -> None:
        """Orders whose latest event is past the retention behind the watermark."""
        if state.watermark:
            state.prune(state.watermark - self.order_retention_ms)
