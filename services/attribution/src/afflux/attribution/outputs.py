"""The events the worker emits, built from an order (or refund) and a decision."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, cast

from afflux.shared.core import attribution as core
from afflux.shared.core.frozen import quick_init
from afflux.shared.core.review import RiskSignal, SignalFacts, signals
from afflux.shared.core.terms import TermsVersion
from afflux.shared.events import (
    Assist,
    ConversionAttributed,
    ConversionReversed,
    OrderItem,
    OrderKind,
    OrderPlaced,
    OrderRefunded,
    OrderUnattributed,
    RefundItem,
    RefundUnmatched,
)

CorrectionCause = Literal["late_click", "late_content", "late_survey"]
# conversion id, the id it supersedes, corrected at (the causing record's broker time), why
Correction = tuple[str, str | None, int, CorrectionCause]


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


@quick_init
@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What re-deciding a decided order needs of it (its outcome event's fields)."""

    order_id: str
    campaign_id: str
    occurred_at: int
    event_id: str
    kind: OrderKind
    action: str | None
    amount_minor: int
    currency: str
    visitor_id: str | None
    customer_id: str | None
    new_customer: bool
    click_id: str | None
    coupon_code: str | None
    survey_affiliate_id: str | None = None
    survey_handle: str | None = None
    items: tuple[OrderItem, ...] = ()  # per-product rates: the ledger prices them
    non_commissionable_minor: int = 0
    # Risk facts (core.review): the buyer's hashed IP and email, the referrer.
    customer_ip_hash: str | None = None
    customer_email_hash: str | None = None
    referrer: str | None = None

    @property
    def has_survey(self) -> bool:
        return self.survey_affiliate_id is not None or self.survey_handle is not None

    @classmethod
    def of(cls, o: OrderPlaced) -> OrderFacts:
        return cls(
            o.order_id,
            o.campaign_id,
            o.occurred_at,
            o.event_id,
            cast(OrderKind, sys.intern(o.kind)),
            o.action,
            o.amount_minor,
            sys.intern(o.currency),
            o.visitor_id,
            o.customer_id,
            o.new_customer,
            o.click_id,
            o.coupon_code,
            o.survey.affiliate_id if o.survey else None,
            o.survey.handle if o.survey else None,
            o.items,
            o.non_commissionable_minor,
            o.customer_ip_hash,
            o.customer_email_hash,
            o.referrer,
        )

    def touch(self) -> core.OrderTouch:
        return core.OrderTouch(
            self.order_id,
            self.campaign_id,
            self.occurred_at,
            self.click_id,
            self.coupon_code,
            self.survey_affiliate_id,
            self.survey_handle,
        )

    def row(self) -> list[Any]:
        products = self.items or self.non_commissionable_minor
        survey: list[Any] = []
        if self.has_survey or products:
            survey = [self.survey_affiliate_id, self.survey_handle]
        risk = [self.customer_ip_hash, self.customer_email_hash, self.referrer]
        if any(risk) and not products:
            survey = [self.survey_affiliate_id, self.survey_handle]
        if products or any(risk):  # after the survey's two places, so older rows read as before
            items = [[i.sku, i.category, i.quantity, i.price_minor] for i in self.items]
            survey += [items, self.non_commissionable_minor]
        if any(risk):  # after the products' two places
            survey += risk
        return [
            self.event_id,
            self.kind,
            self.action,
            self.amount_minor,
            self.currency,
            self.visitor_id,
            self.customer_id,
            self.new_customer,
            self.click_id,
            self.coupon_code,
            *survey,
        ]


def order_outcome(
    order: OrderFacts,
    decision: core.Decision,
    version: TermsVersion,
    correction: Correction | None = None,
    content: core.Content = core.NO_CONTENT,
    clicks: Sequence[core.ClickTouch] = (),
) -> ConversionAttributed | OrderUnattributed:
    """The order's conversion or why nobody won; ``clicks``: the visitor's clicks the
    decision was made over (whether the winner is among their creators, for the risk
    signals)."""
    surveyed = core.survey_owner(order.touch(), version.terms, content.handles)
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
            survey_affiliate_id=surveyed,
        )
    click = decision.click
    cid = core.conversion_id(order.campaign_id, order.order_id)
    supersedes, corrected_at, cause = None, None, None
    if correction is not None:
        cid, supersedes, corrected_at, cause = correction
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
        items=order.items,
        non_commissionable_minor=order.non_commissionable_minor,
        supersedes=supersedes,
        correction_reason=cause,
        corrected_at=corrected_at,
        live_stream_id=decision.stream.stream_id if decision.stream else None,
        survey_affiliate_id=surveyed,
        risk_signals=risk_signals(order, decision, version, clicks),
    )


def risk_signals(
    order: OrderFacts,
    decision: core.Attributed,
    version: TermsVersion,
    clicks: Sequence[core.ClickTouch] = (),
) -> tuple[RiskSignal, ...]:
    """The signals the order and its decision raise (core.review.signals); the winning
    click's IP hash is kept for campaigns with review terms only (``join._kept_review_facts``).

    The winner "clicked" when the visitor has a click of theirs in the order's campaign
    by the order's time among ``clicks``, flagged or not: a coupon win lists no click and
    no assist of its own creator, so asking those alone raised ``coupon_site`` (and held
    the sale) for a visitor who had clicked the coupon owner's link."""
    review = version.terms.review
    if review is None:
        return ()
    click = decision.click
    winner, campaign, at = decision.affiliate_id, order.campaign_id, order.occurred_at
    before = [t for t in clicks if t.campaign_id == campaign and t.at <= at]
    clicked = click is not None or any(t.affiliate_id == winner for t in before)
    # The order's referrer, and the coupon-site hosts of the visitor's clicks (kept only
    # when on one: ``join._kept_review_facts``).
    referrers = ((order.referrer,) if order.referrer else ()) + tuple(
        t.referrer_host for t in before if t.referrer_host
    )
    facts = SignalFacts(
        affiliate_id=decision.affiliate_id,
        reason=decision.reason,
        lag_ms=order.occurred_at - click.at if click else None,
        click_ip_hash=click.ip_hash or None if click else None,
        customer_ip_hash=order.customer_ip_hash,
        customer_email_hash=order.customer_email_hash,
        creator_clicked=clicked,
        referrers=referrers,
    )
    return cast(tuple[RiskSignal, ...], signals(review, facts))


class SettledRefund(NamedTuple):
    """What the refund stage keeps of a settled refund, to apply it again to a correction."""

    campaign_id: str
    refund_id: str
    requested_minor: int
    occurred_at: int
    items: tuple[tuple[str, int | None, int | None], ...] = ()  # sku, quantity, amount
    currency: str = ""  # '' in state written before refunds were held to their order's


def reversal(
    order_id: str, refund: SettledRefund, conv: Converted, applied: int, total: int
) -> ConversionReversed:
    rid = core.reversal_id(refund.campaign_id, order_id, refund.refund_id, conv.conversion_id)
    return ConversionReversed(
        event_id=rid,
        occurred_at=refund.occurred_at,
        reversal_id=rid,
        refund_id=refund.refund_id,
        conversion_id=conv.conversion_id,
        order_id=order_id,
        campaign_id=refund.campaign_id,
        affiliate_id=conv.affiliate_id,
        amount_minor=applied,
        requested_minor=refund.requested_minor,
        refunded_total_minor=total,
        order_amount_minor=conv.amount_minor,
        currency=conv.currency,
        order_occurred_at=conv.occurred_at,
        items=tuple(
            RefundItem(sku=sku, quantity=quantity, amount_minor=amount)
            for sku, quantity, amount in refund.items
        ),
    )


def reattributed(
    order_id: str,
    campaign_id: str,
    old: Converted,
    new: ConversionAttributed,
    refunded_minor: int,
) -> ConversionReversed:
    """The reversal of everything ``new`` takes over from ``old`` (what ``refunded_minor``
    left of it), at the correction's time."""
    remaining = old.amount_minor - refunded_minor
    rid = core.reattribution_reversal_id(campaign_id, order_id, old.conversion_id)
    return ConversionReversed(
        event_id=rid,
        occurred_at=new.corrected_at if new.corrected_at is not None else new.occurred_at,
        reversal_id=rid,
        refund_id=new.conversion_id,
        conversion_id=old.conversion_id,
        order_id=order_id,
        campaign_id=campaign_id,
        affiliate_id=old.affiliate_id,
        amount_minor=remaining,
        requested_minor=remaining,
        refunded_total_minor=old.amount_minor,
        order_amount_minor=old.amount_minor,
        currency=old.currency,
        order_occurred_at=old.occurred_at,
        reason="reattributed",
    )


def voided(
    order_id: str, campaign_id: str, renewal: Converted, refunded_minor: int
) -> ConversionReversed:
    """The reversal of everything left of a renewal's conversion whose renewal order id is
    an order's (the order's outcome, read back under the same key): that renewal earns
    nothing. Dated at the renewal's own time, so its line nets to zero at every date
    whichever of the two the stage read first (reason ``reattributed``: the order id is
    the order's)."""
    remaining = renewal.amount_minor - refunded_minor
    rid = core.reattribution_reversal_id(campaign_id, order_id, renewal.conversion_id)
    return ConversionReversed(
        event_id=rid,
        occurred_at=renewal.occurred_at,
        reversal_id=rid,
        refund_id=renewal.conversion_id,
        conversion_id=renewal.conversion_id,
        order_id=order_id,
        campaign_id=campaign_id,
        affiliate_id=renewal.affiliate_id,
        amount_minor=remaining,
        requested_minor=remaining,
        refunded_total_minor=renewal.amount_minor,
        order_amount_minor=renewal.amount_minor,
        currency=renewal.currency,
        order_occurred_at=renewal.occurred_at,
        reason="reattributed",
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
