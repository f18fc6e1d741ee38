"""Which of a brand's sets an event puts its order in: unattributed by reason, late-click
re-decisions, assists and the assists that first-click attribution would have chosen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from afflux.orders.insights import days_between, marks
from afflux.shared.events import Assist, ConversionAttributed, Envelope, OrderUnattributed

pytestmark = pytest.mark.unit

CID, ORDER = "camp", "o-1"
T = 1_795_564_800_000 + 3_600_000  # 2026-11-25T01:00Z
DAY = "2026-11-25"


def conversion(
    clicked_at: int | None, assists: list[tuple[str, int]], **extra: Any
) -> ConversionAttributed:
    return ConversionAttributed(
        event_id="ev-1",
        occurred_at=T,
        conversion_id="conv-1",
        order_id=ORDER,
        campaign_id=CID,
        affiliate_id="ana",
        reason="click_id" if clicked_at is not None else "coupon",
        model="last_click",
        window_ms=30 * 86_400_000,
        click_id="click-ana" if clicked_at is not None else None,
        clicked_at=clicked_at,
        assists=tuple(
            Assist(affiliate_id=a, click_id=f"click-{a}", clicked_at=at) for a, at in assists
        ),
        terms_version=1,
        amount_minor=4_999,
        currency="EUR",
        order_event_id="order-ev",
        **extra,
    )


@dataclass(frozen=True)
class Case:
    name: str
    event: Envelope
    sets: set[tuple[str, str]]  # (set name, member)


CASES = [
    # an unattributed order joins its reason's set
    Case(
        "unattributed",
        OrderUnattributed(
            event_id="ev-u",
            occurred_at=T,
            order_id=ORDER,
            campaign_id=CID,
            reason="outside_window",
            currency="EUR",
            order_event_id="order-ev",
        ),
        {("u:outside_window", ORDER)},
    ),
    # a plain conversion without other creators' clicks: nothing to tell
    Case("no assists", conversion(T - 60_000, []), set()),
    # an assist after the winner's click: an assist, not a first click
    Case(
        "later assist",
        conversion(T - 60_000, [("ben", T - 30_000)]),
        {("a:ben", ORDER), ("assisters", "ben")},
    ),
    # an assist before the winner's click: first-click would have chosen it
    Case(
        "earlier assist would have won",
        conversion(T - 60_000, [("ben", T - 90_000), ("cy", T - 80_000)]),
        {
            ("a:ben", ORDER),
            ("w:ben", ORDER),
            ("assisters", "ben"),
            ("a:cy", ORDER),
            ("assisters", "cy"),
        },
    ),
    # a click at the same instant as the winner's did not win under first-click either
    Case(
        "tie",
        conversion(T - 60_000, [("ben", T - 60_000)]),
        {("a:ben", ORDER), ("assisters", "ben")},
    ),
    # the winner's own other clicks are no assists
    Case("own click", conversion(T - 60_000, [("ana", T - 90_000)]), set()),
    # a late click that took the order from another creator
    Case(
        "late reattribution",
        conversion(T - 60_000, [], supersedes="conv-0", correction_reason="late_click"),
        {("late:reattributed", ORDER)},
    ),
    # a late click that attributed an order answered unattributed before
    Case(
        "late attribution",
        conversion(T - 60_000, [], correction_reason="late_click"),
        {("late:attributed", ORDER)},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_event_joins_the_sets_it_tells_of(case: Case) -> None:
    found = marks(case.event)
    assert {(name, member) for _, _, name, member in found} == case.sets
    assert all(campaign == CID and day == DAY for campaign, day, _, _ in found)


def test_a_period_has_each_of_its_days() -> None:
    start = 1_795_564_800_000
    assert days_between(start, start + 3 * 86_400_000) == ["2026-11-25", "2026-11-26", "2026-11-27"]
