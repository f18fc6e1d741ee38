"""Pruning the join's clicks: event time is not ordered across visitors, so a click
an order may still need is kept whatever its event time."""

from __future__ import annotations

import pytest

from afflux.attribution.content_view import ContentBook
from afflux.attribution.handlers import Campaigns, JoinHandler
from afflux.attribution.join import LEAD_PREFIX, JoinPartition
from afflux.attribution.metrics import AttributionMetrics
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import (
    CampaignTermsPublished,
    ClickRecorded,
    LeadConfirmed,
    OrderPlaced,
)
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.topics import CLICKS, ORDERS

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


def test_a_late_report_is_joined_against_the_clicks_of_its_own_window_after_pruning() -> None:
    """An order reported now but dated 10 days ago (a late report, within the default
    backfill limit of 30 + 30 days) whose visitor clicked 25 days before it: the click,
    35 days behind the watermark, was pruned at the window plus a day, and the order
    went unpaid (no_click) where the oracle paid it."""
    terms = CampaignTerms.model_validate(
        {"campaign_id": "campaign", "merchant_id": "merchant", "currency": "EUR"}
    )
    directory = CampaignDirectory()
    directory.apply(
        CampaignTermsPublished(
            event_id="t",
            occurred_at=0,
            campaign_id="campaign",
            versions=(TermsVersion(version=1, effective_from=0, published_at=0, terms=terms),),
        )
    )
    book = ContentBook()
    book.ready.set()
    handler = JoinHandler(Campaigns(directory), AttributionMetrics(), 400 * DAY, content=book)
    state = handler.new_state()
    now = OLD_EVENT + 100 * DAY
    old = click("v1").model_copy(update={"occurred_at": now - 35 * DAY})
    handler.on_event(state, CLICKS.name, old, old.occurred_at)
    traffic = click("v2").model_copy(update={"occurred_at": now})  # moves the watermark
    handler.on_event(state, CLICKS.name, traffic, now)
    handler.prune(state, now)
    late = order("v1").model_copy(update={"occurred_at": now - 10 * DAY})
    out, _ = handler.on_event(state, ORDERS.name, late, now)
    decided = [event for _, _, event in [*out, *handler.due(state, now + DAY)]]
    assert [(type(e).__name__, getattr(e, "click_id", None)) for e in decided] == [
        ("ConversionAttributed", "click-v1")
    ]


def confirmation(order_id: str, at: int) -> LeadConfirmed:
    return LeadConfirmed(
        event_id=f"confirm-{order_id}", occurred_at=at, order_id=order_id, campaign_id="campaign"
    )


def sweep_all(join: JoinPartition, order_horizon: int) -> None:
    for _ in range(len(join.keys) + 1):  # a pass visits a slice: every key at least once
        join.prune(0, order_horizon, 0)


@pytest.mark.parametrize(
    ("horizon", "kept"),
    [(OLD_EVENT, True), (OLD_EVENT + 1, False)],
    ids=["at_the_horizon_kept", "one_ms_before_the_horizon_pruned"],
)
def test_a_confirmation_whose_order_never_came_goes_with_the_order_retention(
    horizon: int, kept: bool
) -> None:
    """Parked under its own key until its order comes, it was kept for good when the
    order never did (unknown, dead-lettered, or pruned before it)."""
    join = JoinPartition()
    join.confirm(confirmation("ghost", OLD_EVENT))
    join.take_dirty()

    sweep_all(join, horizon)

    deleted = [k for k, v in join.take_dirty() if k.startswith(LEAD_PREFIX) and v is None]
    assert bool(deleted) is not kept  # the changelog forgets it too
    parked = [k for k in join.keys if k.startswith(LEAD_PREFIX)]
    assert bool(parked) is kept


def test_a_confirmation_of_a_waiting_order_is_kept_past_the_horizon() -> None:
    join = partition_with_click("v1")
    join.order("v1", order("v1"), ARRIVED)
    join.confirm(confirmation("order-v1", OLD_EVENT))

    sweep_all(join, OLD_EVENT + 400 * DAY)

    assert ("campaign", "order-v1") in join.keys["v1"].confirms
