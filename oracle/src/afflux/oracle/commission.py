"""The commission reference: what every line of a campaign-period must finally net to.

The payouts journal posts money as facts arrive, one posting at a time; this
computes the same money from all of a period's facts at once, in a few plain
steps, so a test can feed the same events to both and compare the sums per line
and approval time (``target_amounts``). It follows the ledger v2 semantics
(docs/payouts.md, "The batch reference") and, like the attribution oracle,
shares only lookups with the engine: the rate helpers of
``afflux.shared.core.commission``, rounding (``money``), period bounds,
``terms_in_force`` and ``derived_id``.

The rules that differ from the line-array engine it replaced:

- the period's own terms (click pay, base fee, milestones, caps, their lock) are
  the version in force when the period opened; a conversion's line still uses the
  version it names;
- a refund on or after a line's approval is a ``clawback`` component of that line
  (never a separate line), and caps count what lines net to after every refund, so a
  clawback frees cap room for the lines after it;
- every line is a list of dated components (accrual, refund, clawbacks, cap cuts)
  that sum to what it pays.

Components dated at or before a moment are approved then, the rest pending.
Mappings returned here leave zeros out, so a side that never posted and a side
that posted and reversed compare equal.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from fractions import Fraction

from afflux.oracle.engagement import engagement_lines
from afflux.shared.content_facts import content_fact, key_of
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.commission import (
    ClickTally,
    ConversionFact,
    RefundFact,
    apply_rate,
    sale_rate,
    version_by_number,
)
from afflux.shared.core.engagement import ContentEvent, taken_over
from afflux.shared.core.ids import derived_id
from afflux.shared.core.journal.records import Posting
from afflux.shared.core.money import percent_of
from afflux.shared.core.periods import day_of, period_bounds, period_of
from afflux.shared.core.terms import (
    CampaignTerms,
    CommissionPlan,
    ProductRates,
    TermsVersion,
    terms_in_force,
)
from afflux.shared.events import (
    ClickRecorded,
    ContentPublished,
    ContentReleased,
    ContentStats,
    ConversionAttributed,
    ConversionReversed,
    ConversionReviewed,
    LeadConfirmed,
)
from afflux.shared.ledger_facts import conversion_fact, refund_fact

REATTRIBUTED = "reattributed"
EXCLUDED = "excluded"
HELD_UNTIL = 2**53 - 1  # a held conversion's approval while it waits for a decision


@dataclass(frozen=True, slots=True)
class Component:
    """One dated part of a line: accrual, refund, clawback:<reversal_id>, cap:creator or
    cap:campaign; approved from ``approve_at`` on."""

    approve_at: int
    name: str
    amount_minor: int


@dataclass(frozen=True, slots=True)
class TargetLine:
    """A line as it must finally stand; ``pays_minor`` is the sum of its components."""

    line_id: str
    affiliate_id: str
    kind: str  # sale, lead, action, click, base_fee, bonus
    order_id: str | None
    time: int  # the fact that dates it: conversion, first valid click, first activity, n-th sale
    approve_at: int  # time plus the lock
    components: tuple[Component, ...]
    pays_minor: int


@dataclass(frozen=True, slots=True)
class _Uncapped:
    """A line before caps: ``gross - refund - clawbacks`` is what it nets to."""

    line_id: str
    affiliate_id: str
    kind: str
    order_id: str | None
    time: int
    approve_at: int
    gross: int
    refund: int = 0  # taken back before approval
    clawbacks: tuple[tuple[RefundFact, int], ...] = ()  # taken back on or after approval

    @property
    def net(self) -> int:
        return self.gross - self.refund - sum(back for _, back in self.clawbacks)


# -- one campaign-period ------------------------------------------------------------


def reference_lines(
    campaign_id: str,
    period: str,
    conversions: Sequence[ConversionFact],
    refunds: Sequence[RefundFact],
    confirmations: Mapping[str, str],
    clicks: Sequence[ClickTally],
    versions: Sequence[TermsVersion],
    contents: Sequence[tuple[str, Sequence[ContentEvent]]] = (),
    reviews: Mapping[str, tuple[str, int]] | None = None,
    first_orders: Mapping[str, FirstOrder] | None = None,
) -> tuple[TargetLine, ...]:
    """Every line of one campaign-period with its final components, in cap order
    (time, then line id). ``confirmations`` maps confirmed orders to their event id;
    ``clicks`` holds one tally per creator; ``contents`` each content published in the
    period with its events in topic order; ``reviews`` maps a conversion id to the first
    review decision on it (approve or decline, and its time); ``first_orders`` the
    standings of first orders of earlier periods (``first_order_standings``)."""
    if not versions:
        return ()
    start, end = period_bounds(period)
    terms = terms_in_force(versions, start).terms
    by_time = sorted(conversions, key=lambda c: (c.occurred_at, c.conversion_id))
    refunds_of = _refunds_by_conversion(refunds, by_time)
    superseded = {
        cid for cid, taken in refunds_of.items() if any(r.reason == REATTRIBUTED for r in taken)
    }
    current = [c for c in by_time if c.conversion_id not in superseded]
    held = _held(by_time, current, versions, reviews or {})
    decisions = _renewals_follow(by_time, current, held, dict(reviews or {}), first_orders or {})
    declined = {cid for cid in held if decisions.get(cid, ("", 0))[0] == "decline"}
    # A held conversion counts for tiers, milestones and the base fee only once approved,
    # from the later of its time and the approval on.
    counted_at = {c.conversion_id: _counted_at(c, held, decisions) for c in current}
    counting = [c for c in current if counted_at[c.conversion_id] is not None]
    net_sales = _net_sales(counting, refunds_of, end)
    rank = {c.conversion_id: n for sales in net_sales.values() for n, c in enumerate(sales, 1)}
    valid = {t.affiliate_id: t for t in clicks if t.unique_clicks > 0}
    lines = [
        line
        for c in by_time
        if (
            line := _conversion_line(
                c,
                versions,
                refunds_of.get(c.conversion_id, []),
                rank.get(c.conversion_id),
                confirmations,
                _approval(c, versions, held, decisions),
            )
        )
        and c.conversion_id not in declined
    ]
    lines += _click_lines(campaign_id, period, terms, valid)
    moments = {cid: at for cid, at in counted_at.items() if at is not None}
    lines += _base_fees(campaign_id, period, terms, counting, valid, moments)
    lines += _milestones(campaign_id, period, terms, net_sales, moments)
    lines += [
        _Uncapped(e.line_id, e.affiliate_id, "engagement", None, e.time, e.approve_at, e.gross)
        for e in engagement_lines(campaign_id, contents, versions)
    ]
    capped = _capped(lines, terms.plan)
    return capped + _overrides(capped, terms)


def _held(
    every: Sequence[ConversionFact],
    current: Sequence[ConversionFact],
    versions: Sequence[TermsVersion],
    decisions: Mapping[str, tuple[str, int]],
) -> set[str]:
    """The conversions (of ``every``, a reattributed one too) their terms hold for review:
    a signal they carry, or burst (more than ``burst_per_hour`` of the creator's current
    conversions within the hour up to it, by (time, line id), itself counted even when
    reattributed), is in ``hold_on``; or a decision was taken on it (decided, it stays
    held whatever later facts do to its signals)."""
    keys: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for c in current:
        keys[c.affiliate_id].append((c.occurred_at, derived_id("line", c.conversion_id)))
    now_current = {c.conversion_id for c in current}
    out: set[str] = set()
    for c in every:
        review = version_by_number(versions, c.terms_version).terms.review
        if review is None:
            continue
        raised = set(c.risk_signals)
        own = (c.occurred_at, derived_id("line", c.conversion_id))
        within = [k for k in keys[c.affiliate_id] if c.occurred_at - 3_600_000 < k[0] and k <= own]
        itself = 0 if c.conversion_id in now_current else 1
        if len(within) + itself > review.thresholds.burst_per_hour:
            raised.add("burst")
        if raised & set(review.hold_on) or c.conversion_id in decisions:
            out.add(c.conversion_id)
    return out


FirstOrder = tuple[bool, tuple[str, int] | None]  # held, and its decision


def first_order_standings(
    conversions: Sequence[ConversionFact],
    refunds: Sequence[RefundFact],
    versions: Sequence[TermsVersion],
    reviews: Mapping[str, tuple[str, int]],
) -> dict[str, FirstOrder]:
    """Each order of one campaign-period's current conversions: whether that conversion
    is held, and the decision on it when held (what its renewals follow)."""
    by_time = sorted(conversions, key=lambda c: (c.occurred_at, c.conversion_id))
    refunds_of = _refunds_by_conversion(refunds, by_time)
    current = [
        c
        for c in by_time
        if not any(r.reason == REATTRIBUTED for r in refunds_of.get(c.conversion_id, []))
    ]
    held = _held(current, current, versions, reviews)
    out: dict[str, FirstOrder] = {}
    for c in sorted(current, key=lambda c: derived_id("line", c.conversion_id)):
        if c.kind != "renewal" and c.order_id not in out:
            is_held = c.conversion_id in held
            out[c.order_id] = (is_held, reviews.get(c.conversion_id) if is_held else None)
    return out


def _renewals_follow(
    every: Sequence[ConversionFact],
    current: Sequence[ConversionFact],
    held: set[str],
    decisions: dict[str, tuple[str, int]],
    outside: Mapping[str, FirstOrder],
) -> dict[str, tuple[str, int]]:
    """A renewal (of ``every``, a reattributed one too) whose first order's current
    conversion is held (in the period, else as its own period has it, ``outside``) waits
    on that conversion's decision instead of its own: it is held with it (``held`` gains
    it) and decided as it is (the decisions returned)."""
    first: dict[str, FirstOrder] = {}
    for c in sorted(current, key=lambda c: derived_id("line", c.conversion_id)):
        if c.kind != "renewal" and c.order_id not in first:
            is_held = c.conversion_id in held
            first[c.order_id] = (is_held, decisions.get(c.conversion_id) if is_held else None)
    for c in every:
        if c.kind != "renewal" or not c.first_order_id:
            continue
        standing = first.get(c.first_order_id, outside.get(c.first_order_id))
        if standing is None or not standing[0]:
            continue
        held.add(c.conversion_id)
        decisions.pop(c.conversion_id, None)
        if standing[1] is not None:
            decisions[c.conversion_id] = standing[1]
    return decisions


def _counted_at(
    c: ConversionFact, held: set[str], decisions: Mapping[str, tuple[str, int]]
) -> int | None:
    """When a conversion begins to count for tiers, milestones and the base fee: at its
    time; held, at the later of its time and an approval; None while it waits for a
    decision or once declined."""
    if c.conversion_id not in held:
        return c.occurred_at
    decision = decisions.get(c.conversion_id)
    if decision is None or decision[0] != "approve":
        return None
    return max(c.occurred_at, decision[1])


def _approval(
    c: ConversionFact,
    versions: Sequence[TermsVersion],
    held: set[str],
    decisions: Mapping[str, tuple[str, int]],
) -> int | None:
    """A held conversion's approval: never before a decision, then the later of its lock's
    end and the decision; None: the usual lock."""
    if c.conversion_id not in held:
        return None
    if c.conversion_id not in decisions:
        return HELD_UNTIL
    lock = version_by_number(versions, c.terms_version).terms.lock_days * MS_PER_DAY
    return max(c.occurred_at + lock, decisions[c.conversion_id][1])


def _refunds_by_conversion(
    refunds: Sequence[RefundFact], by_time: Sequence[ConversionFact]
) -> dict[str, list[RefundFact]]:
    """conversion id -> its refunds by (time, id); one without a conversion id belongs to
    its order's first conversion."""
    first: dict[str, str] = {}
    for c in by_time:
        first.setdefault(c.order_id, c.conversion_id)
    out: dict[str, list[RefundFact]] = defaultdict(list)
    for r in sorted(refunds, key=lambda r: (r.occurred_at, r.reversal_id)):
        owner = r.conversion_id or first.get(r.order_id)
        if owner:
            out[owner].append(r)
    return out


def _net_sales(
    current: Sequence[ConversionFact], refunds_of: Mapping[str, list[RefundFact]], end: int
) -> dict[str, list[ConversionFact]]:
    """creator -> their net sales by (time, id): a sale refunded in full before the
    period's end is none."""
    out: dict[str, list[ConversionFact]] = defaultdict(list)
    for c in current:
        refunded = sum(
            r.amount_minor for r in refunds_of.get(c.conversion_id, ()) if r.occurred_at < end
        )
        if c.kind == "sale" and not (c.amount_minor > 0 and refunded >= c.amount_minor):
            out[c.affiliate_id].append(c)
    return out


def _conversion_line(
    c: ConversionFact,
    versions: Sequence[TermsVersion],
    refunds: Sequence[RefundFact],
    rank: int | None,
    confirmations: Mapping[str, str],
    approve_at: int | None = None,
) -> _Uncapped | None:
    terms = version_by_number(versions, c.terms_version).terms
    gross = _gross(c, terms, rank, confirmations)
    if gross is None:
        return None
    survey = terms.survey
    if c.attributed_by == "survey" and survey is not None and survey.mode == "reduced_rate":
        gross = percent_of(gross, survey.reduced_rate_percent or Decimal(0))
    kind = c.kind if c.kind in ("sale", "lead", "renewal") else "action"
    if approve_at is None:
        approve_at = c.occurred_at + terms.lock_days * MS_PER_DAY
    before = [r for r in refunds if r.occurred_at < approve_at]
    after = [r for r in refunds if r.occurred_at >= approve_at]
    line = _Uncapped(
        derived_id("line", c.conversion_id),
        c.affiliate_id,
        kind,
        c.order_id,
        c.occurred_at,
        approve_at,
        gross,
    )
    if any(r.reason == REATTRIBUTED for r in before):  # another click's order all along
        return replace(line, refund=gross)
    # Every refund as the fraction of the line it takes (of the order's amount, or of
    # the commission of the items it names), in event-time order.
    fraction = _refund_fractions(c, terms, rank, refunds)
    refunded = min(Fraction(1), sum((fraction[r.reversal_id] for r in before), Fraction(0)))
    refund = _half_up(gross * refunded)
    # After approval: the cumulative refund scaled, minus what was already taken, so
    # rounding never takes more than the line (and a full refund takes all of it).
    base, rest = gross - refund, 1 - refunded
    clawbacks: list[tuple[RefundFact, int]] = []
    taken = 0
    cumulative = Fraction(0)
    for r in after:
        if r.reason == REATTRIBUTED:
            clawbacks.append((r, base - taken))
            break
        if kind not in ("sale", "renewal"):  # leads and actions keep what was approved
            continue
        cumulative += fraction[r.reversal_id]
        back = _half_up(base * min(rest, cumulative) / rest) - taken if rest > 0 else 0
        taken += back
        clawbacks.append((r, back))
    return replace(line, refund=refund, clawbacks=tuple(clawbacks))


def _half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def _item_percent(products: ProductRates | None, sku: str, category: str | None) -> object:
    """An item's own percent, EXCLUDED, or None (the sale's rate)."""
    if products is None:
        return None
    if sku in products.excluded_skus or category in products.excluded_categories:
        return EXCLUDED
    if sku in products.skus:
        return ("sku", sku, products.skus[sku])
    if category is not None and category in products.categories:
        return ("category", category, products.categories[category])
    return None


def _priced_items(
    c: ConversionFact, terms: CampaignTerms, rank: int | None
) -> tuple[int, dict[str, Fraction], dict[str, int]]:
    """A sale with items: its gross, each sku's exact commission and each sku's amount."""
    plan = terms.plan
    assert plan.sale is not None
    rate, _ = sale_rate(plan, c.new_customer, rank)
    groups: dict[Decimal, int] = defaultdict(int)  # percent -> summed: rounded once
    exact: dict[str, Fraction] = defaultdict(Fraction)
    amounts: dict[str, int] = defaultdict(int)
    default_base = sum(
        q * u
        for sku, category, q, u in c.items
        if _item_percent(plan.sale.products, sku, category) is None
    )
    for sku, category, quantity, unit in c.items:
        amount = quantity * unit
        amounts[sku] += amount
        own = _item_percent(plan.sale.products, sku, category)
        if own == EXCLUDED:
            continue
        if isinstance(own, tuple):
            groups[Decimal(own[2])] += amount
            exact[sku] += Fraction(own[2]) * amount / 100
        elif rate.percent is not None:
            groups[rate.percent] += amount
            exact[sku] += Fraction(rate.percent) * amount / 100
        elif default_base > 0:  # free items alone: the fixed rate is not paid
            exact[sku] += Fraction((rate.fixed_minor or 0) * amount, default_base)
    gross = sum(percent_of(base, percent) for percent, base in groups.items())
    if rate.percent is None and default_base > 0:
        gross += rate.fixed_minor or 0
    return gross, exact, amounts


def _refund_fractions(
    c: ConversionFact, terms: CampaignTerms, rank: int | None, refunds: Sequence[RefundFact]
) -> dict[str, Fraction]:
    whole = c.amount_minor
    exact: dict[str, Fraction] = {}
    amounts: dict[str, int] = {}
    quantities: dict[str, int] = defaultdict(int)
    if c.kind == "sale" and c.items:
        _, exact, amounts = _priced_items(c, terms, rank)
        for sku, _, quantity, _ in c.items:
            quantities[sku] += quantity
    total = sum(exact.values(), Fraction(0))
    done: dict[str, Fraction] = defaultdict(Fraction)
    out: dict[str, Fraction] = {}
    left = whole
    given = Fraction(0)  # the shares of the refunds before this one
    for asked_for in refunds:  # in event-time order
        # What it takes of the order: what it asked, capped at what the refunds dated
        # before it left (a refund's fact carries what it asked for).
        r = replace(asked_for, amount_minor=max(0, min(asked_for.amount_minor, left)))
        left -= r.amount_minor
        by_item = (
            r.items
            and total > 0
            and all(sku in amounts for sku, _, _ in r.items)
            and _items_make_up(r, amounts, quantities, c.non_commissionable_minor)
        )
        if r.amount_minor <= 0:
            out[r.reversal_id] = Fraction(0)
            continue
        if by_item:
            share = Fraction(0)
            for sku, units, amount in r.items:
                asked = (
                    Fraction(amounts[sku] * units, quantities[sku])
                    if units is not None
                    else Fraction(amount or 0)
                )
                now = min(Fraction(amounts[sku]), done[sku] + asked)
                if now > done[sku]:  # a free item (amount 0) has nothing to take back
                    share += exact[sku] * (now - done[sku]) / amounts[sku]
                done[sku] = now
            fraction = share / total
        else:
            fraction = Fraction(r.amount_minor, whole) if whole > 0 else Fraction(0)
        if whole > 0 and left == 0:  # this refund completes the order: nothing is left
            fraction = max(fraction, 1 - given)
        given += fraction
        out[r.reversal_id] = fraction
    return out


def _items_make_up(
    r: RefundFact, amounts: Mapping[str, int], quantities: Mapping[str, int], rest: int
) -> bool:
    """Whether what a refund's items name of the order (a quantity as that share of the
    item rounded down, an amount at most the item) is at most the refund's amount and
    short of it by at most the order's non-item part ``rest``. A refund whose items do not
    is the orders API's 422; produced onto the topic anyway, it is priced on its amount
    alone. (Rounded down since 2026-12-07: counted exactly, a sku on two rows at two
    prices could not be refunded a unit at a time by any amount.)"""
    named = 0
    for sku, units, amount in r.items:
        item = amounts[sku]
        if units is None:
            named += min(item, amount or 0)
        else:
            named += min(item, item * units // quantities[sku]) if quantities[sku] else 0
    return named <= r.amount_minor <= named + rest


def _gross(
    c: ConversionFact, terms: CampaignTerms, rank: int | None, confirmations: Mapping[str, str]
) -> int | None:
    """What the conversion earns under its own terms; None: the terms pay nothing for it."""
    plan = terms.plan
    if c.kind == "sale":
        if plan.sale is None:
            return None
        if c.items:
            return _priced_items(c, terms, rank)[0]
        rate, _ = sale_rate(plan, c.new_customer, rank)
        if c.non_commissionable_minor:
            base = max(0, c.amount_minor - c.non_commissionable_minor)
            if rate.percent is not None:
                return percent_of(base, rate.percent)
            return 0 if base == 0 else rate.fixed_minor or 0  # shipping alone earns nothing
        return apply_rate(rate, c.amount_minor)
    if c.kind == "renewal":
        return None if plan.recurring is None else apply_rate(plan.recurring.rate, c.amount_minor)
    if c.kind == "lead":
        if plan.lead_minor is None:
            return None
        if terms.lead_confirmation_required and c.order_id not in confirmations:
            return None
        return plan.lead_minor
    return plan.actions_minor.get(c.action or c.kind)


def _period_line(
    campaign_id: str,
    period: str,
    terms: CampaignTerms,
    affiliate: str,
    kind: str,
    gross: int,
    time: int,
    *suffix: str,
) -> _Uncapped:
    return _Uncapped(
        derived_id("line", kind, campaign_id, period, affiliate, *suffix),
        affiliate,
        kind,
        None,
        time,
        time + terms.lock_days * MS_PER_DAY,
        gross,
    )


def _click_lines(
    campaign_id: str, period: str, terms: CampaignTerms, valid: Mapping[str, ClickTally]
) -> list[_Uncapped]:
    """One line per creator and UTC day with valid clicks, dated at the day's last
    millisecond; the paid-click cap is taken by the days in order."""
    click = terms.plan.click
    if click is None:
        return []
    out = []
    for affiliate, tally in sorted(valid.items()):
        days = dict(tally.per_day)
        # A tally given without its days (a scenario's): its clicks on the first's day.
        first_day = tally.first_at - tally.first_at % MS_PER_DAY
        days[first_day] = days.get(first_day, 0) + tally.unique_clicks - sum(days.values())
        left = click.paid_click_cap
        for day in sorted(d for d, n in days.items() if n > 0):
            paid = days[day] if left is None else min(days[day], left)
            if left is not None:
                left -= paid
            end = day + MS_PER_DAY - 1
            out.append(
                _period_line(
                    campaign_id,
                    period,
                    terms,
                    affiliate,
                    "click",
                    paid * click.per_click_minor,
                    end,
                    day_of(day),
                )
            )
    return out


def _base_fees(
    campaign_id: str,
    period: str,
    terms: CampaignTerms,
    counting: Sequence[ConversionFact],
    valid: Mapping[str, ClickTally],
    moments: Mapping[str, int],
) -> list[_Uncapped]:
    fee = terms.plan.base_fee_minor
    if not fee:
        return []
    first: dict[str, int] = {a: t.first_at for a, t in valid.items()}
    for c in counting:  # any kind, paid or not, from when it counts
        at = moments[c.conversion_id]
        first[c.affiliate_id] = min(first.get(c.affiliate_id, at), at)
    return [
        _period_line(campaign_id, period, terms, affiliate, "base_fee", fee, at)
        for affiliate, at in sorted(first.items())
    ]


def _milestones(
    campaign_id: str,
    period: str,
    terms: CampaignTerms,
    net_sales: Mapping[str, Sequence[ConversionFact]],
    moments: Mapping[str, int],
) -> list[_Uncapped]:
    """A bonus per milestone reached, dated when its n-th net sale counted (the n-th
    smallest of the sales' times, an approved held sale's at its approval)."""
    out = []
    for affiliate, sales in sorted(net_sales.items()):
        counted = sorted(moments[c.conversion_id] for c in sales)
        out += [
            _period_line(
                campaign_id,
                period,
                terms,
                affiliate,
                "bonus",
                m.bonus_minor,
                counted[m.at_sales - 1],
                str(m.at_sales),
            )
            for m in terms.plan.milestones
            if len(counted) >= m.at_sales
        ]
    return out


def _within(limit: int | None, before: int, after: int) -> int:
    """What a line adding ``after - before`` to a running total keeps under ``limit``."""
    if limit is None:
        return after - before
    return min(limit, after) - min(limit, before)


def _capped(lines: Sequence[_Uncapped], plan: CommissionPlan) -> tuple[TargetLine, ...]:
    """Cut, in (time, line id) order, what each line nets to to the creator's cap, then
    what is left of that to the campaign's budget."""
    per_creator: dict[str, int] = defaultdict(int)
    campaign = 0
    out = []
    for line in sorted(lines, key=lambda x: (x.time, x.line_id)):
        net, before = line.net, per_creator[line.affiliate_id]
        per_creator[line.affiliate_id] += net
        kept = _within(plan.creator_cap_minor, before, before + net)
        paid = _within(plan.campaign_budget_minor, campaign, campaign + kept)
        campaign += kept
        at = line.approve_at
        parts = [
            Component(at, "accrual", line.gross),
            Component(at, "refund", -line.refund),
            *(Component(r.occurred_at, f"clawback:{r.reversal_id}", -b) for r, b in line.clawbacks),
            Component(at, "cap:creator", -(net - kept)),
            Component(at, "cap:campaign", -(kept - paid)),
        ]
        out.append(
            TargetLine(
                line.line_id,
                line.affiliate_id,
                line.kind,
                line.order_id,
                line.time,
                at,
                tuple(p for p in parts if p.amount_minor != 0),
                paid,
            )
        )
    return tuple(out)


def _overrides(lines: Sequence[TargetLine], terms: CampaignTerms) -> tuple[TargetLine, ...]:
    """Agency overrides, paid by the brand on top: for each line and each agency up the
    creator's chain (at most ``levels``), the agency's share of each component of the
    line, as the share of the running sum over the components by (date, the accrual
    first, name), rounded down, less what the earlier ones took; then each agency's
    overrides cut to ``cap_minor`` in (time, line id) order."""
    settings = terms.overrides
    if settings is None:
        return ()
    uncapped: list[tuple[str, TargetLine, str, list[Component]]] = []
    for line in lines:
        member = line.affiliate_id
        for level in range(1, settings.levels + 1):
            membership = settings.agencies.get(member)
            if membership is None:
                break
            share = Fraction(membership.share_percent) / 100
            parts: list[Component] = []
            running = taken = 0
            for part in sorted(
                line.components,
                key=lambda p: (p.approve_at, p.name != "accrual", p.name),
            ):
                running += part.amount_minor
                now = math.floor(share * running)  # never more than the share
                parts.append(Component(part.approve_at, part.name, now - taken))
                taken = now
            override_id = derived_id("line", "override", line.line_id, str(level))
            uncapped.append((override_id, line, membership.agency_id, parts))
            member = membership.agency_id
    used: dict[str, int] = defaultdict(int)
    out = []
    for override_id, line, agency, parts in sorted(uncapped, key=lambda u: (u[1].time, u[0])):
        net = sum(p.amount_minor for p in parts)
        paid = _within(settings.cap_minor, used[agency], used[agency] + net)
        used[agency] += net
        parts.append(Component(line.approve_at, "cap:override", paid - net))
        out.append(
            TargetLine(
                override_id,
                agency,
                "override",
                line.order_id,
                line.time,
                line.approve_at,
                tuple(p for p in parts if p.amount_minor != 0),
                paid,
            )
        )
    return tuple(out)


# -- comparing --------------------------------------------------------------------------


def target_amounts(lines: Iterable[TargetLine]) -> dict[tuple[str, int], int]:
    """(line id, approval time) -> what the line's postings approved then must add up to."""
    out: dict[tuple[str, int], int] = defaultdict(int)
    for line in lines:
        for part in line.components:
            out[(line.line_id, part.approve_at)] += part.amount_minor
    return {key: amount for key, amount in out.items() if amount != 0}


def posted_amounts(postings: Iterable[Posting]) -> dict[tuple[str, int], int]:
    """The journal's side of ``target_amounts``: its postings summed per line and
    approval time, zeros left out."""
    out: dict[tuple[str, int], int] = defaultdict(int)
    for posting in postings:
        out[(posting.line_id, posting.approve_at)] += posting.amount_minor
    return {key: amount for key, amount in out.items() if amount != 0}


def net_per_order(lines: Iterable[TargetLine]) -> dict[str, int]:
    """order id -> what its lines pay in all (every creator it was attributed to)."""
    out: dict[str, int] = defaultdict(int)
    for line in lines:
        if line.order_id is not None:
            out[line.order_id] += line.pays_minor
    return {order: amount for order, amount in out.items() if amount != 0}


def balances(lines: Iterable[TargetLine], as_of: int) -> dict[str, tuple[int, int]]:
    """creator -> (pending, approved) at ``as_of``: a component is approved from its
    ``approve_at`` on."""
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for line in lines:
        for part in line.components:
            out[line.affiliate_id][part.approve_at <= as_of] += part.amount_minor
    return {a: (pending, approved) for a, (pending, approved) in out.items() if pending or approved}


# -- from events, placed as the ledger consumer places them --------------------------------


@dataclass
class _Placed:
    """What one campaign-period received."""

    conversions: dict[str, ConversionFact] = field(default_factory=dict)
    # by (conversion id, reversal id): the first record of each
    refunds: dict[tuple[str, str], RefundFact] = field(default_factory=dict)
    confirmations: dict[str, str] = field(default_factory=dict)
    seen_clicks: set[str] = field(default_factory=set)
    unique: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    first: dict[str, int] = field(default_factory=dict)
    # creator -> day start -> valid unique clicks that day
    days: dict[str, dict[int, int]] = field(default_factory=lambda: defaultdict(dict))
    content: dict[str, list[ContentEvent]] = field(default_factory=dict)  # key -> events
    content_ids: set[str] = field(default_factory=set)  # first copy of an event id wins
    reviews: dict[str, tuple[str, int]] = field(default_factory=dict)  # first decision each

    def tallies(self) -> tuple[ClickTally, ...]:
        return tuple(
            ClickTally(a, n, self.first[a], tuple(sorted(self.days[a].items())))
            for a, n in sorted(self.unique.items())
        )


def reference_from_events(
    events: Iterable[object], versions_by_campaign: Mapping[str, Sequence[TermsVersion]]
) -> dict[tuple[str, str], tuple[TargetLine, ...]]:
    """(campaign, period) -> its reference lines, for events in arrival order.

    Each event lands where the ledger consumer puts it, and one it refuses counts for
    nothing: a campaign without terms, a conversion above its terms' ``max_order_minor``
    or in another currency than the campaign's latest terms. A conversion lands in its
    order time's period, a reversal in its order time's (``order_occurred_at``), a click
    in its own; a lead confirmation in the period of its order's conversion (the last
    one placed); a review decision in its order time's (``order_occurred_at``), the first
    one of a conversion standing. The same conversion id placed twice keeps the first (a
    later copy under another event id changes nothing, or is refused as a conflict; one
    dated in another period of the campaign is refused); a click counts once per click
    id, first copy wins, and is valid without any quality flag.
    Every period that received anything is in the result, lines or not. A content
    lives in the period of its first publication; its stats and releases follow it
    there (none before it: dead-lettered), a publication by another campaign or
    creator counts for nothing, unless the content was first published by its creator's
    own key, is not released yet, and the publication is the brand's: it takes the content
    over (held for good where it was, a ``TakenOver``; it lives on in the brand's
    publication's period).
    """
    placed: dict[tuple[str, str], _Placed] = defaultdict(_Placed)
    routes: dict[str, tuple[str, str, str]] = {}  # content -> campaign, period, creator
    awaiting: set[str] = set()  # first published by the creator's key, not released yet
    period_of_order: dict[tuple[str, str], str] = {}
    conversion_period: dict[tuple[str, str], str] = {}  # its first period, campaign-wide
    confirmed: dict[tuple[str, str], str] = {}

    def where(campaign: str, at: int) -> str | None:
        versions = versions_by_campaign.get(campaign)
        if not versions:
            return None
        return period_of(at, terms_in_force(versions, at).terms.plan.period)

    for event in events:
        if isinstance(event, ConversionAttributed):
            period = where(event.campaign_id, event.occurred_at)
            if period is None or not _accepted(event, versions_by_campaign[event.campaign_id]):
                continue
            first = conversion_period.setdefault((event.campaign_id, event.conversion_id), period)
            held = placed[(event.campaign_id, period)].conversions
            if first != period or event.conversion_id in held:
                continue  # the first decision stands: a copy changes nothing, a conflict is refused
            held[event.conversion_id] = conversion_fact(event)
            period_of_order[(event.campaign_id, event.order_id)] = period
        elif isinstance(event, ConversionReversed):
            period = where(event.campaign_id, event.order_occurred_at)
            if period is not None:
                # The first record of a reversal id of a conversion stands, as in the
                # ledger (a copy changes nothing, a conflicting one is refused).
                refunds = placed[(event.campaign_id, period)].refunds
                refunds.setdefault((event.conversion_id, event.reversal_id), refund_fact(event))
        elif isinstance(event, ConversionReviewed):
            period = where(event.campaign_id, event.order_occurred_at)
            if period is not None:
                placed[(event.campaign_id, period)].reviews.setdefault(
                    event.conversion_id, (event.decision, event.occurred_at)
                )
        elif isinstance(event, LeadConfirmed):
            if where(event.campaign_id, event.occurred_at) is not None:
                confirmed[(event.campaign_id, event.order_id)] = event.event_id
        elif isinstance(event, ClickRecorded):
            period = where(event.campaign_id, event.occurred_at)
            if period is None:
                continue
            facts = placed[(event.campaign_id, period)]
            if event.click_id in facts.seen_clicks:
                continue
            facts.seen_clicks.add(event.click_id)
            if not event.reasons:
                a = event.affiliate_id
                facts.unique[a] += 1
                facts.first[a] = min(facts.first.get(a, event.occurred_at), event.occurred_at)
                day = event.occurred_at - event.occurred_at % MS_PER_DAY
                facts.days[a][day] = facts.days[a].get(day, 0) + 1
        elif isinstance(event, ContentPublished | ContentStats | ContentReleased):
            key = key_of(event)
            route = routes.get(key)
            if isinstance(event, ContentPublished):
                period = where(event.campaign_id, event.published_at)
                if period is None:
                    continue
                if route is None:
                    route = routes[key] = (event.campaign_id, period, event.affiliate_id)
                    if event.reported_by == "creator":
                        awaiting.add(key)
                if route != (event.campaign_id, route[1], event.affiliate_id):
                    if key not in awaiting or event.reported_by == "creator":
                        continue
                    # The brand takes over a content held as the creator's word: held for
                    # good where it was, it starts again where this publication puts it.
                    placed[route[:2]].content[key].append(taken_over(key, event.event_id))
                    awaiting.discard(key)
                    route = routes[key] = (event.campaign_id, period, event.affiliate_id)
            if route is None:
                continue
            if isinstance(event, ContentReleased):
                awaiting.discard(key)
            facts = placed[route[:2]]
            if event.event_id not in facts.content_ids:
                facts.content_ids.add(event.event_id)
                facts.content.setdefault(key, []).append(content_fact(event))
    for (campaign, order), event_id in confirmed.items():
        if (period := period_of_order.get((campaign, order))) is not None:
            placed[(campaign, period)].confirmations[order] = event_id
    # What renewals in later periods follow of their first orders.
    standings: dict[str, dict[str, FirstOrder]] = defaultdict(dict)
    for (campaign, _), facts in sorted(placed.items()):
        standings[campaign].update(
            first_order_standings(
                tuple(facts.conversions.values()),
                tuple(facts.refunds.values()),
                versions_by_campaign[campaign],
                facts.reviews,
            )
        )
    return {
        (campaign, period): reference_lines(
            campaign,
            period,
            tuple(facts.conversions.values()),
            tuple(facts.refunds.values()),
            facts.confirmations,
            facts.tallies(),
            versions_by_campaign[campaign],
            tuple(facts.content.items()),
            reviews=facts.reviews,
            first_orders=standings[campaign],
        )
        for (campaign, period), facts in sorted(placed.items())
    }


def _accepted(event: ConversionAttributed, versions: Sequence[TermsVersion]) -> bool:
    limit = version_by_number(versions, event.terms_version).terms.max_order_minor
    latest = max(versions, key=lambda v: v.version).terms
    return event.amount_minor <= limit and event.currency == latest.currency
