"""What became of an order, read from its events in any order and with duplicates."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from afflux.orders.outcome import commission_refused_reason, order_outcome, outcome_json
from afflux.orders.outcome_index import event_class, indexed_order_id
from afflux.shared.events import (
    ConversionAttributed,
    ConversionReversed,
    ConversionReviewed,
    DeadLetter,
    Envelope,
    LeadConfirmed,
    OrderPlaced,
    OrderRefunded,
    OrderUnattributed,
    RefundUnmatched,
    SubscriptionRenewed,
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
        clicked_at=max(0, at - 60_000),
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


def test_a_refund_reversed_after_it_was_answered_unmatched_is_no_longer_unmatched() -> None:
    """Sent before its order, answered ``order_unknown`` after its wait, then taken when
    the order converted: listed as unmatched beside its own reversal, it read as both."""
    early = RefundUnmatched(
        event_id="ru",
        occurred_at=5_000,
        refund_id="rf-1",
        order_id=ORDER,
        campaign_id=CID,
        reason="order_unknown",
        amount_minor=1_500,
        currency="EUR",
    )
    other = early.model_copy(update={"event_id": "ru-2", "refund_id": "rf-2"})
    events = [
        refunded(1_500),
        early,
        other,
        placed(),
        converted("c1", "ana"),
        reversed_("c1", "ana", "refund", 1_500, 9_000),
        # rf-2 reversed on a conversion that is not the live one: still unmatched.
        reversed_("c0", "ana", "refund", 1_500, 8_000).model_copy(
            update={"refund_id": "rf-2", "event_id": "rev-ev-c0"}
        ),
    ]
    answer = outcome_json(order_outcome(CID, ORDER, events))
    assert [r["refund_id"] for r in answer["unmatched_refunds"]] == ["rf-2"]
    assert [r["refund_id"] for r in answer["reversals"]] == ["rf-2", "rf-1"]


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


def refund(refund_id: str, amount: int, at: int = 500) -> OrderRefunded:
    return OrderRefunded(
        event_id=f"ev-{refund_id}",
        occurred_at=at,
        refund_id=refund_id,
        order_id=ORDER,
        campaign_id=CID,
        amount_minor=amount,
        currency="EUR",
    )


def capped_reversal(refund_id: str, amount: int, asked: int, total: int) -> ConversionReversed:
    """As the attribution worker writes it: capped to what is left of the order."""
    return reversed_("c1", "ana", "refund", amount, 5_000).model_copy(
        update={
            "event_id": f"rev-ev-{refund_id}",
            "reversal_id": f"rev-{refund_id}",
            "refund_id": refund_id,
            "requested_minor": asked,
            "refunded_total_minor": total,
        }
    )


@dataclass(frozen=True)
class RefundedCase:
    name: str
    events: tuple[Envelope, ...]
    refunded_minor: int


REFUNDED = [
    # Two refunds of 3000 sent before the order of 4999: the worker applies 3000, then
    # the 1999 left; the answer is what the ledger reduced, never more than the order.
    RefundedCase(
        "refunds before an attributed order",
        (
            refund("rf-a", 3_000),
            refund("rf-b", 3_000),
            placed(),
            converted("c1", "ana"),
            capped_reversal("rf-a", 3_000, 3_000, 3_000),
            capped_reversal("rf-b", 1_999, 3_000, 4_999),
        ),
        4_999,
    ),
    # A refund beyond what is left is a reversal of 0.
    RefundedCase(
        "a refund past the order's amount",
        (
            placed(),
            converted("c1", "ana"),
            refund("rf-a", 4_999, 2_000),
            refund("rf-b", 100, 3_000),
            capped_reversal("rf-a", 4_999, 4_999, 4_999),
            capped_reversal("rf-b", 0, 100, 4_999),
        ),
        4_999,
    ),
    # Unattributed: what the refunds asked, capped at the order's amount.
    RefundedCase(
        "refunds before an unattributed order",
        (refund("rf-a", 3_000), refund("rf-b", 3_000), placed(), unattributed("no_click")),
        4_999,
    ),
    # The same refund id twice (sent straight to the topic again) is one refund.
    RefundedCase(
        "a refund sent twice",
        (
            placed(),
            unattributed("no_click"),
            refund("rf-a", 1_000),
            refund("rf-a", 1_000).model_copy(update={"event_id": "ev-rf-a-again"}),
        ),
        1_000,
    ),
    # No order to compare with: what the refunds asked.
    RefundedCase("refunds of an order not received", (refund("rf-a", 3_000),), 3_000),
]


@pytest.mark.parametrize("case", REFUNDED, ids=lambda c: c.name)
def test_the_refunded_total_never_exceeds_the_order_and_matches_the_reversals(
    case: RefundedCase,
) -> None:
    for seed in range(5):
        events = list(case.events) * 2  # redelivered, in any arrival order
        random.Random(seed).shuffle(events)
        answer = outcome_json(order_outcome(CID, ORDER, events))
        assert answer["refunded_minor"] == case.refunded_minor
        if answer["order"] is not None:
            assert answer["refunded_minor"] <= answer["order"]["amount_minor"]
        if answer["decision"] is not None:
            assert answer["refunded_minor"] == sum(r["amount_minor"] for r in answer["reversals"])


def test_the_latest_correction_is_the_decision_while_the_replaced_ones_reversal_is_missing() -> (
    None
):
    """Both conversions carry the order's own time: picked by their hashed event id, the
    replaced creator read as the winner for about half of all order ids."""
    first = converted("c-z", "ana")  # its event id sorts after the correction's
    correction = converted("c-b", "bob", supersedes="c-z", corrected_at=9_000)
    for events in ([placed(), first, correction], [placed(), correction, first]):
        outcome = order_outcome(CID, ORDER, events)
        assert outcome.decision is not None
        assert outcome.decision.affiliate_id == "bob"


def test_a_replacing_reversal_counts_with_the_answer_not_the_refunds() -> None:
    """Counted with the refunds, 50 partial refunds (two events each) left it out."""
    replaced = reversed_("c-a", "ana", "reattributed", 4_999, 9_000)
    refund = reversed_("c-a", "ana", "refund", 100, 9_000)
    assert (event_class(replaced), event_class(refund)) == ("answer", "refund")


def test_a_renewal_is_indexed_under_its_own_id_and_reads_pending_until_decided() -> None:
    renewal = SubscriptionRenewed(
        event_id="ren-ev", occurred_at=5_000, order_id=ORDER, renewal_order_id="o-1-r2",
        campaign_id=CID, merchant_id="acme", renewal_number=2, amount_minor=999,
        currency="EUR",
    )  # fmt: skip
    assert indexed_order_id(renewal) == "o-1-r2"
    assert order_outcome(CID, "o-1-r2", [renewal]).status == "pending"
    assert order_outcome(CID, ORDER, [renewal]).status == "not_received"


def refused(
    copy: OrderPlaced, reason: str = "key_mismatch: a OrderPlaced on orders …"
) -> DeadLetter:
    return DeadLetter(
        event_id=f"dl-{copy.event_id}",
        occurred_at=9_000,
        source_topic="orders",
        source_partition=1,
        source_offset=7,
        consumer="afflux-attribution",
        reason=reason,
        error_class="Rejected",
        key=copy.order_id,
        value=copy.model_dump_json(),
    )


def test_an_order_the_attribution_refused_reads_refused_with_its_reason_not_pending() -> None:
    """A misplaced order (``key_mismatch``) never gets an answer on the outcome topics:
    it read ``pending`` for ever."""
    order = placed()
    answer = outcome_json(order_outcome(CID, ORDER, [order, refused(order)]))
    assert answer["status"] == "refused"
    assert answer["refused_reason"].startswith("key_mismatch")
    assert [r["event_id"] for r in answer["refusals"]] == ["order-ev"]


def test_a_refused_conflicting_copy_leaves_the_order_to_the_copy_taken() -> None:
    taken = placed()
    other = taken.model_copy(update={"event_id": "order-ev-2", "amount_minor": 9_999})
    letter = refused(other, "conflicting_duplicate: order …")
    outcome = order_outcome(CID, ORDER, [taken, other, letter])
    assert outcome.status == "pending"  # the copy taken awaits its answer
    answer = outcome_json(order_outcome(CID, ORDER, [taken, other, letter, converted("c1", "ana")]))
    assert answer["status"] == "attributed"
    assert answer["refused_reason"] is None
    assert [r["reason"] for r in answer["refusals"]] == ["conflicting_duplicate: order …"]


def test_a_letter_of_another_order_is_not_this_orders() -> None:
    other = placed().model_copy(update={"order_id": "o-else", "event_id": "else-ev"})
    assert order_outcome(CID, ORDER, [placed(), refused(other)]).status == "pending"


def test_a_copy_sent_again_right_under_the_same_event_id_is_not_the_refused_one() -> None:
    """Refused on partition 1, the same order (same event id) sent again on partition 0:
    it read refused for the whole grace, though the worker held the new copy."""
    order = placed()
    letter = refused(order)  # from partition 1
    assert order_outcome(CID, ORDER, [order, letter], {("order-ev", 1)}).status == "refused"
    both = {("order-ev", 1), ("order-ev", 0)}
    assert order_outcome(CID, ORDER, [order, letter], both).status == "pending"


def test_a_conflicting_copy_under_the_taken_copys_event_id_does_not_make_the_order_refused() -> (
    None
):
    order = placed()
    conflicting = refused(
        order.model_copy(update={"amount_minor": 99_999}), "conflicting_duplicate: …"
    )
    copies = {("order-ev", 1)}
    assert order_outcome(CID, ORDER, [order, conflicting], copies).status == "pending"
    assert order_outcome(CID, ORDER, [order, conflicting]).status == "pending"


def ledger_refusal(
    event_id: str, reason: str = "failed: CreatorSumOutOfRange(...)"
) -> dict[str, str]:
    return {"event_id": event_id, "reason": reason, "error_class": "CreatorSumOutOfRange"}


@dataclass(frozen=True)
class LedgerRefusalCase:
    name: str
    events: list[Envelope]
    refusals: list[dict[str, str]]
    expected: str | None


LEDGER_REFUSAL_CASES = [
    LedgerRefusalCase(
        "the live conversion refused",
        [placed(), converted("c1", "ana")],
        [ledger_refusal("conv-ev-c1")],
        "failed: CreatorSumOutOfRange(...)",
    ),
    LedgerRefusalCase("nothing refused", [placed(), converted("c1", "ana")], [], None),
    LedgerRefusalCase(
        "only a conversion a correction replaced refused",
        [
            converted("c1", "ana"),
            reversed_("c1", "ana", "reattributed", 4_999, 9_000),
            converted("c2", "ben"),
        ],
        [ledger_refusal("conv-ev-c1")],
        None,
    ),
    LedgerRefusalCase(
        "a conflicting copy under another event id refused",
        [placed(), converted("c1", "ana")],
        [ledger_refusal("forged-copy")],
        None,
    ),
    LedgerRefusalCase("no decision yet", [placed()], [ledger_refusal("conv-ev-c1")], None),
]


@pytest.mark.parametrize("case", LEDGER_REFUSAL_CASES, ids=lambda c: c.name)
def test_the_commission_reads_refused_only_when_the_ledger_refused_the_live_conversion(
    case: LedgerRefusalCase,
) -> None:
    outcome = order_outcome(CID, ORDER, case.events)

    assert commission_refused_reason(outcome, case.refusals) == case.expected


def reviewed(conversion: str, decision: str, at: int, reason: str = "") -> ConversionReviewed:
    return ConversionReviewed(
        event_id=f"review-{conversion}-{at}",
        occurred_at=at,
        conversion_id=conversion,
        order_id=ORDER,
        campaign_id=CID,
        affiliate_id="ana",
        order_occurred_at=1_000,
        decision=decision,  # type: ignore[arg-type]
        reason=reason,
        decided_by="admin",
    )


def test_the_first_review_decision_on_the_live_conversion_is_the_outcomes() -> None:
    events = [
        placed(),
        converted("c1", "ana"),
        reviewed("c1", "approve", 9_000),
        reviewed("c1", "decline", 5_000, "self-purchase"),
    ]
    outcome = order_outcome(CID, ORDER, events)

    assert outcome.status == "attributed"
    assert outcome_json(outcome)["review"] == {
        "decision": "decline",
        "reason": "self-purchase",
        "decided_by": "admin",
        "decided_at": 5_000,
    }
    assert event_class(events[-1]) == "answer"


def test_a_review_of_a_conversion_a_correction_replaced_is_not_the_outcomes() -> None:
    events = [
        converted("c1", "ana"),
        reviewed("c1", "decline", 5_000),
        reversed_("c1", "ana", "reattributed", 4_999, 9_000),
        converted("c2", "ben"),
    ]
    assert outcome_json(order_outcome(CID, ORDER, events))["review"] is None


def test_a_refused_copy_of_the_live_event_the_ledger_applied_is_not_a_refusal_of_it() -> None:
    """The same bytes on a wrong topic are refused under the live event id, while the
    ledger holds the event's accrual: its creator is paid."""
    outcome = order_outcome(CID, ORDER, [placed(), converted("c1", "ana")])
    accrual = {"kind": "accrual", "amount_minor": 400, "source_event_ids": ["conv-ev-c1"]}

    assert commission_refused_reason(outcome, [ledger_refusal("conv-ev-c1")], [accrual]) is None
    assert commission_refused_reason(outcome, [ledger_refusal("conv-ev-c1")], []) is not None
