"""Refunds of one order adding up to more than it give the same money in any arrival
order.

The attribution worker caps each refund at what is left of its order as refunds
arrive. With two full refunds of one sale (written straight to the topic), one dated
before the sale's approval and the month's end, one after both, the one that came
first took the sale: sent in date order the sale was reduced before approval and
stopped counting toward the tier and the milestone (the creator earned 15.00);
sent the other way round it was clawed back after approval and kept counting
(37.00). The journal now takes what each refund asked for and caps the line itself
in event-time order (as does the what-if replay, which capped them as it read them).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from afflux.oracle.batch import attribute
from afflux.oracle.commission import balances, net_per_order, reference_from_events
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.journal.period import PeriodState, StepInput
from afflux.shared.core.journal.records import Posting
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.core.whatif.log import CampaignLog
from afflux.shared.core.whatif.replay import replay
from afflux.shared.events import (
    ClickRecorded,
    ConversionAttributed,
    ConversionReversed,
    OrderItem,
    OrderPlaced,
    OrderRefunded,
    RefundItem,
)
from afflux.shared.ledger_facts import conversion_fact, refund_fact
from afflux.shared.whatif_decode import LogReader

pytestmark = pytest.mark.unit

NOV_1 = 1_793_491_200_000  # 2026-11-01T00:00Z


def day(n: int) -> int:
    return NOV_1 + (n - 1) * MS_PER_DAY


def versions(plan: dict[str, object]) -> tuple[TermsVersion, ...]:
    terms = CampaignTerms.model_validate(
        {"campaign_id": "c", "merchant_id": "m", "currency": "EUR", "lock_days": 30, "plan": plan}
    )
    return (TermsVersion(version=1, effective_from=0, published_at=0, terms=terms),)


VERSIONS = versions(
    {
        "sale": {"rate": {"percent": "5"}},
        "tiers": [{"from_sales": 2, "rate": {"percent": "10"}}],
        "milestones": [{"at_sales": 2, "bonus_minor": 700}],
    }
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


def postings_of(events: Sequence[object], terms: tuple[TermsVersion, ...]) -> list[Posting]:
    """The journal's postings for ``events`` through the attribution reference (which
    caps refunds as they come) and the journal's pure step, fed in that order."""
    attributed = attribute(list(events), {"c": terms})
    state = PeriodState("c", "2026-11", "EUR", terms)
    out: list[Posting] = []
    for e in [*attributed.conversions, *attributed.reversals]:
        if isinstance(e, ConversionAttributed):
            out += state.step(StepInput(conversions=(conversion_fact(e),))).postings
        else:
            assert isinstance(e, ConversionReversed)
            out += state.step(StepInput(refunds=(refund_fact(e),))).postings
    return out


def journal_total(events: Sequence[object]) -> int:
    return sum(p.amount_minor for p in postings_of(events, VERSIONS))


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


ITEM_RATES = versions({"sale": {"rate": {"percent": "5"}, "products": {"skus": {"A": "20"}}}})
WITH_ITEMS = order(1, 2, 10_000).model_copy(
    update={"items": [OrderItem(sku="A", price_minor=5_000), OrderItem(sku="B", price_minor=5_000)]}
)


def item_b(name: str, on: int, amount: int) -> OrderRefunded:
    return refund(name, on, amount).model_copy(
        update={"items": [RefundItem(sku="B", amount_minor=5_000)]}
    )


@pytest.mark.parametrize(
    ("first", "second", "pays"),
    [
        # 6,000 asked, then item B's 5,000: only 4,000 is left, so the second is no longer
        # item B's refund (priced pro rata) and the fully refunded line pays nothing.
        # Priced on what it asked, it took item B's commission alone and kept 2.50.
        (refund("part", 10, 6_000), item_b("b", 12, 5_000), 0),
        # 5,000 asked (half the line), then 6,000 naming item B: 5,000 left, item B's
        # price, so it is item B's refund, and it completes the order: a fully refunded
        # line pays nothing (item B's commission alone, 5 % of 50.00, left it 3.75).
        (refund("part", 10, 5_000), item_b("b", 12, 6_000), 0),
        # The same refunds, the completing one after approval: clawed back in full.
        (refund("part", 10, 5_000), item_b("b", 40, 5_000), 0),
        # Item B first (its 2.50), then the other half naming nothing (half the line,
        # 6.25, where 10.00 is left): completing the order, it takes all that is left.
        (item_b("b", 10, 5_000), refund("part", 12, 5_000), 0),
        # 7,000 of 10,000 naming nothing: three tenths of the line (3.75 of 12.50) stay.
        (refund("part", 10, 5_000), refund("more", 12, 2_000), 375),
    ],
    ids=[
        "past-its-amount",
        "item-b-after-half",
        "completed-after-approval",
        "items-first",
        "not-whole",
    ],
)
@pytest.mark.parametrize("later_first", [False, True], ids=["date-order", "later-first"])
def test_refunds_naming_items_past_the_order_are_priced_on_what_they_take(
    first: OrderRefunded, second: OrderRefunded, pays: int, later_first: bool
) -> None:
    """The same in the journal and the batch reference (which priced them on what they
    asked: 2.50 against the journal's 0), in either arrival order."""
    refunds = [second, first] if later_first else [first, second]
    events = [CLICK, WITH_ITEMS, *refunds]
    assert sum(p.amount_minor for p in postings_of(events, ITEM_RATES)) == pays
    attributed = attribute(events, {"c": ITEM_RATES})
    lines = reference_from_events(
        [*attributed.conversions, *attributed.reversals], {"c": ITEM_RATES}
    )
    assert sum(line.pays_minor for line in lines[("c", "2026-11")]) == pays


@pytest.mark.parametrize(
    "refunds",
    [
        (refund("a", 20, 6_000), refund("b", 40, 6_000)),
        (refund("b", 40, 6_000), refund("a", 20, 6_000)),
    ],
    ids=["date-order", "later-first"],
)
def test_a_clawback_names_what_its_refund_takes_not_what_it_asked(
    refunds: tuple[OrderRefunded, OrderRefunded],
) -> None:
    postings = postings_of([CLICK, *ORDERS, *refunds], VERSIONS)
    clawbacks = [p for p in postings if p.component.startswith("clawback")]
    assert clawbacks[-1].rule == "clawback: refund of 4000 after approval"
    assert sum(p.amount_minor for p in postings if p.order_id == "order-1") == 0


@pytest.mark.parametrize(
    "refunds",
    [(BEFORE_APPROVAL, AFTER_APPROVAL), (AFTER_APPROVAL, BEFORE_APPROVAL)],
    ids=["in-date-order", "later-dated-first"],
)
def test_the_what_if_replay_pays_what_the_ledger_pays_in_either_order(
    refunds: tuple[OrderRefunded, OrderRefunded],
) -> None:
    """Its current side is the ledger's money for the same events (docs/campaigns.md); it
    capped refunds as it read them, and showed 37.00 where the ledger paid 15.00."""
    reader = LogReader(CampaignLog("c"))
    for event in [CLICK, *ORDERS, *refunds]:
        reader.item(event.model_dump(mode="json"))
    assert reader.skipped == 0
    paid = replay(reader.log, VERSIONS).commission_by_creator()
    assert {a: v for a, v in paid.items() if v} == {"ana": 1_500}
