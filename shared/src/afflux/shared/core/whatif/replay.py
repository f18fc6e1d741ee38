"""One replay: a campaign's recorded inputs through attribution and commission under
one terms history, the ledger untouched.

The same pure core the services run: ``attribution.choose`` decides each order under
the version in force at its event time (``terms_in_force``), as the attribution worker
does once every click is in (a late click's correction included: the decision depends
on event times alone), and ``journal.period.PeriodState.step`` prices each
campaign-period's conversions, refunds, confirmations and click figures as the ledger
does (tiers, milestones, caps, budget, refunds before and after approval). What the
ledger would refuse is left out the same way: a conversion above its terms'
``max_order_minor`` or in another currency than the campaign's.

The range picks orders (and the clicks paid per click) by event time; an order's
refunds and confirmation follow it whenever they came, and every recorded click of its
visitor may win it, however long before the range began.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from afflux.shared.core import attribution as ids
from afflux.shared.core.attribution import (
    NO_CONTENT,
    Attributed,
    OrderTouch,
    choose,
    click_windows,
)
from afflux.shared.core.commission import ConversionFact, RefundFact
from afflux.shared.core.engagement import ContentEvent
from afflux.shared.core.journal.period import ClickFigures, PeriodState, StepInput
from afflux.shared.core.periods import period_of
from afflux.shared.core.renewals import claim_refusals, renewal_refusal
from afflux.shared.core.terms import TermsVersion, terms_in_force
from afflux.shared.core.whatif.log import EVER, CampaignLog, DateRange, LoggedOrder, LoggedRenewal

_DAY = 86_400_000
_CHECK_EVERY = 4096  # orders decided between two asks whether the replay must stop


class ReplayStopped(RuntimeError):
    """The replay's ``stop`` said so (its caller's time limit): nothing is answered."""


def _never() -> bool:
    return False


@dataclass(frozen=True, slots=True)
class OrderDecision:
    """Who won an order under one history, and why (a win reason, or why nobody did)."""

    order_id: str
    affiliate_id: str | None
    reason: str
    model: str
    at: int
    amount_minor: int
    placed: bool = False  # a conversion the ledger takes (not refused, not unattributed)


@dataclass(frozen=True, slots=True)
class ReplayedLine:
    """A ledger line as the replay left it: what it pays and the rule that priced it."""

    line_id: str
    affiliate_id: str
    kind: str
    order_id: str | None
    period: str
    paid_minor: int
    rule: str


@dataclass(frozen=True)
class Replay:
    campaign_id: str
    currency: str
    decisions: dict[str, OrderDecision]
    lines: dict[str, ReplayedLine]

    def commission_by_creator(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for line in self.lines.values():
            out[line.affiliate_id] += line.paid_minor
        return dict(out)

    def conversions_by_creator(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for decision in self.decisions.values():
            if decision.placed and decision.affiliate_id is not None:
                out[decision.affiliate_id] += 1
        return dict(out)


@dataclass(slots=True)
class _Period:
    conversions: list[ConversionFact]
    refunds: list[RefundFact]
    confirmations: list[tuple[str, str]]
    clicks: dict[str, list[int]]  # creator -> [unique clicks, first at, last at]
    content: list[ContentEvent]
    # creator -> day start (ms) -> valid unique clicks that day: the per-day click lines
    click_days: dict[str, dict[int, int]] = field(default_factory=dict)


def replay(
    log: CampaignLog,
    versions: Sequence[TermsVersion],
    window: DateRange = EVER,
    stop: Callable[[], bool] | None = None,
) -> Replay:
    """The log's orders in ``window`` (and their refunds, confirmations, and the valid
    clicks in ``window``) decided and priced under ``versions``. ``stop`` is asked every
    few thousand orders and before each campaign-period is priced: once it holds, the
    replay raises ``ReplayStopped``."""
    stop = stop or _never
    versions = tuple(versions)
    latest = max(versions, key=lambda v: v.version).terms
    currency = latest.currency
    confirming = any(v.terms.lead_confirmation_required for v in versions)
    periods: dict[str, _Period] = {}
    period_cache: dict[int, str] = {}

    def period(at: int) -> _Period:
        day = at // 86_400_000
        name = period_cache.get(day)
        if name is None:
            name = period_of(at, terms_in_force(versions, at).terms.plan.period)
            # A day a version starts on may hold two plans' periods: never remembered.
            if not any(v.effective_from // 86_400_000 == day for v in versions):
                period_cache[day] = name
        found = periods.get(name)
        if found is None:
            found = periods[name] = _Period([], [], [], {}, [])
        return found

    content = log.content_view() if log.streams or log.handle_claims else NO_CONTENT

    def decide(order: LoggedOrder) -> OrderDecision:
        terms = terms_in_force(versions, order.at).terms
        touch = OrderTouch(
            order.order_id,
            log.campaign_id,
            order.at,
            order.click_id,
            order.coupon_code,
            order.survey_affiliate_id,
            order.survey_handle,
        )
        clicks = log.clicks.get(order.key, ())
        decision = choose(touch, clicks, terms, content, click_windows(versions))
        if not isinstance(decision, Attributed):
            return OrderDecision(
                order.order_id, None, decision.reason, terms.model, order.at, order.amount_minor
            )
        placed = order.amount_minor <= terms.max_order_minor and order.currency == currency
        return OrderDecision(
            order.order_id,
            decision.affiliate_id,
            decision.reason,
            terms.model,
            order.at,
            order.amount_minor,
            placed,
        )

    decisions: dict[str, OrderDecision] = {}
    converted: dict[str, tuple[int, ConversionFact, _Period]] = {}  # order -> amount, ...
    for n, order in enumerate(log.orders):
        if n % _CHECK_EVERY == _CHECK_EVERY - 1 and stop():
            raise ReplayStopped("stopped while deciding orders")
        if not window.holds(order.at):
            continue
        decided = decisions[order.order_id] = decide(order)
        if not decided.placed or decided.affiliate_id is None:
            continue
        cid = ids.conversion_id(log.campaign_id, order.order_id)
        fact = ConversionFact(
            conversion_id=cid,
            event_id=cid,
            order_id=order.order_id,
            affiliate_id=decided.affiliate_id,
            kind=order.kind,
            action=order.action,
            amount_minor=order.amount_minor,
            currency=order.currency,
            new_customer=order.new_customer,
            occurred_at=order.at,
            terms_version=terms_in_force(versions, order.at).version,
            items=order.items,
            non_commissionable_minor=order.non_commissionable_minor,
            attributed_by=decided.reason,
        )
        home = period(order.at)
        home.conversions.append(fact)
        converted[order.order_id] = (order.amount_minor, fact, home)

    if log.renewals:
        firsts = {o.order_id: o for o in log.orders}
        # Over the whole log, as the worker claimed numbers whatever the range.
        claims = claim_refusals(
            ((r.order_id, r.renewal_order_id, r.number) for r in log.renewals), orders=firsts
        )
        for renewal in log.renewals:
            if not window.holds(renewal.at) or renewal.renewal_order_id in firsts:
                continue  # (a renewal naming an order's id is void: its line nets to 0)
            first = decisions.get(renewal.order_id)
            if first is None and renewal.order_id in firsts:  # bought before the range
                first = decide(firsts[renewal.order_id])
            refused = claims.get(renewal.renewal_order_id, "")
            decided = _renewal_decision(renewal, first, versions, currency, refused)
            decisions[renewal.renewal_order_id] = decided
            if not decided.placed or decided.affiliate_id is None or first is None:
                continue
            version = terms_in_force(versions, renewal.at)
            cid = ids.renewal_conversion_id(log.campaign_id, renewal.renewal_order_id)
            fact = ConversionFact(
                conversion_id=cid,
                event_id=cid,
                order_id=renewal.renewal_order_id,
                affiliate_id=decided.affiliate_id,
                kind="renewal",
                action=None,
                amount_minor=renewal.amount_minor,
                currency=renewal.currency,
                new_customer=False,
                occurred_at=renewal.at,
                terms_version=version.version,
                renewal_number=renewal.number,
                attributed_by=first.reason,
            )
            home = period(renewal.at)
            home.conversions.append(fact)
            converted[renewal.renewal_order_id] = (renewal.amount_minor, fact, home)

    # Each refund as asked: the journal caps a line's refunds in event-time order
    # (``rules.applied_refunds``), as the ledger does whatever order they were read in.
    for refund in log.refunds:
        found = converted.get(refund.order_id)
        if found is None:
            continue
        _, fact, home = found
        rid = ids.reversal_id(log.campaign_id, refund.order_id, refund.refund_id)
        home.refunds.append(
            RefundFact(
                reversal_id=rid,
                event_id=rid,
                order_id=refund.order_id,
                amount_minor=refund.amount_minor,
                occurred_at=refund.at,
                conversion_id=fact.conversion_id,
                items=refund.items,
            )
        )
    if confirming:
        for order_id, confirmation in log.confirmations.items():
            if order_id in converted:
                converted[order_id][2].confirmations.append((order_id, confirmation.event_id))

    _tally_clicks(log, versions, window, period)
    for _key, published_at, content_event in log.content:
        if window.holds(published_at):  # a content lives in its first publication's period
            period(published_at).content.append(content_event)

    lines: dict[str, ReplayedLine] = {}
    for name, facts in sorted(periods.items()):
        if stop():
            raise ReplayStopped(f"stopped before pricing {name}")
        state = PeriodState(log.campaign_id, name, currency, versions)
        state.step(
            StepInput(
                conversions=tuple(facts.conversions),
                refunds=tuple(facts.refunds),
                confirmations=tuple(facts.confirmations),
                clicks=tuple(
                    ClickFigures(
                        a, n, first, last, tuple(sorted(facts.click_days.get(a, {}).items()))
                    )
                    for a, (n, first, last) in sorted(facts.clicks.items())
                ),
                content=tuple(facts.content),
            )
        )
        for record in state.lines.values():
            lines[record.line_id] = ReplayedLine(
                record.line_id,
                record.affiliate_id,
                record.kind,
                record.order_id,
                name,
                record.paid,
                _rule(record.rule, record.net, record.creator_paid, record.paid),
            )
    return Replay(log.campaign_id, currency, decisions, lines)


def _rule(rule: str, net: int, creator_paid: int, paid: int) -> str:
    """The line's rule, and what a cap cut of it."""
    if creator_paid < net:
        rule += f"; creator cap cut {net - creator_paid}"
    if paid < creator_paid:
        rule += f"; campaign budget cut {creator_paid - paid}"
    return rule


def _tally_clicks(
    log: CampaignLog,
    versions: Sequence[TermsVersion],
    window: DateRange,
    period: Callable[[int], _Period],
) -> None:
    """Each period's valid clicks per creator, from the log's daily sums: a day wholly in
    the range and in one plan's period is added whole; a day the range or a new version
    cuts through is counted click by click."""
    starts = {v.effective_from // _DAY for v in versions}
    cut: set[int] = set()
    for day, tallies in log.valid_days.items():
        low, high = day * _DAY, (day + 1) * _DAY
        start, end = window.start, window.end
        if (start is not None and start >= high) or (end is not None and end <= low):
            continue  # the day is outside the range
        inside = (start is None or start <= low) and (end is None or end >= high)
        whole = inside and day not in starts
        if not whole:
            cut.add(day)
            continue
        found = period(low)
        for creator, (count, first, last) in tallies.items():
            _add(found, creator, count, first, last, low)
    if not cut:
        return
    for clicks in log.clicks.values():
        for click in clicks:
            if not click.flagged and click.at // _DAY in cut and window.holds(click.at):
                day = click.at // _DAY * _DAY
                _add(period(click.at), click.affiliate_id, 1, click.at, click.at, day)


def _add(found: _Period, creator: str, count: int, first: int, last: int, day_start: int) -> None:
    days = found.click_days.setdefault(creator, {})
    days[day_start] = days.get(day_start, 0) + count
    figures = found.clicks
    tally = figures.get(creator)
    if tally is None:
        figures[creator] = [count, first, last]
    else:
        tally[0] += count
        tally[1] = min(tally[1], first)
        tally[2] = max(tally[2], last)


def _renewal_decision(
    renewal: LoggedRenewal,
    first: OrderDecision | None,
    versions: Sequence[TermsVersion],
    currency: str,
    refused: str = "",
) -> OrderDecision:
    """A renewal pays whoever won its first order, as the terms in force at the renewal
    allow (``core.renewals``); else nobody, with the reason (``refused``: why its claim
    of a number or of a first order failed)."""
    terms = terms_in_force(versions, renewal.at).terms
    order, at, amount = renewal.renewal_order_id, renewal.at, renewal.amount_minor
    if refused:
        return OrderDecision(order, None, refused, terms.model, at, amount)
    if first is None or first.affiliate_id is None or not first.placed:
        return OrderDecision(order, None, "first_order_unattributed", terms.model, at, amount)
    refusal = renewal_refusal(terms.plan.recurring, first.at, renewal.number, renewal.at)
    if refusal:
        return OrderDecision(order, None, refusal, terms.model, at, amount)
    placed = amount <= terms.max_order_minor and renewal.currency == currency
    return OrderDecision(order, first.affiliate_id, "renewal", terms.model, at, amount, placed)
