"""A click is late when it reaches the join after an order it could have won was
decided; a click that could never have won that order is not late."""

from __future__ import annotations

import pytest

from afflux.attribution.join import JoinPartition
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import ClickRecorded, OrderPlaced

pytestmark = pytest.mark.unit

DAY = 86_400_000
ORDER_AT = 1_793_491_200_000
GRACE_MS = 1_000
TERMS = TermsVersion(
    version=1,
    effective_from=0,
    published_at=0,
    terms=CampaignTerms.model_validate(
        {
            "campaign_id": "campaign",
            "merchant_id": "merchant",
            "currency": "EUR",
            "cookie_window_days": 30,
            "grace_seconds": 1,
            "plan": {"sale": {"rate": {"percent": "10"}}},
        }
    ),
)


def terms(campaign: str, at: int) -> TermsVersion | None:
    return TERMS if campaign == "campaign" else None


def decided_partition() -> JoinPartition:
    join = JoinPartition()
    order = OrderPlaced(
        event_id="order-ev",
        occurred_at=ORDER_AT,
        order_id="order",
        campaign_id="campaign",
        merchant_id="merchant",
        currency="EUR",
        amount_minor=10_000,
        visitor_id="v",
    )
    join.order("v", order, arrived=0)
    join.due(GRACE_MS, terms)
    return join


def click(at: int, campaign: str = "campaign", **flags: bool) -> ClickRecorded:
    return ClickRecorded(
        event_id=f"ev-{at}-{campaign}-{sorted(flags)}",
        occurred_at=at,
        click_id=f"click-{at}-{campaign}-{sorted(flags)}",
        link_code="code",
        affiliate_id="creator",
        campaign_id=campaign,
        visitor_id="v",
        **flags,
    )


@pytest.mark.parametrize(
    ("late_click", "late"),
    [
        (click(ORDER_AT - DAY), True),  # inside the window, before the order
        (click(ORDER_AT), True),  # at the order's millisecond
        (click(ORDER_AT + 1), False),  # after the order: could not have won
        (click(ORDER_AT - 30 * DAY - 1), False),  # one ms before the window
        (click(ORDER_AT - DAY, campaign="other"), False),  # another campaign
        (click(ORDER_AT - DAY, is_bot=True), False),  # flagged: never attributed
        (click(ORDER_AT - DAY, is_duplicate=True), False),
    ],
)
def test_a_click_after_the_decision_is_late_only_if_it_could_have_won(
    late_click: ClickRecorded, late: bool
) -> None:
    join = decided_partition()

    counted = join.click("v", late_click, arrived=GRACE_MS + 1, terms=terms).outcomes
    assert bool(counted) is late
