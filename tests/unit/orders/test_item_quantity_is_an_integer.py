"""An item's quantity multiplies its price, so like an amount it is a JSON integer:
"2", 2.0 and true were coerced (true to one unit) instead of refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from afflux.orders.errors import Rejected
from afflux.orders.ingest import parse
from afflux.orders.rules import OrderRequest

pytestmark = pytest.mark.unit


def order(item: dict[str, Any]) -> bytes:
    body = {
        "order_id": "o-1",
        "campaign_id": "shop",
        "occurred_at": 1_790_000_000_000,
        "amount_minor": 100,
        "currency": "EUR",
        "visitor_id": "v-1",
        "items": [{"sku": "hat", "price_minor": 0}, item],
    }
    return json.dumps(body).encode()


@pytest.mark.parametrize("quantity", ["2", 2.0, True, "٢"])
def test_a_quantity_that_is_not_a_json_integer_is_refused_naming_the_item(quantity: Any) -> None:
    with pytest.raises(Rejected) as refused:
        parse(OrderRequest, order({"sku": "sock", "quantity": quantity, "price_minor": 50}))

    assert (refused.value.status, refused.value.field) == (422, "items")
    assert "items.1.quantity" in refused.value.reason


def test_an_integer_quantity_or_none_is_taken() -> None:
    given = parse(OrderRequest, order({"sku": "sock", "quantity": 2, "price_minor": 50}))
    default = parse(OrderRequest, order({"sku": "sock", "price_minor": 100}))

    assert [i.quantity for i in given.items + default.items] == [1, 2, 1, 1]
