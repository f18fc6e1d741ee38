"""The events the worker emits, built from an order (or refund) and a decision."""

from __future__ import annotations

from dataclasses import dataclass

from afflux.shared.core import attribution as core
from afflux.shared.core.terms import TermsVersion
from afflux.shared.events import (
    Assist,
    ConversionAttributed,
    ConversionReversed,
    OrderPlaced,
    OrderRefunded,
    OrderUnattributed,
    RefundUnmatched,
)


@dataclass(frozen=True, slots=True)
class Converted:
    """What the refund stage keeps of a conversion."""

    conversion_id: str
    affiliate_id: str
    amount_minor: int
    currency: str
    occurred_at: int

    @classmethod
    def of(cls, c: ConversionAttributed) -> Converted:
        return cls(c.conversion_id, c.affiliate_id, c.amount_minor, c.currency, c.occurred_at)


def order_outcome(
    order: OrderPlaced, decision: core.Decision, version: TermsVersion
) -> ConversionAttributed | OrderUnattributed:
    if isinstance(decision, core.Unattributed):
        return OrderUnattributed(
            event_id=core.unattributed_id(order.campaign_id, order.order_id),
            occurred_at=order.occurred_at,
            order_id=order.order_id,
            campaign_id=order.campaign_id,
            reason=decision.reason,
            kind=order.kind,
            amount_minor=order.amount_minor,
            currency=order.currency,
            order_event_id=order.event_id,
        )
    click = decision.click
    cid = core.conversion_id(order.campaign_id, order.order_id)
    return ConversionAttributed(
        event_id=cid,
        occurred_at=order.occurred_at,
        conversion_id=cid,
        order_id=order.order_id,
        campaign_id=order.campaign_id,
        affiliate_id=decision.affiliate_id,
        reason=decision.reason,
        model=version.terms.model,
        window_ms=decision.window_ms,
        click_id=click.click_id if click else None,
        clicked_at=click.at if click else None,
        lag_ms=order.occurred_at - click.at if click else None,
        assists=tuple(
            Assist(affiliate_id=a.affiliate_id, click_id=a.click_id, clicked_at=a.at)
            for a in decision.assists
        ),
        terms_version=version.version,
        kind=order.kind,
        action=order.action,
        amount_minor=order.amount_minor,
        currency=order.currency,
        visitor_id=order.visitor_id,
        customer_id=order.customer_id,
        new_customer=order.new_customer,
        order_event_id=order.event_id,
    )


def reversal(
    refund: OrderRefunded, conv: Converted, applied: int, total: int
) -> ConversionReversed:
    rid = core.reversal_id(refund.campaign_id, refund.order_id, refund.refund_id)
    return ConversionReversed(
        event_id=rid,
        occurred_at=refund.occurred_at,
        reversal_id=rid,
        refund_id=refund.refund_id,
        conversion_id=conv.conversion_id,
        order_id=refund.order_id,
        campaign_id=refund.campaign_id,
        affiliate_id=conv.affiliate_id,
        amount_minor=applied,
        requested_minor=refund.amount_minor,
        refunded_total_minor=total,
        order_amount_minor=conv.amount_minor,
        currency=conv.currency,
        order_occurred_at=conv.occurred_at,
    )


def refund_unmatched(refund: OrderRefunded, order_known: bool) -> RefundUnmatched:
    return RefundUnmatched(
        event_id=core.refund_unmatched_id(refund.campaign_id, refund.order_id, refund.refund_id),
        occurred_at=refund.occurred_at,
        refund_id=refund.refund_id,
        order_id=refund.order_id,
        campaign_id=refund.campaign_id,
        reason="order_unattributed" if order_known else "order_unknown",
        amount_minor=refund.amount_minor,
        currency=refund.currency,
    )
