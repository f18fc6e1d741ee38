"""Which orders are decided at once: a winner no click yet to come can change
(``settled_winner``), one case per precedence boundary; a settled winner stays the
winner whatever clicks follow; and the join decides such an order on arrival."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from afflux.attribution.join import JoinPartition
from afflux.shared.core.attribution import (
    Attributed,
    ClickTouch,
    OrderTouch,
    choose,
    settled_winner,
)
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import ClickRecorded, ConversionAttributed, OrderPlaced

pytestmark = pytest.mark.unit

T = 1_000 * MS_PER_DAY  # the order's event time
W = 30 * MS_PER_DAY  # the campaign's window
CLICK_FIRST = ("click_id", "coupon", "cookie")  # the default
CODE_FIRST = ("coupon", "click_id", "cookie")
COOKIE_FIRST = ("cookie", "coupon")


def terms(precedence: tuple[str, ...] = CLICK_FIRST, model: str = "last_click") -> CampaignTerms:
    return CampaignTerms.model_validate(
        {
            "campaign_id": "camp",
            "merchant_id": "m",
            "currency": "EUR",
            "cookie_window_days": 30,
            "coupons": {"ANNA10": "anna"},
            "precedence": precedence,
            "model": model,
            "grace_seconds": 5,
        }
    )


def click(
    cid: str, at: int, who: str = "ben", campaign: str = "camp", *, flagged: bool = False
) -> ClickTouch:
    return ClickTouch(cid, who, campaign, at, flagged)


def order(click_id: str | None = None, coupon: str | None = None) -> OrderTouch:
    return OrderTouch("o1", "camp", T, click_id=click_id, coupon_code=coupon)


GOOD = click("c1", T - 10)
OTHER = click("c2", T - 5, "cara")


@dataclass(frozen=True)
class Case:
    name: str
    order: OrderTouch
    clicks: tuple[ClickTouch, ...]
    expect: str  # "<affiliate>/<reason>/<click id>", or "wait" (not settled)
    precedence: tuple[str, ...] = CLICK_FIRST


CASES = [
    # a named click that is known and eligible wins, and nothing ranks above click_id
    Case("known_click_id_first", order("c1"), (GOOD, OTHER), "ben/click_id/c1"),
    # the named click may still arrive: a cookie or coupon answer could be overtaken
    Case("unknown_click_id", order("c9", "ANNA10"), (GOOD,), "wait"),
    # a known flagged click never wins, so the code below it is settled
    Case(
        "known_flagged_click_then_code",
        order("c1", "ANNA10"),
        (click("c1", T - 10, flagged=True),),
        "anna/coupon/-",
    ),
    # known but outside the window (1 ms too old), no code: the cookie step decides
    Case("known_click_too_old_then_cookie", order("c1"), (click("c1", T - W - 1),), "wait"),
    # exactly at the window's edge the named click is eligible
    Case("known_click_at_window_edge", order("c1"), (click("c1", T - W),), "ben/click_id/c1"),
    # a named click after the order never wins; nothing but the cookie is left
    Case("known_click_after_order", order("c1"), (click("c1", T + 1),), "wait"),
    # a named click in another campaign never wins either
    Case("known_click_other_campaign", order("c1"), (click("c1", T, campaign="x"),), "wait"),
    # no click id: the click_id step can never win, the code is settled
    Case("code_without_click_id", order(coupon="ANNA10"), (GOOD,), "anna/coupon/-"),
    # a code without an owner, then the cookie: a later click may win
    Case("unknown_code", order(coupon="NOBODY"), (GOOD,), "wait"),
    # only cookies: any later click may become the last (or first) one
    Case("cookie_only", order(), (GOOD, OTHER), "wait"),
    # codes first: the code wins even if the named click is not known yet
    Case("code_first_unknown_click", order("c9", "ANNA10"), (), "anna/coupon/-", CODE_FIRST),
    # codes first, no code: a known click id is next
    Case("code_first_known_click", order("c1"), (GOOD,), "ben/click_id/c1", CODE_FIRST),
    # cookies first: a code is never settled, a click may still come
    Case("cookie_outranks_code", order(coupon="ANNA10"), (), "wait", COOKIE_FIRST),
    # no winner at all is not settled: the reason could still change with a click
    Case("nothing_wins", order(), (), "wait", ("click_id", "coupon")),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_settled_winner_at_each_precedence_boundary(case: Case) -> None:
    decision = settled_winner(case.order, case.clicks, terms(case.precedence))
    if decision is None:
        got = "wait"
    else:
        clicked = decision.click.click_id if decision.click else "-"
        got = f"{decision.affiliate_id}/{decision.reason}/{clicked}"
    assert got == case.expect


def test_a_settled_winner_lists_no_assists_and_a_cookie_winner_does() -> None:
    t = terms()
    settled = choose(order("c1"), (GOOD, OTHER), t)
    by_cookie = choose(order(), (GOOD, OTHER), t)
    assert isinstance(settled, Attributed)
    assert settled.assists == ()
    assert isinstance(by_cookie, Attributed)
    assert [a.click_id for a in by_cookie.assists] == ["c1"]


@pytest.mark.parametrize("seed", range(40))
def test_no_later_click_changes_a_settled_winner(seed: int) -> None:
    rng = random.Random(seed)
    model = rng.choice(["last_click", "first_click"])
    precedence = rng.choice([CLICK_FIRST, CODE_FIRST, COOKIE_FIRST, ("click_id", "cookie")])
    t = terms(precedence, model)
    clicks = [
        click(
            f"c{n}",
            T - rng.choice([0, 1, 5, W, W + 1, -1, rng.randrange(W)]),
            rng.choice(["anna", "ben", "cara"]),
            rng.choice(["camp", "camp", "x"]),
            flagged=rng.random() < 0.15,
        )
        for n in range(rng.randrange(1, 8))
    ]
    named = rng.choice([None, "c0", "c1", "c9"])
    the_order = order(named, rng.choice([None, "ANNA10", "NOBODY"]))
    final = choose(the_order, clicks, t)
    for arrived in range(len(clicks) + 1):  # every arrival point, in a shuffled order
        seen = rng.sample(clicks, k=arrived)
        early = settled_winner(the_order, seen, t)
        if early is not None:
            assert isinstance(final, Attributed)
            assert (early.affiliate_id, early.reason, early.click) == (
                final.affiliate_id,
                final.reason,
                final.click,
            )


# -- the join -------------------------------------------------------------------------

ORDER_AT = 1_793_491_200_000
VERSION = TermsVersion(version=1, effective_from=0, published_at=0, terms=terms())


def lookup(campaign: str, at: int) -> TermsVersion | None:
    return VERSION if campaign == "camp" else None


def click_event(cid: str, creator: str, before_ms: int) -> ClickRecorded:
    return ClickRecorded(
        event_id=f"ev-{cid}",
        occurred_at=ORDER_AT - before_ms,
        click_id=cid,
        link_code="code",
        affiliate_id=creator,
        campaign_id="camp",
        visitor_id="v",
    )


def order_event(
    order_id: str, click_id: str | None = None, coupon: str | None = None
) -> OrderPlaced:
    return OrderPlaced(
        event_id=f"ev-{order_id}",
        occurred_at=ORDER_AT,
        order_id=order_id,
        campaign_id="camp",
        merchant_id="m",
        kind="sale",
        amount_minor=10_000,
        currency="EUR",
        visitor_id="v",
        click_id=click_id,
        coupon_code=coupon,
    )


def test_the_join_decides_a_settled_order_on_arrival_and_waits_for_the_others() -> None:
    join = JoinPartition()
    join.click("v", click_event("v.1", "ben", 60_000), 0, lookup)
    at_once = join.place("v", order_event("o-named", click_id="v.1"), 100, lookup)
    by_code = join.place("v", order_event("o-code", coupon="anna10"), 100, lookup)
    waiting = join.place("v", order_event("o-cookie"), 100, lookup)
    decided = [e for _, _, e in at_once + by_code if isinstance(e, ConversionAttributed)]
    assert [(e.order_id, e.affiliate_id, e.reason) for e in decided] == [
        ("o-named", "ben", "click_id"),
        ("o-code", "anna", "coupon"),
    ]
    assert len(at_once + by_code) == 2
    assert waiting == []
    assert join.take_decisions() == {"at_once": 2, "after_grace": 0}
    # Another creator's later click, inside the order's time: it changes nothing decided.
    late = join.click("v", click_event("v.2", "cara", 1_000), 200, lookup)
    assert late.outputs == []
    assert late.outcomes == ["unchanged", "unchanged"]
    after = join.due(100 + VERSION.terms.grace_ms, lookup)
    [(_, _, cookie)] = after
    assert isinstance(cookie, ConversionAttributed)
    assert (cookie.order_id, cookie.affiliate_id, cookie.reason) == ("o-cookie", "cara", "cookie")
    assert join.take_decisions() == {"at_once": 0, "after_grace": 1}


def test_a_copy_of_an_order_decided_at_once_emits_nothing() -> None:
    join = JoinPartition()
    join.click("v", click_event("v.1", "ben", 60_000), 0, lookup)
    assert join.place("v", order_event("o1", click_id="v.1"), 100, lookup)
    assert join.place("v", order_event("o1", click_id="v.1"), 150, lookup) == []
    assert join.due(10**15, lookup) == []
