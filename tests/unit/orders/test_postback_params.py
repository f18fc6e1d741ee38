"""A postback's query values become an order: numbers are read only where int() can."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from afflux.orders import rules
from afflux.orders.errors import Rejected
from afflux.orders.ingest import parse
from afflux.orders.routes.postback import postback_order, query_params

pytestmark = pytest.mark.unit

NOW = 1_796_000_000_000


@dataclass(frozen=True)
class Case:
    occurred_at: str
    refused: bool


CASES = [
    Case(str(NOW), False),  # epoch milliseconds, as sent
    Case("9" * 4301, True),  # past int()'s 4,300 digits: a 422, not a 500
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{len(c.occurred_at)} digits")
def test_an_occurred_at_of_any_length_is_a_time_or_a_422_naming_it(case: Case) -> None:
    params = {
        "order_id": "pb-1",
        "campaign_id": "shop",
        "amount_minor": "2599",
        "currency": "EUR",
        "occurred_at": case.occurred_at,
    }
    order = postback_order(params, NOW)
    if not case.refused:
        assert parse(rules.OrderRequest, order).occurred_at == NOW
        return
    with pytest.raises(Rejected) as refused:
        parse(rules.OrderRequest, order)
    assert (refused.value.status, refused.value.field) == (422, "occurred_at")


@pytest.mark.parametrize(
    ("query", "params", "refused"),
    [
        ("order_id=pb-%C3%A9&t=1", {"order_id": "pb-é", "t": "1"}, None),
        ("order_id=pb-%FF&t=1", {"t": "1"}, ("order_id", "not UTF-8 once percent-decoded")),
        (
            "order_id=pb-\u00e9&t=1",  # a raw byte, read as Latin-1
            {"t": "1"},
            ("order_id", "raw non-ASCII bytes: percent-encode them as UTF-8"),
        ),
        ("a=1&a=2&t=1", {"a": "1", "t": "1"}, ("a", "given more than once")),
        ("a=%FF&a=2&t=1", {"a": "2", "t": "1"}, ("a", "not UTF-8 once percent-decoded")),
    ],
)
def test_a_postback_value_is_its_utf8_text_or_refused_naming_it(
    query: str, params: dict[str, str], refused: tuple[str, str] | None
) -> None:
    assert query_params(f"{query}&sig={'0' * 64}") == (params, refused)


@pytest.mark.parametrize(
    ("value", "new_customer"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("false", False),
        ("0", False),
        ("No", False),
        ("on", None),  # a form checkbox's value is not one of them
        ("maybe", None),
        ("", None),
    ],
)
def test_new_customer_is_true_false_1_0_yes_or_no_else_a_422_naming_it(
    value: str, new_customer: bool | None
) -> None:
    params = {"order_id": "pb-1", "campaign_id": "shop", "amount_minor": "2599"}
    if new_customer is not None:
        order = postback_order({**params, "new_customer": value}, NOW)
        assert order["new_customer"] is new_customer
        return
    with pytest.raises(Rejected) as refused:
        postback_order({**params, "new_customer": value}, NOW)
    assert (refused.value.status, refused.value.field) == (422, "new_customer")
    assert refused.value.reason == "use true or false (or 1/0, yes/no)"


def test_a_postback_carries_what_part_of_the_amount_earns_nothing() -> None:
    params = {
        "order_id": "pb-1",
        "campaign_id": "shop",
        "amount_minor": "2599",
        "non_commissionable_minor": "499",
        "non_commissionable_reason": "shipping",
        "currency": "EUR",
    }
    order = parse(rules.OrderRequest, postback_order(params, NOW))
    assert (order.amount_minor, order.non_commissionable_minor) == (2599, 499)


@pytest.mark.parametrize(
    "name", ["items", "survey", "customer_ip_hash", "customer_email_hash", "referrer"]
)
def test_a_postback_naming_what_a_url_must_not_carry_is_a_422_naming_it(name: str) -> None:
    params = {"order_id": "pb-1", "campaign_id": "shop", "amount_minor": "1", name: "x"}
    with pytest.raises(Rejected) as refused:
        postback_order(params, NOW)
    assert (refused.value.status, refused.value.field) == (422, name)
    assert "POST /v1/orders" in refused.value.reason
