"""Read models over journal postings and counters: balances, lines, KPIs, series (pure)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from afflux.shared.core import content_kpis as ck
from afflux.shared.core.click_flags import BOT, CLICK_FLAGS
from afflux.shared.core.engagement import ContentState
from afflux.shared.core.journal.explain import explain_line, standing_accruals
from afflux.shared.core.journal.override_lines import REVERSED_BY_DECLINE
from afflux.shared.core.journal.records import Posting
from afflux.shared.core.journal.rules import OLD_REATTRIBUTED_RULE, REATTRIBUTED_RULE
from afflux.shared.core.money import round_half_up
from afflux.shared.core.terms import EmvValues


def status(approve_at: int, as_of: int) -> str:
    return "approved" if approve_at <= as_of else "pending"


def line_status(postings: Sequence[Posting], amount: int, approve_at: int, as_of: int) -> str:
    """A line's status: ``declined`` in review, ``reattributed`` (to another creator's
    click), ``refunded`` when refunds or clawbacks took it to nothing, else ``pending``
    or ``approved``. A declined line read "pending"
    (its approval date is the review's "never"), and a line refunded whole before
    approval "pending" too: money that will never come, read as still to come."""
    if any(
        p.kind == "review_decline" or p.rule.startswith(REVERSED_BY_DECLINE) for p in postings
    ):  # the creator's line, or an agency's override of it
        return "declined"
    if amount == 0 and any(
        REATTRIBUTED_RULE in p.rule or OLD_REATTRIBUTED_RULE in p.rule for p in postings
    ):
        return "reattributed"  # no refund: a later click, stream or survey answer won
    gross = sum(p.amount_minor for p in postings if p.component == "accrual")
    taken = -sum(
        p.amount_minor
        for p in postings
        if p.component == "refund" or p.component.startswith("clawback")
    )
    # The refunds alone: a line a partial refund and a cap cut took to nothing may still be
    # paid (room freed, an approval), and "refunded" read as settled.
    if amount == 0 and gross > 0 and taken >= gross:
        return "refunded"
    return status(approve_at, as_of)


@dataclass(frozen=True, slots=True)
class PeriodSums:
    """One creator's running sums in one campaign-period, split at ``as_of``."""

    currency: str
    total: int  # every posting
    reversed: int  # reductions before approval and clawbacks, as a positive amount
    pending: int  # postings approved only after as_of


@dataclass(frozen=True)
class Balance:
    """One creator's running sums per currency over all campaign-periods, the pending
    part split at ``as_of``; ``schedule``: the pending part per (currency, approval time),
    a held line's at the review decision's sentinel time."""

    total: dict[str, int]
    reversed: dict[str, int]
    pending: dict[str, int]
    schedule: dict[tuple[str, int], int] = field(default_factory=dict, compare=False)


def currency_sums(balance: Balance) -> list[PeriodSums]:
    """A creator's running sums as one ``PeriodSums`` per currency."""
    currencies = sorted(set(balance.total) | set(balance.reversed) | set(balance.pending))
    return [
        PeriodSums(
            c, balance.total.get(c, 0), balance.reversed.get(c, 0), balance.pending.get(c, 0)
        )
        for c in currencies
    ]


def balances(sums: Iterable[PeriodSums], paid: Mapping[str, int]) -> list[dict[str, Any]]:
    """Per currency: pending, approved (not yet paid; negative carries into the next
    payout), paid, reversed (refunds before approval plus clawbacks)."""
    out: dict[str, dict[str, int]] = defaultdict(
        lambda: {"pending_minor": 0, "approved_minor": 0, "paid_minor": 0, "reversed_minor": 0}
    )
    for s in sums:
        row = out[s.currency]
        row["pending_minor"] += s.pending
        row["approved_minor"] += s.total - s.pending
        row["reversed_minor"] += s.reversed
    for currency, amount in paid.items():
        row = out[currency]
        row["paid_minor"] += amount
        row["approved_minor"] -= amount
    return [{"currency": c, **v} for c, v in sorted(out.items())]


def posting_view(posting: Posting, as_of: int) -> dict[str, Any]:
    """Every field of the posting, and its status at ``as_of``."""
    data = {name: getattr(posting, name) for name in Posting.__slots__}
    data["source_event_ids"] = list(posting.source_event_ids)
    data["status"] = status(posting.approve_at, as_of)
    return data


def line_views(postings: Sequence[Posting], as_of: int) -> list[dict[str, Any]]:
    """The postings grouped by line (first appearance order): what each line amounts to,
    split pending/approved at ``as_of``, and why (the latest accrual's rule)."""
    by_line: dict[str, list[Posting]] = {}
    for p in postings:
        by_line.setdefault(p.line_id, []).append(p)
    return [_line_view(ps, as_of) for ps in by_line.values()]


def _line_view(postings: list[Posting], as_of: int) -> dict[str, Any]:
    first, last = postings[0], postings[-1]
    accruals = [p for p in postings if p.component == "accrual"]
    # The line's own date and rule: its accrual's (a clawback is dated at its refund), not
    # a move's: a line approved in review is re-accrued at the decision and its held
    # accrual taken back ("moved", dated as held), which read as still awaiting a decision.
    standing = standing_accruals(accruals, passed_over=("moved",))
    own = [p for p in postings if not p.component.startswith("clawback")] or postings
    approve_at = (standing[-1] if standing else own[-1]).approve_at
    amount = sum(p.amount_minor for p in postings)
    approved = sum(p.amount_minor for p in postings if p.approve_at <= as_of)
    cuts: dict[str, int] = defaultdict(int)
    for p in postings:
        if p.component.startswith("cap:"):
            cuts[p.component.partition(":")[2]] -= p.amount_minor
    sources = list(dict.fromkeys(s for p in postings for s in p.source_event_ids))
    rule = (standing[-1] if standing else last).rule
    return {
        "line_id": first.line_id,
        "affiliate_id": first.affiliate_id,
        "campaign_id": first.campaign_id,
        "currency": first.currency,
        "period": first.period,
        "kind": first.line_kind,
        "line_kind": first.line_kind,
        "amount_minor": amount,
        "pending_minor": amount - approved,
        "approved_minor": approved,
        "status": line_status(postings, amount, approve_at, as_of),
        "order_id": first.order_id,
        # The standing accrual's date: a bonus moved to a later sale was dated at its
        # first sale still (the moved postings reverse that dating).
        "occurred_at": standing[-1].occurred_at if standing else min(p.occurred_at for p in own),
        "approve_at": approve_at,
        "rule": rule,
        "posting_ids": [p.posting_id for p in postings],
        "explanation": explain_line(postings, as_of),
        "explain": {
            "rule": rule,
            "terms_version": (standing[-1] if standing else last).terms_version,
            "gross_minor": sum(p.amount_minor for p in accruals),
            "refunded_minor": -sum(
                p.amount_minor
                for p in postings
                if p.component == "refund" or p.component.startswith("clawback")
            ),
            "cap_cuts": [
                {"scope": scope, "cut_minor": cut} for scope, cut in sorted(cuts.items()) if cut
            ],
            "source_event_ids": sources,
        },
    }


def totals(postings: Iterable[Posting], as_of: int) -> list[dict[str, Any]]:
    """Per currency: the sum of the postings, and its pending/approved split at ``as_of``."""
    out: dict[str, dict[str, int]] = defaultdict(
        lambda: {"amount_minor": 0, "pending_minor": 0, "approved_minor": 0}
    )
    for p in postings:
        row = out[p.currency]
        row["amount_minor"] += p.amount_minor
        row[f"{status(p.approve_at, as_of)}_minor"] += p.amount_minor
    return [{"currency": c, **v} for c, v in sorted(out.items())]


@dataclass
class Counts:
    """One affiliate's clicks, conversions, money and per-day figures, as counted."""

    clicks: int = 0
    unique_clicks: int = 0
    bot_clicks: int = 0
    flagged: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # reason -> n
    conversions: int = 0
    sales: int = 0
    new_customers: int = 0
    revenue: int = 0
    refunds: int = 0
    commission: int = 0
    currency: str = ""
    days: dict[str, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    engagement_pay: int = 0  # postings of engagement lines (in commission too)
    # Conversions held for review, approved and declined in review (review_lines).
    review_held: int = 0
    review_approved: int = 0
    review_declined: int = 0
    attributed_by: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # rule -> n
    # Per campaign: its contents' latest snapshots summed, and its terms' EMV values
    # (EMV is worked out per campaign, then added up: each campaign has its own values).
    reach: dict[str, ck.Reach] = field(default_factory=dict)
    emv_values: dict[str, EmvValues | None] = field(default_factory=dict)

    @property
    def total_reach(self) -> ck.Reach:
        return ck.total(self.reach.values())

    @property
    def emv_minor(self) -> int | None:
        parts = [
            ck.emv_minor(reach, self.emv_values.get(campaign))
            for campaign, reach in sorted(self.reach.items())
        ]
        known = [p for p in parts if p is not None]
        return sum(known) if known else None


# KPI counter (afflux.shared.core.journal.kpis) -> Counts attribute; per day -> bucket field.
_COUNTERS = {
    "conversions": "conversions",
    "sales": "sales",
    "revenue": "revenue",
    "refunds": "refunds",
    "new_customers": "new_customers",
    "commission": "commission",
    "review_held": "review_held",
    "review_approved": "review_approved",
    "review_declined": "review_declined",
}
_PER_DAY = {"conversions": "conversions", "commission": "commission_minor"}
# Reach counters (afflux.shared.core.journal.kpis.reach_contribution) -> Reach field.
REACH_COUNTERS = frozenset(f.name for f in fields(ck.Reach))
# How orders are attributed, every rule listed in the KPIs (link: click_id and cookie;
# code: coupon).
ATTRIBUTION_RULES = ("click_id", "cookie", "coupon", "livestream", "survey")


def tally(
    kpis: Mapping[str, str],
    clicks: Mapping[str, str],
    currency: str,
    counts: dict[str, Counts],
    *,
    campaign_id: str = "",
    emv: EmvValues | None = None,
) -> None:
    """Add one campaign-period's KPI counters and click tallies into ``counts`` per
    affiliate (fields as ``kpis`` and ``tallies`` document them); ``emv``: the
    campaign's EMV values."""
    for name, value in clicks.items():
        kind, _, rest = name.partition("|")
        affiliate, _, detail = rest.partition("|")
        c = counts.setdefault(affiliate, Counts(currency=currency))
        if kind == "r":
            c.clicks += int(value)
        elif kind == "u":
            c.unique_clicks += int(value)
        elif kind == "b":
            c.bot_clicks += int(value)
        elif kind == "x":
            c.flagged[detail] += int(value)  # x|<affiliate>|<reason>
        elif kind == "d":
            c.days[detail]["clicks"] += int(value)
    for name, value in kpis.items():
        counter, _, rest = name.partition("|")
        affiliate, _, day = rest.partition("|")
        if counter in REACH_COUNTERS:
            c = counts.setdefault(affiliate, Counts(currency=currency))
            before = c.reach.get(campaign_id, ck.Reach())
            c.reach[campaign_id] = replace(
                before, **{counter: getattr(before, counter) + int(value)}
            )
            c.emv_values[campaign_id] = emv
            continue
        if counter == "engagement_pay" and not day:
            counts.setdefault(affiliate, Counts(currency=currency)).engagement_pay += int(value)
            continue
        if counter == "attributed":  # attributed|<affiliate>|<rule>
            counts.setdefault(affiliate, Counts(currency=currency)).attributed_by[day] += int(value)
            continue
        if counter not in _COUNTERS:
            continue
        c = counts.setdefault(affiliate, Counts(currency=currency))
        if day:
            if counter in _PER_DAY:
                c.days[day][_PER_DAY[counter]] += int(value)
        else:
            attribute = _COUNTERS[counter]
            setattr(c, attribute, getattr(c, attribute) + int(value))


def _ratio(a: int, b: int) -> int:
    return round_half_up(Decimal(a) / Decimal(b)) if b else 0


def reach_of(state: ContentState) -> ck.Reach:
    """A content's counts at its latest snapshot not on hold (nothing before its first;
    on hold, the figures before the hold: the held ones are what is in doubt)."""
    if state.latest is None:
        return ck.Reach()
    s = state.shown
    if s is None:
        return ck.Reach(1)
    return ck.Reach(1, s.views, s.impressions, s.likes, s.comments, s.shares, s.saves, s.followers)


def stream_revenue(kpis: Mapping[str, str]) -> dict[str, int]:
    """``<platform>:<content_id>`` -> net revenue of the sales its live stream won, from a
    period's ``stream_revenue|<affiliate>|<content>`` counters."""
    out: dict[str, int] = defaultdict(int)
    for name, value in kpis.items():
        counter, _, rest = name.partition("|")
        if counter == "stream_revenue":
            out[rest.partition("|")[2]] += int(value)
    return out


def content_clicks(clicks: Mapping[str, str]) -> dict[str, dict[str, int]]:
    """creator -> content -> valid clicks on links placed in it, from a period's
    ``c|<affiliate>|<platform>:<content_id>`` tallies (afflux.payouts.tallies)."""
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for name, value in clicks.items():
        kind, _, rest = name.partition("|")
        if kind == "c":
            affiliate, _, content = rest.partition("|")
            out[affiliate][content] = int(value)
    return out


def content_rows(
    states: Iterable[ContentState],
    revenue: Mapping[str, int],
    emv: EmvValues | None,
    clicks: Mapping[str, Mapping[str, int]] | None = None,
) -> list[dict[str, Any]]:
    """One row per published content: its latest snapshot's figures and what they are
    worth. CTR counts the valid clicks on links that name the content (``utm_content``);
    None when none of its creator's clicks in the period names a content (links not
    tagged: the clicks cannot be told apart). RPM only for a live stream, from the
    sales it won (rule livestream)."""
    rows = []
    for state in states:
        p = state.publication
        if p is None:
            continue
        reach = reach_of(state)
        tagged = (clicks or {}).get(p.affiliate_id)
        live = p.kind == "live"
        platform, _, content_id = state.key.partition(":")
        rows.append(
            {
                "platform": platform,
                "content_id": content_id,
                "kind": p.kind,
                "affiliate_id": p.affiliate_id,
                "campaign_id": p.campaign_id,
                "published_at": p.published_at,
                "as_of": state.shown.as_of if state.shown is not None else None,
                "snapshots": state.snapshots,
                "stale_snapshots": state.stale,
                "held_for_review": state.on_hold,
                "awaiting_release": state.awaits_release,
                "views": reach.views,
                "impressions": reach.impressions,
                "engagement": reach.engagement,
                "followers": reach.followers,
                "engagement_rate": _number(ck.engagement_rate(reach)),
                "ctr": _number(ck.ctr(tagged.get(state.key, 0), reach)) if tagged else None,
                "clicks": tagged.get(state.key, 0) if tagged else None,
                "revenue_minor": revenue.get(state.key, 0) if live else None,
                "rpm_minor": ck.rpm_minor(revenue.get(state.key, 0), reach) if live else None,
                "emv_minor": ck.emv_minor(reach, emv),
            }
        )
    return rows


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def content_fields(c: Counts) -> dict[str, Any]:
    """The creator-economy KPIs of a row (afflux.shared.core.content_kpis)."""
    reach = c.total_reach
    return {
        "contents": reach.contents,
        "views": reach.views,
        "impressions": reach.impressions,
        "engagement": reach.engagement,
        "engagement_by_kind": {
            "likes": reach.likes,
            "comments": reach.comments,
            "shares": reach.shares,
            "saves": reach.saves,
        },
        "followers": reach.followers,
        "engagement_rate": _number(ck.engagement_rate(reach)),
        "ctr": _number(ck.ctr(c.unique_clicks, reach)),
        "rpm_minor": ck.rpm_minor(c.revenue - c.refunds, reach),
        "emv_minor": c.emv_minor,
        "engagement_pay_minor": c.engagement_pay,
        "cost_per_engagement_minor": ck.cost_per_engagement_minor(c.engagement_pay, reach),
        "conversions_by_rule": {rule: c.attributed_by.get(rule, 0) for rule in ATTRIBUTION_RULES},
    }


def kpi_row(c: Counts) -> dict[str, Any]:
    net = c.revenue - c.refunds
    return {
        "currency": c.currency,
        "clicks": c.clicks,
        "unique_clicks": c.unique_clicks,
        "valid_clicks": c.unique_clicks,
        "flagged_clicks": c.bot_clicks + c.clicks - c.unique_clicks,
        "flagged_by_reason": flagged_by_reason(c),
        "conversions": c.conversions,
        "conversion_rate": _number(ck.ratio(c.conversions, c.unique_clicks)) or 0.0,
        "revenue_minor": c.revenue,
        "refunds_minor": c.refunds,
        "net_revenue_minor": net,
        "commission_minor": c.commission,
        "epc_minor": _ratio(c.commission, c.clicks),
        "cpa_minor": _ratio(c.commission, c.conversions),
        "aov_minor": _ratio(c.revenue, c.sales),
        "roi": _number(ck.roi(net, c.commission)),
        "new_customer_share": _number(ck.ratio(c.new_customers, c.conversions)) or 0.0,
        "reviews_held": c.review_held,
        "reviews_approved": c.review_approved,
        "reviews_declined": c.review_declined,
        **content_fields(c),
    }


def flagged_by_reason(c: Counts) -> dict[str, int]:
    """Flagged clicks per reason (a click may have several); every known reason is listed."""
    reasons = {reason: c.flagged.get(reason, 0) for reason in CLICK_FLAGS}
    reasons[BOT] = c.bot_clicks
    if c.flagged.get("other"):
        reasons["other"] = c.flagged["other"]
    return reasons


def combine(rows: Iterable[Counts]) -> Counts:
    """The counts summed; all of one currency (money never mixes: ValueError)."""
    total = Counts()
    for c in rows:
        if total.currency and c.currency and c.currency != total.currency:
            raise ValueError(f"counts in {total.currency} and {c.currency} are not summed")
        total.currency = total.currency or c.currency
        for reason, n in c.flagged.items():
            total.flagged[reason] += n
        for name in (
            "clicks",
            "unique_clicks",
            "bot_clicks",
            "conversions",
            "sales",
            "new_customers",
            "revenue",
            "refunds",
            "commission",
            "review_held",
            "review_approved",
            "review_declined",
        ):
            setattr(total, name, getattr(total, name) + getattr(c, name))
        for day, values in c.days.items():
            for key, value in values.items():
                total.days[day][key] += value
        total.engagement_pay += c.engagement_pay
        for rule, n in c.attributed_by.items():
            total.attributed_by[rule] += n
        for campaign, reach in c.reach.items():
            total.reach[campaign] = total.reach.get(campaign, ck.Reach()) + reach
            total.emv_values[campaign] = c.emv_values.get(campaign)
    return total


def series(c: Counts) -> list[dict[str, Any]]:
    out = []
    for day in sorted(c.days):
        values = c.days[day]
        start = int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp() * 1000)
        out.append(
            {
                "day": day,
                "start": start,
                "clicks": values.get("clicks", 0),
                "conversions": values.get("conversions", 0),
                "commission_minor": values.get("commission_minor", 0),
            }
        )
    return out
