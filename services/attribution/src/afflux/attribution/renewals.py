"""A subscription's renewal, decided where its first order's refunds are (stage 2).

A ``SubscriptionRenewed`` comes keyed by its first order's id, so it meets that order's
outcome in the refund stage's state. It pays the creator who won the first order (the
order's current conversion, after any correction) as a conversion of kind ``renewal`` of
its own renewal order id, under the terms in force at the renewal's time; a renewal whose
first order earned no creator, or that is past the terms' limit (or whose terms pay no
renewals), is an ``OrderUnattributed`` of the renewal order with the reason. Both go out
keyed by the renewal order id, where its refunds will find them.
"""

from __future__ import annotations

from typing import Literal, cast

from afflux.attribution.outputs import Converted
from afflux.shared.core import attribution as core
from afflux.shared.core.renewals import renewal_refusal
from afflux.shared.core.terms import TermsVersion
from afflux.shared.events import (
    ConversionAttributed,
    OrderUnattributed,
    SubscriptionRenewed,
    UnattributedReason,
)
from afflux.shared.topics import CONVERSIONS, UNMATCHED

from .join import Output

WinReason = Literal["click_id", "coupon", "cookie", "livestream", "survey"]
FIRST_ORDER_UNATTRIBUTED = "first_order_unattributed"
FIRST_ORDER_UNKNOWN = "first_order_unknown"


def renewal_ident(r: SubscriptionRenewed) -> tuple[str, str]:
    """Its place among the first order's settled refunds and renewals (never a refund id:
    those are the merchant's, this is derived)."""
    return (r.campaign_id, f"renewal:{r.renewal_order_id}")


def decide(
    r: SubscriptionRenewed,
    first: Converted | None,
    won_by: str,
    version: TermsVersion | None,
) -> Output:
    """The renewal's outcome, given its first order's conversion (None: unattributed)."""
    if first is None:
        return unattributed(r, FIRST_ORDER_UNATTRIBUTED)
    recurring = version.terms.plan.recurring if version is not None else None
    refusal = renewal_refusal(recurring, first.occurred_at, r.renewal_number, r.occurred_at)
    if refusal or version is None:
        return unattributed(r, refusal or "no_recurring_terms")
    cid = core.renewal_conversion_id(r.campaign_id, r.renewal_order_id)
    event = ConversionAttributed(
        event_id=cid,
        occurred_at=r.occurred_at,
        conversion_id=cid,
        order_id=r.renewal_order_id,
        campaign_id=r.campaign_id,
        affiliate_id=first.affiliate_id,
        reason=cast(WinReason, won_by),
        model=version.terms.model,
        window_ms=0,
        terms_version=version.version,
        kind="renewal",
        amount_minor=r.amount_minor,
        currency=r.currency,
        order_event_id=r.event_id,
        renewal_number=r.renewal_number,
        first_order_id=r.order_id,
    )
    return (CONVERSIONS.name, r.renewal_order_id, event)


def unattributed(r: SubscriptionRenewed, reason: str) -> Output:
    event = OrderUnattributed(
        event_id=core.renewal_unattributed_id(r.campaign_id, r.renewal_order_id),
        occurred_at=r.occurred_at,
        order_id=r.renewal_order_id,
        campaign_id=r.campaign_id,
        reason=cast(UnattributedReason, reason),
        kind="renewal",
        amount_minor=r.amount_minor,
        currency=r.currency,
        order_event_id=r.event_id,
    )
    return (UNMATCHED.name, r.renewal_order_id, event)
