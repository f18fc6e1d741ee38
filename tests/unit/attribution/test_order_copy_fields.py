"""The worker refuses a copy of an order that changes any field the orders service
compares for an order id sent again: both read one list (``core.order_terms``), the
worker naming the amount (with its currency) first."""

from __future__ import annotations

import pytest

from afflux.attribution.join import _ORDER_FIELDS
from afflux.orders.rules import ORDER_TERMS_FIELDS as ORDERS_SERVICE_FIELDS
from afflux.shared.core.order_terms import ORDER_TERMS_FIELDS

pytestmark = pytest.mark.unit


def test_the_worker_compares_every_field_the_orders_service_compares() -> None:
    assert ORDERS_SERVICE_FIELDS is ORDER_TERMS_FIELDS
    names = [name for name, _ in _ORDER_FIELDS]
    assert names == [
        "amount_minor",
        "kind",
        "action",
        "non_commissionable_minor",
        "items",
        "new_customer",
        "visitor_id",
        "click_id",
        "coupon_code",
    ]
    assert set(names) == set(ORDER_TERMS_FIELDS)
