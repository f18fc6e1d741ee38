"""The attribution choice at its boundaries: one case per rule, each saying what it proves."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from afflux.shared.core.attribution import (
    Attributed,
    ClickTouch,
    OrderTouch,
    Unattributed,
    capped_refund,
    choose,
)
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.terms import CampaignTerms

pytestmark = pytest.mark.unit

T = 1_000 * MS_PER_DAY  # the order's event time
W = 30 * MS_PER_DAY  # the campaign's window


def terms(**changes: object) -> CampaignTerms:
    base: dict[str, object] = {
        "campaign_id": "camp",
        "merchant_id": "m",
        "currency": "EUR",
        "cookie_window_days": 30,
        "window_overrides_days": {"long": 90},
        "coupons": {"ANNA10": "anna"},
    }
    base.update(changes)
    return CampaignTerms.model_validate(base)


DEFAULT_TERMS = terms()


def click(
    cid: str, at: int, who: str = "a", campaign: str = "camp", *, flagged: bool = False
) -> ClickTouch:
    return ClickTouch(cid, who, campaign, at, flagged)


def order(click_id: str | None = None, coupon: str | None = None) -> OrderTouch:
    return OrderTouch("o1", "camp", T, click_id=click_id, coupon_code=coupon)


@dataclass(frozen=True)
class Case:
    name: str
    clicks: tuple[ClickTouch, ...]
    order: OrderTouch
    expect: str  # "<affiliate>/<reason>/<click id>" or "-/<unattributed reason>"
    terms: CampaignTerms = DEFAULT_TERMS


CASES = [
    # the window's far edge is inclusive ...
    Case("edge_in", (click("c1", T - W),), order(), "a/cookie/c1"),
    # ... and 1 ms earlier is out
    Case("edge_out", (click("c1", T - W - 1),), order(), "-/outside_window"),
    # a click at the order's own millisecond counts
    Case("same_ms", (click("c1", T),), order(), "a/cookie/c1"),
    # a click 1 ms after the order does not, and gives no reason either (whether the
    # worker holds it when deciding depends on when it arrived)
    Case("after_order", (click("c1", T + 1),), order(), "-/no_click"),
    Case(
        "after_order_beside_an_old",
        (click("c0", T - W - 1), click("c1", T + 1)),
        order(),
        "-/outside_window",
    ),
    Case("named_after_order", (click("c1", T + 1),), order("c1"), "-/unknown_click"),
    Case("other_campaign_after_order", (click("c1", T + 1, campaign="x"),), order(), "-/no_click"),
    # a creator's override widens their window only
    Case("override_in", (click("c1", T - 90 * MS_PER_DAY, "long"),), order(), "long/cookie/c1"),
    Case(
        "override_out", (click("c1", T - 90 * MS_PER_DAY - 1, "long"),), order(), "-/outside_window"
    ),
    Case("no_override", (click("c1", T - 90 * MS_PER_DAY, "a"),), order(), "-/outside_window"),
    # last click wins by default
    Case("last", (click("c1", T - 10), click("c2", T - 5, "b")), order(), "b/cookie/c2"),
    # first click under first_click
    Case(
        "first",
        (click("c1", T - 10), click("c2", T - 5, "b")),
        order(),
        "a/cookie/c1",
        terms(model="first_click"),
    ),
    # equal timestamps: the larger click id is "last"
    Case("tie_last", (click("c2", T - 5, "b"), click("c1", T - 5)), order(), "b/cookie/c2"),
    Case(
        "tie_first",
        (click("c2", T - 5, "b"), click("c1", T - 5)),
        order(),
        "a/cookie/c1",
        terms(model="first_click"),
    ),
    # an explicit click id beats a later cookie click
    Case("explicit", (click("c1", T - 10), click("c2", T - 5, "b")), order("c1"), "a/click_id/c1"),
    # an explicit click outside the window falls through to the cookie step
    Case(
        "explicit_stale",
        (click("c1", T - W - 1), click("c2", T - 5, "b")),
        order("c1"),
        "b/cookie/c2",
    ),
    # an unknown explicit click id with no other click
    Case("unknown_click", (), order("nope"), "-/unknown_click"),
    # a coupon beats cookie clicks under the default precedence
    Case("coupon", (click("c2", T - 5, "b"),), order(coupon="anna10"), "anna/coupon/-"),
    # a coupon owned by nobody falls through
    Case("coupon_unknown", (click("c2", T - 5, "b"),), order(coupon="X"), "b/cookie/c2"),
    # cookie before coupon when the campaign says so
    Case(
        "cookie_first",
        (click("c2", T - 5, "b"),),
        order(coupon="ANNA10"),
        "b/cookie/c2",
        terms(precedence=("cookie", "coupon")),
    ),
    # flagged clicks (bot, duplicate, ip_duplicate, rate, embedded) never win
    Case("flagged_only", (click("c1", T - 5, flagged=True),), order(), "-/bot_only"),
    Case(
        "flagged_newer_than_valid",
        (click("c1", T - 9), click("c2", T - 5, "b", flagged=True)),
        order(),
        "a/cookie/c1",
    ),
    # an order naming a flagged click falls through to the older valid cookie click
    Case(
        "flagged_named",
        (click("c1", T - 9), click("c2", T - 5, "b", flagged=True)),
        order(click_id="c2"),
        "a/cookie/c1",
    ),
    # first click: an older flagged click is skipped, not picked
    Case(
        "flagged_first_click",
        (click("c1", T - 9, "b", flagged=True), click("c2", T - 5)),
        order(),
        "a/cookie/c2",
        terms(model="first_click"),
    ),
    # clicks of another campaign do not count
    Case("other_campaign", (click("c1", T - 5, campaign="x"),), order(), "-/other_campaign"),
    # without a cookie step, a clean click the order does not name wins nothing, and the
    # reason says so (it said bot_only, as if the click were flagged)
    Case(
        "no_cookie_step_clean_click",
        (click("c1", T - 5),),
        order(),
        "-/cookie_not_in_precedence",
        terms(precedence=("click_id", "coupon")),
    ),
    Case(
        "no_cookie_step_flagged_click",
        (click("c1", T - 5, flagged=True),),
        order(),
        "-/bot_only",
        terms(precedence=("click_id", "coupon")),
    ),
    Case(
        "no_cookie_step_old_click",
        (click("c1", T - W - 1),),
        order(),
        "-/outside_window",
        terms(precedence=("click_id", "coupon")),
    ),
    Case("no_click", (), order(), "-/no_click"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_choice(case: Case) -> None:
    decision = choose(case.order, case.clicks, case.terms)
    if isinstance(decision, Attributed):
        clicked = decision.click.click_id if decision.click else "-"
        got = f"{decision.affiliate_id}/{decision.reason}/{clicked}"
    else:
        got = f"-/{decision.reason}"
    assert got == case.expect


def test_assists_are_other_creators_picks_in_time_order() -> None:
    clicks = (
        click("a1", T - 30),
        click("b1", T - 20, "b"),
        click("b2", T - 15, "b"),
        click("c1", T - 25, "c"),
        click("a2", T - 10),
    )
    decision = choose(order(), clicks, terms())
    assert isinstance(decision, Attributed)
    assert decision.click == clicks[4]
    assert [a.click_id for a in decision.assists] == ["c1", "b2"]


def test_window_on_a_conversion_is_the_winners() -> None:
    decision = choose(order(), (click("c1", T - 5, "long"),), terms())
    assert isinstance(decision, Attributed)
    assert decision.window_ms == 90 * MS_PER_DAY


def test_unattributed_is_a_value() -> None:
    assert choose(order(), (), terms()) == Unattributed("no_click")


@pytest.mark.parametrize(
    ("amount", "refunded", "requested", "applied"),
    [
        (1000, 0, 400, 400),  # partial refund
        (1000, 400, 600, 600),  # exactly to the order amount
        (1000, 400, 601, 600),  # 1 over: capped
        (1000, 1000, 1, 0),  # fully refunded already
        (0, 0, 5, 0),  # a free order
    ],
)
def test_refunds_are_capped_at_the_order_amount(
    amount: int, refunded: int, requested: int, applied: int
) -> None:
    assert capped_refund(amount, refunded, requested) == applied
