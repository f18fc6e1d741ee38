"""What became of an order, read from its events in any order and with duplicates."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from afflux.orders.outcome import order_outcome, outcome_json
from afflux.shared.events import (
    ConversionAttributed,
    ConversionReversed,
    Envelope,
    LeadConfirmed,
    OrderPlaced,
    OrderRefunded,
    OrderUnattributed,
    RefundUnmatched,
)

pytestmark = pytest.mark.unit

CID = "shop"
ORDER = "o-1"


def placed(at: int = 1_000) -> OrderPlaced:
    return OrderPlaced(
        event_id="order-ev",
        occurred_at=at,
        order_id=ORDER,
        campaign_id=CID,
        merchant_id="acme",
        amount_minor=4_999,
        currency="EUR",
        visitor_id="v1",
    )


def converted(
    conversion: str, affiliate: str, at: int = 1_000, **extra: object
) -> ConversionAttributed:
    return ConversionAttributed(
        event_id=f"conv-ev-{conversion}",
        occurred_at=at,
        conversion_id=conversion,
        order_id=ORDER,
        campaign_id=CID,
        affiliate_id=affiliate,
        reason="cookie",
        model="last_click",
        window_ms=30 * 86_400_000,
        click_id=f"click-{affiliate}",
        clicked_at=at - 60_000,
        terms_version=1,
        amount_minor=4_999,
        currency="EUR",
        order_event_id="order-ev",
        **extra,  # type: ignore[arg-type]
    )


def reversed_(
    conversion: str, affiliate: str, reason: str, amount: int, at: int
) -> ConversionReversed:
    return ConversionReversed(
        event_id=f"rev-ev-{conversion}-{reason}",
        occurred_at=at,
        reversal_id=f"rev-{conversion}-{reason}",
        refund_id="rf-1" if reason == "refund" else f"re-{conversion}",
        conversion_id=conversion,
        order_id=ORDER,
        campaign_id=CID,
        affiliate_id=affiliate,
        amount_minor=amount,
        requested_minor=amount,
        refunded_total_minor=amount,
        order_amount_minor=4_999,
        currency="EUR",
        order_occurred_at=1_000,
        reason=reason,  # type: ignore[arg-type]
    )


def refunded(amount: int, at: int = 5_000) -> OrderRefunded:
    return OrderRefunded(
        event_id="refund-ev",
        occurred_at=at,
        refund_id="rf-1",
        order_id=ORDER,
        campaign_id=CID,
        amount_minor=amount,
        currency="EUR",
    )


def unattributed(reason: str) -> OrderUnattributed:
    return OrderUnattributed(
        event_id=f"unattr-{reason}",
        occurred_at=1_000,
        order_id=ORDER,
        campaign_id=CID,
        reason=reason,  # type: ignore[arg-type]
        amount_minor=4_999,
        currency="EUR",
        order_event_id="order-ev",
    )


@dataclass(frozen=True)
class Case:
    name: str
    events: tuple[Envelope, ...]
    status: str
    winner: str | None
    reason: str | None = None
    replaced: tuple[str, ...] = ()


CASES = [
    # Received, the attribution's answer not on its topic yet.
    Case("only-received", (placed(),), "pending", None),
    Case("attributed", (placed(), converted("c1", "ana")), "attributed", "ana"),
    # Every unattributed reason is answered as the attribution gave it.
    *[
        Case(f"unattributed-{r}", (placed(), unattributed(r)), "unattributed", None, r)
        for r in ("no_click", "outside_window", "bot_only", "unknown_click", "other_campaign")
    ],
    # A late click re-attributes: the first answer is reversed and replaced.
    Case(
        "reattributed",
        (
            placed(),
            converted("c1", "ana"),
            reversed_("c1", "ana", "reattributed", 4_999, 9_000),
            converted("c2", "ben", supersedes="c1", correction_reason="late_click"),
        ),
        "attributed",
        "ben",
        replaced=("c1",),
    ),
    # A correction that turns an unattributed order into a conversion wins over the answer.
    Case(
        "unattributed-then-corrected",
        (placed(), unattributed("no_click"), converted("c1", "ana")),
        "attributed",
        "ana",
    ),
    # A refund may reach the index before the order does.
    Case("refund-only", (refunded(1_000),), "not_received", None),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_an_orders_status_and_winner_come_from_its_events_in_any_arrival_order(case: Case) -> None:
    for seed in range(5):
        events = list(case.events) * 2  # redelivered
        random.Random(seed).shuffle(events)
        outcome = order_outcome(CID, ORDER, events)
        assert outcome.status == case.status
        assert (outcome.decision.affiliate_id if outcome.decision else None) == case.winner
        assert outcome_json(outcome)["unattributed_reason"] == case.reason
        assert tuple(c.conversion_id for c in outcome.replaced) == case.replaced


def test_refunds_and_their_reversals_are_listed_with_the_refunded_total() -> None:
    events = [
        placed(),
        converted("c1", "ana"),
        refunded(1_500),
        reversed_("c1", "ana", "refund", 1_500, 5_000),
    ]
    answer = outcome_json(order_outcome(CID, ORDER, events))
    assert answer["refunded_minor"] == 1_500
    assert [r["reversal_id"] for r in answer["reversals"]] == ["rev-c1-refund"]
    assert answer["decision"]["affiliate_id"] == "ana"
    assert answer["decision"]["window_ms"] == 30 * 86_400_000
    assert answer["order"]["amount_minor"] == 4_999


def test_an_unmatched_refund_and_a_lead_confirmation_are_shown() -> None:
    events: list[Envelope] = [
        placed(),
        unattributed("no_click"),
        RefundUnmatched(
            event_id="ru",
            occurred_at=6_000,
            refund_id="rf-9",
            order_id=ORDER,
            campaign_id=CID,
            reason="order_unattributed",
            amount_minor=100,
            currency="EUR",
        ),
        LeadConfirmed(event_id="lc", occurred_at=7_000, order_id=ORDER, campaign_id=CID),
    ]
    answer = outcome_json(order_outcome(CID, ORDER, events))
    assert [r["reason"] for r in answer["unmatched_refunds"]] == ["order_unattributed"]
    assert answer["lead_confirmation"]["event_id"] == "lc"


def test_events_of_another_order_or_campaign_are_left_out() -> None:
    other = placed().model_copy(update={"order_id": "o-2"})
    elsewhere = converted("c9", "zoe").model_copy(update={"campaign_id": "other"})
    outcome = order_outcome(CID, ORDER, [other, elsewhere])
    assert outcome.status == "not_received"
    assert outcome.decision is None


def test_the_creators_named_are_the_winner_first_then_the_replaced() -> None:
    events = [
        converted("c1", "ana"),
        reversed_("c1", "ana", "reattributed", 4_999, 9_000),
        converted("c2", "ben"),
    ]
    assert order_outcome(CID, ORDER, events).affiliates == ("ben", "ana")
