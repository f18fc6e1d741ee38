"""An order id sent again with other terms is named as a conflict, field by field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from afflux.orders.placement import Placement
from afflux.orders.rules import OrderRequest, order_event, order_terms, order_terms_conflict
from afflux.shared.core.order_terms import ORDER_TERMS_FIELDS
from afflux.shared.core.terms import CampaignTerms

pytestmark = pytest.mark.unit

TERMS = CampaignTerms(campaign_id="shop", merchant_id="merchant-a", currency="EUR")
FIRST: dict[str, Any] = {
    "order_id": "o-1",
    "campaign_id": "shop",
    "occurred_at": 1_790_000_000_000,
    "amount_minor": 5000,
    "currency": "EUR",
    "visitor_id": "v-1",
    "items": [{"sku": "shoe", "quantity": 2, "price_minor": 2500}],
}


def placed(at: int = 1_790_000_000_000, **changes: Any) -> Any:
    request = OrderRequest.model_validate(FIRST | changes)
    return order_event(request, TERMS, "merchant-a", Placement(at))


def test_a_retry_of_the_same_order_has_the_same_terms_whenever_it_is_placed() -> None:
    assert order_terms(placed()) == order_terms(placed(at=1_790_000_060_000))
    # The same coupon, however cased: it names the same creator.
    assert order_terms(placed(coupon_code="anna10")) == order_terms(placed(coupon_code="ANNA10 "))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (
            {"amount_minor": 9000, "items": [{"sku": "shoe", "quantity": 2, "price_minor": 4500}]},
            "amount_minor",
        ),
        ({"items": [{"sku": "bag", "quantity": 2, "price_minor": 2500}]}, "items"),
        ({"kind": "lead"}, "kind"),
        ({"new_customer": True}, "new_customer"),
        ({"coupon_code": "ANNA10"}, "coupon_code"),
        ({"visitor_id": "v-2"}, "visitor_id"),
    ],
)
def test_a_changed_order_names_the_first_field_that_differs_and_what_was_kept(
    changes: dict[str, Any], field: str
) -> None:
    accepted = order_terms(placed())
    changed = placed(**changes)

    assert order_terms(changed) != accepted
    refused = order_terms_conflict(accepted, changed)
    assert refused is not None
    assert (refused.status, refused.field) == (409, field)
    assert "already accepted" in refused.reason


def test_a_claim_kept_before_a_field_was_appended_is_compared_on_the_fields_it_has() -> None:
    kept_then = json.dumps(json.loads(order_terms(placed()))[:-1])

    assert order_terms_conflict(kept_then, placed()) is None
    refused = order_terms_conflict(kept_then, placed(amount_minor=5001, items=[]))
    assert refused is not None
    assert refused.field == "amount_minor"


def kept_before(event: Any) -> str:
    """The text claims kept before order_terms stopped dumping the whole event."""
    dumped = event.model_dump(mode="json", include=set(ORDER_TERMS_FIELDS))
    if dumped["coupon_code"] is not None:
        dumped["coupon_code"] = dumped["coupon_code"].strip().upper()
    return json.dumps([dumped[name] for name in ORDER_TERMS_FIELDS], separators=(",", ":"))


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"coupon_code": " anna10"},
        {"items": [], "amount_minor": 5000, "visitor_id": None, "click_id": "c-ü-1"},
        {"kind": "action", "action": "signup", "amount_minor": 0, "items": []},
        {
            "non_commissionable_minor": 500,
            "items": [{"sku": "shoe", "quantity": 1, "price_minor": 4500}],
        },
        {"new_customer": True, "visitor_id": "visitor-\u00e9"},
    ],
)
def test_claims_kept_by_earlier_versions_read_as_the_same_terms(changes: dict[str, Any]) -> None:
    event = placed(**changes)

    assert order_terms(event) == kept_before(event)
