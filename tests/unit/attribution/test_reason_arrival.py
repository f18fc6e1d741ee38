"""The reason an order went unattributed does not depend on when the visitor's clicks after
the order arrived: held when the order is decided (within its grace) or read later, they
give the same reason, and it is the oracle's. Clicks after an order can never win it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from afflux.attribution.join import JoinPartition
from afflux.oracle.batch import attribute
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import ClickRecorded, OrderPlaced, OrderUnattributed

pytestmark = pytest.mark.unit

DAY = 86_400_000
T = 1_793_491_200_000
GRACE_MS = 5_000
VERSION = TermsVersion(
    version=1,
    effective_from=0,
    published_at=0,
    terms=CampaignTerms.model_validate(
        {
            "campaign_id": "camp",
            "merchant_id": "merchant",
            "currency": "EUR",
            "cookie_window_days": 1,
            "grace_seconds": GRACE_MS // 1000,
            "plan": {"sale": {"rate": {"percent": "10"}}},
        }
    ),
)


def terms(campaign: str, at: int) -> TermsVersion:
    return VERSION


def click(cid: str, at: int, campaign: str = "camp", flagged: bool = False) -> ClickRecorded:
    return ClickRecorded(
        event_id=f"ev-{cid}",
        occurred_at=at,
        click_id=cid,
        link_code="code",
        affiliate_id="creator",
        campaign_id=campaign,
        visitor_id="v",
        is_bot=flagged,
    )


def order(click_id: str | None = None) -> OrderPlaced:
    return OrderPlaced(
        event_id="ev-order",
        occurred_at=T,
        order_id="order-1",
        campaign_id="camp",
        merchant_id="merchant",
        currency="EUR",
        amount_minor=10_000,
        visitor_id="v",
        click_id=click_id,
    )


def worker_reason(
    before: list[ClickRecorded], after: list[ClickRecorded], held: bool, placed: OrderPlaced
) -> str:
    """The join's reason with the clicks after the order held at the decision (arrived
    within the grace) or read once it was decided."""
    state = JoinPartition()
    for c in before:
        state.click("v", c, c.occurred_at, terms)
    state.order("v", placed, arrived=T)
    if held:
        for c in after:
            state.click("v", c, T + GRACE_MS - 1, terms)
    out = state.due(T + GRACE_MS, terms)
    if not held:
        for c in after:
            out += state.click("v", c, T + GRACE_MS + 60_000, terms).outputs
    [decided] = [event for _, _, event in out]
    assert isinstance(decided, OrderUnattributed)
    return decided.reason


def oracle_reason(clicks: list[ClickRecorded], placed: OrderPlaced) -> str:
    [decided] = attribute([*clicks, placed], {"camp": [VERSION]}).unmatched
    assert isinstance(decided, OrderUnattributed)
    return decided.reason


@dataclass(frozen=True)
class Case:
    name: str
    before: tuple[ClickRecorded, ...]  # clicks at or before the order
    reason: str
    named: str | None = None


AFTER = (click("late-1", T + 1), click("late-2", T + 1_000, campaign="other"))
CASES = [
    Case("no_click_before", (), "no_click"),
    Case("only_too_old", (click("old", T - DAY - 1),), "outside_window"),
    Case("only_other_campaign", (click("other", T - 10, campaign="other"),), "other_campaign"),
    Case("only_flagged", (click("bot", T - 10, flagged=True),), "bot_only"),
    Case("names_a_click_made_after_it", (), "unknown_click", named="late-1"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("held", [True, False], ids=["within_grace", "after_decision"])
def test_clicks_after_the_order_give_no_reason_whenever_they_arrive(case: Case, held: bool) -> None:
    placed = order(case.named)
    got = worker_reason(list(case.before), list(AFTER), held, placed)
    assert got == case.reason
    assert oracle_reason([*case.before, *AFTER], placed) == case.reason
