"""``afflux reviews`` turns each action into one call of the payouts review API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from afflux.cli.main import _parser
from afflux.cli.reviews_cmd import _money, request

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class Case:
    argv: list[str]
    call: tuple[str, str, dict[str, Any] | None, dict[str, Any]]


@pytest.mark.parametrize(
    "case",
    [
        # The default: the held conversions of every campaign the token may see.
        Case(["reviews", "list"], ("GET", "/v1/reviews", None, {"status": "held"})),
        Case(
            ["reviews", "list", "--campaign", "shop", "--status", "all"],
            ("GET", "/v1/reviews", None, {"status": "all", "campaign_id": "shop"}),
        ),
        Case(
            ["reviews", "approve", "conv_1"],
            ("POST", "/v1/reviews/conv_1/approve", {"reason": ""}, {}),
        ),
        Case(
            ["reviews", "decline", "conv_1", "--reason", "own order"],
            ("POST", "/v1/reviews/conv_1/decline", {"reason": "own order"}, {}),
        ),
    ],
    ids=lambda c: " ".join(c.argv[1:]),
)
def test_each_action_is_one_api_call(case: Case) -> None:
    assert request(_parser().parse_args(case.argv)) == case.call


def test_an_unknown_status_is_refused() -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["reviews", "list", "--status", "maybe"])


def test_a_decision_needs_the_conversion() -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["reviews", "decline"])


@pytest.mark.parametrize(
    ("minor", "currency", "shown"),
    [
        (400, "EUR", "4.00 EUR"),
        (400, "KWD", "0.400 KWD"),
        (1_234_567, "JPY", "1,234,567 JPY"),
        (400, "", "400 (minor units)"),  # a payouts service before the field
    ],
)
def test_a_listed_commission_reads_in_its_currency(minor: int, currency: str, shown: str) -> None:
    # It printed "commission 400" for 0.400 KWD and for 4.00 EUR alike.
    assert _money(minor, currency) == shown
