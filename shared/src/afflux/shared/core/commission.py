"""The commission engine (DESIGN §4): a campaign-period's ledger lines from its facts.

The ledger of one campaign and period is a pure function of the facts that
belong to it (conversions, lead confirmations, refunds applied to conversions,
valid clicks) and the campaign's terms. Facts are taken in event-time order
(then by id), never in arrival order, so the same facts always give the same
lines however the partitions interleave, on a replay too. A fact that arrives
late changes the lines it affects (a tier rank, a cap cut), and the line
records why.

- Per sale: percent (Decimal, rounded half up once) or fixed; the new-customer
  rate replaces it for a new customer; otherwise a volume tier replaces it from
  the tier's ``from_sales``-th net sale of the period on (marginal).
- Per lead (only once confirmed when the terms require it), per action kind
  (``install`` or the action's name), per valid unique click up to the
  paid-click cap, a base fee per creator with any activity, milestone bonuses
  while net sales stay at or above the threshold.
- Caps cut, in event-time order, each accrual to what is left of the creator's
  cap and the campaign budget; the cut is recorded on the line.
- A refund before the line's approval time reduces it pro rata; a refund on or
  after approval is a separate negative ``clawback`` line (approved at once, so it
  is carried into the next payout). A sale refunded in full before the period
  ends stops counting as a net sale (tiers and milestones follow).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.ids import derived_id
from afflux.shared.core.money import percent_of, pro_rata
from afflux.shared.core.periods import period_bounds
from afflux.shared.core.terms import (
    CampaignTerms,
    CommissionPlan,
    Rate,
    TermsVersion,
    terms_in_force,
)


@dataclass(frozen=True, slots=True)
class ConversionFact:
    conversion_id: str
    event_id: str
    order_id: str
    affiliate_id: str
    kind: str
    action: str | None
    amount_minor: int
    currency: str
    new_customer: bool
    occurred_at: int
    terms_version: int


@dataclass(frozen=True, slots=True)
class RefundFact:
    reversal_id: str
    event_id: str
    order_id: str
    amount_minor: int  # as applied by attribution (already capped at the order amount)
    occurred_at: int
    conversion_id: str = ""  # the conversion reversed ("" in facts stored before corrections)
    reason: str = "refund"  # or "reattributed": a correction gave the order to another click


@dataclass(frozen=True, slots=True)
class ClickTally:
    """Valid clicks (no quality flag, see ``click_flags``) of one creator in the period."""

    affiliate_id: str
    unique_clicks: int
    first_at: int


@dataclass(frozen=True, slots=True)
class PeriodFacts:
    campaign_id: str
    period: str
    conversions: tuple[ConversionFact, ...] = ()
    confirmed_orders: frozenset[str] = frozenset()
    confirmation_ids: Mapping[str, str] = field(default_factory=dict)  # order -> event id
    refunds: tuple[RefundFact, ...] = ()
    clicks: tuple[ClickTally, ...] = ()


@dataclass(frozen=True, slots=True)
class CapCut:
    scope: str  # "creator" or "campaign"
    cut_minor: int


@dataclass(frozen=True, slots=True)
class Line:
    """One ledger line; ``amount_minor`` is what the creator is owed for it."""

    line_id: str
    affiliate_id: str
    campaign_id: str
    currency: str
    period: str
    kind: str  # sale, lead, action, click, base_fee, bonus, clawback
    amount_minor: int
    gross_minor: int  # before refunds and caps
    refunded_minor: int  # reduced by refunds before approval
    occurred_at: int
    approve_at: int
    rule: str
    terms_version: int
    order_id: str | None = None
    source_event_ids: tuple[str, ...] = ()
    cap_cuts: tuple[CapCut, ...] = ()


@dataclass(frozen=True, slots=True)
class _Accrual:
    line_id: str
    affiliate_id: str
    kind: str
    gross: int
    refunded: int
    occurred_at: int
    approve_at: int
    rule: str
    terms_version: int
    order_id: str | None
    sources: tuple[str, ...]
    conversion_id: str | None = None


def version_by_number(versions: Sequence[TermsVersion], number: int) -> TermsVersion:
    for version in versions:
        if version.version == number:
            return version
    return max(versions, key=lambda v: v.version)


def apply_rate(rate: Rate, amount_minor: int) -> int:
    if rate.percent is not None:
        return percent_of(amount_minor, rate.percent)
    return rate.fixed_minor or 0


def describe_rate(rate: Rate) -> str:
    return f"{rate.percent}%" if rate.percent is not None else f"fixed {rate.fixed_minor}"


def sale_rate(plan: CommissionPlan, new_customer: bool, rank: int | None) -> tuple[Rate, str]:
    """The rate a sale is paid at and why; ``rank`` is its place among net sales."""
    assert plan.sale is not None
    if new_customer and plan.sale.new_customer is not None:
        return plan.sale.new_customer, "new-customer rate"
    tier = None
    if rank is not None:
        for candidate in plan.tiers:
            if candidate.from_sales <= rank:
                tier = candidate
    if tier is not None:
        return tier.rate, f"tier from net sale {tier.from_sales} (this is net sale {rank})"
    return plan.sale.rate, "base rate"


def ledger_lines(
    facts: PeriodFacts, versions: Sequence[TermsVersion], currency: str
) -> tuple[Line, ...]:
    """Every line of one campaign-period, in event-time order."""
    if not versions:
        return ()
    start, end = period_bounds(facts.period)
    conversions = sorted(facts.conversions, key=lambda c: (c.occurred_at, c.conversion_id))
    refunds = _refunds_by_conversion(facts.refunds, conversions)
    # A conversion a correction replaced was never the order's: no net sale, no base fee.
    superseded = {r.conversion_id for r in facts.refunds if r.reason == "reattributed"}
    current = [c for c in conversions if c.conversion_id not in superseded]
    last_fact = max(
        [c.occurred_at for c in conversions] + [t.first_at for t in facts.clicks] + [start]
    )
    period_terms = terms_in_force(versions, min(last_fact, end - 1)).terms
    net_sales = _net_sales(current, refunds, end)
    ranks = {
        c.conversion_id: rank
        for sales in net_sales.values()
        for rank, c in enumerate(sales, start=1)
    }
    accruals = [
        a
        for c in conversions
        if (a := _conversion_accrual(c, facts, versions, refunds, ranks.get(c.conversion_id)))
    ]
    accruals += _click_accruals(facts, period_terms)
    accruals += _base_fees(facts, current, period_terms)
    accruals += _milestones(facts, net_sales, period_terms)
    return _capped(facts, accruals, refunds, period_terms, currency)


def _refunds_by_conversion(
    facts: Sequence[RefundFact], conversions: Sequence[ConversionFact]
) -> dict[str, list[RefundFact]]:
    """conversion id -> its reversals by time; a fact without a conversion id (stored
    before corrections existed) belongs to its order's first conversion."""
    first: dict[str, str] = {}
    for c in conversions:
        first.setdefault(c.order_id, c.conversion_id)
    refunds: dict[str, list[RefundFact]] = defaultdict(list)
    for refund in sorted(facts, key=lambda r: (r.occurred_at, r.reversal_id)):
        refunds[refund.conversion_id or first.get(refund.order_id, "")].append(refund)
    return refunds


def _net_sales(
    conversions: Sequence[ConversionFact], refunds: Mapping[str, list[RefundFact]], end: int
) -> dict[str, list[ConversionFact]]:
    net: dict[str, list[ConversionFact]] = defaultdict(list)
    for c in conversions:
        if c.kind != "sale":
            continue
        refunded = sum(
            r.amount_minor for r in refunds.get(c.conversion_id, ()) if r.occurred_at < end
        )
        if c.amount_minor > 0 and refunded >= c.amount_minor:
            continue
        net[c.affiliate_id].append(c)
    return net


def _conversion_accrual(
    c: ConversionFact,
    facts: PeriodFacts,
    versions: Sequence[TermsVersion],
    refunds: Mapping[str, list[RefundFact]],
    rank: int | None,
) -> _Accrual | None:
    terms = version_by_number(versions, c.terms_version).terms
    plan = terms.plan
    sources: tuple[str, ...] = (c.event_id,)
    if c.kind == "sale":
        if plan.sale is None:
            return None
        rate, why = sale_rate(plan, c.new_customer, rank)
        gross = apply_rate(rate, c.amount_minor)
        rule = f"sale: {describe_rate(rate)} of {c.amount_minor} ({why})"
    elif c.kind == "lead":
        if plan.lead_minor is None:
            return None
        if terms.lead_confirmation_required:
            if c.order_id not in facts.confirmed_orders:
                return None
            sources += (facts.confirmation_ids.get(c.order_id, ""),)
        gross = plan.lead_minor
        rule = f"lead: fixed {gross}" + (" (confirmed)" if terms.lead_confirmation_required else "")
    else:
        action = c.action or c.kind
        if action not in plan.actions_minor:
            return None
        gross = plan.actions_minor[action]
        rule = f"action {action}: fixed {gross}"
    approve_at = c.occurred_at + terms.lock_days * MS_PER_DAY
    refunded = 0
    for refund in refunds.get(c.conversion_id, ()):
        if refund.occurred_at < approve_at:
            refunded += refund.amount_minor
            sources += (refund.event_id,)
            if refund.reason == "reattributed":
                rule += "; reduced: reattributed to another click before approval"
    reduction = 0
    if refunded and c.amount_minor > 0:
        reduction = pro_rata(gross, min(refunded, c.amount_minor), c.amount_minor)
    if "reattributed" in rule:
        reduction = gross  # whatever the kind: the order is another click's now
    return _Accrual(
        line_id=derived_id("line", c.conversion_id),
        affiliate_id=c.affiliate_id,
        kind=c.kind if c.kind in ("sale", "lead") else "action",
        gross=gross,
        refunded=reduction,
        occurred_at=c.occurred_at,
        approve_at=approve_at,
        rule=rule,
        terms_version=c.terms_version,
        order_id=c.order_id,
        sources=sources,
        conversion_id=c.conversion_id,
    )


def _period_accrual(
    facts: PeriodFacts,
    terms: CampaignTerms,
    affiliate: str,
    kind: str,
    gross: int,
    at: int,
    rule: str,
) -> _Accrual:
    return _Accrual(
        line_id=derived_id("line", kind, facts.campaign_id, facts.period, affiliate),
        affiliate_id=affiliate,
        kind=kind,
        gross=gross,
        refunded=0,
        occurred_at=at,
        approve_at=at + terms.lock_days * MS_PER_DAY,
        rule=rule,
        terms_version=0,
        order_id=None,
        sources=(),
    )


def _click_accruals(facts: PeriodFacts, terms: CampaignTerms) -> list[_Accrual]:
    click = terms.plan.click
    if click is None:
        return []
    out = []
    for tally in sorted(facts.clicks, key=lambda t: t.affiliate_id):
        paid = tally.unique_clicks
        if click.paid_click_cap is not None:
            paid = min(paid, click.paid_click_cap)
        if paid <= 0:
            continue
        rule = f"clicks: {paid} of {tally.unique_clicks} valid unique clicks"
        rule += f" at {click.per_click_minor}"
        if click.paid_click_cap is not None:
            rule += f" (paid-click cap {click.paid_click_cap})"
        out.append(
            _period_accrual(
                facts,
                terms,
                tally.affiliate_id,
                "click",
                paid * click.per_click_minor,
                tally.first_at,
                rule,
            )
        )
    return out


def _base_fees(
    facts: PeriodFacts, conversions: Sequence[ConversionFact], terms: CampaignTerms
) -> list[_Accrual]:
    fee = terms.plan.base_fee_minor
    if not fee:
        return []
    first: dict[str, int] = {}
    for c in conversions:
        first[c.affiliate_id] = min(first.get(c.affiliate_id, c.occurred_at), c.occurred_at)
    for tally in facts.clicks:
        if tally.unique_clicks > 0:
            at = min(first.get(tally.affiliate_id, tally.first_at), tally.first_at)
            first[tally.affiliate_id] = at
    return [
        _period_accrual(facts, terms, a, "base_fee", fee, at, f"base fee {fee} for the period")
        for a, at in sorted(first.items())
    ]


def _milestones(
    facts: PeriodFacts, net_sales: Mapping[str, list[ConversionFact]], terms: CampaignTerms
) -> list[_Accrual]:
    out = []
    for affiliate, sales in sorted(net_sales.items()):
        for milestone in terms.plan.milestones:
            if len(sales) >= milestone.at_sales:
                reached = sales[milestone.at_sales - 1]
                accrual = _period_accrual(
                    facts,
                    terms,
                    affiliate,
                    "bonus",
                    milestone.bonus_minor,
                    reached.occurred_at,
                    f"milestone bonus at {milestone.at_sales} net sales",
                )
                line_id = derived_id(
                    "line",
                    "bonus",
                    facts.campaign_id,
                    facts.period,
                    affiliate,
                    str(milestone.at_sales),
                )
                out.append(replace(accrual, line_id=line_id, sources=(reached.event_id,)))
    return out


def _capped(
    facts: PeriodFacts,
    accruals: list[_Accrual],
    refunds: Mapping[str, list[RefundFact]],
    terms: CampaignTerms,
    currency: str,
) -> tuple[Line, ...]:
    plan = terms.plan
    creator_used: dict[str, int] = defaultdict(int)
    campaign_used = 0
    lines: list[Line] = []
    for a in sorted(accruals, key=lambda x: (x.occurred_at, x.line_id)):
        owed = a.gross - a.refunded
        cuts: list[CapCut] = []
        if plan.creator_cap_minor is not None:
            room = max(0, plan.creator_cap_minor - creator_used[a.affiliate_id])
            if owed > room:
                cuts.append(CapCut("creator", owed - room))
                owed = room
        if plan.campaign_budget_minor is not None:
            room = max(0, plan.campaign_budget_minor - campaign_used)
            if owed > room:
                cuts.append(CapCut("campaign", owed - room))
                owed = room
        creator_used[a.affiliate_id] += owed
        campaign_used += owed
        lines.append(
            Line(
                line_id=a.line_id,
                affiliate_id=a.affiliate_id,
                campaign_id=facts.campaign_id,
                currency=currency,
                period=facts.period,
                kind=a.kind,
                amount_minor=owed,
                gross_minor=a.gross,
                refunded_minor=a.refunded,
                occurred_at=a.occurred_at,
                approve_at=a.approve_at,
                rule=a.rule,
                terms_version=a.terms_version,
                order_id=a.order_id,
                source_event_ids=a.sources,
                cap_cuts=tuple(cuts),
            )
        )
        lines += _clawbacks(a, owed, refunds, facts, currency)
    return tuple(lines)


def _clawbacks(
    a: _Accrual,
    owed: int,
    refunds: Mapping[str, list[RefundFact]],
    facts: PeriodFacts,
    currency: str,
) -> list[Line]:
    """Refunds on or after approval: negative lines, pro rata of what the line pays."""
    if a.conversion_id is None or owed <= 0:
        return []
    order_refunds = refunds.get(a.conversion_id, ())
    if not order_refunds:  # most conversions: skip the search
        return []
    if a.kind != "sale":  # only a correction takes back a lead or action fee
        taken = [r for r in order_refunds if r.reason == "reattributed"]
        return [_clawback(a, taken[0], owed, facts, currency)] if taken else []
    out = []
    conversion = next(c for c in facts.conversions if c.conversion_id == a.conversion_id)
    before = sum(r.amount_minor for r in order_refunds if r.occurred_at < a.approve_at)
    remaining = conversion.amount_minor - before
    # Scale the cumulative refund and take the difference, so rounding never claws
    # back more (or, after a full refund, less) than the line pays.
    refunded_after = 0
    clawed = 0
    for refund in order_refunds:
        if refund.occurred_at < a.approve_at or refunded_after >= remaining:
            continue
        refunded_after = min(remaining, refunded_after + refund.amount_minor)
        back = pro_rata(owed, refunded_after, remaining) - clawed
        if back <= 0:
            continue
        clawed += back
        out.append(_clawback(a, refund, back, facts, currency))
    return out


def _clawback(
    a: _Accrual, refund: RefundFact, back: int, facts: PeriodFacts, currency: str
) -> Line:
    return Line(
        line_id=derived_id("line", "clawback", refund.reversal_id),
        affiliate_id=a.affiliate_id,
        campaign_id=facts.campaign_id,
        currency=currency,
        period=facts.period,
        kind="clawback",
        amount_minor=-back,
        gross_minor=-back,
        refunded_minor=0,
        occurred_at=refund.occurred_at,
        approve_at=refund.occurred_at,
        rule=(
            f"clawback: refund of {refund.amount_minor} after approval"
            if refund.reason != "reattributed"
            else "clawback: reattributed to another click after approval"
        ),
        terms_version=a.terms_version,
        order_id=a.order_id,
        source_event_ids=(refund.event_id,),
    )
