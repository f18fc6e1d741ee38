"""Order items, refund items and renewals at the orders service: each rejection names its
field, and what passes becomes the event the ledger pays from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from afflux.orders.errors import Rejected
from afflux.orders.ingest import parse
from afflux.orders.placement import Placement
from afflux.orders.rules import (
    OrderRequest,
    RefundRequest,
    RenewalRequest,
    order_event,
    refund_event,
    renewal_event,
)
from afflux.shared.core.terms import CampaignTerms

pytestmark = pytest.mark.unit

NOW = 1_790_000_000_000
AT_NOW = Placement(NOW)
TERMS = CampaignTerms(campaign_id="shop", merchant_id="merchant-a", currency="EUR")
SHOE = {"sku": "shoe", "quantity": 2, "price_minor": 2000, "category": "shoes"}
CARD = {"sku": "card", "price_minor": 1000, "category": "gift_card"}


@dataclass(frozen=True)
class Case:
    name: str
    body: dict[str, Any]
    field: str | None  # None: accepted


def checked_order(body: dict[str, Any]) -> Any:
    base = {"order_id": "o-1", "campaign_id": "shop", "occurred_at": NOW, "currency": "EUR"}
    request = parse(OrderRequest, {**base, "visitor_id": "v-1", **body})
    return order_event(request, TERMS, "merchant-a", AT_NOW)


ORDER_CASES = [
    # Items summing to the amount exactly.
    Case("items sum to the amount", {"amount_minor": 5000, "items": [SHOE, CARD]}, None),
    # The remainder named as shipping.
    Case(
        "remainder named",
        {
            "amount_minor": 5495,
            "items": [SHOE, CARD],
            "non_commissionable_minor": 495,
            "non_commissionable_reason": "shipping",
        },
        None,
    ),
    # One minor unit short, nothing named: refused naming items.
    Case("one unit unexplained", {"amount_minor": 5001, "items": [SHOE, CARD]}, "items"),
    # Items over the amount.
    Case("items over the amount", {"amount_minor": 4999, "items": [SHOE, CARD]}, "items"),
    # A named remainder that is too large.
    Case(
        "remainder too large",
        {"amount_minor": 5495, "items": [SHOE, CARD], "non_commissionable_minor": 496},
        "items",
    ),
    # Without items, a non-commissionable part up to the amount.
    Case("no items, taxes", {"amount_minor": 1190, "non_commissionable_minor": 190}, None),
    Case(
        "no items, over",
        {"amount_minor": 1190, "non_commissionable_minor": 1191},
        "non_commissionable_minor",
    ),
    # The item count is bounded.
    Case(
        "500 items",
        {"amount_minor": 500, "items": [{"sku": f"s{i}", "price_minor": 1} for i in range(500)]},
        None,
    ),
    Case(
        "501 items",
        {"amount_minor": 501, "items": [{"sku": f"s{i}", "price_minor": 1} for i in range(501)]},
        "items",
    ),
    # A reason must be a short word.
    Case(
        "reason not a word",
        {
            "amount_minor": 10,
            "non_commissionable_minor": 1,
            "non_commissionable_reason": "Ship ping",
        },
        "non_commissionable_reason",
    ),
    # A category is at most 64 characters.
    Case(
        "long category",
        {"amount_minor": 1, "items": [{"sku": "a", "price_minor": 1, "category": "c" * 65}]},
        "items.0.category",
    ),
]


@pytest.mark.parametrize("case", ORDER_CASES, ids=lambda c: c.name)
def test_items_must_make_up_the_order_amount(case: Case) -> None:
    if case.field is None:
        event = checked_order(case.body)
        assert event.non_commissionable_minor == case.body.get("non_commissionable_minor", 0)
        return
    with pytest.raises(Rejected) as info:
        checked_order(case.body)
    assert info.value.status == 422
    assert info.value.field == case.field


def checked_refund(body: dict[str, Any]) -> Any:
    base = {"refund_id": "r-1", "order_id": "o-1", "campaign_id": "shop", "occurred_at": NOW}
    request = parse(RefundRequest, {**base, "currency": "EUR", **body})
    return refund_event(request, TERMS, "merchant-a", AT_NOW)


REFUND_CASES = [
    # By quantity and by amount.
    Case("by quantity", {"amount_minor": 2000, "items": [{"sku": "shoe", "quantity": 1}]}, None),
    Case(
        "by amount", {"amount_minor": 2000, "items": [{"sku": "shoe", "amount_minor": 2000}]}, None
    ),
    # Both, or neither, of quantity and amount.
    Case(
        "both",
        {"amount_minor": 10, "items": [{"sku": "s", "quantity": 1, "amount_minor": 1}]},
        "items.0",
    ),
    Case("neither", {"amount_minor": 10, "items": [{"sku": "s"}]}, "items.0"),
    # A sku named twice.
    Case(
        "twice",
        {"amount_minor": 10, "items": [{"sku": "s", "quantity": 1}, {"sku": "s", "quantity": 1}]},
        "items.1.sku",
    ),
    # Amounts named beyond the refund.
    Case(
        "named over the refund",
        {"amount_minor": 10, "items": [{"sku": "s", "amount_minor": 11}]},
        "items",
    ),
]


@pytest.mark.parametrize("case", REFUND_CASES, ids=lambda c: c.name)
def test_a_refund_names_each_item_once_by_quantity_or_amount(case: Case) -> None:
    if case.field is None:
        assert checked_refund(case.body).items
        return
    with pytest.raises(Rejected) as info:
        checked_refund(case.body)
    assert info.value.field == case.field


def checked_renewal(body: dict[str, Any]) -> Any:
    base = {"order_id": "o-1", "campaign_id": "shop", "occurred_at": NOW, "currency": "EUR"}
    request = parse(RenewalRequest, {**base, "amount_minor": 1999, **body})
    return renewal_event(request, TERMS, "merchant-a", AT_NOW)


RENEWAL_CASES = [
    Case("the first renewal", {"renewal_number": 1}, None),
    # The number starts at 1 and is an integer.
    Case("renewal 0", {"renewal_number": 0}, "renewal_number"),
    Case("renewal as text", {"renewal_number": "2"}, "renewal_number"),
    # The renewal is an order of its own, never the first one.
    Case("same order id", {"renewal_number": 1, "renewal_order_id": "o-1"}, "renewal_order_id"),
    Case("another currency", {"renewal_number": 1, "currency": "USD"}, "currency"),
    Case("negative amount", {"renewal_number": 1, "amount_minor": -1}, "amount_minor"),
    Case("unknown field", {"renewal_number": 1, "months": 3}, "months"),
]


@pytest.mark.parametrize("case", RENEWAL_CASES, ids=lambda c: c.name)
def test_a_renewal_names_its_first_order_and_number(case: Case) -> None:
    if case.field is None:
        event = checked_renewal(case.body)
        assert (event.order_id, event.renewal_order_id) == ("o-1", "o-1:renewal-1")
        return
    with pytest.raises(Rejected) as info:
        checked_renewal(case.body)
    assert info.value.field == case.field
