"""The demo's creator content: posts, a video and a live stream with orders during it.

For each campaign that pays per engagement or attributes live-stream orders, three
creators publish over the payouts API (``POST /v1/content``): an Instagram post whose
stats arrive as three snapshots, the last one smaller (the platform removed fake
likes); a TikTok video with two growing snapshots; and a TikTok live stream, during
which shoppers order without a link or code (the stream wins them, rule
``livestream``), that ends with stats of its own. The plan is a pure function of the
seed and the time; counts stay well below the review ceilings of the example terms.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

from afflux.cli.demo_client import DemoClient
from afflux.shared.core.money import Money
from afflux.shared.core.terms import CampaignTerms

MINUTE_MS = 60_000
LIVE_ORDERS = 4


def wants_content(terms: CampaignTerms) -> bool:
    """A creator-economy campaign: it pays engagement or attributes live streams."""
    return terms.plan.engagement is not None or "livestream" in terms.precedence


@dataclass(frozen=True)
class PlannedContent:
    publication: dict[str, Any]
    snapshots: tuple[dict[str, int], ...]  # in the order they are sent

    @property
    def platform(self) -> str:
        return str(self.publication["platform"])

    @property
    def content_id(self) -> str:
        return str(self.publication["content_id"])


def snapshot_stats(
    as_of: int, followers: int, views: int, likes: int, rng: random.Random
) -> dict[str, int]:
    """A cumulative stats snapshot: ``likes`` and ``views`` with impressions, comments,
    shares and saves in plausible proportion to them."""
    return {
        "as_of": as_of,
        "views": views,
        "impressions": int(views * rng.uniform(1.6, 2.4)),
        "likes": likes,
        "comments": likes // rng.randint(12, 20),
        "shares": likes // rng.randint(25, 40),
        "saves": likes // rng.randint(15, 30),
        "followers": followers,
    }


def plan_content(
    terms: CampaignTerms, creators: list[str], now: int, seed: int
) -> tuple[list[PlannedContent], PlannedContent]:
    """The campaign's posts and video (published 20 minutes ago) and its live stream
    (started 5 minutes ago, still live): snapshots dated in the past, oldest first."""
    rng = random.Random(f"{seed}-{terms.campaign_id}")
    tag = terms.campaign_id.replace(".", "-")
    post_by, video_by, live_by = (creators * 3)[:3]
    published = now - 20 * MINUTE_MS

    def publication(creator: str, platform: str, kind: str, content_id: str) -> dict[str, Any]:
        return {
            "content_id": content_id,
            "platform": platform,
            "affiliate_id": creator,
            "campaign_id": terms.campaign_id,
            "kind": kind,
            "url": f"https://{platform}.example.com/{creator}/{content_id}",
            "published_at": published,
        }

    followers = rng.randint(40_000, 90_000)
    post = PlannedContent(
        publication(post_by, "instagram", "post", f"{tag}-post-1"),
        (
            snapshot_stats(now - 15 * MINUTE_MS, followers, 9_000, 1_100, rng),
            snapshot_stats(now - 10 * MINUTE_MS, followers, 24_000, 3_200, rng),
            # Later and smaller: the platform removed fake likes.
            snapshot_stats(now - 5 * MINUTE_MS, followers, 24_500, 2_700, rng),
        ),
    )
    followers = rng.randint(100_000, 250_000)
    video = PlannedContent(
        publication(video_by, "tiktok", "video", f"{tag}-video-1"),
        (
            snapshot_stats(now - 12 * MINUTE_MS, followers, 40_000, 2_600, rng),
            snapshot_stats(now - 4 * MINUTE_MS, followers, 95_000, 6_900, rng),
        ),
    )
    live_publication = publication(live_by, "tiktok", "live", f"{tag}-live-1")
    live_publication["published_at"] = now - 5 * MINUTE_MS
    live_publication["live_started_at"] = now - 5 * MINUTE_MS
    live = PlannedContent(live_publication, ())
    return [post, video], live


@dataclass
class ContentTally:
    contents: int = 0
    snapshots: int = 0
    live_orders: int = 0
    campaigns: list[str] = field(default_factory=list)


def expected_snapshots(planned: list[PlannedContent]) -> int:
    """Snapshots that become the latest: every planned one (oldest first) and the live's."""
    return sum(len(c.snapshots) for c in planned) + 1


async def wait_until_applied(
    client: DemoClient, expected: dict[str, int], limit_s: float = 90.0
) -> None:
    """Until every campaign's contents hold ``expected[campaign]`` snapshots and its live
    orders are attributed: the ledger and the attribution worker catch up with the
    demo's last requests on a busy machine."""
    deadline = time.monotonic() + limit_s
    pending = dict(expected)
    while pending and time.monotonic() < deadline:
        for campaign, snapshots in list(pending.items()):
            rows = await client.campaign_contents(campaign)
            kpis = await client.campaign_kpis(campaign)
            live = kpis["conversions_by_rule"]["livestream"]
            if sum(int(r["snapshots"]) for r in rows) >= snapshots and live >= LIVE_ORDERS:
                del pending[campaign]
        if pending:
            await asyncio.sleep(0.5)


async def publish_all(
    client: DemoClient, planned: list[PlannedContent], tally: ContentTally
) -> None:
    for content in planned:
        await client.publish_content(content.publication)
        tally.contents += 1
        for stats in content.snapshots:
            await client.post_stats(content.platform, content.content_id, stats)
            tally.snapshots += 1


async def start_live(client: DemoClient, live: PlannedContent, tally: ContentTally) -> None:
    await client.publish_content(live.publication)
    tally.contents += 1


async def live_orders(
    client: DemoClient, terms: CampaignTerms, seed: int, tally: ContentTally
) -> None:
    """Shoppers order in the shop during the stream, with no link or code (a visitor
    that never clicked a creator's link): the stream claims their orders."""
    rng = random.Random(f"{seed}-{terms.campaign_id}-live")
    for n in range(LIVE_ORDERS):
        await client.place_order(
            terms,
            order_id=f"live-{terms.campaign_id}-{seed}-{n}",
            kind="sale",
            amount=Money(rng.randint(2_500, 9_000), terms.currency),
            visitor_id=f"v-live-{seed}-{n}",
            new_customer=rng.random() < 0.5,
        )
        tally.live_orders += 1


async def end_live(
    client: DemoClient, live: PlannedContent, now: int, seed: int, tally: ContentTally
) -> None:
    """The stream ends (a second publication carries the end) and its stats arrive."""
    await client.publish_content({**live.publication, "live_ended_at": now})
    rng = random.Random(f"{seed}-{live.content_id}")
    stats = snapshot_stats(now, rng.randint(60_000, 120_000), 18_000, 2_100, rng)
    await client.post_stats(live.platform, live.content_id, stats)
    tally.snapshots += 1
