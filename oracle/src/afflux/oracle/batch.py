"""The batch attribution oracle: DESIGN §3 over a finished list of events, in a few lines.

Written apart from ``afflux.shared.core.attribution.choose`` on purpose: the
differential tests compare the streaming worker with this, so the two must not
share the choice. Events are taken in arrival order (the order of the list);
that order only matters where the stream's does too: the first copy of an
order or refund wins, and refunds of one order are capped in arrival order.
Every click counts, however late it arrived: the decision depends on event
times alone (the worker reaches the same one by correcting a decision when a
late click changes it; ``net_outcomes`` nets those corrections). A winner no further
click could change (a known named click or a code ahead of every click-dependent
step) lists no assists, as the worker may decide it before the others' clicks come.

Creators' content and survey answers count the same way: every live stream (the
latest publication of a content that carries an end) and every handle in the list
counts, whenever it came, except a content first published with its creator's own key
that no ``ContentReleased`` in the list releases (held: nothing of it counts; the brand's
publication naming another campaign or creator takes such a content over when no release
came before it, written out here apart from ``takes_over``), and an
order's first survey answer counts (its own, else the first ``SurveyAnswered`` after
it; one before its order is dead-lettered by the worker and counts for nothing here).

An order or renewal in another currency than its campaign's terms, and a refund in another
currency than its order's outcome, are dead-lettered by the worker and count for nothing
here (a later copy of the same id in the right currency counts as the first), by the
same rule (``afflux.shared.core.currency``); the event-time bounds of ``admitted`` are
the worker's too (``afflux.shared.core.event_time``).

Which terms version applies is not the choice and is shared: the oracle takes
``afflux.shared.core.terms.terms_in_force`` like the worker. It is a few
obviously correct lines with a table test at every boundary of its own, and
the differential runs judge the choice, not the lookup; two lookups that could
differ on ties or before the first version would only make them disagree about
terms rather than about attribution.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from afflux.shared.content_facts import latest_time
from afflux.shared.core import attribution as ids
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.content import handle_counts
from afflux.shared.core.currency import other_currency
from afflux.shared.core.event_time import (
    BackfillLimits,
    ahead_of_own_clock,
    allowed_age_ms,
    event_time_in_future,
    event_time_too_old,
)
from afflux.shared.core.ids import order_partition_key
from afflux.shared.core.merchant import merchant_refusal
from afflux.shared.core.products import items_problem, order_bounds_problem
from afflux.shared.core.renewals import claim_refusals, renewal_order_refusal
from afflux.shared.core.terms import RecurringCommission, TermsVersion, terms_in_force
from afflux.shared.events import (
    PLACED_TYPES,
    Assist,
    ClickRecorded,
    ContentPublished,
    ContentReleased,
    ConversionAttributed,
    ConversionReversed,
    Envelope,
    LeadConfirmed,
    OrderPlaced,
    OrderRefunded,
    OrderUnattributed,
    RefundUnmatched,
    SubscriptionRenewed,
    SurveyAnswer,
    SurveyAnswered,
)

E = TypeVar("E", bound=Envelope)


@dataclass(frozen=True)
class _Stream:
    stream_id: str
    affiliate_id: str
    started_at: int
    ended_at: int


@dataclass
class _Content:
    """Per campaign: its live streams by id, and handle -> creators claiming it."""

    streams: dict[str, _Stream] = field(default_factory=dict)
    handles: dict[str, set[str]] = field(default_factory=dict)


def _handle(text: str) -> str:
    return text.strip().lstrip("@").casefold()


def _content(events: Sequence[Envelope]) -> dict[str, _Content]:
    out: dict[str, _Content] = {}
    # content -> its campaign and creator, whose key published it first, and the
    # publications that name them; a later one naming others is left out, unless the
    # content is held when it comes (first published by its creator's own key, no release
    # before it) and the later one is the brand's: it takes the content over, and the
    # held publications are forgotten. A release counts only after the content's first
    # publication (the ledger refuses one before it as ``unknown_content``).
    owners: dict[str, tuple[str, str]] = {}
    first_by: dict[str, str | None] = {}
    kept: dict[str, list[ContentPublished]] = {}
    released_before: set[str] = set()
    for e in events:
        if isinstance(e, ContentReleased) and f"{e.platform}:{e.content_id}" in owners:
            released_before.add(f"{e.platform}:{e.content_id}")
        if not isinstance(e, ContentPublished):
            continue
        key = f"{e.platform}:{e.content_id}"
        identity = (e.campaign_id, e.affiliate_id)
        first = first_by.get(key, e.reported_by) if key in owners else e.reported_by
        if e.handle and not handle_counts(first, key in released_before, e.reported_by):
            e = e.model_copy(update={"handle": None})  # the creator's word alone
        if key not in owners:
            owners[key], first_by[key], kept[key] = identity, e.reported_by, [e]
        elif owners[key] == identity:
            kept[key].append(e)
        elif (
            first_by[key] == "creator"
            and key not in released_before
            and e.reported_by != "creator"
            and owners[key][0] == e.campaign_id
        ):
            owners[key], first_by[key], kept[key] = identity, e.reported_by, [e]
    # A content whose first publication came from its creator's own key counts only if
    # the brand released it, at any later point of the log.
    for key, publications in kept.items():
        if first_by[key] == "creator" and key not in released_before:
            continue  # held until the brand releases it
        for e in publications:
            c = out.setdefault(e.campaign_id, _Content())
            start, end = e.live_started_at, e.live_ended_at
            if e.kind == "live" and start is not None and end is not None and start <= end:
                c.streams[key] = _Stream(key, e.affiliate_id, start, end)
            if e.handle and _handle(e.handle):
                c.handles.setdefault(_handle(e.handle), set()).add(e.affiliate_id)
    return out


def _surveys(events: Sequence[Envelope]) -> dict[tuple[str, str], SurveyAnswer]:
    """(campaign, order) -> its first survey answer: the order's own, else the first
    answer that came after the order."""
    out: dict[tuple[str, str], SurveyAnswer] = {}
    placed: set[tuple[str, str]] = set()
    for e in events:
        if isinstance(e, OrderPlaced):
            order = (e.campaign_id, e.order_id)
            if order not in placed:
                placed.add(order)
                if e.survey is not None:
                    out.setdefault(order, e.survey)
        elif isinstance(e, SurveyAnswered) and (e.campaign_id, e.order_id) in placed:
            out.setdefault((e.campaign_id, e.order_id), e.answer)
    return out


@dataclass
class OracleResult:
    conversions: list[Envelope] = field(default_factory=list)  # ConversionAttributed, LeadConfirmed
    reversals: list[ConversionReversed] = field(default_factory=list)
    unmatched: list[Envelope] = field(default_factory=list)  # OrderUnattributed, RefundUnmatched


def admitted(
    records: Iterable[tuple[E, int] | tuple[E, int, bool]],
    skew_ms: int,
    campaigns: Mapping[str, Sequence[TermsVersion]] | None = None,
    *,
    backfill_limit_days: int | None = None,
    now_ms: int | None = None,
) -> list[E]:
    """The input events (each with its record's timestamp, ms, and optionally whether the
    record carries the backfill header) that the worker takes. One whose event time is
    more than ``skew_ms`` after its record's timestamp is dead-lettered
    (``event_time_in_future``) and counts for nothing; for a content publication the
    latest of its times (``latest_time``) is held to that. With ``now_ms`` (a check of
    a running stack: the time it reads the topics) an event more than the own-clock
    tolerance (``OWN_CLOCK_TOLERANCE_MS``, an hour) after it is left out too, as the
    worker refuses one after its
    own clock (one within minutes of that bound when the worker read it may be judged
    apart; none but a producer with a clock ahead writes such times). With ``campaigns``: an order,
    refund or renewal of a known campaign dated more than the campaign's backfill limit
    (the orders service's, ``backfill_limit_days`` its setting) plus ``skew_ms`` before
    its record's timestamp is dead-lettered too (``event_time_too_old``), unless its
    record is a backfill."""
    # campaign -> how far an event time may be before its record's timestamp
    allowed = {c: BackfillLimits.of(v, backfill_limit_days) for c, v in (campaigns or {}).items()}
    kept: list[E] = []
    for record in records:
        event, ts, backfill = record[0], record[1], any(record[2:])
        if event_time_in_future(latest_time(event), ts, skew_ms):
            continue
        if now_ms is not None and ahead_of_own_clock(latest_time(event), now_ms, skew_ms):
            continue
        if not backfill and _too_old(event, ts, allowed, skew_ms):
            continue
        kept.append(event)
    return kept


def _too_old(event: Envelope, ts: int, limits: Mapping[str, BackfillLimits], skew_ms: int) -> bool:
    """An order, refund or renewal of a known campaign dated more than its campaign's
    backfill limit at its time plus the skew before its record's timestamp."""
    if not isinstance(event, PLACED_TYPES) or event.campaign_id not in limits:
        return False
    limit = limits[event.campaign_id].at(event.occurred_at)
    return event_time_too_old(event.occurred_at, ts, allowed_age_ms(limit, skew_ms))


def _other_currency(e: OrderPlaced | SubscriptionRenewed, versions: Sequence[TermsVersion]) -> bool:
    """An order or renewal in another currency than its campaign's terms at its time: the
    worker dead-letters it."""
    return other_currency(e.currency, terms_in_force(versions, e.occurred_at).terms.currency)


def _other_merchant(e: OrderPlaced, versions: Sequence[TermsVersion]) -> bool:
    """An order naming another merchant than its campaign's: the worker dead-letters it."""
    merchant = terms_in_force(versions, e.occurred_at).terms.merchant_id
    return bool(merchant_refusal(e.merchant_id, merchant))


def _above_max(e: OrderPlaced, versions: Sequence[TermsVersion]) -> bool:
    """An order above its campaign's ``max_order_minor`` at its time (written straight to
    the topic; the orders service refuses it at entry): the worker dead-letters it."""
    return e.amount_minor > terms_in_force(versions, e.occurred_at).terms.max_order_minor


def _items_refused(e: OrderPlaced) -> bool:
    """Items that do not make up the order's amount, or text and items past the orders
    API's bounds: the worker dead-letters the order."""
    if order_bounds_problem(e.action, e.coupon_code, e.customer_id, len(e.items)):
        return True
    rows = [(i.sku, i.category, i.quantity, i.price_minor) for i in e.items]
    return bool(items_problem(e.amount_minor, rows, e.non_commissionable_minor))


def attribute(
    events: Iterable[Envelope],
    campaigns: Mapping[str, Sequence[TermsVersion]],
) -> OracleResult:
    """Conversions, reversals and unmatched events for ``events``; orders of unknown
    campaigns are left out (the worker dead-letters them)."""
    events = list(events)
    clicks: dict[str, dict[str, ClickRecorded]] = {}  # visitor -> click id -> click
    for e in events:
        if isinstance(e, ClickRecorded):
            clicks.setdefault(e.visitor_id, {}).setdefault(e.click_id, e)
    content = _content(events)
    surveys = _surveys(events)
    out = OracleResult()
    converted: dict[tuple[str, str], ConversionAttributed] = {}
    decided: set[tuple[str, str]] = set()
    for e in events:
        if isinstance(e, OrderPlaced) and e.campaign_id in campaigns:
            if (e.campaign_id, e.order_id) in decided or _items_refused(e):
                continue
            versions = campaigns[e.campaign_id]
            if (
                _above_max(e, versions)
                or _other_currency(e, versions)
                or _other_merchant(e, versions)
            ):
                continue
            decided.add((e.campaign_id, e.order_id))
            key = order_partition_key(e.order_id, e.visitor_id, e.click_id)
            visible = list(clicks.get(key, {}).values())
            result = _one_order(
                e,
                visible,
                campaigns[e.campaign_id],
                content.get(e.campaign_id, _Content()),
                surveys.get((e.campaign_id, e.order_id)),
            )
            if isinstance(result, ConversionAttributed):
                converted[(e.campaign_id, e.order_id)] = result
                out.conversions.append(result)
            else:
                out.unmatched.append(result)
    _renewals(events, campaigns, converted, decided, out)
    # The currency of each order's outcome that earned no creator (its own, before a
    # renewal's that named its id): what its refunds are held to, as a conversion's.
    unattributed_in: dict[tuple[str, str], str] = {}
    for u in out.unmatched:
        if isinstance(u, OrderUnattributed):
            unattributed_in.setdefault((u.campaign_id, u.order_id), u.currency)
    confirmed: set[tuple[str, str]] = set()
    refunded: dict[tuple[str, str], int] = {}
    refunds_seen: set[tuple[str, str, str]] = set()
    for e in events:
        if isinstance(e, LeadConfirmed):
            order = (e.campaign_id, e.order_id)
            if order in converted and order not in confirmed:
                confirmed.add(order)
                out.conversions.append(e)
        elif isinstance(e, OrderRefunded):
            order = (e.campaign_id, e.order_id)
            conversion = converted.get(order)
            currency = conversion.currency if conversion else unattributed_in.get(order)
            # The currency before the id, as the worker: dead-lettered (currency_mismatch)
            # whatever came before it, and its id is not taken.
            if other_currency(e.currency, currency):
                continue
            if (e.campaign_id, e.order_id, e.refund_id) in refunds_seen:
                continue
            refunds_seen.add((e.campaign_id, e.order_id, e.refund_id))
            if conversion is None:
                why = "order_unattributed" if order in decided else "order_unknown"
                out.unmatched.append(_refund_unmatched(e, why))
                continue
            before = refunded.get(order, 0)
            applied = max(0, min(e.amount_minor, conversion.amount_minor - before))
            refunded[order] = before + applied
            out.reversals.append(_reversal(e, conversion, applied, before + applied))
    return out


def _one_order(
    o: OrderPlaced,
    visible: list[ClickRecorded],
    versions: Sequence[TermsVersion],
    content: _Content,
    answer: SurveyAnswer | None,
) -> ConversionAttributed | OrderUnattributed:
    v = terms_in_force(versions, o.occurred_at)
    t = v.terms
    surveyed = None  # the creator the survey answer names
    if answer is not None and answer.affiliate_id:
        surveyed = answer.affiliate_id
    elif answer is not None and answer.handle:
        h = _handle(answer.handle)
        in_terms = {_handle(k): a for k, a in (t.survey.handles if t.survey else {}).items()}
        claims = content.handles.get(h)
        # A handle two creators' content claims names nobody.
        surveyed = in_terms.get(h) or (next(iter(claims)) if claims and len(claims) == 1 else None)

    def window(affiliate: str) -> int:
        return t.window_overrides_days.get(affiliate, t.cookie_window_days) * MS_PER_DAY

    def inside(c: ClickRecorded) -> bool:
        if not o.occurred_at - window(c.affiliate_id) <= c.occurred_at <= o.occurred_at:
            return False
        # The click's cookie lasts as long as the terms it was set under said.
        then = terms_in_force(versions, c.occurred_at).terms
        lasts = then.window_overrides_days.get(c.affiliate_id, then.cookie_window_days)
        return o.occurred_at <= c.occurred_at + lasts * MS_PER_DAY

    ours = [c for c in visible if c.campaign_id == o.campaign_id]
    good = sorted(
        (c for c in ours if not c.flagged and inside(c)),
        key=lambda c: (c.occurred_at, c.click_id),
    )

    def model_pick(cs: list[ClickRecorded]) -> ClickRecorded:
        return cs[-1] if t.model == "last_click" else cs[0]

    steps: list[str] = list(t.precedence)
    if t.survey is not None and t.survey.mode != "report":
        steps.append("survey")  # after every precedence step: only unclaimed orders
    for step in steps:
        winner, click, stream = None, None, None
        if step == "livestream":
            tail = t.livestream.tail_minutes * 60_000
            live = [
                s
                for s in content.streams.values()
                if s.started_at <= o.occurred_at <= s.ended_at + tail
            ]
            if live:
                ranked = sorted(live, key=lambda s: (s.started_at, s.stream_id))
                stream = ranked[-1] if t.livestream.overlap == "latest_started" else ranked[0]
                winner = stream.affiliate_id
        elif step == "survey":
            winner = surveyed
        elif step == "click_id" and o.click_id:
            named = [c for c in good if c.click_id == o.click_id]
            if named:
                winner, click = named[0].affiliate_id, named[0]
        elif step == "coupon" and o.coupon_code:
            winner = t.coupons.get(o.coupon_code.strip().upper())
        elif step == "cookie" and good:
            click = model_pick(good)
            winner = click.affiliate_id
        if winner is not None:
            others = sorted({c.affiliate_id for c in good} - {winner})
            assists = sorted(
                (model_pick([c for c in good if c.affiliate_id == a]) for a in others),
                key=lambda c: (c.occurred_at, c.click_id),
            )
            if _settled(o, visible, steps[: steps.index(step) + 1]):
                assists = []  # a settled winner lists none (docs/attribution.md)
            conversion = _conversion(o, v, winner, step, window(winner), click, assists)
            return conversion.model_copy(
                update={
                    "live_stream_id": stream.stream_id if stream else None,
                    "survey_affiliate_id": surveyed,
                }
            )
    # Clicks after the order give no reason: the worker may or may not hold them when it
    # decides (arrival), and none of them could have won.
    before = [c for c in visible if c.occurred_at <= o.occurred_at]
    ours_before = [c for c in before if c.campaign_id == o.campaign_id]
    if o.click_id and o.click_id not in {c.click_id for c in before}:
        reason = "unknown_click"
    elif not before:
        reason = "no_click"
    elif not ours_before:
        reason = "other_campaign"
    elif any(inside(c) and not c.flagged for c in ours_before):
        reason = "cookie_not_in_precedence"  # with a cookie step, such a click wins
    elif any(inside(c) for c in ours_before):
        reason = "bot_only"
    else:
        reason = "outside_window"
    return OrderUnattributed(
        event_id=ids.unattributed_id(o.campaign_id, o.order_id),
        occurred_at=o.occurred_at,
        order_id=o.order_id,
        campaign_id=o.campaign_id,
        reason=reason,
        kind=o.kind,
        amount_minor=o.amount_minor,
        currency=o.currency,
        order_event_id=o.event_id,
        survey_affiliate_id=surveyed,
    )


def _settled(o: OrderPlaced, visible: list[ClickRecorded], steps: Sequence[str]) -> bool:
    """No further click can change the answer of these steps: a coupon never depends on
    clicks, a click id only until the click it names is known, a cookie always may."""
    known = {c.click_id for c in visible}
    return all(
        s == "coupon" or (s == "click_id" and (not o.click_id or o.click_id in known))
        for s in steps
    )


def _conversion(
    o: OrderPlaced,
    v: TermsVersion,
    winner: str,
    reason: str,
    window_ms: int,
    click: ClickRecorded | None,
    assists: list[ClickRecorded],
) -> ConversionAttributed:
    cid = ids.conversion_id(o.campaign_id, o.order_id)
    return ConversionAttributed.model_validate(
        {
            "event_id": cid,
            "occurred_at": o.occurred_at,
            "conversion_id": cid,
            "order_id": o.order_id,
            "campaign_id": o.campaign_id,
            "affiliate_id": winner,
            "reason": reason,
            "model": v.terms.model,
            "window_ms": window_ms,
            "click_id": click.click_id if click else None,
            "clicked_at": click.occurred_at if click else None,
            "lag_ms": o.occurred_at - click.occurred_at if click else None,
            "assists": [
                Assist(affiliate_id=a.affiliate_id, click_id=a.click_id, clicked_at=a.occurred_at)
                for a in assists
            ],
            "terms_version": v.version,
            "kind": o.kind,
            "action": o.action,
            "amount_minor": o.amount_minor,
            "currency": o.currency,
            "visitor_id": o.visitor_id,
            "customer_id": o.customer_id,
            "new_customer": o.new_customer,
            "order_event_id": o.event_id,
            "items": o.items,
            "non_commissionable_minor": o.non_commissionable_minor,
        }
    )


def _renewals(
    events: Sequence[Envelope],
    campaigns: Mapping[str, Sequence[TermsVersion]],
    converted: dict[tuple[str, str], ConversionAttributed],
    decided: set[tuple[str, str]],
    out: OracleResult,
) -> None:
    """Each renewal (first copy wins) pays its first order's winner within the terms'
    limit, as a conversion of the renewal's own order id that its refunds then find.
    As in the refund stage: a renewal naming its first order's id as its own is left out
    (dead-lettered), a number of a first order is the first renewal order's to name it
    (in the events' order, which keeps a topic key's), and a renewal of a renewal order
    earns nothing, whichever of the two comes first.

    A renewal whose renewal order id is an order's (one the join decided, attributed or
    not) is void: an order id is its order's. It still takes its number, and its conversion
    (had it earned one) is reversed whole at its own time, as the stage does when it reads
    both back under that id; the order is no renewal order, and its refunds are its own."""
    orders = set(decided)  # the orders the join decided, before any renewal
    renewals = [
        e
        for e in events
        if isinstance(e, SubscriptionRenewed)
        and e.campaign_id in campaigns
        and not renewal_order_refusal(e.order_id, e.renewal_order_id)
        and not _other_currency(e, campaigns[e.campaign_id])
    ]
    distinct: dict[tuple[str, str], SubscriptionRenewed] = {}  # the first copy of each
    per_campaign: dict[str, list[tuple[str, str, int]]] = {}
    for e in renewals:
        if (e.campaign_id, e.renewal_order_id) not in distinct:
            distinct[(e.campaign_id, e.renewal_order_id)] = e
            claim = (e.order_id, e.renewal_order_id, e.renewal_number)
            per_campaign.setdefault(e.campaign_id, []).append(claim)
    claims = {
        campaign: claim_refusals(claimed, orders={order for c, order in orders if c == campaign})
        for campaign, claimed in per_campaign.items()
    }
    for e in distinct.values():
        void = (e.campaign_id, e.renewal_order_id) in orders
        why = claims[e.campaign_id].get(e.renewal_order_id, "")
        first = converted.get((e.campaign_id, e.order_id))
        v = terms_in_force(campaigns[e.campaign_id], e.occurred_at)
        why = why or _renewal_refused(e, first, v.terms.plan.recurring, decided)
        if first is None or why:
            decided.add((e.campaign_id, e.renewal_order_id))  # (void: decided already)
            out.unmatched.append(_unattributed_renewal(e, why))
            continue
        cid = ids.renewal_conversion_id(e.campaign_id, e.renewal_order_id)
        conversion = ConversionAttributed(
            event_id=cid,
            occurred_at=e.occurred_at,
            conversion_id=cid,
            order_id=e.renewal_order_id,
            campaign_id=e.campaign_id,
            affiliate_id=first.affiliate_id,
            reason=first.reason,
            model=v.terms.model,
            window_ms=0,
            terms_version=v.version,
            kind="renewal",
            amount_minor=e.amount_minor,
            currency=e.currency,
            order_event_id=e.event_id,
            renewal_number=e.renewal_number,
            first_order_id=e.order_id,
        )
        out.conversions.append(conversion)
        if void:
            out.reversals.append(_voided(conversion))
            continue
        converted[(e.campaign_id, e.renewal_order_id)] = conversion


def _voided(c: ConversionAttributed) -> ConversionReversed:
    """A void renewal's conversion, reversed whole at the renewal's own time."""
    rid = ids.reattribution_reversal_id(c.campaign_id, c.order_id, c.conversion_id)
    return ConversionReversed(
        event_id=rid,
        occurred_at=c.occurred_at,
        reversal_id=rid,
        refund_id=c.conversion_id,
        conversion_id=c.conversion_id,
        order_id=c.order_id,
        campaign_id=c.campaign_id,
        affiliate_id=c.affiliate_id,
        amount_minor=c.amount_minor,
        requested_minor=c.amount_minor,
        refunded_total_minor=c.amount_minor,
        order_amount_minor=c.amount_minor,
        currency=c.currency,
        order_occurred_at=c.occurred_at,
        reason="reattributed",
    )


def _renewal_refused(
    e: SubscriptionRenewed,
    first: ConversionAttributed | None,
    recurring: RecurringCommission | None,
    decided: set[tuple[str, str]],
) -> str:
    """Why the renewal earns nothing for its first order's outcome or its terms ('' if it
    earns)."""
    if first is None:
        known = (e.campaign_id, e.order_id) in decided
        return "first_order_unattributed" if known else "first_order_unknown"
    if recurring is None:
        return "no_recurring_terms"
    if e.occurred_at < first.occurred_at:
        return "renewal_before_first_order"
    return "renewal_beyond_limit" if _beyond(recurring, first.occurred_at, e) else ""


def _unattributed_renewal(e: SubscriptionRenewed, why: str) -> OrderUnattributed:
    return OrderUnattributed.model_validate(
        {
            "event_id": ids.renewal_unattributed_id(e.campaign_id, e.renewal_order_id),
            "occurred_at": e.occurred_at,
            "order_id": e.renewal_order_id,
            "campaign_id": e.campaign_id,
            "reason": why,
            "kind": "renewal",
            "amount_minor": e.amount_minor,
            "currency": e.currency,
            "order_event_id": e.event_id,
        }
    )


def _beyond(recurring: RecurringCommission, first_at: int, e: SubscriptionRenewed) -> bool:
    if recurring.max_renewals is not None:
        return e.renewal_number > recurring.max_renewals
    assert recurring.max_months is not None
    return e.occurred_at >= _months_after(first_at, recurring.max_months)


def _months_after(at_ms: int, months: int) -> int:
    """The same day and time ``months`` calendar months later (UTC), or the month's last day;
    past year 9999 (or from a time past it), later than any event time."""
    try:
        start = datetime.fromtimestamp(at_ms // 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return 2**63
    year, month = divmod(start.year * 12 + start.month - 1 + months, 12)
    if year > 9999:  # replace() would raise for every day below: never reached
        return 2**63
    day = start.day
    while True:  # 31 January + 1 month: 31, 30, 29 February do not exist; 28 does
        try:
            moved = start.replace(year=year, month=month + 1, day=day)
        except ValueError:
            day -= 1
            continue
        return int(moved.timestamp()) * 1000 + at_ms % 1000


def _reversal(
    r: OrderRefunded, c: ConversionAttributed, applied: int, total: int
) -> ConversionReversed:
    rid = ids.reversal_id(r.campaign_id, r.order_id, r.refund_id, c.conversion_id)
    return ConversionReversed(
        event_id=rid,
        occurred_at=r.occurred_at,
        reversal_id=rid,
        refund_id=r.refund_id,
        conversion_id=c.conversion_id,
        order_id=r.order_id,
        campaign_id=r.campaign_id,
        affiliate_id=c.affiliate_id,
        amount_minor=applied,
        requested_minor=r.amount_minor,
        refunded_total_minor=total,
        order_amount_minor=c.amount_minor,
        currency=c.currency,
        order_occurred_at=c.occurred_at,
        items=r.items,
    )


def _refund_unmatched(r: OrderRefunded, reason: str) -> RefundUnmatched:
    return RefundUnmatched.model_validate(
        {
            "event_id": ids.refund_unmatched_id(r.campaign_id, r.order_id, r.refund_id),
            "occurred_at": r.occurred_at,
            "refund_id": r.refund_id,
            "order_id": r.order_id,
            "campaign_id": r.campaign_id,
            "reason": reason,
            "amount_minor": r.amount_minor,
            "currency": r.currency,
        }
    )


def canonical(events: Iterable[Envelope]) -> set[str]:
    """Events as a set of canonical JSON strings, for event-for-event comparison."""
    return {json.dumps(e.model_dump(mode="json"), sort_keys=True) for e in events}


@dataclass(frozen=True)
class NetOutcome:
    """An order's conversion once corrections are netted, and what was reversed of it."""

    affiliate_id: str
    reason: str
    click_id: str | None
    amount_minor: int
    reversed_minor: int


def net_outcomes(events: Iterable[Envelope]) -> dict[tuple[str, str], NetOutcome]:
    """(campaign, order) -> its conversion that no later conversion superseded, with the
    sum of that conversion's reversals. Orders without a conversion are absent."""
    events = list(events)
    superseded = {e.supersedes for e in events if isinstance(e, ConversionAttributed)}
    reversed_minor: dict[str, int] = {}
    for e in events:
        if isinstance(e, ConversionReversed):
            reversed_minor[e.conversion_id] = reversed_minor.get(e.conversion_id, 0) + (
                e.amount_minor
            )
    net: dict[tuple[str, str], NetOutcome] = {}
    for e in events:
        if isinstance(e, ConversionAttributed) and e.conversion_id not in superseded:
            net[(e.campaign_id, e.order_id)] = NetOutcome(
                e.affiliate_id,
                e.reason,
                e.click_id,
                e.amount_minor,
                reversed_minor.get(e.conversion_id, 0),
            )
    return net
