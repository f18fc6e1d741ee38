"""Pruning the join's clicks: event time is not ordered across visitors, so a click
an order may still need is kept whatever its event time."""

from __future__ import annotations

import pytest

from afflux.attribution.join import JoinPartition
from afflux.shared.events import ClickRecorded, OrderPlaced

pytestmark = pytest.mark.unit

DAY = 86_400_000
OLD_EVENT = 1_700_000_000_000
ARRIVED = 5_000_000


def click(visitor: str) -> ClickRecorded:
    return ClickRecorded(
        event_id=f"ev-{visitor}",
        occurred_at=OLD_EVENT,
        click_id=f"click-{visitor}",
        link_code="code",
        affiliate_id="creator",
        campaign_id="campaign",
        visitor_id=visitor,
    )


def order(visitor: str) -> OrderPlaced:
    return OrderPlaced(
        event_id=f"order-ev-{visitor}",
        occurred_at=OLD_EVENT + 1,
        order_id=f"order-{visitor}",
        campaign_id="campaign",
        merchant_id="merchant",
        currency="EUR",
        visitor_id=visitor,
    )


def partition_with_click(visitor: str) -> JoinPartition:
    join = JoinPartition()
    join.click(visitor, click(visitor), ARRIVED, lambda campaign, at: None)
    return join


# (has a waiting order, arrival horizon, click kept)
CASES = [
    (False, ARRIVED + 1, False),  # old by event time and by arrival: pruned
    (False, ARRIVED, True),  # arrived exactly at the horizon: still recent
    (True, ARRIVED + 1, True),  # its order waits for grace: kept
]


@pytest.mark.parametrize(("waiting", "arrival_horizon", "kept"), CASES)
def test_old_click_is_pruned_only_when_no_order_waits_and_it_is_not_recent(
    waiting: bool, arrival_horizon: int, kept: bool
) -> None:
    join = partition_with_click("v1")
    if waiting:
        join.order("v1", order("v1"), ARRIVED)
    join.prune(OLD_EVENT + 30 * DAY, 0, arrival_horizon)
    clicks = join.keys["v1"].clicks if "v1" in join.keys else {}
    assert ("click-v1" in clicks) is kept


def test_click_within_the_event_time_horizon_is_kept() -> None:
    join = partition_with_click("v1")
    join.prune(OLD_EVENT, 0, ARRIVED + 1)
    assert "click-v1" in join.keys["v1"].clicks
