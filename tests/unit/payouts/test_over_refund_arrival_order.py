"""Refunds of one order adding up to more than it give the same money in any arrival
order.

The attribution worker caps each refund at what is left of its order as refunds
arrive. With two full refunds of one sale (written straight to the topic), one dated
before the sale's approval and the month's end, one after both, the one that came
first took the sale: sent in date order the sale was reduced before approval and
stopped counting toward the tier and the milestone (the creator earned 15.00);
sent the other way round it was clawed back after approval and kept counting
(37.00). The journal now takes what each refund asked for and caps the line itself
in event-time order.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from afflux.oracle.batch import attribute
from afflux.oracle.commission import balances, net_per_order, reference_from_events
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.journal.period import PeriodState, StepInput
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import (
    ClickRecorded,
    ConversionAttributed,
    ConversionReversed,
    OrderPlaced,
    OrderRefunded,
)
from afflux.shared.ledger_facts import conversion_fact, refund_fact

pytestmark = pytest.mark.unit

NOV_1 = 1_793_491_200_000  # 2026-11-01T00:00Z


def day(n: int) -> int:
    return NOV_1 + (n - 1) * MS_PER_DAY


VERSIONS = (
    TermsVersion(
        version=1,
        effective_from=0,
        published_at=0,
        terms=CampaignTerms.model_validate(
            {
                "campaign_id": "c",
                "merchant_id": "m",
                "currency": "EUR",
                "lock_days": 30,
                "plan": {
                    "sale": {"rate": {"percent": "5"}},
                    "tiers": [{"from_sales": 2, "rate": {"percent": "10"}}],
                    "milestones": [{"at_sales": 2, "bonus_minor": 700}],
                },
            }
        ),
    ),
)
CLICK = ClickRecorded(
    event_id="ce-1",
    occurred_at=day(1),
    click_id="k1",
    link_code="L1",
    affiliate_id="ana",
    campaign_id="c",
    visitor_id="v1",
)


def order(n: int, on: int, amount: int) -> OrderPlaced:
    return OrderPlaced(
        event_id=f"oe-{n}",
        occurred_at=day(on),
        order_id=f"order-{n}",
        campaign_id="c",
        merchant_id="m",
        amount_minor=amount,
        currency="EUR",
        visitor_id="v1",
    )


def refund(name: str, on: int, amount: int) -> OrderRefunded:
    return OrderRefunded(
        event_id=f"re-{name}",
        occurred_at=day(on),
        refund_id=f"rf-{name}",
        order_id="order-1",
        campaign_id="c",
        amount_minor=amount,
        currency="EUR",
    )


BEFORE_APPROVAL = refund("early", 20, 10_000)  # order-1 approves on day 32
AFTER_APPROVAL = refund("late", 40, 10_000)
ORDERS = [order(1, 2, 10_000), order(2, 3, 30_000)]


def journal_total(events: Sequence[object]) -> int:
    """The creator's total through the attribution reference (which caps refunds as
    they come) and the journal's pure step, fed in that order."""
    attributed = attribute(list(events), {"c": VERSIONS})
    state = PeriodState("c", "2026-11", "EUR", VERSIONS)
    total = 0
    for e in [*attributed.conversions, *attributed.reversals]:
        if isinstance(e, ConversionAttributed):
            step = StepInput(conversions=(conversion_fact(e),))
        else:
            assert isinstance(e, ConversionReversed)
            step = StepInput(refunds=(refund_fact(e),))
        total += sum(p.amount_minor for p in state.step(step).postings)
    return total


@pytest.mark.parametrize(
    "refunds",
    [(BEFORE_APPROVAL, AFTER_APPROVAL), (AFTER_APPROVAL, BEFORE_APPROVAL)],
    ids=["in-date-order", "later-dated-first"],
)
def test_two_full_refunds_of_one_sale_give_the_same_money_in_either_order(
    refunds: tuple[OrderRefunded, OrderRefunded],
) -> None:
    events = [CLICK, *ORDERS, *refunds]
    # order-1 reduced to nothing before approval: one net sale, 5 % of order-2, no bonus
    assert journal_total(events) == 1_500
    attributed = attribute(events, {"c": VERSIONS})
    lines = reference_from_events([*attributed.conversions, *attributed.reversals], {"c": VERSIONS})
    period = lines[("c", "2026-11")]
    assert net_per_order(period) == {"order-2": 1_500}
    assert balances(period, day(60)) == {"ana": (0, 1_500)}


def test_a_refund_past_what_is_left_still_reads_as_capped_on_the_topic() -> None:
    """The reversal events keep the worker's arrival-order cap (what integrators read);
    only the ledger's money takes the event-time cap."""
    later_first = attribute([CLICK, *ORDERS, AFTER_APPROVAL, BEFORE_APPROVAL], {"c": VERSIONS})
    applied = {r.refund_id: (r.amount_minor, r.requested_minor) for r in later_first.reversals}
    assert applied == {"rf-late": (10_000, 10_000), "rf-early": (0, 10_000)}
