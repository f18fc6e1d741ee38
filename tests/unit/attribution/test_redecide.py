"""A click that arrives after its order was decided re-decides the order: the final
outcome, once corrections are netted, is the one event time alone gives (the oracle's),
whatever the arrival order. Both stages run as the worker chains them, without Kafka."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from afflux.attribution.join import JoinPartition
from afflux.attribution.refunds import RefundPartition
from afflux.oracle import attribute, net_outcomes
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import (
    ClickRecorded,
    ConversionAttributed,
    ConversionReversed,
    Envelope,
    LeadConfirmed,
    OrderKind,
    OrderPlaced,
    OrderRefunded,
    OrderUnattributed,
    RefundUnmatched,
)

pytestmark = pytest.mark.unit

HOUR = 3_600_000
DAY = 24 * HOUR
ORDER_AT = 1_793_491_200_000
GRACE_MS = 1_000
LATE_ARRIVAL = 50_000  # broker time of the late clicks, long after the grace
TERMS = TermsVersion(
    version=1,
    effective_from=0,
    published_at=0,
    terms=CampaignTerms.model_validate(
        {
            "campaign_id": "camp",
            "merchant_id": "m",
            "currency": "EUR",
            "cookie_window_days": 30,
            "grace_seconds": 1,
            "plan": {"sale": {"rate": {"percent": "10"}}, "lead_minor": 500},
        }
    ),
)


def terms(campaign: str, at: int) -> TermsVersion | None:
    return TERMS if campaign == "camp" else None


def click(creator: str, before_order_ms: int, *, bot: bool = False) -> ClickRecorded:
    cid = f"v.{creator}-{before_order_ms}"
    return ClickRecorded(
        event_id=f"ev-{cid}",
        occurred_at=ORDER_AT - before_order_ms,
        click_id=cid,
        link_code="code",
        affiliate_id=creator,
        campaign_id="camp",
        visitor_id="v",
        is_bot=bot,
    )


def order(kind: OrderKind) -> OrderPlaced:
    return OrderPlaced(
        event_id="ev-order",
        occurred_at=ORDER_AT,
        order_id="o1",
        campaign_id="camp",
        merchant_id="m",
        kind=kind,
        amount_minor=10_000,
        currency="EUR",
        visitor_id="v",
    )


def refund(amount: int) -> OrderRefunded:
    return OrderRefunded(
        event_id=f"ev-refund-{amount}",
        occurred_at=ORDER_AT + DAY,
        refund_id=f"r-{amount}",
        order_id="o1",
        campaign_id="camp",
        amount_minor=amount,
        currency="EUR",
    )


CONFIRM = LeadConfirmed(
    event_id="ev-confirm", occurred_at=ORDER_AT + HOUR, order_id="o1", campaign_id="camp"
)


@dataclass
class Run:
    outputs: list[Envelope]
    late_outcomes: list[str]


def stream(
    on_time: Sequence[ClickRecorded],
    the_order: OrderPlaced,
    before_late: Sequence[OrderRefunded | LeadConfirmed],
    late: Sequence[ClickRecorded],
) -> Run:
    """Clicks on time, the order decided after its grace, refunds and confirmations, then
    the late clicks; every output of the join is handed to the refund stage."""
    join, refunds = JoinPartition(), RefundPartition()
    outputs: list[Envelope] = []

    def to_stage_two(produced: Sequence[tuple[str, str, Envelope]]) -> None:
        for _, key, event in produced:
            outputs.append(event)
            if isinstance(event, ConversionAttributed):
                to_stage_two(refunds.conversion(key, event))
            elif isinstance(event, OrderUnattributed):
                to_stage_two(refunds.unattributed(key, event))

    for c in on_time:
        join.click("v", c, 0, terms)
    join.order("v", the_order, 0)
    to_stage_two(join.due(GRACE_MS, terms))
    for e in before_late:
        if isinstance(e, OrderRefunded):
            to_stage_two(refunds.refund("o1", e, GRACE_MS))
        else:
            to_stage_two(join.lead("v", e))
    outcomes: list[str] = []
    for c in late:
        result = join.click("v", c, LATE_ARRIVAL, terms)
        outcomes += result.outcomes
        to_stage_two(result.outputs)
    return Run(outputs, outcomes)


@dataclass(frozen=True)
class Case:
    name: str
    on_time: tuple[ClickRecorded, ...]
    before_late: tuple[OrderRefunded | LeadConfirmed, ...]
    late: tuple[ClickRecorded, ...]
    outcomes: list[str]  # afflux_late_clicks_total's labels
    winner_before: str | None
    winner_after: str | None
    reattributed_minor: int | None  # the superseded conversion's reversal, if any
    kind: OrderKind = "sale"


CASES = [
    # the late click is closer to the order: it wins, anna's conversion is reversed in full
    Case("late click wins", (click("anna", 2 * DAY),), (), (click("ben", HOUR),),
         ["reattributed"], "anna", "ben", 10_000),
    # a closer click was there in time: the late one is counted, nothing changes
    Case("late click loses to a closer click", (click("anna", HOUR),), (),
         (click("ben", 2 * DAY),), ["unchanged"], "anna", "anna", None),
    # a flagged click never wins: not even counted as late
    Case("late flagged click changes nothing", (click("anna", 2 * DAY),), (),
         (click("ben", HOUR, bot=True),), [], "anna", "anna", None),
    # the order had no click at all: the late click attributes it, superseding nothing
    Case("late click for an unattributed order", (), (), (click("ben", HOUR),),
         ["attributed"], None, "ben", None),
    # 3,000 already refunded: anna loses the 7,000 left, ben's conversion carries the refund
    Case("re-decision after a partial refund", (click("anna", 2 * DAY),), (refund(3_000),),
         (click("ben", HOUR),), ["reattributed"], "anna", "ben", 7_000),
    # a refund unmatched while the order was unattributed applies to the late conversion
    Case("refund of an unattributed order", (), (refund(4_000),), (click("ben", HOUR),),
         ["attributed"], None, "ben", None),
    # a lead confirmed before the late click: the confirmation follows the new conversion
    Case("lead confirmed before re-decision", (click("anna", 2 * DAY),), (CONFIRM,),
         (click("ben", HOUR),), ["reattributed"], "anna", "ben", 10_000, "lead"),
    # a confirmation held for an unattributed lead is forwarded once a late click wins
    Case("lead confirmed while unattributed", (), (CONFIRM,), (click("ben", HOUR),),
         ["attributed"], None, "ben", None, "lead"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_late_click_ends_in_the_event_time_decision(case: Case) -> None:
    the_order = order(case.kind)
    run = stream(case.on_time, the_order, case.before_late, case.late)
    inputs: list[Envelope] = [*case.on_time, *case.late, the_order, *case.before_late]
    oracle = attribute(inputs, {"camp": (TERMS,)})
    netted = net_outcomes(run.outputs)

    assert run.late_outcomes == case.outcomes
    first = run.outputs[0]
    assert getattr(first, "affiliate_id", None) == case.winner_before
    assert {k: v.affiliate_id for k, v in netted.items()} == (
        {("camp", "o1"): case.winner_after} if case.winner_after else {}
    )
    assert netted == net_outcomes([*oracle.conversions, *oracle.reversals])
    taken_back = [
        r for r in run.outputs if isinstance(r, ConversionReversed) and r.reason == "reattributed"
    ]
    assert [r.amount_minor for r in taken_back] == (
        [case.reattributed_minor] if case.reattributed_minor is not None else []
    )
    for r in taken_back:
        assert (r.affiliate_id, r.occurred_at) == (case.winner_before, LATE_ARRIVAL)
    corrections = [
        c for c in run.outputs if isinstance(c, ConversionAttributed) and c.correction_reason
    ]
    for c in corrections:
        superseded = first.conversion_id if isinstance(first, ConversionAttributed) else None
        assert (c.supersedes, c.corrected_at) == (superseded, LATE_ARRIVAL)
    forwarded = [e for e in run.outputs if isinstance(e, LeadConfirmed)]
    assert len(forwarded) == (1 if CONFIRM in case.before_late else 0)
    oracle_confirmed = [e for e in oracle.conversions if isinstance(e, LeadConfirmed)]
    assert forwarded == oracle_confirmed


def test_refunds_before_the_correction_are_applied_again_to_the_new_conversion() -> None:
    run = stream((), order("sale"), (refund(4_000), refund(9_000)), (click("ben", HOUR),))
    unmatched = [e for e in run.outputs if isinstance(e, RefundUnmatched)]
    reversals = [e for e in run.outputs if isinstance(e, ConversionReversed)]
    assert [u.reason for u in unmatched] == ["order_unattributed", "order_unattributed"]
    # Capped again in the order they were settled: 4,000, then what is left of 10,000.
    assert [(r.refund_id, r.amount_minor, r.refunded_total_minor) for r in reversals] == [
        ("r-4000", 4_000, 4_000),
        ("r-9000", 6_000, 10_000),
    ]


def test_a_correction_and_its_reversals_sent_again_change_nothing() -> None:
    join, refunds = JoinPartition(), RefundPartition()
    join.click("v", click("anna", 2 * DAY), 0, terms)
    join.order("v", order("sale"), 0)
    (first,) = join.due(GRACE_MS, terms)
    assert isinstance(first[2], ConversionAttributed)
    refunds.conversion("o1", first[2])
    late = join.click("v", click("ben", HOUR), LATE_ARRIVAL, terms).outputs
    (correction,) = [e for _, _, e in late]
    assert isinstance(correction, ConversionAttributed)
    assert len(refunds.conversion("o1", correction)) == 1
    assert refunds.conversion("o1", correction) == []  # a redelivered correction
    assert refunds.conversion("o1", first[2]) == []  # the superseded one, redelivered
    assert join.click("v", click("ben", HOUR), LATE_ARRIVAL, terms).outputs == []


def test_redecide_off_keeps_the_first_decision() -> None:
    join = JoinPartition(redecide=False)
    join.click("v", click("anna", 2 * DAY), 0, terms)
    join.order("v", order("sale"), 0)
    join.due(GRACE_MS, terms)
    late = join.click("v", click("ben", HOUR), LATE_ARRIVAL, terms)
    assert (late.outcomes, late.outputs) == (["unchanged"], [])


def test_re_deciding_survives_a_restart_from_the_changelog() -> None:
    join = JoinPartition()
    join.click("v", click("anna", 2 * DAY), 0, terms)
    join.order("v", order("lead"), 0)
    join.due(GRACE_MS, terms)
    restored = JoinPartition()
    for key, value in join.take_dirty():
        if value is not None:
            restored.restore(key, value)
    late = restored.click("v", click("ben", HOUR), LATE_ARRIVAL, terms)
    (correction,) = [e for _, _, e in late.outputs]
    assert isinstance(correction, ConversionAttributed)
    assert (correction.affiliate_id, correction.kind, correction.order_event_id) == (
        "ben",
        "lead",
        "ev-order",
    )
    assert correction.supersedes is not None


def test_clicks_held_past_the_cutoff_when_the_timer_decides_give_the_same_corrections() -> None:
    # A stall: the click reaches the worker after the order's grace but before the timer
    # decides it. The outputs must be those of the click coming after the decision.
    def run(click_first: bool) -> tuple[list[Envelope], list[str]]:
        join = JoinPartition()
        join.click("v", click("anna", 2 * DAY), 0, terms)
        join.order("v", order("sale"), 0)
        late = click("ben", HOUR)
        outputs, outcomes = [], []
        if click_first:
            outcomes += join.click("v", late, LATE_ARRIVAL, terms).outcomes
        outputs += [e for _, _, e in join.due(LATE_ARRIVAL, terms)]
        outcomes += join.take_late()
        if not click_first:
            result = join.click("v", late, LATE_ARRIVAL, terms)
            outputs += [e for _, _, e in result.outputs]
            outcomes += result.outcomes
        return outputs, outcomes

    held, held_outcomes = run(click_first=True)
    assert run(click_first=False) == (held, held_outcomes)
    assert held_outcomes == ["reattributed"]
    assert [getattr(e, "affiliate_id", None) for e in held] == ["anna", "ben"]


def test_clicks_that_concern_no_decided_order_answer_nothing_before_and_after_a_late_one() -> None:
    """Such clicks share one empty answer: a late click's outcomes never show in it."""
    join = JoinPartition()
    first = join.click("v", click("anna", 2 * DAY), 0, terms)
    assert (first.outcomes, first.outputs, first.refused) == ([], [], "")
    join.order("v", order("sale"), 0)
    join.due(GRACE_MS, terms)
    late = join.click("v", click("ben", HOUR), LATE_ARRIVAL, terms)
    assert late.outcomes == ["reattributed"]
    other = JoinPartition().click("w", click("carl", DAY), 0, terms)
    flagged = join.click("v", click("dana", HOUR, bot=True), LATE_ARRIVAL, terms)
    for nothing in (other, flagged):
        assert (nothing.outcomes, nothing.outputs, nothing.refused) == ([], [], "")
