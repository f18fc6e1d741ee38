"""``afflux verify`` checks each order's event time against the moment it was bought on
our clock, which the oracle cannot: it decides from the time on the topic, so an order the
orders service left at a skewed merchant clock's time looked right to it."""

from __future__ import annotations

import pytest

from afflux.cli.scenario_checks import PLACED_SLACK_MS, every_order_is_placed_at_its_purchase
from afflux.shared.events import AnyEvent, OrderPlaced

pytestmark = pytest.mark.unit

BOUGHT_AT = 1_796_000_000_000


def placed(occurred_at: int, order_id: str = "o-1") -> OrderPlaced:
    return OrderPlaced(
        event_id=f"ev-{order_id}",
        occurred_at=occurred_at,
        order_id=order_id,
        campaign_id="shop",
        merchant_id="m",
        currency="EUR",
        visitor_id="v",
        reported_occurred_at=BOUGHT_AT - 290_000,
    )


@pytest.mark.parametrize(
    ("off", "found"),
    [
        (0, False),
        (999, False),  # the signature's whole second
        (PLACED_SLACK_MS, False),
        (PLACED_SLACK_MS + 1, True),
        (-50, False),
        (-51, True),
        (-290_000, True),  # left at the time of a clock 290 s slow
        (240_000, True),  # ... or of one 4 minutes fast
    ],
)
def test_an_order_is_placed_at_its_purchase_within_the_signatures_second(
    off: int, found: bool
) -> None:
    differences = every_order_is_placed_at_its_purchase(
        {("shop", "o-1"): BOUGHT_AT}, [placed(BOUGHT_AT + off)]
    )

    assert bool(differences) is found
    if found:
        assert "shop/o-1" in differences[0]


def test_orders_without_a_known_purchase_and_other_events_are_passed_over() -> None:
    events: list[AnyEvent] = [placed(BOUGHT_AT - 290_000, "o-unknown")]

    assert every_order_is_placed_at_its_purchase({("shop", "o-1"): BOUGHT_AT}, events) == []
