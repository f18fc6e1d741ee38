"""The what-if diff at its boundaries: one recorded log of a campaign, replayed under its
current terms and under a draft; each case changes one element of the terms and names
what the diff must show (per creator, and the reason of the line that changes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from afflux.shared.core.attribution import ClickTouch
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.core.terms_checks import MAX_TIERS
from afflux.shared.core.whatif.diff import _why, draft_problem, whatif
from afflux.shared.core.whatif.log import (
    EVER,
    CampaignLog,
    DateRange,
    LoggedOrder,
    LoggedRefund,
    LoggedRenewal,
    RangeProblem,
    day_range,
)
from afflux.shared.core.whatif.replay import ReplayedLine

pytestmark = pytest.mark.unit

DAY0 = 1_793_491_200_000  # 2026-11-01T00:00:00Z
BASE: dict[str, Any] = {
    "campaign_id": "camp",
    "merchant_id": "m-1",
    "currency": "EUR",
    "cookie_window_days": 10,
    "model": "last_click",
    "lock_days": 5,
    "plan": {
        "sale": {"rate": {"percent": "10"}},
        "tiers": [{"from_sales": 2, "rate": {"percent": "10"}}],
    },
}


def terms(**changes: Any) -> CampaignTerms:
    raw = {**BASE, **changes}
    if "plan" in changes:
        raw["plan"] = {**BASE["plan"], **changes["plan"]}
    return CampaignTerms.model_validate(raw)


CURRENT = (TermsVersion(version=1, effective_from=0, published_at=0, terms=terms()),)


def at(day: float) -> int:
    return DAY0 + int(day * MS_PER_DAY)


@dataclass(frozen=True)
class Click:
    creator: str
    day: float
    visitor: str = "v-1"


@dataclass(frozen=True)
class Order:
    order_id: str
    day: float
    visitor: str = "v-1"
    amount_minor: int = 10_000


def build(clicks: tuple[Click, ...], orders: tuple[Order, ...]) -> CampaignLog:
    log = CampaignLog("camp")
    for n, c in enumerate(clicks):
        log.add_click(c.visitor, ClickTouch(f"{c.visitor}.k{n}", c.creator, "camp", at(c.day)))
    for o in orders:
        log.add_order(
            LoggedOrder(o.order_id, f"e-{o.order_id}", o.visitor, at(o.day), o.amount_minor, "EUR")
        )
    return log


@dataclass(frozen=True)
class Case:
    name: str
    draft: CampaignTerms
    clicks: tuple[Click, ...]
    orders: tuple[Order, ...]
    pays: dict[str, tuple[int, int]]  # creator -> (current, draft), only those that change
    reason: str = ""  # in the reason of the largest line change
    window: DateRange = EVER
    gained: dict[str, tuple[str, ...]] = field(default_factory=dict)
    lost: dict[str, tuple[str, ...]] = field(default_factory=dict)


THREE_SALES = tuple(Order(f"o-{n}", 1 + n, visitor=f"v-{n}") for n in range(1, 4))
THREE_CLICKS = tuple(Click("creator-a", n, visitor=f"v-{n}") for n in range(1, 4))

CASES = [
    # a 10-day window shortened to 3: the click 5 days before the order no longer counts
    Case(
        "window_shortened_loses_a_conversion",
        terms(cookie_window_days=3),
        (Click("creator-a", 0),),
        (Order("o-1", 5),),
        {"creator-a": (1_000, 0)},
        "order o-1: was creator-a (last click) now nobody (no click inside the window)",
        lost={"creator-a": ("o-1",)},
    ),
    # exactly at the shortened window's edge the click still counts: nothing changes
    Case(
        "click_exactly_at_the_shortened_window_edge_still_wins",
        terms(cookie_window_days=5),
        (Click("creator-a", 0),),
        (Order("o-1", 5),),
        {},
    ),
    # last click to first click: the earlier creator takes the order
    Case(
        "model_change_moves_a_conversion",
        terms(model="first_click"),
        (Click("creator-a", 1), Click("creator-b", 2)),
        (Order("o-1", 3),),
        {"creator-a": (0, 1_000), "creator-b": (1_000, 0)},
        "order o-1: was creator-b (last click) now creator-a (first click)",
        gained={"creator-a": ("o-1",)},
        lost={"creator-b": ("o-1",)},
    ),
    # the tier from the 2nd net sale doubled: sales 2 and 3 pay 20 %, the first stays
    Case(
        "tier_rate_doubled",
        terms(plan={"tiers": [{"from_sales": 2, "rate": {"percent": "20"}}]}),
        THREE_CLICKS,
        THREE_SALES,
        {"creator-a": (3_000, 5_000)},
        "tier from net sale 2 rate 10% -> 20%",
    ),
    # a creator cap of 25.00 cuts the third sale's 10.00 to 5.00
    Case(
        "cap_added",
        terms(plan={"creator_cap_minor": 2_500}),
        THREE_CLICKS,
        THREE_SALES,
        {"creator-a": (3_000, 2_500)},
        "creator cap cut 5.00 EUR",
    ),
    # a range holding no order: nothing to compare, an empty diff
    Case(
        "empty_range",
        terms(plan={"tiers": [{"from_sales": 2, "rate": {"percent": "20"}}]}),
        THREE_CLICKS,
        THREE_SALES,
        {},
        window=DateRange(at(30), at(40)),
    ),
    # the same terms as a draft: an empty diff
    Case("unchanged_terms", terms(), THREE_CLICKS, THREE_SALES, {}),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_whatif_diff(case: Case) -> None:
    diff = whatif(build(case.clicks, case.orders), CURRENT, case.draft, case.window)
    got = {c.affiliate_id: (c.current_minor, c.draft_minor) for c in diff.creators}
    assert got == case.pays
    assert diff.empty == (not case.pays)
    assert {c.affiliate_id: c.gained for c in diff.creators if c.gained} == case.gained
    assert {c.affiliate_id: c.lost for c in diff.creators if c.lost} == case.lost
    if case.reason:
        assert case.reason in diff.changes[0].reason
    assert diff.draft_total_minor - diff.current_total_minor == sum(
        d - c for c, d in case.pays.values()
    )


def test_an_empty_range_replays_no_order() -> None:
    diff = whatif(build(THREE_CLICKS, THREE_SALES), CURRENT, terms(), DateRange(at(30), at(40)))
    assert diff.orders == 0
    assert diff.empty
    assert diff.as_dict()["creators"] == []


def test_a_refund_follows_its_order_into_the_draft() -> None:
    log = build((Click("creator-a", 0),), (Order("o-1", 1),))
    log.add_refund(LoggedRefund("r-1", "e-r-1", "o-1", at(2), 5_000))
    diff = whatif(log, CURRENT, terms(plan={"sale": {"rate": {"percent": "20"}}}))
    assert [(c.current_minor, c.draft_minor) for c in diff.creators] == [(500, 1_000)]


@pytest.mark.parametrize(
    ("changes", "field_name"),
    [
        ({"campaign_id": "other"}, "campaign_id"),
        ({"merchant_id": "m-2"}, "merchant_id"),
        ({"currency": "USD"}, "currency"),
    ],
)
def test_a_draft_keeps_the_campaign_merchant_and_currency(
    changes: dict[str, str], field_name: str
) -> None:
    problem = draft_problem(terms(**changes), terms())
    assert problem is not None
    assert problem[0] == field_name


@dataclass(frozen=True)
class RangeCase:
    first: str | None
    last: str | None
    start: int | None
    end: int | None


@pytest.mark.parametrize(
    "case",
    [
        # both days included: the range ends at the next midnight
        RangeCase("2026-11-01", "2026-11-01", DAY0, DAY0 + MS_PER_DAY),
        RangeCase(None, "2026-11-01", None, DAY0 + MS_PER_DAY),
        RangeCase("2026-11-01", None, DAY0, None),
    ],
)
def test_day_range(case: RangeCase) -> None:
    from datetime import date

    window = day_range(
        date.fromisoformat(case.first) if case.first else None,
        date.fromisoformat(case.last) if case.last else None,
    )
    assert (window.start, window.end) == (case.start, case.end)


def test_a_range_ending_before_it_starts_or_too_long_is_refused() -> None:
    from datetime import date

    with pytest.raises(RangeProblem) as backwards:
        day_range(date(2026, 11, 2), date(2026, 11, 1))
    assert backwards.value.field == "to"
    with pytest.raises(RangeProblem, match="at most 400 days"):
        day_range(date(2025, 1, 1), date(2026, 11, 1))


def test_an_orders_items_meet_the_drafts_per_product_rates() -> None:
    """The replay hands the order's items to the ledger's step: a draft excluding the
    shipping category pays on the shoes alone."""
    log = CampaignLog("camp")
    log.add_click("v-1", ClickTouch("v-1.k", "creator-a", "camp", at(0)))
    items = (("SHOE-1", "shoes", 1, 8_000), ("SHIP", "shipping", 1, 2_000))
    log.add_order(LoggedOrder("o-1", "e-o-1", "v-1", at(1), 10_000, "EUR", items=items))
    draft = terms(
        plan={
            "sale": {"rate": {"percent": "10"}, "products": {"excluded_categories": ["shipping"]}}
        }
    )
    diff = whatif(log, CURRENT, draft)
    assert [(c.current_minor, c.draft_minor) for c in diff.creators] == [(1_000, 800)]


def test_a_drafts_longer_recurring_limit_pays_the_renewal_past_the_old_one() -> None:
    """Renewals pay whoever won the first order (even one bought before the range) under
    the terms at the renewal: two renewals allowed now, three in the draft."""
    log = build((Click("creator-a", 0),), (Order("o-1", 1),))
    for number in (1, 2, 3):
        log.add_renewal(
            LoggedRenewal(
                "o-1", f"o-1-r{number}", number, f"e-r{number}", at(1 + 7 * number), 2_000, "EUR"
            )
        )

    def recurring(renewals: int) -> CampaignTerms:
        return terms(plan={"recurring": {"rate": {"percent": "5"}, "max_renewals": renewals}})

    current = (TermsVersion(version=1, effective_from=0, published_at=0, terms=recurring(2)),)
    diff = whatif(log, current, recurring(3), DateRange(at(5), None))
    assert [(c.current_minor, c.draft_minor, c.gained) for c in diff.creators] == [
        (200, 300, ("o-1-r3",))
    ]
    assert "order o-1-r3: was nobody (renewal_beyond_limit) now creator-a" in diff.changes[0].reason


def test_a_drafts_engagement_values_price_the_campaigns_content() -> None:
    """Content read from its topic (a publication routes it to the campaign, its
    snapshots follow) is priced by the ledger's step: doubling the value of a like doubles
    that part of the creator's engagement pay."""
    from afflux.shared.events import ContentPublished, ContentStats
    from afflux.shared.whatif_decode import LogReader
    from afflux.shared.wire import encode

    reader = LogReader(CampaignLog("camp"))
    published = ContentPublished(
        event_id="e-pub",
        occurred_at=at(1),
        content_id="post-1",
        platform="instagram",
        affiliate_id="creator-a",
        campaign_id="camp",
        kind="post",
        url="https://instagram.example/p/post-1",
        published_at=at(1),
    )
    stats = ContentStats(
        event_id="e-stats",
        occurred_at=at(2),
        content_id="post-1",
        platform="instagram",
        as_of=at(2),
        views=0,
        impressions=0,
        likes=1_000,
        comments=0,
        shares=0,
        saves=0,
        followers=10_000,
    )
    other = stats.model_copy(update={"event_id": "e-other", "content_id": "post-2"})
    for event in (published, stats, other):  # post-2 was never published for the campaign
        reader.content_record(encode(event))

    def liked(value: str) -> CampaignTerms:
        return terms(plan={"engagement": {"values": {"like_minor": value}}})

    current = (TermsVersion(version=1, effective_from=0, published_at=0, terms=liked("2")),)
    diff = whatif(reader.log, current, liked("4"))
    assert [(c.affiliate_id, c.current_minor, c.draft_minor) for c in diff.creators] == [
        ("creator-a", 2_000, 4_000)
    ]


def test_a_draft_putting_live_streams_first_gives_the_stream_the_order() -> None:
    """A live stream read from the content topic claims the orders during it once the
    draft's precedence names ``livestream``: the order moves from the clicking creator."""
    from afflux.shared.events import ContentPublished
    from afflux.shared.whatif_decode import LogReader
    from afflux.shared.wire import encode

    reader = LogReader(CampaignLog("camp"))
    reader.log.add_click("v-1", ClickTouch("v-1.k", "creator-a", "camp", at(0)))
    reader.log.add_order(LoggedOrder("o-1", "e-o-1", "v-1", at(1.5), 10_000, "EUR"))
    live = ContentPublished(
        event_id="e-live",
        occurred_at=at(1),
        content_id="live-1",
        platform="tiktok",
        affiliate_id="creator-b",
        campaign_id="camp",
        kind="live",
        url="https://tiktok.example/live-1",
        published_at=at(1),
        live_started_at=at(1),
        live_ended_at=at(2),
    )
    reader.content_record(encode(live))
    draft = terms(precedence=["livestream", "click_id", "coupon", "cookie"])
    diff = whatif(reader.log, CURRENT, draft)
    assert {c.affiliate_id: (c.current_minor, c.draft_minor) for c in diff.creators} == {
        "creator-a": (1_000, 0),
        "creator-b": (0, 1_000),
    }
    assert "now creator-b (live stream)" in diff.changes[0].reason


def test_a_sale_priced_per_item_names_only_the_part_that_changes() -> None:
    """Shoes earn their category's rate, the rest the sale's: doubling the tier changes
    the second part of the second sale's rule alone, and the reason says just that.
    (At the same percent the two would be one part, rounded once.)"""
    log = CampaignLog("camp")
    items = (("SHOE-1", "shoes", 1, 5_000), ("BAG-1", "bags", 1, 5_000))
    for n in (1, 2):
        log.add_click(f"v-{n}", ClickTouch(f"v-{n}.k", "creator-a", "camp", at(n)))
        log.add_order(
            LoggedOrder(f"o-{n}", f"e-o-{n}", f"v-{n}", at(n + 0.5), 10_000, "EUR", items=items)
        )

    def tiered(percent: str) -> CampaignTerms:
        return terms(
            plan={
                "sale": {"rate": {"percent": "10"}, "products": {"categories": {"shoes": "12"}}},
                "tiers": [{"from_sales": 2, "rate": {"percent": percent}}],
            }
        )

    current = (TermsVersion(version=1, effective_from=0, published_at=0, terms=tiered("10")),)
    diff = whatif(log, current, tiered("20"))
    [change] = diff.changes
    # As for a sale at one rate (docs/campaigns.md): the part's reason, its old and new rate.
    assert change.reason == "order o-2: tier from net sale 2 rate 10% -> 20%"


@pytest.mark.parametrize(
    ("was", "becomes", "reason"),
    [
        # A sale at one rate whose reason is the base rate: not "base rate rate".
        ("sale: 8% of 5000 (base rate)", "sale: 16% of 5000 (base rate)", "base rate 8% -> 16%"),
        # Per item, the tier's part changed: its reason was read across the parts before.
        (
            "sale: 15% of 3123 (sku S-1), 10% of 3905 (category shoes), 10% of 1563 (tier from"
            " net sale 20)",
            "sale: 15% of 3123 (sku S-1), 10% of 3905 (category shoes), 20% of 1563 (tier from"
            " net sale 20)",
            "tier from net sale 20 rate 10% -> 20%",
        ),
        # The same parts in another order: only the one that changed.
        (
            "sale: 15% of 3123 (sku S-1), 10% of 3905 (category shoes), 10% of 1563 (tier x)",
            "sale: 10% of 3905 (category shoes), 15% of 3123 (sku S-1), 20% of 1563 (tier x)",
            "tier x rate 10% -> 20%",
        ),
        # A part's reason holding a comma or a semicolon is one part, not two.
        (
            "sale: 10% of 3905 (category shoes, boots), 10% of 1563 (tier x (net sales 3; 4))",
            "sale: 10% of 3905 (category shoes, boots), 20% of 1563 (tier x (net sales 3; 4))",
            "tier x rate 10% -> 20%",
        ),
        (
            "sale: 10% of 3905 (category shoes, boots), 10% of 1563 (tier x)",
            "sale: 12% of 3905 (category shoes, boots), 10% of 1563 (tier x)",
            "category shoes, boots rate 10% -> 12%",
        ),
        # A part priced on another base: told whole.
        (
            "sale: 10% of 3905 (category shoes), 10% of 1563 (tier x)",
            "sale: 10% of 3905 (category shoes), 10% of 1600 (tier x)",
            "10 % of 15.63 EUR (tier x) -> 10 % of 16.00 EUR (tier x)",
        ),
    ],
)
def test_a_changed_rate_is_told_by_the_part_it_changed(was: str, becomes: str, reason: str) -> None:
    old = ReplayedLine("line_1", "creator-01", "sale", "o-1", "2026-12", 900, was)
    new = ReplayedLine("line_1", "creator-01", "sale", "o-1", "2026-12", 1056, becomes)
    assert _why(old, new, {}, {}, "EUR") == f"order o-1: {reason}"


@pytest.mark.parametrize(
    ("was", "becomes", "paid", "currency", "reason"),
    [
        # A rate that rose and a cap that now cuts the line to nothing: both are told
        # (the rate's rise alone read as the cause of a line gone to zero).
        (
            "sale: 12.25% of 10000 (tier from net sale 3)",
            "sale: 20% of 10000 (tier from net sale 3); creator cap cut 2000",
            (1225, 0),
            "KWD",
            "order o-1: tier from net sale 3 rate 12.25% -> 20%;"
            " creator cap cut 2.000 KWD (was: no cap cut)",
        ),
        # Amounts in the currency's units, never minor units.
        (
            "bonus at 2 net sales: 1001",
            "bonus at 2 net sales: 1001",
            (1001, 2500),
            "JPY",
            "order o-1: paid 1,001 JPY -> 2,500 JPY",
        ),
        # A fixed rate is money too, and a survey's share of the sale.
        (
            "sale: fixed 500 of 10000 (base rate)",
            "sale: fixed 900 of 10000 (base rate)",
            (500, 900),
            "EUR",
            "order o-1: base rate fixed 5.00 EUR -> fixed 9.00 EUR",
        ),
        (
            "sale: 10% of 10000 (base rate); survey-attributed: 50% of 1000",
            "sale: 10% of 10000 (base rate); survey-attributed: 40% of 1000",
            (500, 400),
            "EUR",
            "order o-1: survey-attributed: 50 % of 10.00 EUR"
            " -> survey-attributed: 40 % of 10.00 EUR",
        ),
        (
            "base fee 333 for the period",
            "base fee 500 for the period",
            (333, 500),
            "EUR",
            "order o-1: base fee of 3.33 EUR for the period -> base fee of 5.00 EUR for the period",
        ),
    ],
)
def test_a_reason_reads_in_money_and_names_every_cause(
    was: str, becomes: str, paid: tuple[int, int], currency: str, reason: str
) -> None:
    old = ReplayedLine("line_1", "creator-01", "sale", "o-1", "2026-12", paid[0], was)
    new = ReplayedLine("line_1", "creator-01", "sale", "o-1", "2026-12", paid[1], becomes)
    assert _why(old, new, {}, {}, currency) == reason


def test_a_draft_listing_more_tiers_than_afflux_prices_is_refused_before_any_replay() -> None:
    """A replay prices a period in one step it cannot stop: 21,000 tiers held the
    payouts process's what-if for two minutes past its 60 s limit."""
    many = [{"from_sales": n + 1, "rate": {"percent": "1"}} for n in range(MAX_TIERS + 1)]

    assert draft_problem(terms(plan={"tiers": many}), terms()) == (
        "plan.tiers",
        f"{MAX_TIERS + 1} tiers: at most {MAX_TIERS}",
    )
    assert draft_problem(terms(plan={"tiers": many[:MAX_TIERS]}), terms()) is None
