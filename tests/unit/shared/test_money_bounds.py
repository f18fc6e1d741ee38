"""Money is bounded where it enters, and no amount in range can make a computation raise.

Amounts are strict JSON integers from 0 to ``MAX_AMOUNT_MINOR`` (10^15) on every
event; a campaign accepts orders up to its ``max_order_minor``. Within those
bounds every commission plan element (percent of the largest amount, tiers,
bonuses, caps, pro-rata refunds before and after approval) gives exact integer
results: the tests compare against exact fractions and drive each element to
its extremes.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.commission import ConversionFact, RefundFact
from afflux.shared.core.journal.period import ClickFigures, PeriodState, StepInput
from afflux.shared.core.money import (
    DEFAULT_MAX_ORDER_MINOR,
    MAX_AMOUNT_MINOR,
    percent_of,
    pro_rata,
)
from afflux.shared.core.periods import period_bounds
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import ConversionAttributed, OrderPlaced, OrderRefunded

pytestmark = pytest.mark.unit

MAX = MAX_AMOUNT_MINOR
PERIOD = "2026-11"
START, END = period_bounds(PERIOD)
DAY = MS_PER_DAY


def exact_half_up(value: Fraction) -> int:
    """The reference: round half away from zero, on an exact fraction."""
    whole, rest = divmod(abs(value.numerator), value.denominator)
    if 2 * rest >= value.denominator:
        whole += 1
    return whole if value >= 0 else -whole


amounts = st.integers(min_value=0, max_value=MAX)
percents = st.integers(min_value=0, max_value=1_000_000).map(lambda n: Decimal(n).scaleb(-4))


@dataclass(frozen=True)
class RateCase:
    percent: str
    amount: int


@pytest.mark.parametrize(
    "case",
    [
        RateCase("100", MAX),  # the whole of the largest amount
        RateCase("99.9999", MAX),  # the finest rate on the largest amount: 19 significant digits
        RateCase("0.0001", MAX),  # the smallest non-zero rate on it
        RateCase("8", 10**15 - 1),  # the 8 % that overflowed a 28-digit Decimal for 10^30
        RateCase("33.3333", MAX - 1),  # a repeating product
        RateCase("0", MAX),  # zero pays nothing
        RateCase("0.0001", 1),  # the smallest of both rounds to 0
        RateCase("50", 1),  # exactly half a cent rounds up
    ],
)
def test_percent_of_is_exact_at_the_bounds(case: RateCase) -> None:
    expected = exact_half_up(Fraction(case.amount) * Fraction(case.percent) / 100)
    assert percent_of(case.amount, Decimal(case.percent)) == expected


@settings(max_examples=300, deadline=None)
@given(amount=amounts, percent=percents)
def test_percent_of_any_amount_in_range_is_exact(amount: int, percent: Decimal) -> None:
    assert percent_of(amount, percent) == exact_half_up(Fraction(amount) * Fraction(percent) / 100)


@settings(max_examples=300, deadline=None)
@given(gross=amounts, whole=st.integers(min_value=1, max_value=MAX), data=st.data())
def test_pro_rata_of_any_amounts_in_range_is_exact_and_within_the_whole(
    gross: int, whole: int, data: st.DataObject
) -> None:
    part = data.draw(st.integers(min_value=0, max_value=whole))
    got = pro_rata(gross, part, whole)
    assert got == exact_half_up(Fraction(gross * part, whole))
    assert 0 <= got <= gross


# --- every plan element at its extremes ------------------------------------------------

EXTREME_PLAN: dict[str, Any] = {
    "sale": {"rate": {"percent": "99.9999"}, "new_customer": {"percent": "100"}},
    "lead_minor": MAX,
    "actions_minor": {"install": MAX, "signup": 0},
    "click": {"per_click_minor": MAX, "paid_click_cap": 10**9},
    "base_fee_minor": MAX,
    "tiers": [
        {"from_sales": 2, "rate": {"fixed_minor": MAX}},
        {"from_sales": 3, "rate": {"percent": "0.0001"}},
    ],
    "milestones": [{"at_sales": 1, "bonus_minor": MAX}, {"at_sales": 3, "bonus_minor": MAX}],
}


def terms_with(plan: dict[str, Any], caps: dict[str, int]) -> tuple[TermsVersion, ...]:
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": "camp",
            "merchant_id": "m",
            "currency": "EUR",
            "lock_days": 10,
            "max_order_minor": MAX,
            "plan": {**plan, **caps},
        }
    )
    return (TermsVersion(version=1, effective_from=0, published_at=0, terms=terms),)


def sale(n: int, amount: int, at: int, new: bool = False, kind: str = "sale") -> ConversionFact:
    return ConversionFact(
        conversion_id=f"c{n}",
        event_id=f"e{n}",
        order_id=f"o{n}",
        affiliate_id="anna" if n % 2 else "ben",
        kind=kind,
        action="install" if kind == "install" else None,
        amount_minor=amount,
        currency="EUR",
        new_customer=new,
        occurred_at=at,
        terms_version=1,
    )


def refunds_of(n: int, amount: int, total: int) -> list[RefundFact]:
    """Two refunds of order ``n``: part before approval, the rest of ``total`` after."""
    early = min(amount, total // 3)
    return [
        RefundFact(f"r{n}a", f"re{n}a", f"o{n}", early, START + 2 * DAY),
        RefundFact(f"r{n}b", f"re{n}b", f"o{n}", total - early, START + 20 * DAY),
    ]


CAPS = [
    {},  # uncapped: sums of several 10^15 lines
    {"creator_cap_minor": MAX, "campaign_budget_minor": MAX},  # the largest caps
    {"creator_cap_minor": 1, "campaign_budget_minor": 0},  # the smallest caps cut everything
]


@pytest.mark.parametrize("caps", CAPS)
@settings(max_examples=60, deadline=None)
@given(
    big=st.sampled_from([1, 2, MAX - 1, MAX]),
    other=amounts,
    refunded=amounts,
)
def test_every_plan_element_at_its_extremes_posts_exact_bounded_money(
    caps: dict[str, int], big: int, other: int, refunded: int
) -> None:
    conversions = (
        sale(1, big, START + DAY, new=True),
        sale(2, other, START + DAY + 1),
        sale(3, MAX, START + DAY + 2),
        sale(4, big, START + DAY + 3),
        sale(5, 0, START + DAY + 4, kind="lead"),
        sale(6, MAX, START + DAY + 5, kind="install"),
    )
    refunds = refunds_of(1, refunded, big) + refunds_of(3, refunded, MAX)
    clicks = (
        ClickFigures("anna", 10**9, START, START + DAY),
        ClickFigures("ben", 1, START + 1, START + 1),
    )
    state = PeriodState("camp", PERIOD, "EUR", terms_with(EXTREME_PLAN, caps))
    postings = [
        *state.step(StepInput(conversions=conversions[:3], clicks=clicks)).postings,
        *state.step(StepInput(conversions=conversions[3:], refunds=tuple(refunds))).postings,
    ]

    assert postings
    assert all(isinstance(p.amount_minor, int) for p in postings)
    for record in state.lines.values():
        assert 0 <= record.paid <= record.creator_paid <= record.net <= record.gross
        assert sum(amount for amount, _ in record.posted.values()) == record.paid
    paid = sum(p.amount_minor for p in postings)
    assert paid == sum(record.paid for record in state.lines.values())
    cap = caps.get("campaign_budget_minor")
    assert cap is None or paid <= cap


# --- where amounts enter ---------------------------------------------------------------


@dataclass(frozen=True)
class AmountCase:
    amount: object
    accepted: bool


AMOUNT_CASES = [
    AmountCase(0, True),  # the lower bound
    AmountCase(MAX, True),  # the upper bound
    AmountCase(MAX + 1, False),  # one past it
    AmountCase(10**30, False),  # the amount that stopped the ledger
    AmountCase(-1, False),  # negative
    AmountCase("4999", False),  # a numeric string is never coerced
    AmountCase(4999.0, False),  # nor an integral float
    AmountCase(True, False),  # nor a boolean
    AmountCase(float("nan"), False),  # NaN
    AmountCase(float("inf"), False),  # Infinity
]

ORDER = {
    "event_id": "e1",
    "occurred_at": 0,
    "order_id": "o1",
    "campaign_id": "camp",
    "merchant_id": "m",
    "currency": "EUR",
}
CONVERSION = {
    **ORDER,
    "conversion_id": "c1",
    "affiliate_id": "anna",
    "reason": "cookie",
    "model": "last_click",
    "window_ms": 1,
    "terms_version": 1,
    "order_event_id": "e0",
}


@pytest.mark.parametrize("case", AMOUNT_CASES, ids=lambda c: repr(c.amount))
@pytest.mark.parametrize("model", [OrderPlaced, ConversionAttributed])
def test_event_amounts_are_strict_integers_within_the_bound(
    case: AmountCase, model: type[OrderPlaced | ConversionAttributed]
) -> None:
    payload = {**(CONVERSION if model is ConversionAttributed else ORDER), "amount_minor": 0}
    payload["amount_minor"] = case.amount
    if case.accepted:
        assert model.model_validate(payload).amount_minor == case.amount
    else:
        with pytest.raises(ValidationError):
            model.model_validate(payload)


def test_a_refund_amount_is_bounded_like_an_order() -> None:
    refund = {**ORDER, "refund_id": "r1", "amount_minor": MAX + 1}
    with pytest.raises(ValidationError):
        OrderRefunded.model_validate(refund)
    assert OrderRefunded.model_validate({**refund, "amount_minor": MAX}).amount_minor == MAX


def test_a_campaign_accepts_orders_up_to_its_max_order_minor() -> None:
    base = {"campaign_id": "c", "merchant_id": "m", "currency": "EUR"}
    assert CampaignTerms.model_validate(base).max_order_minor == DEFAULT_MAX_ORDER_MINOR == 10**12
    assert CampaignTerms.model_validate({**base, "max_order_minor": MAX}).max_order_minor == MAX
    for beyond in (0, MAX + 1):
        with pytest.raises(ValidationError):
            CampaignTerms.model_validate({**base, "max_order_minor": beyond})
    with pytest.raises(ValidationError):  # no plan element may exceed the bound either
        CampaignTerms.model_validate({**base, "plan": {"lead_minor": MAX + 1}})
