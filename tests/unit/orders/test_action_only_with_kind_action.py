"""An order names an action only when its kind is 'action': the ledger prices an install
by its action when it has one, so an install naming "signup" was paid the signup's rate
(5000 instead of the install's 100 in the plan below)."""

from __future__ import annotations

from typing import Any

import pytest

from afflux.orders.errors import Rejected
from afflux.orders.placement import Placement
from afflux.orders.rules import OrderRequest, order_event
from afflux.shared.core.terms import CampaignTerms

pytestmark = pytest.mark.unit

TERMS = CampaignTerms.model_validate(
    {
        "campaign_id": "apps",
        "merchant_id": "merchant-a",
        "currency": "EUR",
        "plan": {"actions_minor": {"install": 100, "signup": 5000}},
    }
)


def event(**changes: Any) -> Any:
    body = {
        "order_id": "o-1",
        "campaign_id": "apps",
        "occurred_at": 1_790_000_000_000,
        "visitor_id": "v-1",
    } | changes
    return order_event(OrderRequest.model_validate(body), TERMS, "merchant-a", Placement(0))


@pytest.mark.parametrize("kind", ["install", "sale", "lead"])
def test_another_kind_naming_an_action_is_refused_naming_it(kind: str) -> None:
    amount = {"amount_minor": 100, "currency": "EUR"} if kind == "sale" else {}
    with pytest.raises(Rejected) as refused:
        event(kind=kind, action="signup", **amount)

    assert (refused.value.status, refused.value.field) == (422, "action")


def test_an_action_or_a_kind_naming_itself_is_taken() -> None:
    assert event(kind="action", action="signup").action == "signup"
    assert event(kind="install").action is None
    assert event(kind="install", action="install").action == "install"
