"""Order, refund and lead checks: each rejection names its field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from afflux.orders.errors import Rejected
from afflux.orders.ingest import parse
from afflux.orders.placement import Placement
from afflux.orders.rules import (
    LeadConfirmRequest,
    OrderRequest,
    RefundRequest,
    lead_confirmed_event,
    order_event,
    refund_event,
)
from afflux.shared.core.ids import derived_id
from afflux.shared.core.terms import CampaignTerms

pytestmark = pytest.mark.unit

NOW = 1_790_000_000_000
FUTURE_MS = 300_000
AT_NOW = Placement(NOW)  # where placement put the event (tests/unit/orders/test_placement.py)
TERMS = CampaignTerms(campaign_id="shop", merchant_id="merchant-a", currency="EUR")


def request(**changes: Any) -> OrderRequest:
    body: dict[str, Any] = {
        "order_id": "o-1",
        "campaign_id": "shop",
        "occurred_at": NOW,
        "amount_minor": 1999,
        "currency": "EUR",
        "visitor_id": "v-1",
    }
    body.update(changes)
    return OrderRequest.model_validate({k: v for k, v in body.items() if v is not None})


@dataclass(frozen=True)
class Case:
    name: str
    changes: dict[str, Any]
    field: str | None  # None: accepted
    merchant: str = "merchant-a"


CASES = [
    Case("a plain sale", {}, None),
    Case("a sale of one minor unit", {"amount_minor": 1}, None),
    Case("a zero sale", {"amount_minor": 0}, "amount_minor"),
    Case("a negative sale", {"amount_minor": -5}, "amount_minor"),
    Case("a sale without amount", {"amount_minor": None}, "amount_minor"),
    Case("a sale without currency", {"currency": None}, "currency"),
    Case("a sale in another currency", {"currency": "USD"}, "currency"),
    Case(
        "a lead without amount or currency",
        {"kind": "lead", "amount_minor": None, "currency": None},
        None,
    ),
    Case("a lead with a negative amount", {"kind": "lead", "amount_minor": -1}, "amount_minor"),
    Case("an action without its name", {"kind": "action", "amount_minor": None}, "action"),
    Case(
        "an install by coupon only",
        {"kind": "install", "visitor_id": None, "coupon_code": "ANNA10"},
        None,
    ),
    Case("an order by click id only", {"visitor_id": None, "click_id": "v-9.abc"}, None),
    Case("no visitor, click or coupon", {"visitor_id": None}, "visitor_id"),
    Case("another merchant's campaign", {}, "campaign_id", merchant="merchant-b"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_order_rules(case: Case) -> None:
    if case.field is None:
        event = order_event(request(**case.changes), TERMS, case.merchant, AT_NOW)
        assert event.event_id == derived_id("order", "shop", "o-1")
        assert event.currency == "EUR"
    else:
        with pytest.raises(Rejected) as raised:
            order_event(request(**case.changes), TERMS, case.merchant, AT_NOW)
        assert raised.value.field == case.field


def test_the_same_order_always_gets_the_same_event_id() -> None:
    first = order_event(request(), TERMS, "merchant-a", AT_NOW)
    again = order_event(request(), TERMS, "merchant-a", AT_NOW)
    assert first == again


@pytest.mark.parametrize(
    ("raw", "status", "field"),
    [
        (b"{not json", 400, "body"),
        (b"[]", 422, "body"),
        (b'{"order_id": "o"}', 422, "campaign_id"),
        (b'{"order_id": "o", "campaign_id": "c", "occurred_at": "yesterday"}', 422, "occurred_at"),
        (b'{"order_id": "o", "campaign_id": "c", "occurred_at": 1, "extra": 1}', 422, "extra"),
        (b'{"order_id": "", "campaign_id": "c", "occurred_at": 1}', 422, "order_id"),
    ],
)
def test_parse_errors_name_the_field(raw: bytes, status: int, field: str) -> None:
    with pytest.raises(Rejected) as raised:
        parse(OrderRequest, raw)
    assert (raised.value.status, raised.value.field) == (status, field)


def test_refund_needs_the_campaign_currency_and_a_positive_amount() -> None:
    base = {
        "refund_id": "r-1",
        "order_id": "o-1",
        "campaign_id": "shop",
        "occurred_at": NOW,
        "amount_minor": 10,
        "currency": "EUR",
    }
    event = refund_event(RefundRequest(**base), TERMS, "merchant-a", AT_NOW)
    assert event.event_id == derived_id("refund", "shop", "r-1")
    for changes, field in (
        ({"currency": "GBP"}, "currency"),
        ({"amount_minor": 0}, "amount_minor"),
    ):
        with pytest.raises(Rejected) as raised:
            refund_event(RefundRequest(**base | changes), TERMS, "merchant-a", AT_NOW)
        assert raised.value.field == field


def test_lead_confirmation_defaults_to_now() -> None:
    event = lead_confirmed_event(
        "o-1", LeadConfirmRequest(campaign_id="shop"), TERMS, "merchant-a", NOW, FUTURE_MS
    )
    assert (event.occurred_at, event.event_id) == (NOW, derived_id("lead", "shop", "o-1"))
