"""Read models over ledger lines and facts: balances, KPIs, series (pure functions)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from afflux.payouts import facts as ledger_facts
from afflux.shared.core.click_flags import BOT, CLICK_FLAGS
from afflux.shared.core.commission import Line
from afflux.shared.core.money import round_half_up


def status(line: Line, as_of: int) -> str:
    return "approved" if line.approve_at <= as_of else "pending"


def balances(
    lines: Iterable[Line], payouts: Iterable[Mapping[str, Any]], as_of: int
) -> list[dict[str, Any]]:
    """Per currency: pending, approved (not yet paid; negative carries into the next
    payout), paid, reversed (refunds before approval plus clawbacks)."""
    out: dict[str, dict[str, int]] = defaultdict(
        lambda: {"pending_minor": 0, "approved_minor": 0, "paid_minor": 0, "reversed_minor": 0}
    )
    for line in lines:
        row = out[line.currency]
        row[f"{status(line, as_of)}_minor"] += line.amount_minor
        row["reversed_minor"] += line.refunded_minor + (
            -line.amount_minor if line.kind == "clawback" else 0
        )
    for payout in payouts:
        row = out[payout["currency"]]
        row["paid_minor"] += int(payout["amount_minor"])
        row["approved_minor"] -= int(payout["amount_minor"])
    return [{"currency": c, **v} for c, v in sorted(out.items())]


def line_view(line: Line, as_of: int) -> dict[str, Any]:
    return {
        "line_id": line.line_id,
        "affiliate_id": line.affiliate_id,
        "campaign_id": line.campaign_id,
        "currency": line.currency,
        "period": line.period,
        "kind": line.kind,
        "amount_minor": line.amount_minor,
        "status": status(line, as_of),
        "order_id": line.order_id,
        "occurred_at": line.occurred_at,
        "approve_at": line.approve_at,
        "explain": {
            "rule": line.rule,
            "terms_version": line.terms_version,
            "gross_minor": line.gross_minor,
            "refunded_minor": line.refunded_minor,
            "cap_cuts": [{"scope": c.scope, "cut_minor": c.cut_minor} for c in line.cap_cuts],
            "source_event_ids": list(line.source_event_ids),
        },
    }


@dataclass
class Counts:
    """One affiliate's clicks, conversions, money and per-day figures, as tallied."""

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


def _day(at_ms: int) -> str:
    return datetime.fromtimestamp(at_ms / 1000, UTC).strftime("%Y-%m-%d")


def tally(
    stored_facts: Mapping[str, str],
    clicks: Mapping[str, str],
    lines: Sequence[Line],
    currency: str,
    counts: dict[str, Counts],
) -> None:
    """Add one campaign-period's facts, clicks and lines into ``counts`` per affiliate."""
    for name, value in clicks.items():
        kind, _, rest = name.partition("|")
        affiliate, _, day = rest.partition("|")
        c = counts.setdefault(affiliate, Counts(currency=currency))
        if kind == "r":
            c.clicks += int(value)
        elif kind == "u":
            c.unique_clicks += int(value)
        elif kind == "b":
            c.bot_clicks += int(value)
        elif kind == "x":
            c.flagged[day] += int(value)  # x|<affiliate>|<reason>
        elif kind == "d":
            c.days[day]["clicks"] += int(value)
    parsed = [(name, json.loads(raw)) for name, raw in stored_facts.items()]
    # A conversion a correction replaced (reversed with reason "reattributed") was never
    # the order's: it counts in no KPI, and its reattributed reversal is no refund.
    superseded = {
        data.get("conversion_id")
        for name, data in parsed
        if name.startswith(ledger_facts.REFUND) and data.get("reason") == "reattributed"
    }
    affiliate_of: dict[str, str] = {}
    for name, data in parsed:
        if name.startswith(ledger_facts.CONVERSION) and data["conversion_id"] not in superseded:
            affiliate_of[data["conversion_id"]] = affiliate_of[data["order_id"]] = data[
                "affiliate_id"
            ]
            c = counts.setdefault(data["affiliate_id"], Counts(currency=currency))
            c.conversions += 1
            c.days[_day(data["occurred_at"])]["conversions"] += 1
            if data["kind"] == "sale":
                c.sales += 1
                c.revenue += data["amount_minor"]
            c.new_customers += bool(data["new_customer"])
    for name, data in parsed:
        if name.startswith(ledger_facts.REFUND) and data.get("reason") != "reattributed":
            owner = affiliate_of.get(data.get("conversion_id") or data["order_id"])
            if owner is not None:
                counts[owner].refunds += data["amount_minor"]
    for line in lines:
        c = counts.setdefault(line.affiliate_id, Counts(currency=currency))
        c.commission += line.amount_minor
        c.days[_day(line.occurred_at)]["commission_minor"] += line.amount_minor


def _ratio(a: int, b: int) -> int:
    return round_half_up(Decimal(a) / Decimal(b)) if b else 0


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
        "conversion_rate": round(c.conversions / c.unique_clicks, 6) if c.unique_clicks else 0.0,
        "revenue_minor": c.revenue,
        "refunds_minor": c.refunds,
        "net_revenue_minor": net,
        "commission_minor": c.commission,
        "epc_minor": _ratio(c.commission, c.clicks),
        "cpa_minor": _ratio(c.commission, c.conversions),
        "aov_minor": _ratio(c.revenue, c.sales),
        "roi": round((net - c.commission) / c.commission, 6) if c.commission else None,
        "new_customer_share": round(c.new_customers / c.conversions, 6) if c.conversions else 0.0,
    }


def flagged_by_reason(c: Counts) -> dict[str, int]:
    """Flagged clicks per reason (a click may have several); every known reason is listed."""
    reasons = {reason: c.flagged.get(reason, 0) for reason in CLICK_FLAGS}
    reasons[BOT] = c.bot_clicks
    if c.flagged.get("other"):
        reasons["other"] = c.flagged["other"]
    return reasons


def combine(rows: Iterable[Counts]) -> Counts:
    total = Counts()
    for c in rows:
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
        ):
            setattr(total, name, getattr(total, name) + getattr(c, name))
        for day, values in c.days.items():
            for key, value in values.items():
                total.days[day][key] += value
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
