"""What became of one order in one campaign, from the events the topics carry (pure).

``order_outcome(events)`` reads the events stored for a (campaign, order): the
order as received (``OrderPlaced``), each attribution answer (``ConversionAttributed``,
``OrderUnattributed``), refunds (``OrderRefunded``, ``RefundUnmatched``), reversals
(``ConversionReversed``), a lead's confirmation (``LeadConfirmed``) and a survey
answer given later (``SurveyAnswered``), in any order and with duplicates, and answers
the order's status and decision. A conversion reversed with reason ``reattributed`` was
replaced by a later answer (a late click, stream or survey answer): it stays in the
history, and the live conversion is the decision. The survey answer shown is the one
attribution uses: the order's own, else the first given later. A review's decision
(``ConversionReviewed``) on the live conversion is shown, the first one (the ledger
applies the first decision that reaches it).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

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
    SurveyAnswer,
    SurveyAnswered,
)

# The worker's reason for a copy of an order refused beside the one it took.
CONFLICTING_DUPLICATE = "conflicting_duplicate"

Status = Literal["pending", "attributed", "unattributed", "refused", "not_received"]


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    campaign_id: str
    order_id: str
    status: Status
    order: OrderPlaced | None
    decision: ConversionAttributed | None  # the live conversion
    unattributed: OrderUnattributed | None
    replaced: tuple[ConversionAttributed, ...]  # earlier answers a correction replaced
    refunds: tuple[OrderRefunded, ...]
    unmatched_refunds: tuple[RefundUnmatched, ...]
    reversals: tuple[ConversionReversed, ...]
    lead_confirmation: LeadConfirmed | None
    survey: SurveyAnswer | None = None
    survey_given: Literal["with_order", "later"] | None = None
    # The attribution worker's dead letters of copies of this order it refused.
    refusals: tuple[DeadLetter, ...] = ()
    # The review's decision on the live conversion (held for review): the first stands.
    review: ConversionReviewed | None = None

    @property
    def affiliates(self) -> tuple[str, ...]:
        """Every creator a conversion of this order named (the live one first)."""
        named = [c.affiliate_id for c in ((self.decision,) if self.decision else ())]
        named += [c.affiliate_id for c in self.replaced]
        return tuple(dict.fromkeys(named))


def _in_order(events: Iterable[Envelope]) -> list[Envelope]:
    """Each event once (by id), in event-time order."""
    unique = {e.event_id: e for e in events}
    return sorted(unique.values(), key=lambda e: (e.occurred_at, e.event_id))


def _refused_item(letter: DeadLetter) -> dict[str, Any]:
    """The order a worker's letter holds (its item as sent); {} when it holds none."""
    try:
        item = json.loads(letter.value)
    except ValueError:
        return {}
    return item if isinstance(item, dict) else {}


def order_outcome(
    campaign_id: str,
    order_id: str,
    events: Iterable[Envelope],
    copies: Collection[tuple[str, int]] = (),
) -> OrderOutcome:
    """``copies``: the (event id, partition) of every copy of the order that came, when
    the index knows them (a refused copy is told apart from one re-sent right by them)."""
    unique = _in_order(events)
    refusals = tuple(
        e
        for e in unique
        if isinstance(e, DeadLetter)
        and (item := _refused_item(e)).get("campaign_id") == campaign_id
        and item.get("order_id") == order_id
    )
    every = [e for e in unique if getattr(e, "campaign_id", None) == campaign_id]
    ordered = [e for e in every if getattr(e, "order_id", None) == order_id]
    renewed = any(
        isinstance(e, SubscriptionRenewed) and e.renewal_order_id == order_id for e in every
    )
    placed = [e for e in ordered if isinstance(e, OrderPlaced)]
    conversions = [e for e in ordered if isinstance(e, ConversionAttributed)]
    reversals = tuple(e for e in ordered if isinstance(e, ConversionReversed))
    reattributed = {r.conversion_id for r in reversals if r.reason == "reattributed"}
    live = [c for c in conversions if c.conversion_id not in reattributed]
    # Should a replaced conversion's reversal be missing (not read yet, or left out), the
    # latest correction is the answer, not whichever sorts last by its hashed id.
    decision = (
        max(enumerate(live), key=lambda n_c: (n_c[1].corrected_at or -1, n_c[0]))[1]
        if live
        else None
    )
    reviews = [
        e
        for e in ordered
        if isinstance(e, ConversionReviewed)
        and decision is not None
        and e.conversion_id == decision.conversion_id
    ]
    unattributed = [e for e in ordered if isinstance(e, OrderUnattributed)]
    confirmations = [e for e in ordered if isinstance(e, LeadConfirmed)]
    answers = [e.answer for e in ordered if isinstance(e, SurveyAnswered)]
    own = placed[0].survey if placed else None
    status: Status
    if decision is not None:
        status = "attributed"
    elif unattributed:
        status = "unattributed"
    elif refusals and _every_copy_refused(placed, refusals, copies):
        status = "refused"  # never to be decided: its letter says why
    elif placed or renewed:
        status = "pending"  # received; the attribution's answer is not on its topic yet
    else:
        status = "not_received"  # only refunds or confirmations name this order
    return OrderOutcome(
        campaign_id=campaign_id,
        order_id=order_id,
        status=status,
        order=placed[0] if placed else None,
        decision=decision,
        unattributed=unattributed[-1] if decision is None and unattributed else None,
        replaced=tuple(c for c in conversions if c is not decision),
        refunds=tuple(e for e in ordered if isinstance(e, OrderRefunded)),
        unmatched_refunds=_still_unmatched(ordered, reversals, decision),
        reversals=reversals,
        lead_confirmation=confirmations[0] if confirmations else None,
        survey=own or (answers[0] if answers else None),
        survey_given="with_order" if own else "later" if answers else None,
        refusals=refusals,
        review=reviews[0] if reviews else None,
    )


def _every_copy_refused(
    placed: Sequence[OrderPlaced],
    refusals: Sequence[DeadLetter],
    copies: Collection[tuple[str, int]],
) -> bool:
    """Whether the worker refused each copy of the order that came, so that none will be
    decided. A conflicting copy's refusal never says so (another copy was taken). A copy
    is its event id and partition where the index knows them: a copy re-sent under the
    same event id on the right partition after a refused one is not the refused one."""
    letters = [r for r in refusals if not r.reason.startswith(CONFLICTING_DUPLICATE)]
    if not letters:
        return False
    refused = {(_refused_item(r).get("event_id"), r.source_partition) for r in letters}
    if copies:
        return all(copy in refused for copy in copies)
    refused_ids = {event_id for event_id, _ in refused}
    return all(copy.event_id in refused_ids for copy in placed)


def _still_unmatched(
    ordered: Sequence[Envelope],
    reversals: Sequence[ConversionReversed],
    decision: ConversionAttributed | None,
) -> tuple[RefundUnmatched, ...]:
    """The refunds answered unmatched that the live conversion has reversed since not
    left out: one that came before its order and was answered ``order_unknown`` after
    its wait is reversed when the order converts (or a late click attributes an
    unattributed one), and listed as unmatched beside its reversal it read as both. A
    reversal of another conversion (one replaced since) does not count."""
    live = decision.conversion_id if decision is not None else None
    reversed_refunds = {
        r.refund_id for r in reversals if r.reason == "refund" and r.conversion_id == live
    }
    return tuple(
        e for e in ordered if isinstance(e, RefundUnmatched) and e.refund_id not in reversed_refunds
    )


def refunded_minor(outcome: OrderOutcome) -> int:
    """What the refunds took off the order, never more than its amount.

    Attributed: the live conversion's refund reversals, each capped by the attribution
    worker so the refunds never exceed the order amount, which are what the ledger
    reduces and claws back. Otherwise: the refunds asked (each ``refund_id`` once),
    capped at the order's amount when the order was received. Summing what the
    refunds asked reported more than the order when refunds came before it (the
    orders service could not yet check them against its amount)."""
    if outcome.decision is not None:
        live = outcome.decision.conversion_id
        return sum(
            r.amount_minor
            for r in outcome.reversals
            if r.conversion_id == live and r.reason == "refund"
        )
    asked = {r.refund_id: r.amount_minor for r in outcome.refunds}
    total = sum(asked.values())
    return total if outcome.order is None else min(total, outcome.order.amount_minor)


def commission_refused_reason(
    outcome: OrderOutcome,
    ledger_refusals: Sequence[Mapping[str, Any]],
    postings: Sequence[Mapping[str, Any]] | None = (),
) -> str | None:
    """The ledger's reason when it refused the live conversion (the refusal naming its
    event id) and holds no posting of it: its creator is then paid nothing for the
    order, though attribution named them. A refusal of a replaced conversion or of a
    conflicting copy does not count, nor one of a copy of the live event the ledger had
    applied (the same bytes on a wrong topic or partition, a redelivery after the period
    was compacted): its postings name the event."""
    if outcome.decision is None:
        return None
    live = outcome.decision.event_id
    if any(live in (p.get("source_event_ids") or ()) for p in postings or ()):
        return None
    for refusal in ledger_refusals:
        if refusal.get("event_id") == live:
            reason = refusal.get("reason")
            return reason if isinstance(reason, str) else ""
    return None


def outcome_json(outcome: OrderOutcome) -> dict[str, Any]:
    """The answer's JSON (events as their topics carry them)."""

    def dump(event: Envelope | None) -> dict[str, Any] | None:
        return None if event is None else event.model_dump(mode="json")

    refunded = refunded_minor(outcome)
    return {
        "campaign_id": outcome.campaign_id,
        "order_id": outcome.order_id,
        "status": outcome.status,
        "order": dump(outcome.order),
        "decision": dump(outcome.decision),
        "rule": outcome.decision.reason if outcome.decision else None,
        "unattributed_reason": outcome.unattributed.reason if outcome.unattributed else None,
        "survey": (
            {**outcome.survey.model_dump(mode="json"), "given": outcome.survey_given}
            if outcome.survey
            else None
        ),
        "replaced": [dump(c) for c in outcome.replaced],
        "refunds": [dump(r) for r in outcome.refunds],
        "refunded_minor": refunded,
        "unmatched_refunds": [dump(r) for r in outcome.unmatched_refunds],
        "reversals": [dump(r) for r in outcome.reversals],
        "lead_confirmation": dump(outcome.lead_confirmation),
        "review": (
            {
                "decision": outcome.review.decision,
                "reason": outcome.review.reason,
                "decided_by": outcome.review.decided_by,
                "decided_at": outcome.review.occurred_at,
            }
            if outcome.review
            else None
        ),
        "refused_reason": outcome.refusals[0].reason if outcome.status == "refused" else None,
        "refusals": [
            {
                "event_id": _refused_item(letter).get("event_id"),
                "reason": letter.reason,
                "error_class": letter.error_class,
                "refused_at": letter.occurred_at,
            }
            for letter in outcome.refusals
        ],
    }
