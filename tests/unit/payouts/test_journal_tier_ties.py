"""Sales of one creator at the same millisecond rank by conversion id (docs/payouts.md,
"Volume tiers"), not by the digest their line id is: the sale whose id sorts first is
the earlier net sale, in every arrival order, as the batch reference ranks them."""

from __future__ import annotations

import itertools

import pytest

from afflux.shared.core.commission import ConversionFact
from afflux.shared.core.ids import derived_id
from afflux.shared.core.journal.period import PeriodState, StepInput
from afflux.shared.core.terms import CampaignTerms, TermsVersion

pytestmark = pytest.mark.unit

NOV_3 = 1_793_664_000_000  # 2026-11-03T00:00:00Z
TERMS = CampaignTerms.model_validate(
    {
        "campaign_id": "shoes",
        "merchant_id": "m",
        "currency": "EUR",
        "plan": {
            "sale": {"rate": {"percent": "5"}},
            "tiers": [{"from_sales": 2, "rate": {"percent": "10"}}],
        },
    }
)
VERSIONS = (TermsVersion(version=1, effective_from=0, published_at=0, terms=TERMS),)


def sale(conversion_id: str, amount: int) -> ConversionFact:
    return ConversionFact(
        conversion_id,
        f"ev-{conversion_id}",
        f"order-{conversion_id}",
        "ana",
        "sale",
        None,
        amount,
        "EUR",
        False,
        NOV_3,
        1,
    )


def line(conversion_id: str) -> str:
    return derived_id("line", conversion_id)


# The ids are chosen so that their line ids sort the other way round: ranking by line id
# would pay the tier on the first sale.
assert line("conv-2a") > line("conv-2b")


@pytest.mark.parametrize("arrival", ["one batch", "a then b", "b then a"])
def test_sales_of_one_millisecond_rank_by_conversion_id(arrival: str) -> None:
    first, second = sale("conv-2a", 10_000), sale("conv-2b", 20_000)
    batches = {
        "one batch": [(second, first)],
        "a then b": [(first,), (second,)],
        "b then a": [(second,), (first,)],
    }[arrival]
    state = PeriodState("shoes", "2026-11", "EUR", VERSIONS)
    postings = list(
        itertools.chain.from_iterable(
            state.step(StepInput(conversions=batch)).postings for batch in batches
        )
    )
    net = {p.order_id: 0 for p in postings}
    for p in postings:
        net[p.order_id] += p.amount_minor
    # conv-2a is net sale 1 (5 % of 100.00), conv-2b net sale 2 (the tier: 10 % of 200.00).
    assert net == {"order-conv-2a": 500, "order-conv-2b": 2_000}
