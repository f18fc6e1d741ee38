"""Risk signals of a conversion and which hold it (afflux.shared.core.review)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
from pydantic import ValidationError

from afflux.shared.core.review import ReviewTerms, SignalFacts, holding, is_burst, on_site, signals
from afflux.shared.core.terms import normalize_domain

pytestmark = pytest.mark.unit

REVIEW = ReviewTerms.model_validate(
    {
        "hold_on": ["self_referral", "coupon_site"],
        "thresholds": {"min_click_to_conversion_s": 10, "burst_per_hour": 2},
        "coupon_sites": ["Coupons.example"],
        "creator_email_hashes": {"ana": "h-ana"},
    }
)
PLAIN = SignalFacts(affiliate_id="ana", reason="cookie", lag_ms=60_000, click_ip_hash="ip-1")


@dataclass(frozen=True)
class Case:
    name: str
    facts: SignalFacts
    raised: tuple[str, ...]


CASES = [
    # Nothing unusual: no signal.
    Case("plain", PLAIN, ()),
    # One ms under the threshold is fast.
    Case("9.999 s", replace(PLAIN, lag_ms=9_999), ("fast_conversion",)),
    # At the threshold it is not.
    Case("10 s", replace(PLAIN, lag_ms=10_000), ()),
    # No click (a coupon order): no lag, never fast.
    Case("no lag", replace(PLAIN, lag_ms=None), ()),
    # The buyer's IP hash equals the click's.
    Case("same ip", replace(PLAIN, customer_ip_hash="ip-1"), ("same_ip",)),
    # A different one, or none, is no signal.
    Case("other ip", replace(PLAIN, customer_ip_hash="ip-2"), ()),
    # The buyer's email hash is the creator's own.
    Case("self referral", replace(PLAIN, customer_email_hash="h-ana"), ("self_referral",)),
    # Another creator's hash is not.
    Case("other email", replace(PLAIN, affiliate_id="bo", customer_email_hash="h-ana"), ()),
    # A coupon order, no click of its creator, from a coupon site (a subdomain, any case).
    Case(
        "coupon site",
        replace(PLAIN, reason="coupon", referrers=("https://www.COUPONS.example/ana",)),
        ("coupon_site",),
    ),
    # The same, but the visitor clicked the creator's link: no signal.
    Case(
        "coupon with click",
        replace(
            PLAIN, reason="coupon", creator_clicked=True, referrers=("https://coupons.example/",)
        ),
        (),
    ),
    # A coupon order from elsewhere is no signal.
    Case(
        "coupon elsewhere", replace(PLAIN, reason="coupon", referrers=("https://blog.example",)), ()
    ),
    # A look-alike host is not a subdomain.
    Case(
        "look-alike host",
        replace(PLAIN, reason="coupon", referrers=("https://notcoupons.example",)),
        (),
    ),
    # Several at once, in the fixed order.
    Case(
        "several",
        replace(PLAIN, lag_ms=1, customer_ip_hash="ip-1", customer_email_hash="h-ana"),
        ("fast_conversion", "same_ip", "self_referral"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_signals_at_each_boundary(case: Case) -> None:
    assert signals(REVIEW, case.facts) == case.raised


def test_terms_without_review_raise_nothing() -> None:
    assert signals(None, replace(PLAIN, lag_ms=0)) == ()


def test_only_the_signals_the_terms_name_hold() -> None:
    assert holding(REVIEW, ("fast_conversion", "self_referral")) == ("self_referral",)
    assert holding(REVIEW, ("fast_conversion",)) == ()
    assert holding(None, ("self_referral",)) == ()


@dataclass(frozen=True)
class BurstCase:
    name: str
    times: list[int]
    at: int
    burst: bool


HOUR = 3_600_000
BURSTS = [
    # Two within the hour: at the limit, no burst.
    BurstCase("two", [0, 10], 10, False),
    # A third within the hour: more than two.
    BurstCase("three", [0, 5, 10], 10, True),
    # The first one exactly an hour before is outside the sliding hour.
    BurstCase("an hour apart", [0, HOUR - 1, HOUR], HOUR, False),
    # One ms later, it is inside.
    BurstCase("inside the hour", [1, HOUR - 1, HOUR], HOUR, True),
    # Later conversions do not count for an earlier one.
    BurstCase("later ones", [0, 1, 2, 3], 1, False),
]


@pytest.mark.parametrize("case", BURSTS, ids=lambda c: c.name)
def test_a_burst_is_more_than_the_limit_within_the_hour_up_to_a_conversion(
    case: BurstCase,
) -> None:
    assert is_burst(case.times, case.at, 2) is case.burst


def test_hold_on_names_each_signal_once_and_only_known_ones() -> None:
    with pytest.raises(ValidationError, match="at most once"):
        ReviewTerms.model_validate({"hold_on": ["burst", "burst"]})
    with pytest.raises(ValidationError, match="hold_on"):
        ReviewTerms.model_validate({"hold_on": ["moon_phase"]})


def test_a_referrer_may_be_a_bare_host() -> None:
    assert on_site("coupons.example/deal", ("coupons.example",))
    assert not on_site("", ("coupons.example",))


# (a coupon site as the terms give it, how the terms hold it): as allowed domains are held
# (afflux.shared.core.terms.normalize_domain), so both compare hosts alike.
SITES_HELD = [
    ("coupons.example", ("coupons.example",)),
    ("Coupons.EXAMPLE.", ("coupons.example",)),  # case, and the one dot of a full name
    ("  coupons.example.\t", ("coupons.example",)),  # trimmed first
    ("coupons.example..", ("coupons.example..",)),  # an empty label: matches no host
    (".", ()),  # nothing once normalised: dropped, it would match any host ending in a dot
    ("   ", ()),
]


@pytest.mark.parametrize(("given", "held"), SITES_HELD)
def test_a_coupon_site_is_held_as_an_allowed_domain_is(given: str, held: tuple[str, ...]) -> None:
    assert ReviewTerms.model_validate({"coupon_sites": [given]}).coupon_sites == held
    assert all(normalize_domain(site) == site for site in held)


# (a coupon site as the terms give it, a referrer, whether the referrer is on the site)
REFERRERS = [
    ("coupons.example", "https://coupons.example/deal", True),
    ("Coupons.Example.", "https://coupons.example/deal", True),
    ("coupons.example", "https://COUPONS.Example./deal", True),  # case, a full name's dot
    ("coupons.example", "coupons.example./deal", True),  # a bare host, too
    ("coupons.example", "https://www.coupons.example./deal", True),  # below the site
    ("coupons.example", "https://coupons.example../deal", False),  # two dots: no such host
    ("coupons.example", "coupons.example../deal", False),
    ("coupons.example..", "https://coupons.example/deal", False),  # nor such a site
    ("coupons.example", "https://notcoupons.example/deal", False),  # not below it
    ("coupons.example", "/deal", False),  # no host at all
    (".", "https://coupons.example../deal", False),
]


@pytest.mark.parametrize(("site", "referrer", "on"), REFERRERS)
def test_a_referrer_host_is_compared_with_coupon_sites_as_with_allowed_domains(
    site: str, referrer: str, on: bool
) -> None:
    sites = ReviewTerms.model_validate({"coupon_sites": [site]}).coupon_sites
    assert on_site(referrer, sites) is on
