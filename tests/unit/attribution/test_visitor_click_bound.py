"""A visitor id holds at most ``clicks_per_visitor`` clicks: past it the join gives up a
flagged one first (it never wins), else the oldest by (time, id); who wins an order made
of a person's few clicks never changes, and what a script's cookie piles up stays
bounded in state and in its snapshot."""

from __future__ import annotations

import pytest

from afflux.attribution.join import JoinPartition, encode_state
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import ClickRecorded, ConversionAttributed, OrderPlaced

pytestmark = pytest.mark.unit

ORDER_AT = 1_793_491_200_000
BOUND = 10
TERMS = TermsVersion(
    version=1,
    effective_from=0,
    published_at=0,
    terms=CampaignTerms.model_validate(
        {
            "campaign_id": "camp",
            "merchant_id": "m",
            "currency": "EUR",
            "cookie_window_days": 30,
            "grace_seconds": 1,
            "plan": {"sale": {"rate": {"percent": "10"}}},
        }
    ),
)


def terms(campaign: str, at: int) -> TermsVersion | None:
    return TERMS if campaign == "camp" else None


def click(n: int, creator: str = "anna", *, flagged: bool = False, at: int = 0) -> ClickRecorded:
    return ClickRecorded(
        event_id=f"ev-{creator}-{n}",
        occurred_at=at or ORDER_AT - 3_600_000 + n,
        click_id=f"v.{creator}-{n:06d}",
        link_code="code",
        affiliate_id=creator,
        campaign_id="camp",
        visitor_id="v",
        is_duplicate=flagged,
        flags=("duplicate",) if flagged else (),
    )


ORDER = OrderPlaced(
    event_id="ev-order",
    occurred_at=ORDER_AT,
    order_id="o1",
    campaign_id="camp",
    merchant_id="m",
    kind="sale",
    amount_minor=10_000,
    currency="EUR",
    visitor_id="v",
)


def winner(join: JoinPartition) -> str:
    join.order("v", ORDER, 0)
    out = [e for _, _, e in join.due(ORDER_AT + 10_000, terms)]
    (conversion,) = [e for e in out if isinstance(e, ConversionAttributed)]
    return conversion.affiliate_id


def test_a_visitor_under_the_bound_keeps_every_click() -> None:
    join = JoinPartition(clicks_per_visitor=BOUND)
    dropped = sum(join.click("v", click(n), 0, terms).dropped for n in range(BOUND))
    assert (dropped, len(join.keys["v"].clicks)) == (0, BOUND)


def test_flagged_clicks_are_given_up_before_a_valid_one_however_late_it_came() -> None:
    join = JoinPartition(clicks_per_visitor=BOUND)
    join.click("v", click(0, "bob", at=ORDER_AT - 7_200_000), 0, terms)  # the oldest
    dropped = sum(
        join.click("v", click(n, "anna", flagged=True), 0, terms).dropped for n in range(500)
    )

    assert dropped == 500 + 1 - BOUND
    held = [t for t, _ in join.keys["v"].clicks.values()]
    assert len(held) == BOUND
    assert [t.affiliate_id for t in held if not t.flagged] == ["bob"]
    # The newest flagged clicks stay (the earliest are given up first).
    assert min(t.at for t in held if t.flagged) == click(500 - BOUND + 1).occurred_at
    assert winner(join) == "bob"


def test_past_the_bound_with_valid_clicks_only_the_oldest_is_given_up() -> None:
    join = JoinPartition(clicks_per_visitor=BOUND)
    for n in range(BOUND):
        join.click("v", click(n, "anna"), 0, terms)
    newest = click(BOUND, "bob")

    assert join.click("v", newest, 0, terms).dropped == 1
    assert click(0).click_id not in join.keys["v"].clicks
    assert winner(join) == "bob"  # last click: the newest stays


def test_a_click_older_than_every_held_one_is_itself_given_up() -> None:
    join = JoinPartition(clicks_per_visitor=BOUND)
    for n in range(1, BOUND + 1):
        join.click("v", click(n, "anna"), 0, terms)
    late_old = click(0, "bob")

    result = join.click("v", late_old, 0, terms)

    assert (result.dropped, result.outputs) == (1, [])
    assert late_old.click_id not in join.keys["v"].clicks


def test_the_snapshot_of_a_visitor_past_the_bound_stays_the_bounds_size() -> None:
    join = JoinPartition(clicks_per_visitor=BOUND)
    for n in range(BOUND):
        join.click("v", click(n, flagged=True), 0, terms)
    at_bound = len(encode_state(join.keys["v"]))
    for n in range(BOUND, 2_000):
        join.click("v", click(n, flagged=True), 0, terms)

    assert len(encode_state(join.keys["v"])) == at_bound


def test_a_state_held_past_the_bound_shrinks_to_it_at_its_next_click() -> None:
    """Written before the bound, or under a larger one: given up one click per new one,
    it stayed at its size and every batch encoded all of it."""
    join = JoinPartition(clicks_per_visitor=50)
    for n in range(50):
        join.click("v", click(n, flagged=True), 0, terms)
    join.clicks_per_visitor = BOUND  # the worker restarted with a lower bound

    result = join.click("v", click(50, "bob"), 0, terms)

    assert result.dropped == 50 + 1 - BOUND
    held = join.keys["v"].clicks
    assert len(held) == BOUND
    assert click(50, "bob").click_id in held


@pytest.mark.parametrize(
    "new",
    [
        click(100, "bob", flagged=True),  # flagged: the first given up
        click(0, "bob", at=ORDER_AT - 86_400_000),  # older than every click held
        click(100, "bob"),  # a newer valid click
    ],
    ids=["flagged", "oldest", "newer-valid"],
)
def test_a_state_two_or_more_over_the_bound_shrinks_whatever_the_next_click_is(
    new: ClickRecorded,
) -> None:
    """With the new click itself the first given up, the loop stopped giving up and never
    ended: one click stopped the consumer."""
    join = JoinPartition(clicks_per_visitor=50)
    for n in range(1, 51):
        join.click("v", click(n), 0, terms)
    join.clicks_per_visitor = BOUND

    join.click("v", new, 0, terms)

    assert len(join.keys["v"].clicks) == BOUND
