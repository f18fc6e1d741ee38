"""The rules the attribution worker, the batch oracle and the what-if decoder each apply
to money have one home in the core: a currency refusal (``core.currency``)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from afflux.shared.core.currency import (
    campaign_currency_refusal,
    other_currency,
    refund_currency_refusal,
)

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class CurrencyCase:
    name: str
    currency: str
    expected: str | None
    refused: bool


CURRENCY_CASES = [
    CurrencyCase("the currency it must be in", "EUR", "EUR", False),
    CurrencyCase("another currency", "JPY", "EUR", True),
    CurrencyCase("the currency it must be in not known yet", "JPY", None, False),
    CurrencyCase("a currency not kept (from before currencies were)", "", "EUR", False),
]


@pytest.mark.parametrize("case", CURRENCY_CASES, ids=lambda c: c.name)
def test_money_is_refused_only_in_another_currency_than_the_one_known(
    case: CurrencyCase,
) -> None:
    assert other_currency(case.currency, case.expected) is case.refused
    assert bool(refund_currency_refusal(case.currency, case.expected)) is case.refused
    assert bool(campaign_currency_refusal("order", case.currency, case.expected)) is case.refused


def test_the_refusal_names_the_money_and_the_currency_it_must_be_in() -> None:
    assert campaign_currency_refusal("order", "USD", "EUR") == (
        "currency_mismatch: order in USD, campaign pays in EUR"
    )
    assert campaign_currency_refusal("renewal", "USD", "EUR") == (
        "currency_mismatch: renewal in USD, campaign pays in EUR"
    )
    assert refund_currency_refusal("JPY", "EUR") == (
        "currency_mismatch: refund in JPY, order in EUR"
    )
