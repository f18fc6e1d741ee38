"""The rules the attribution worker, the batch oracle and the what-if decoder each apply
to money and event times have one home in the core: a currency refusal
(``core.currency``) and the event types held to the campaign's backfill limit
(``core.event_time.PLACED_KINDS``, and their models ``events.PLACED_TYPES``)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from afflux.shared.core.currency import (
    campaign_currency_refusal,
    other_currency,
    refund_currency_refusal,
)
from afflux.shared.core.event_time import PLACED_KINDS
from afflux.shared.events import EVENT_TYPES, PLACED_TYPES

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


def test_the_placed_types_are_the_models_of_the_kinds_the_lower_bound_holds() -> None:
    """Built from the names: a name without its model would silently hold nothing."""
    assert {t.__name__ for t in PLACED_TYPES} == PLACED_KINDS
    assert set(PLACED_TYPES) <= set(EVENT_TYPES)
    assert {"OrderPlaced", "OrderRefunded", "SubscriptionRenewed"} == PLACED_KINDS
