"""The seeded creator-economy traffic: each content's stats grow, repeat, arrive stale and
shrink; the run's first content jumps past the review's limit and is released; live
streams take orders with no link or code between their start and end; fans order late
and name a creator in the survey; all of it the same for the same seed. And the stack
check names what such traffic could get wrong: an order credited to another live stream,
an engagement line paid another amount, a creator-economy path never driven."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from afflux.cli.creator_traffic import (
    FAN_REPORT_DELAY_MS,
    CreatorJourneys,
    CreatorTally,
    missing_creator_traffic,
)
from afflux.cli.demo_client import DemoClient
from afflux.cli.ledger_compare import attribution_differences, expected_lines, line_differences
from afflux.oracle import attribute
from afflux.shared.campaign_file import load_campaign_file
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import (
    AnyEvent,
    CampaignTermsPublished,
    ContentPublished,
    ContentStats,
    ConversionAttributed,
    OrderPlaced,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
TERMS = {
    e.terms.campaign_id: e.terms
    for e in load_campaign_file(ROOT / "examples/campaigns.yaml").campaigns
}
GLOW = TERMS["glow-cosmetics"]
NOW = 1_793_577_600_000
MINUTE = 60_000


class Recorder:
    """What the journeys asked of the stack, in order; every request answered."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def merchant_now(self) -> int:
        return NOW

    async def publish_content(self, content: dict[str, Any]) -> None:
        self.calls.append(("publish", f"{content['platform']}:{content['content_id']}", content))

    async def post_stats(self, platform: str, content_id: str, stats: dict[str, int]) -> None:
        self.calls.append(("stats", f"{platform}:{content_id}", dict(stats)))

    async def release_content(self, platform: str, content_id: str, note: str) -> None:
        self.calls.append(("release", f"{platform}:{content_id}", {"note": note}))

    async def place_order(self, terms: CampaignTerms, **order: Any) -> None:
        self.calls.append(("order", order["order_id"], order))

    async def answer_survey(
        self, terms: CampaignTerms, order_id: str, answer: dict[str, str]
    ) -> None:
        self.calls.append(("survey", order_id, answer))


def journeys(seed: int, turns: int) -> tuple[Recorder, CreatorTally]:
    """``turns`` creator journeys of one run, on a clock that moves a second per reading."""
    recorder, tally = Recorder(), CreatorTally()
    ticks = iter(range(NOW, NOW + 10**9, 1_000))
    runner = CreatorJourneys(
        cast(DemoClient, recorder),
        tally,
        lambda campaign, order: None,
        think_time_s=(0, 0),
        clock=lambda: next(ticks),
    )

    async def run() -> None:
        for turn in range(turns):
            rng = random.Random(f"{seed}-{turn}")
            await runner.run(GLOW, turn, f"creator-0{turn % 5 + 1}", f"r-{turn}", rng)

    asyncio.run(run())
    return recorder, tally


def interactions(stats: dict[str, int]) -> int:
    return stats["likes"] + stats["comments"] + stats["shares"] + stats["saves"]


def test_each_content_gets_growing_repeated_stale_and_shrinking_snapshots() -> None:
    recorder, tally = journeys(seed=7, turns=8)
    contents = [key for kind, key, body in recorder.calls if kind == "publish"]
    posts = [key for key in contents if not key.endswith("-live")]
    assert len(posts) == tally.contents == 4
    for key in posts:
        first, grown, again, stale, shrunk = [
            b for k, c, b in recorder.calls if c == key and k == "stats"
        ]
        assert interactions(grown) > interactions(first)
        assert again == grown  # the same snapshot twice: one event
        assert stale["as_of"] < grown["as_of"]
        assert interactions(stale) > interactions(grown)
        assert shrunk["as_of"] > grown["as_of"]
        assert interactions(shrunk) < interactions(grown)
    assert (tally.repeated_snapshots, tally.stale_snapshots, tally.shrinking_snapshots) == (4, 4, 4)


def test_the_first_content_jumps_past_the_review_limit_and_is_released() -> None:
    recorder, tally = journeys(seed=7, turns=1)
    review = GLOW.plan.engagement.review if GLOW.plan.engagement else None
    assert review is not None
    assert review.max_jump is not None
    [key] = [key for kind, key, _ in recorder.calls if kind == "publish"]
    first, grown, *_ = [b for k, c, b in recorder.calls if c == key and k == "stats"]
    assert interactions(grown) > review.max_jump * interactions(first)
    assert [c for k, c, _ in recorder.calls if k == "release"] == [key]
    assert (tally.held, tally.releases) == (1, 1)


def test_live_stream_orders_come_between_its_start_and_end_with_no_link_or_code() -> None:
    recorder, tally = journeys(seed=7, turns=2)
    start, end = [b for k, c, b in recorder.calls if k == "publish" and c.endswith("-live")]
    live_orders = [b for k, c, b in recorder.calls if k == "order" and "-live-" in c]
    assert 2 <= len(live_orders) == tally.live_orders
    assert "live_ended_at" not in start
    assert end["live_ended_at"] > start["live_started_at"]
    for order in live_orders:
        assert not order.get("click_id")
        assert not order.get("coupon")
        assert order.get("occurred_at") is None  # placed at the orders service's time
    assert sum(order["survey"] is not None for order in live_orders) == 1
    assert tally.live_streams == 1


def test_a_fan_orders_late_and_names_a_creator_in_the_survey() -> None:
    recorder, tally = journeys(seed=7, turns=8)
    fans = [b for k, c, b in recorder.calls if k == "order" and c.endswith("-fan")]
    later = [c for k, c, _ in recorder.calls if k == "survey"]
    assert len(fans) == 4
    for order in fans:
        assert order["occurred_at"] == NOW - FAN_REPORT_DELAY_MS
        assert not order.get("click_id")
        assert not order.get("coupon")
        assert (order["survey"] is None) == (order["order_id"] in later)
    assert tally.survey_answers == len(fans) + 4  # one on each live stream's orders


def test_the_same_seed_sends_the_same_creator_traffic() -> None:
    assert journeys(seed=7, turns=6)[0].calls == journeys(seed=7, turns=6)[0].calls
    assert journeys(seed=7, turns=6)[0].calls != journeys(seed=8, turns=6)[0].calls


@dataclass(frozen=True)
class Missing:
    tally: CreatorTally
    names: list[str]


EVERY_PATH = CreatorTally(1, 5, 1, 1, 1, 1, 1, 1, 2, 1)
MISSING = [
    # every path the example terms call for was driven: nothing to say
    Missing(EVERY_PATH, []),
    # nothing at all: each path named
    Missing(
        CreatorTally(),
        [
            "no contents were sent",
            "no snapshots were sent",
            "no repeated snapshots were sent",
            "no stale snapshots were sent",
            "no shrinking snapshots were sent",
            "no held contents were sent",
            "no releases were sent",
            "no live streams were sent",
            "no live-stream orders were sent",
            "no survey answers were sent",
        ],
    ),
    # one path short is enough to say so
    Missing(CreatorTally(1, 5, 1, 0, 1, 1, 1, 1, 2, 1), ["no stale snapshots were sent"]),
]


@pytest.mark.parametrize("case", MISSING)
def test_a_creator_path_the_terms_call_for_but_never_driven_is_named(case: Missing) -> None:
    assert missing_creator_traffic(list(TERMS.values()), case.tally) == case.names


def test_campaigns_without_creator_terms_call_for_no_creator_traffic() -> None:
    others = [t for cid, t in TERMS.items() if cid != "glow-cosmetics"]
    assert missing_creator_traffic(others, CreatorTally()) == []


# -- what the stack check compares ------------------------------------------------------

START = NOW - 120 * MINUTE
VERSIONS = (TermsVersion(version=1, effective_from=0, published_at=0, terms=GLOW),)
PUBLISHED = CampaignTermsPublished(
    event_id="terms", occurred_at=0, campaign_id=GLOW.campaign_id, versions=VERSIONS
)


def stream(content_id: str, started: int) -> ContentPublished:
    return ContentPublished(
        event_id=f"live-{content_id}",
        occurred_at=started,
        content_id=content_id,
        platform="tiktok",
        affiliate_id="creator-04",
        campaign_id=GLOW.campaign_id,
        kind="live",
        url="https://tiktok.example.com/live",
        published_at=started,
        live_started_at=started,
        live_ended_at=START + 30 * MINUTE,
    )


def test_an_order_credited_to_another_live_stream_of_the_same_creator_is_a_difference() -> None:
    events: list[AnyEvent] = [
        PUBLISHED,
        stream("early", START),
        stream("late", START + 10 * MINUTE),
        OrderPlaced(
            event_id="o-1",
            occurred_at=START + 20 * MINUTE,
            order_id="o-1",
            campaign_id=GLOW.campaign_id,
            merchant_id=GLOW.merchant_id,
            amount_minor=5_000,
            currency="EUR",
            visitor_id="v-1",
        ),
    ]
    [won] = attribute(events[1:], {GLOW.campaign_id: VERSIONS}).conversions
    assert isinstance(won, ConversionAttributed)
    assert won.live_stream_id == "tiktok:late"  # overlap: the latest started wins
    assert attribution_differences(events, [won]) == []
    other = won.model_copy(update={"live_stream_id": "tiktok:early"})
    [difference] = attribution_differences(events, [other])
    assert difference.startswith(f"order {GLOW.campaign_id}/o-1:")
    assert "tiktok:early" in difference
    assert "tiktok:late" in difference


def test_an_engagement_line_paid_another_amount_is_a_difference() -> None:
    post = ContentPublished(
        event_id="post",
        occurred_at=START,
        content_id="p-1",
        platform="instagram",
        affiliate_id="creator-02",
        campaign_id=GLOW.campaign_id,
        kind="post",
        url="https://instagram.example.com/p-1",
        published_at=START,
    )
    stats = ContentStats(
        event_id="stats",
        occurred_at=START + MINUTE,
        content_id="p-1",
        platform="instagram",
        as_of=START + MINUTE,
        views=40_000,
        impressions=80_000,
        likes=3_000,
        comments=200,
        shares=100,
        saves=150,
        followers=90_000,
    )
    expected = expected_lines([PUBLISHED, post, stats])
    [line] = expected["creator-02"]
    assert line.kind == "engagement"
    assert line.amount_minor > 0
    paid = {"creator-02": {line.line_id: line.amount_minor}}
    assert line_differences(expected, paid) == []
    underpaid = {"creator-02": {line.line_id: line.amount_minor - 1}}
    assert any("engagement" in d for d in line_differences(expected, underpaid))


def test_the_fault_runs_add_up_what_each_load_sent() -> None:
    so_far = CreatorTally(contents=1, snapshots=5, stale_snapshots=1)
    so_far.add(CreatorTally(contents=2, snapshots=4, shrinking_snapshots=1, survey_answers=3))
    assert so_far == CreatorTally(
        contents=3, snapshots=9, stale_snapshots=1, shrinking_snapshots=1, survey_answers=3
    )
