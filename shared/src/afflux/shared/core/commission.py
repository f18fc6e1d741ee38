"""The commission rules one line applies (DESIGN §4): facts, rates and ranks.

The facts a ledger line is made of (a conversion, its refunds, a creator's click
tally) and the rate a sale is paid at. The journal (``afflux.shared.core.journal``)
applies them batch by batch; the batch reference (``afflux.oracle.commission``)
applies them to a whole period at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from afflux.shared.core.money import percent_of
from afflux.shared.core.products import ItemRow, RefundItemRow
from afflux.shared.core.terms import (
    CommissionPlan,
    Rate,
    TermsVersion,
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
    # Per-product rates: the order's items (sku, category, quantity, unit price) and the
    # part of its amount that earns nothing; the renewal number of a renewal.
    items: tuple[ItemRow, ...] = ()
    non_commissionable_minor: int = 0
    renewal_number: int | None = None
    # How the order was attributed (ConversionAttributed.reason: click_id, coupon, cookie,
    # livestream, survey); "" in facts stored before it was kept. Counted in the KPIs only.
    attributed_by: str = ""
    live_stream_id: str | None = None  # rule livestream: the stream, <platform>:<content_id>
    # The risk signals the attribution worker raised on the conversion (core.review).
    risk_signals: tuple[str, ...] = ()
    # A renewal's subscription's first order (whose review decision the renewal follows).
    first_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class RefundFact:
    reversal_id: str
    event_id: str
    order_id: str
    amount_minor: int  # as applied by attribution (already capped at the order amount)
    occurred_at: int
    conversion_id: str = ""  # the conversion reversed ("" in facts stored before corrections)
    reason: str = "refund"  # or "reattributed": a correction gave the order to another click
    items: tuple[RefundItemRow, ...] = ()  # the items it names (sku, quantity, amount)


@dataclass(frozen=True, slots=True)
class ClickTally:
    """Valid clicks (no quality flag, see ``click_flags``) of one creator in the period."""

    affiliate_id: str
    unique_clicks: int
    first_at: int
    # (day start ms, valid unique clicks that day), in day order: per-click pay is paid
    # one line per UTC day (``afflux.shared.core.journal.click_days``).
    per_day: tuple[tuple[int, int], ...] = ()


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
        # Not the sale's own rank: the words are a posting's, written only when the pay
        # changes, and "(this is net sale 4)" went stale when an earlier sale's refund made
        # it the third with the rate unchanged.
        return tier.rate, f"tier from net sale {tier.from_sales}"
    return plan.sale.rate, "base rate"
