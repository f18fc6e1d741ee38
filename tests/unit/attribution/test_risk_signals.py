"""The attribution worker's risk signals on a conversion (outputs.risk_signals over
core.review.signals), and the order facts that carry them kept across a restart."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from afflux.attribution.join import (
    Decided,
    VisitorState,
    _decided_from,
    _decided_row,
    _kept_review_facts,
    decode_state,
    encode_state,
)
from afflux.attribution.outputs import OrderFacts, risk_signals
from afflux.shared.core import attribution as core
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import ClickRecorded

pytestmark = pytest.mark.unit

TERMS = CampaignTerms.model_validate(
    {
        "campaign_id": "shop",
        "merchant_id": "m",
        "currency": "EUR",
        "coupons": {"ANA": "ana"},
        "review": {
            "hold_on": ["self_referral"],
            "thresholds": {"min_click_to_conversion_s": 10},
            "coupon_sites": ["coupons.example"],
            "creator_email_hashes": {"ana": "h-ana"},
        },
    }
)
VERSION = TermsVersion(version=1, effective_from=0, published_at=0, terms=TERMS)
ORDER = OrderFacts(
    "o1", "shop", 100_000, "ev-o1", "sale", None, 5000, "EUR", "v1", None, False, None, None
)
CLICK = core.ClickTouch("k1", "ana", "shop", 100_000 - 60_000)
BY_CLICK = core.Attributed("ana", "cookie", 30, CLICK, ())
BY_COUPON = core.Attributed("ana", "coupon", 30, None, ())
COUPON_ORDER = replace(ORDER, coupon_code="ANA", referrer="https://coupons.example/x")


@dataclass(frozen=True)
class Case:
    name: str
    order: OrderFacts
    decision: core.Attributed
    raised: tuple[str, ...]
    clicks: tuple[core.ClickTouch, ...] = ()  # the visitor's clicks the decision saw


CASES = [
    # A click a minute before the order: nothing.
    Case("plain", ORDER, BY_CLICK, ()),
    # A click 9 s before: fast.
    Case(
        "fast",
        ORDER,
        replace(BY_CLICK, click=replace(CLICK, at=100_000 - 9_999)),
        ("fast_conversion",),
    ),
    # The buyer's IP hash starts as the winning click's kept prefix: same IP.
    Case(
        "same ip",
        replace(ORDER, customer_ip_hash="a" * 16 + "b" * 48),
        replace(BY_CLICK, click=replace(CLICK, ip_hash="a" * 16)),
        ("same_ip",),
    ),
    # One character off in the prefix: none.
    Case(
        "other ip",
        replace(ORDER, customer_ip_hash="a" * 15 + "c" + "b" * 48),
        replace(BY_CLICK, click=replace(CLICK, ip_hash="a" * 16)),
        (),
    ),
    # The creator's own email hash.
    Case("self", replace(ORDER, customer_email_hash="h-ana"), BY_CLICK, ("self_referral",)),
    # A coupon order from a coupon site, no click of the coupon's creator.
    Case(
        "coupon site",
        replace(ORDER, coupon_code="ANA", referrer="https://coupons.example/x"),
        BY_COUPON,
        ("coupon_site",),
    ),
    # The same with a click of the creator among the visitor's clicks: none (a coupon win
    # lists no click of its own creator: the visitor's clicks say it).
    Case("coupon with the creator's click", COUPON_ORDER, BY_COUPON, (), (CLICK,)),
    Case(
        "coupon with the creator's flagged click",
        COUPON_ORDER,
        BY_COUPON,
        (),
        (replace(CLICK, flagged=True),),
    ),
    # Clicks that are not the creator's before the order in this campaign: still raised.
    Case(
        "coupon with another creator's click",
        COUPON_ORDER,
        BY_COUPON,
        ("coupon_site",),
        (replace(CLICK, affiliate_id="bob"),),
    ),
    Case(
        "coupon with the creator's click in another campaign",
        COUPON_ORDER,
        BY_COUPON,
        ("coupon_site",),
        (replace(CLICK, campaign_id="other"),),
    ),
    Case(
        "coupon with the creator's click after the order",
        COUPON_ORDER,
        BY_COUPON,
        ("coupon_site",),
        (replace(CLICK, at=100_001),),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_worker_raises_the_signals_its_facts_show(case: Case) -> None:
    assert risk_signals(case.order, case.decision, VERSION, case.clicks) == case.raised


@pytest.mark.parametrize(
    ("clicker", "raised"), [("ana", ()), ("bob", ("coupon_site",))], ids=["ana", "bob"]
)
def test_a_coupon_won_over_the_visitors_clicks_raises_coupon_site_only_without_the_owners(
    clicker: str, raised: tuple[str, ...]
) -> None:
    """The decision as ``choose`` makes it: the coupon settles the order and lists no
    click, so only the visitor's clicks can show the owner's link was clicked."""
    clicks = (replace(CLICK, affiliate_id=clicker),)
    decision = core.choose(COUPON_ORDER.touch(), clicks, TERMS)
    assert isinstance(decision, core.Attributed)
    assert (decision.reason, decision.click, decision.assists) == ("coupon", None, ())
    assert risk_signals(COUPON_ORDER, decision, VERSION, clicks) == raised


def test_terms_without_review_raise_nothing() -> None:
    plain = VERSION.model_copy(update={"terms": TERMS.model_copy(update={"review": None})})
    assert risk_signals(replace(ORDER, customer_email_hash="h-ana"), BY_CLICK, plain) == ()


def test_the_risk_facts_survive_the_decided_orders_row() -> None:
    facts = replace(
        ORDER, customer_ip_hash="ip", customer_email_hash="h-ana", referrer="https://r.example"
    )
    row = _decided_row("shop", "o1", Decided(100_000, True, False, facts, None))
    back = _decided_from("shop", "o1", row[2], row[3], row[4], row[5:])
    assert back.order == facts


def _click(campaign: str, ip_hash: str = "f" * 64, referrer: str | None = None) -> ClickRecorded:
    return ClickRecorded(
        event_id="e-k1", occurred_at=1_000, click_id="v1.k1", link_code="l", affiliate_id="ana",
        campaign_id=campaign, visitor_id="v1", ip_hash=ip_hash, referrer=referrer,
    )  # fmt: skip


def test_a_click_keeps_its_ip_hash_only_for_a_campaign_that_reviews() -> None:
    plain = VERSION.model_copy(update={"terms": TERMS.model_copy(update={"review": None})})
    assert _kept_review_facts(_click("shop"), lambda c, at: VERSION) == ("f" * 16, "")
    assert _kept_review_facts(_click("shop"), lambda c, at: plain) == ("", "")
    assert _kept_review_facts(_click("shop"), lambda c, at: None) == ("", "")
    assert _kept_review_facts(_click("shop", ip_hash=""), lambda c, at: VERSION) == ("", "")


@pytest.mark.parametrize(
    ("referrer", "kept"),
    [
        ("https://Deals.Coupons.Example/ana", "deals.coupons.example"),
        ("coupons.example", "coupons.example"),
        ("https://blog.example/ana", ""),  # not a coupon site: nothing kept
        ("http://[::1", ""),  # not a URL
        (None, ""),
    ],
)
def test_a_click_keeps_its_referrers_host_only_when_it_is_a_coupon_site(
    referrer: str | None, kept: str
) -> None:
    plain = VERSION.model_copy(update={"terms": TERMS.model_copy(update={"review": None})})
    click = _click("shop", referrer=referrer)
    assert _kept_review_facts(click, lambda c, at: VERSION)[1] == kept
    assert _kept_review_facts(click, lambda c, at: plain) == ("", "")


def test_a_coupon_order_without_a_referrer_after_a_click_from_a_coupon_site_raises_it() -> None:
    """docs/payouts.md: the order's referrer "(or a click's)" is on a coupon site."""
    order = replace(COUPON_ORDER, referrer=None)
    from_site = replace(CLICK, affiliate_id="bob", referrer_host="coupons.example")
    decision = core.choose(order.touch(), (from_site,), TERMS)
    assert isinstance(decision, core.Attributed)
    assert risk_signals(order, decision, VERSION, (from_site,)) == ("coupon_site",)
    assert risk_signals(order, decision, VERSION, (replace(from_site, referrer_host=""),)) == ()


def test_the_kept_review_facts_survive_the_visitors_state() -> None:
    state = VisitorState()
    state.clicks["v1.k1"] = (replace(CLICK, click_id="v1.k1", ip_hash="a" * 16), 5)
    state.clicks["v1.k2"] = (replace(CLICK, click_id="v1.k2"), 6)
    state.clicks["v1.k3"] = (replace(CLICK, click_id="v1.k3", referrer_host="coupons.example"), 7)
    back = decode_state(encode_state(state))
    assert back.clicks == state.clicks
