"""The rules the attribution worker, the batch oracle and the what-if decoder each apply
to money and event times have one home in the core: a currency refusal
(``core.currency``), a refund dated before its order (``core.refund_date``) and the
event types held to the campaign's backfill limit (``core.event_time.PLACED_KINDS``, and
their models ``events.PLACED_TYPES``)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from afflux.shared.core.currency import (
    campaign_currency_refusal,
    other_currency,
    refund_currency_refusal,
)
from afflux.shared.core.event_time import PLACED_KINDS
from afflux.shared.core.refund_date import refund_before_order, refund_date_refusal
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


ORDER_AT = 1_793_491_200_000  # 2026-11-01T00:00:00Z


@pytest.mark.parametrize(
    ("refund_at", "order_at", "refused"),
    [
        (ORDER_AT - 1, ORDER_AT, True),
        (ORDER_AT, ORDER_AT, False),
        (ORDER_AT + 1, ORDER_AT, False),
        (0, None, False),
    ],
    ids=["a millisecond before", "at the order's very time", "a millisecond after", "unknown"],
)
def test_a_refund_is_refused_only_when_dated_before_its_known_order(
    refund_at: int, order_at: int | None, refused: bool
) -> None:
    assert refund_before_order(refund_at, order_at) is refused
    assert bool(refund_date_refusal(refund_at, order_at)) is refused


def test_the_date_refusal_names_both_times() -> None:
    assert refund_date_refusal(ORDER_AT - 1, ORDER_AT) == (
        "refund_before_order: the refund is dated 2026-10-31T23:59:59.999Z, before its"
        " order (2026-11-01T00:00:00.000Z)"
    )


def test_the_placed_types_are_the_models_of_the_kinds_the_lower_bound_holds() -> None:
    """Built from the names: a name without its model would silently hold nothing."""
    assert {t.__name__ for t in PLACED_TYPES} == PLACED_KINDS
    assert set(PLACED_TYPES) <= set(EVENT_TYPES)
    assert {"OrderPlaced", "OrderRefunded", "SubscriptionRenewed"} == PLACED_KINDS
