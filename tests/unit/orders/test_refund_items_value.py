"""A refund naming its order's items names what it refunds: a quantity names that share of
the item's amount, which may not exceed the money refunded, and the money refunded may not
exceed the items named plus the order's non-item part. The API refuses a refund that
breaks this; the ledger prices one produced onto the topic around the API on its amount,
ignoring its items."""

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


ROWS = [(i.sku, i.category, i.quantity, i.price_minor) for i in ORDER]
PER_UNIT = [("shoe", Fraction(1, 10)), ("card", Fraction(1, 10))]


def test_a_small_refund_naming_a_whole_item_by_quantity_is_refused_naming_items() -> None:
    # Produced onto the topic instead, the ledger ignores the items: 500 of 5000 takes a
    # tenth of the line's commission, not the shoe's 2000 (two fifths).
    assert refund_shares(5000, ROWS, PER_UNIT, [(500, [("shoe", 1, None)])]) == [Fraction(1, 10)]

    with pytest.raises(Rejected) as refused:
        check_refund_items_value(refund(500, {"sku": "shoe", "quantity": 1}), ORDER, 0)

    assert (refused.value.status, refused.value.field) == (422, "items")
    assert "2000" in refused.value.reason


def test_a_whole_refund_naming_only_some_items_is_refused_naming_items() -> None:
    # Produced onto the topic instead, the ledger ignores the items: the whole order's
    # commission, not the shoes' only (four fifths, the card's kept).
    shares = refund_shares(5000, ROWS, PER_UNIT, [(5000, [("shoe", 2, None)])])
    assert shares == [Fraction(1)]

    with pytest.raises(Rejected) as refused:
        check_refund_items_value(refund(5000, {"sku": "shoe", "quantity": 2}), ORDER, 0)

    assert (refused.value.status, refused.value.field) == (422, "items")
    assert "name every item refunded" in refused.value.reason


@pytest.mark.parametrize(
    "accepted",
    [
        refund(2000, {"sku": "shoe", "quantity": 1}),  # one shoe, exactly
        refund(2600, {"sku": "shoe", "quantity": 1}, {"sku": "card", "amount_minor": 600}),
        refund(500, {"sku": "shoe", "amount_minor": 500}),  # a partial refund of an item
        refund(5000, {"sku": "shoe", "quantity": 2}, {"sku": "card", "quantity": 1}),
    ],
)
def test_items_worth_what_is_refunded_pass(accepted: OrderRefunded) -> None:
    check_refund_items_value(accepted, ORDER, 0)


def test_shipping_refunded_beside_the_items_named_passes_up_to_the_orders_part() -> None:
    shoe_and_shipping = refund(2499, {"sku": "shoe", "quantity": 1})

    check_refund_items_value(shoe_and_shipping, ORDER, 499)
    with pytest.raises(Rejected):
        check_refund_items_value(shoe_and_shipping, ORDER, 498)


@pytest.mark.parametrize(
    ("order", "named", "field", "says"),
    [
        # a typo: priced pro rata on its amount by the ledger, not as the bag named
        (ORDER, [{"sku": "shoe", "quantity": 1}, {"sku": "sh0e", "amount_minor": 10}],
         "items.1.sku", "the order has no sku 'sh0e' (its skus: 'card', 'shoe')"),
        ((), [{"sku": "x", "quantity": 1}],
         "items.0.sku", "the order has no sku 'x' (its skus: none)"),
        # more units than ordered: taken as the whole item, the mistake never named
        (ORDER, [{"sku": "shoe", "quantity": 3}],
         "items.0.quantity", "the order has 2 of sku 'shoe'; this refund names 3"),
        (ORDER, [{"sku": "card", "amount_minor": 10}, {"sku": "shoe", "quantity": 1},
                 {"sku": "shoe", "quantity": 2}],
         "items.2.quantity", "the order has 2 of sku 'shoe'; this refund names 3"),
    ],
)  # fmt: skip
def test_a_refund_naming_what_the_order_does_not_have_is_refused_naming_it(
    order: tuple[OrderItem, ...], named: list[dict[str, Any]], field: str, says: str
) -> None:
    with pytest.raises(Rejected) as refused:
        check_refund_items_value(refund(2010, *named), order, 0)

    assert (refused.value.status, refused.value.field, refused.value.reason) == (422, field, says)
