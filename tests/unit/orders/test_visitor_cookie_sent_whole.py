"""A merchant reading the visitor cookie on a tracking domain of its own may send it whole
as ``visitor_id``: the id in it is the visitor. Sent as it is, the seal made an id no
click has, and the order went unattributed."""

from __future__ import annotations

import pytest

from afflux.clicks.visitor_cookie import VisitorSeal
from afflux.orders.rules import OrderRequest

pytestmark = pytest.mark.unit

VISITOR = "v_" + "0123456789abcdef" * 2


def _order(visitor_id: str) -> OrderRequest:
    return OrderRequest.model_validate(
        {
            "order_id": "o-1",
            "campaign_id": "c",
            "occurred_at": 1_793_491_200_000,
            "amount_minor": 100,
            "currency": "EUR",
            "visitor_id": visitor_id,
        }
    )


@pytest.mark.parametrize(
    ("sent", "visitor"),
    [
        (VisitorSeal(b"secret").cookie_value(VISITOR), VISITOR),
        (VISITOR, VISITOR),
        ("v_demo-visitor", "v_demo-visitor"),  # any other id as it is
        (f"{VISITOR}~short", f"{VISITOR}~short"),  # not the cookie's form: as it is
    ],
)
def test_the_visitor_id_is_the_id_in_a_cookie_sent_whole(sent: str, visitor: str) -> None:
    assert _order(sent).visitor_id == visitor
