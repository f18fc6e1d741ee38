"""A new order's, refund's or renewal's id has no edge whitespace and no invisible
character: "o-1 " is another id than "o-1", and so is "o-1" with a zero-width space, so
a retry whose id gained a trailing space, a newline or an invisible character was
accepted as a second order and paid twice."""

from __future__ import annotations

import json
from typing import Any

import pytest

from afflux.orders.errors import Rejected
from afflux.orders.ingest import parse
from afflux.orders.rules import OrderRequest, RefundRequest, RenewalRequest

pytestmark = pytest.mark.unit

ORDER = {
    "order_id": "o-1",
    "campaign_id": "shop",
    "occurred_at": 1_790_000_000_000,
    "amount_minor": 100,
    "currency": "EUR",
    "visitor_id": "v-1",
}
REFUND = {
    "refund_id": "r-1",
    "order_id": "o-1",
    "campaign_id": "shop",
    "occurred_at": 1_790_000_000_000,
    "amount_minor": 100,
    "currency": "EUR",
}
RENEWAL = {
    "order_id": "o-1",
    "renewal_number": 1,
    "renewal_order_id": "o-1-r1",
    "campaign_id": "shop",
    "occurred_at": 1_790_000_000_000,
    "amount_minor": 100,
    "currency": "EUR",
}
BAD = [
    "o-1 ",
    " o-1",
    "o-1\n",
    "o\t1",
    "o-1\u00a0",
    "o\x7f1",
    "o-1\u200b",  # a zero-width space
    "\ufeffo-1",  # a byte order mark
    "o\u20601",  # a word joiner
    "o\u200e1",  # a left-to-right mark
    "o\x851",  # a C1 control (next line)
    "o\u20281",  # a line separator inside
    "o\ue0001",  # a private-use character
    "o-e\u0301",  # not NFC: "o-é" composed is another id that looks the same
]
EDGES = "leading or trailing whitespace"


@pytest.mark.parametrize("bad", BAD, ids=ascii)
@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        (OrderRequest, ORDER, "order_id"),
        (RefundRequest, REFUND, "refund_id"),
        (RenewalRequest, RENEWAL, "renewal_order_id"),
    ],
)
def test_an_id_with_edge_whitespace_or_an_invisible_character_is_refused(
    model: Any, body: dict[str, Any], field: str, bad: str
) -> None:
    with pytest.raises(Rejected) as refused:
        parse(model, json.dumps(body | {field: bad}).encode())

    assert (refused.value.status, refused.value.field) == (422, field)


def test_inner_spaces_and_letters_of_any_script_are_ids_and_an_accepted_order_stays_named() -> None:
    assert parse(OrderRequest, json.dumps(ORDER | {"order_id": "Bestellung 7 ö"}).encode())
    # A refund or a renewal names an order accepted before ids were checked: still taken.
    assert parse(RefundRequest, json.dumps(REFUND | {"order_id": "o-1 "}).encode())
    assert parse(RenewalRequest, json.dumps(RENEWAL | {"order_id": "o-1 "}).encode())


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("o-1 ", EDGES),
        ("o-1\u2028", EDGES),  # a separator at an edge is whitespace first
        ("o-1\u200b", "contains U+200B (an invisible format character)"),
        ("\ufeffo-1", "contains U+FEFF (an invisible format character)"),
        ("o\x851", "contains U+0085 (a control character)"),
        ("o\t1", "contains U+0009 (a control character)"),
        # "été" decomposed: the same order as "été" composed, accepted and paid again
        ("o-e\u0301te\u0301", "is not in Unicode normalization form C (NFC) at character 4"),
    ],
    ids=ascii,
)
def test_the_reason_names_the_invisible_character(bad: str, reason: str) -> None:
    with pytest.raises(Rejected) as refused:
        parse(OrderRequest, json.dumps(ORDER | {"order_id": bad}).encode())

    assert refused.value.field == "order_id"
    assert reason in refused.value.reason


@pytest.mark.parametrize("field", ["visitor_id", "click_id"])
@pytest.mark.parametrize(
    "bad", ["v\x001", "v-1\u202e", "v\u200b1", "v\x851", "\ufeffv-1"], ids=ascii
)
def test_a_visitor_or_click_id_with_an_invisible_character_is_refused_naming_it(
    field: str, bad: str
) -> None:
    with pytest.raises(Rejected) as refused:
        parse(OrderRequest, json.dumps(ORDER | {field: bad}).encode())

    assert (refused.value.status, refused.value.field) == (422, field)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("SAVE\x0010", "contains U+0000 (a control character)"),
        ("SAVE\x1b[2J10", "contains U+001B (a control character)"),
    ],
    ids=ascii,
)
def test_a_coupon_code_with_a_control_character_is_refused_naming_it(bad: str, reason: str) -> None:
    with pytest.raises(Rejected) as refused:
        parse(OrderRequest, json.dumps(ORDER | {"coupon_code": bad}).encode())

    assert (refused.value.status, refused.value.field) == (422, "coupon_code")
    assert reason in refused.value.reason


@pytest.mark.parametrize(
    "typed",
    # pasted from a creator's bio: a zero-width space, a soft hyphen, a variation selector
    ["SAVE10", " save10 ", "SAVE10\n", "\tSAVE10", "SAVE10\u200b", "SA\u00adVE10", "SAVE10\ufe0f"],
    ids=ascii,
)
def test_a_coupon_code_with_surrounding_whitespace_is_taken_as_typed(typed: str) -> None:
    order = parse(OrderRequest, json.dumps(ORDER | {"coupon_code": typed}).encode())

    assert order.coupon_code == typed


@pytest.mark.parametrize("blank", ["   ", "\t", "\n"], ids=ascii)
def test_a_blank_coupon_code_is_refused(blank: str) -> None:
    """It was taken as the order's only claim, and matched nobody (no_click)."""
    with pytest.raises(Rejected) as refused:
        parse(OrderRequest, json.dumps(ORDER | {"coupon_code": blank}).encode())

    assert (refused.value.status, refused.value.field) == (422, "coupon_code")
    assert refused.value.reason.startswith("blank")
