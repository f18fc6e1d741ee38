"""A sale whose only items at the sale's own rate are free (a gift at price 0) under a
fixed sale rate: the fixed rate is not paid (no amount falls to it), the items with a
rate of their own are, and a refund naming the gift takes nothing back. The journal,
the batch reference and the pricing itself agree, and none of them fails on it (it
divided by the zero default amount, so the ledger refused the conversion and a
what-if of the campaign failed)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

import pytest

from afflux.oracle.commission import posted_amounts, reference_lines, target_amounts
from afflux.oracle.ledger_scenarios import CAMPAIGN, PERIOD, START, Facts, arrival
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.commission import ConversionFact, RefundFact
from afflux.shared.core.journal.period import PeriodState
from afflux.shared.core.journal.records import Posting
from afflux.shared.core.products import ItemRow, RefundItemRow, price_sale
from afflux.shared.core.terms import CampaignTerms, ProductRates, Rate, TermsVersion

pytestmark = pytest.mark.unit

FIXED = Rate(fixed_minor=250)
PRODUCTS = ProductRates(skus={"shoe-1": Decimal("20")}, excluded_categories=("gift_card",))
GIFT: ItemRow = ("gift", None, 1, 0)
SHOE: ItemRow = ("shoe-1", "shoes", 1, 4000)


@dataclass(frozen=True)
class Case:
    name: str
    items: tuple[ItemRow, ...]
    gross: int


CASES = [
    # Only a free item at the fixed rate: nothing falls to the rate, nothing is paid.
    Case("a free gift alone", (GIFT,), 0),
    # A sku-rated shoe and a free gift: the shoe's 20 % only, no fixed 250.
    Case("a shoe and a free gift", (SHOE, GIFT), 800),
    # Two free items at the fixed rate: still nothing.
    Case("two free gifts", (GIFT, ("gift-2", None, 3, 0)), 0),
    # A paid item at the fixed rate beside the gift: the fixed rate once.
    Case("a paid hat and a free gift", (("hat", None, 1, 1000), GIFT), 250),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_free_items_at_a_fixed_sale_rate_are_priced_without_failing(case: Case) -> None:
    amount = sum(q * u for _, _, q, u in case.items)
    pricing = price_sale(PRODUCTS, FIXED, "base rate", amount, case.items)
    assert pricing.gross == case.gross
    assert dict(pricing.per_unit)["gift"] == 0


def _versions() -> tuple[TermsVersion, ...]:
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": CAMPAIGN,
            "merchant_id": "m",
            "currency": "EUR",
            "lock_days": 5,
            "plan": {
                "sale": {
                    "rate": {"fixed_minor": 250},
                    "products": {"skus": {"shoe-1": "20"}},
                }
            },
        }
    )
    return (TermsVersion(version=1, effective_from=0, published_at=0, terms=terms),)


def _sale(i: int, items: tuple[ItemRow, ...]) -> ConversionFact:
    amount = sum(q * u for _, _, q, u in items)
    return ConversionFact(
        f"conv-{i}", f"ev-{i}", f"order-{i}", "ana", "sale", None, amount, "EUR", False,
        START + i * MS_PER_DAY, 1, items,
    )  # fmt: skip


def _refund(i: int, amount: int, named: tuple[RefundItemRow, ...]) -> RefundFact:
    return RefundFact(
        f"rev-{i}", f"ev-rev-{i}", f"order-{i}", amount, START + (i + 1) * MS_PER_DAY,
        f"conv-{i}", "refund", named,
    )  # fmt: skip


def test_a_sale_with_a_free_gift_nets_to_the_reference_and_its_gift_refund_takes_nothing() -> None:
    facts = Facts(
        conversions=[_sale(0, (SHOE, GIFT)), _sale(1, (GIFT,)), _sale(2, (SHOE,))],
        refunds=[_refund(0, 0 + 1, (("gift", 1, None),)), _refund(2, 1000, ())],
    )
    want = target_amounts(
        reference_lines(CAMPAIGN, PERIOD, facts.conversions, facts.refunds, {}, [], _versions())
    )
    for seed in range(5):
        state = PeriodState(CAMPAIGN, PERIOD, "EUR", _versions())
        postings: list[Posting] = []
        for batch in arrival(facts, random.Random(seed)):
            postings += state.step(batch).postings
        assert posted_amounts(postings) == want, f"arrival {seed}"
    # The shoe's 800 paid on order 0, untouched by the gift's refund; order 1 earns nothing.
    by_order = {key: amount for key, amount in want.items() if amount}
    assert sum(by_order.values()) == 800 + 800 - 200, by_order
