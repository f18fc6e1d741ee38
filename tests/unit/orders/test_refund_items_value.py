"""A refund naming its order's items by quantity names that share of the items' amount,
and that may not exceed the money it refunds: the ledger takes back the items'
commission for it, whatever the refund's amount."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from afflux.orders.errors import Rejected
from afflux.orders.rules import check_refund_items_value
from afflux.shared.core.products import refund_shares
from afflux.shared.events import OrderItem, OrderRefunded

pytestmark = pytest.mark.unit

ORDER = (
    OrderItem(sku="shoe", quantity=2, price_minor=2000),
    OrderItem(sku="card", quantity=1, price_minor=1000),
)


def refund(amount: int, *items: dict[str, Any]) -> OrderRefunded:
    return OrderRefunded.model_validate(
        {
            "event_id": "e",
            "occurred_at": 0,
            "refund_id": "r",
            "order_id": "o",
            "campaign_id": "c",
            "amount_minor": amount,
            "currency": "EUR",
            "items": items,
        }
    )


def test_a_small_refund_naming_a_whole_item_by_quantity_is_refused_naming_items() -> None:
    # What the ledger would do with it: a third of the line's commission for 500 refunded.
    rows = [(i.sku, i.category, i.quantity, i.price_minor) for i in ORDER]
    per_unit = [("shoe", Fraction(1, 10)), ("card", Fraction(1, 10))]
    assert refund_shares(5000, rows, per_unit, [(500, [("shoe", 1, None)])]) == [Fraction(2, 5)]

    with pytest.raises(Rejected) as refused:
        check_refund_items_value(refund(500, {"sku": "shoe", "quantity": 1}), ORDER)

    assert (refused.value.status, refused.value.field) == (422, "items")
    assert "2000" in refused.value.reason


@pytest.mark.parametrize(
    "accepted",
    [
        refund(2000, {"sku": "shoe", "quantity": 1}),  # one shoe, exactly
        refund(2600, {"sku": "shoe", "quantity": 1}, {"sku": "card", "amount_minor": 600}),
        refund(4000, {"sku": "shoe", "quantity": 5}),  # more than ordered: the item, capped
        refund(500, {"sku": "shoe", "amount_minor": 500}),  # a partial refund of an item
        refund(10, {"sku": "not-in-the-order", "quantity": 3}),  # priced pro rata instead
    ],
)
def test_items_worth_at_most_the_refund_pass(accepted: OrderRefunded) -> None:
    check_refund_items_value(accepted, ORDER)
