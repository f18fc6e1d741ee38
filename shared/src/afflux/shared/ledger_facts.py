"""Ledger inputs as the journal's facts: conversions, reversals and review decisions from
their events (the payouts consumer and the batch reference place conversions and
reversals through the same mapping)."""

from __future__ import annotations

from afflux.shared.core.commission import ConversionFact, RefundFact
from afflux.shared.core.journal.review_lines import ReviewFact
from afflux.shared.events import ConversionAttributed, ConversionReversed, ConversionReviewed


def conversion_fact(event: ConversionAttributed) -> ConversionFact:
    return ConversionFact(
        conversion_id=event.conversion_id,
        event_id=event.event_id,
        order_id=event.order_id,
        affiliate_id=event.affiliate_id,
        kind=event.kind,
        action=event.action,
        amount_minor=event.amount_minor,
        currency=event.currency,
        new_customer=event.new_customer,
        occurred_at=event.occurred_at,
        terms_version=event.terms_version,
        items=tuple((i.sku, i.category, i.quantity, i.price_minor) for i in event.items),
        non_commissionable_minor=event.non_commissionable_minor,
        renewal_number=event.renewal_number,
        risk_signals=event.risk_signals,
        attributed_by=event.reason,
        live_stream_id=event.live_stream_id,
        first_order_id=event.first_order_id if event.kind == "renewal" else None,
    )


def refund_fact(event: ConversionReversed) -> RefundFact:
    """A refund's fact carries what it asked for (``requested_minor``), not what the
    attribution worker applied: the worker caps a refund at what is left of its order
    in the order refunds arrive, so refunds adding up to more than the order (written
    straight to the topic) were capped by arrival, and the money (reduced before
    approval or clawed back after, the sale counted toward tiers or not) depended on
    which came first. The journal takes a line's refunds in event-time order and caps
    their shares at the whole line itself (``rules.reductions``), so the same refunds
    give the same money in any arrival order. Below the order's amount both are the
    same; a reattribution's reversal keeps its own amount (it takes what is left)."""
    amount = event.requested_minor if event.reason == "refund" else event.amount_minor
    return RefundFact(
        reversal_id=event.reversal_id,
        event_id=event.event_id,
        order_id=event.order_id,
        amount_minor=max(amount, event.amount_minor),
        occurred_at=event.occurred_at,
        conversion_id=event.conversion_id,
        reason=event.reason,
        items=tuple((i.sku, i.quantity, i.amount_minor) for i in event.items),
    )


def review_fact(event: ConversionReviewed) -> ReviewFact:
    return ReviewFact(
        conversion_id=event.conversion_id,
        event_id=event.event_id,
        decision=event.decision,
        reason=event.reason,
        decided_by=event.decided_by,
        occurred_at=event.occurred_at,
    )
