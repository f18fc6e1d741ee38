"""Creator-economy traffic beside the shoppers, for campaigns whose terms pay per
engagement, attribute orders to live streams or attribute by survey answers.

Every ``creator_every``-th visitor slot of such a campaign is a creator instead of a
shopper, taking turns between two journeys:

- a post, story or video published over the payouts API, then its cumulative stats:
  a first snapshot, a grown one, the same one again, a stale one (dated before the
  latest, with larger counts that must change nothing), and a shrinking one (the
  platform removed fake engagement). The first content of a run, and some later ones,
  jump past the review's limit and are held; held content is sometimes released. A
  fan of the creator orders with no link or code and names the creator (by id or by a
  handle: the content's, the terms', or one nobody has) in the survey, with the order
  or later; the order is reported late, dated before the run's live streams, so that
  only the survey can claim it;
- a live stream: started, shoppers ordering during it with no link or code (one of
  them naming a creator in the survey, which the stream beats), ended, then its stats.

Shoppers' orders in such a campaign sometimes carry a survey answer too. Every choice
comes from the slot's seeded random, like the rest of the traffic, and each journey
takes a handful of requests with the traffic's think time between them.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from afflux.cli.demo_client import DemoClient
from afflux.cli.demo_content import snapshot_stats
from afflux.shared.core.money import Money
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.io.clock_source import system_clock

MINUTE_MS = 60_000
# A fan's order is reported this late: before every live stream of a run (whose window
# would otherwise claim it), well inside every campaign's backfill limit.
FAN_REPORT_DELAY_MS = 45 * MINUTE_MS
SURVEY_RATE = 0.25  # of shoppers' orders in a campaign that reads survey answers
PLATFORMS = ("instagram", "tiktok", "youtube")


def pays_engagement(terms: CampaignTerms) -> bool:
    return terms.plan.engagement is not None


def attributes_streams(terms: CampaignTerms) -> bool:
    return "livestream" in terms.precedence


def reads_surveys(terms: CampaignTerms) -> bool:
    return terms.survey is not None


def creator_economy(terms: CampaignTerms) -> bool:
    return pays_engagement(terms) or attributes_streams(terms) or reads_surveys(terms)


@dataclass
class CreatorTally:
    contents: int = 0  # posts, stories and videos published
    snapshots: int = 0  # every stats snapshot sent, the ones below included
    repeated_snapshots: int = 0
    stale_snapshots: int = 0
    shrinking_snapshots: int = 0
    held: int = 0  # contents sent a snapshot past the review's limit
    releases: int = 0
    live_streams: int = 0
    live_orders: int = 0
    survey_answers: int = 0  # with the order or later

    def add(self, other: CreatorTally) -> None:
        for name in vars(other):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def requests(self) -> int:
        return (
            self.contents
            + self.snapshots
            + self.releases
            + 2 * self.live_streams
            + self.live_orders
            + self.survey_answers
        )


def missing_creator_traffic(terms: Sequence[CampaignTerms], tally: CreatorTally) -> list[str]:
    """What the campaigns' terms call for that the traffic never sent: empty when every
    creator-economy path was driven at least once."""
    wanted: dict[str, int] = {}
    if any(pays_engagement(t) for t in terms):
        wanted |= {
            "contents": tally.contents,
            "snapshots": tally.snapshots,
            "repeated snapshots": tally.repeated_snapshots,
            "stale snapshots": tally.stale_snapshots,
            "shrinking snapshots": tally.shrinking_snapshots,
        }
    if any(t.plan.engagement is not None and t.plan.engagement.review for t in terms):
        wanted |= {"held contents": tally.held, "releases": tally.releases}
    if any(attributes_streams(t) for t in terms):
        wanted |= {"live streams": tally.live_streams, "live-stream orders": tally.live_orders}
    if any(reads_surveys(t) for t in terms):
        wanted |= {"survey answers": tally.survey_answers}
    return [f"no {name} were sent" for name, count in wanted.items() if count == 0]


def survey_answer(terms: CampaignTerms, creator: str, rng: random.Random) -> dict[str, str]:
    """A buyer's answer naming ``creator`` by id, or a handle: one of the terms' (written
    as a person would: other case, spaces), the creator's content handle, or nobody's."""
    handles = sorted(terms.survey.handles) if terms.survey else []
    pick = rng.random()
    if pick < 0.35:
        return {"affiliate_id": creator}
    if pick < 0.6 and handles:
        return {"handle": f" {rng.choice(handles).upper()} "}
    if pick < 0.9:
        return {"handle": content_handle(creator).upper()}
    return {"handle": f"@nobody-{rng.randint(1, 99)}"}


def content_handle(creator: str) -> str:
    return f"@{creator}.studio"


class CreatorJourneys:
    """One creator-economy journey per call, for the campaign ``terms``."""

    def __init__(
        self,
        client: DemoClient,
        tally: CreatorTally,
        ordered: Callable[[str, str], None],
        *,
        think_time_s: tuple[float, float],
        clock: Callable[[], int] = system_clock,
    ) -> None:
        """``ordered(campaign, order)`` records an order answered 2xx; ``clock`` dates the
        content and its stats (the platform's time: ours, not the merchant's)."""
        self.client = client
        self.tally = tally
        self.ordered = ordered
        self.think_time_s = think_time_s
        self.clock = clock

    async def _think(self, rng: random.Random) -> None:
        await asyncio.sleep(rng.uniform(*self.think_time_s))

    async def run(
        self, terms: CampaignTerms, turn: int, creator: str, name: str, rng: random.Random
    ) -> None:
        """The ``turn``-th creator journey of the run (0 first), by ``creator``; ``name``
        makes its content and order ids unique."""
        kinds = [k for k, wanted in kinds_wanted(terms) if wanted]
        if not kinds:
            await self.fan_order(terms, creator, f"{name}-fan", rng)
        elif kinds[turn % len(kinds)] == "content":
            await self.content(terms, turn // len(kinds), creator, name, rng)
        else:
            await self.live(terms, creator, name, rng)

    async def content(
        self, terms: CampaignTerms, nth: int, creator: str, name: str, rng: random.Random
    ) -> None:
        kind = rng.choice(("post", "story", "video"))
        platform = rng.choice(PLATFORMS)
        content_id = f"{name}-{kind}"
        publication: dict[str, Any] = {
            "content_id": content_id,
            "platform": platform,
            "affiliate_id": creator,
            "campaign_id": terms.campaign_id,
            "kind": kind,
            "url": f"https://{platform}.example.com/{creator}/{content_id}",
            "published_at": self.clock(),
        }
        if rng.random() < 0.7:
            publication["handle"] = content_handle(creator)
        await self.client.publish_content(publication)
        self.tally.contents += 1
        if reads_surveys(terms):
            await self.fan_order(terms, creator, f"{name}-fan", rng)
        # Below the usual minimum, around it, or far above it (tiers, the content cap).
        likes = rng.choice(
            (rng.randint(150, 600), rng.randint(600, 3_000), rng.randint(3_000, 8_000))
        )
        jumps = nth == 0 or rng.random() < 0.25  # past the example review's max_jump of 10
        grown = likes * (rng.randint(120, 200) if jumps else rng.randint(15, 35)) // 10
        # Enough followers that only a jump is held (interactions / followers below 0.5).
        followers = rng.randint(30_000, 250_000) + 3 * grown
        first = await self._stats(platform, content_id, followers, likes, rng)
        await self._think(rng)
        latest = await self._stats(platform, content_id, followers, grown, rng)
        self.tally.held += jumps
        await self._think(rng)
        await self.client.post_stats(platform, content_id, latest)  # the same one again
        self.tally.snapshots += 1
        self.tally.repeated_snapshots += 1
        await self._think(rng)
        stale = {k: v * 13 // 10 for k, v in latest.items()}  # larger, but dated before
        stale["as_of"] = (first["as_of"] + latest["as_of"]) // 2
        await self.client.post_stats(platform, content_id, stale)
        self.tally.snapshots += 1
        self.tally.stale_snapshots += 1
        release = jumps and (nth == 0 or rng.random() < 0.5)
        released_first = release and rng.random() < 0.5
        if released_first:
            await self._release(platform, content_id)
        await self._think(rng)
        factor = rng.randint(70, 95)
        shrunk = {k: v * factor // 100 for k, v in latest.items()}
        shrunk |= {"as_of": max(self.clock(), latest["as_of"] + 1), "followers": followers}
        await self.client.post_stats(platform, content_id, shrunk)
        self.tally.snapshots += 1
        self.tally.shrinking_snapshots += 1
        if release and not released_first:
            await self._release(platform, content_id)

    async def _stats(
        self, platform: str, content_id: str, followers: int, likes: int, rng: random.Random
    ) -> dict[str, int]:
        stats = snapshot_stats(self.clock(), followers, likes * rng.randint(8, 20), likes, rng)
        await self.client.post_stats(platform, content_id, stats)
        self.tally.snapshots += 1
        return stats

    async def _release(self, platform: str, content_id: str) -> None:
        await self.client.release_content(platform, content_id, "checked by the brand")
        self.tally.releases += 1

    async def fan_order(
        self, terms: CampaignTerms, creator: str, order_id: str, rng: random.Random
    ) -> None:
        """A fan's order, with no link or code, reported late (see FAN_REPORT_DELAY_MS),
        naming the creator in the survey with the order or later."""
        answer = survey_answer(terms, creator, rng)
        with_order = rng.random() < 0.5
        await self.client.place_order(
            terms,
            order_id=order_id,
            kind="sale",
            amount=Money(rng.randint(1_500, 12_000), terms.currency),
            visitor_id=f"{order_id}-visitor",
            occurred_at=self.client.merchant_now() - FAN_REPORT_DELAY_MS,
            survey=answer if with_order else None,
        )
        self.ordered(terms.campaign_id, order_id)
        if not with_order:
            await self._think(rng)
            await self.client.answer_survey(terms, order_id, answer)
        self.tally.survey_answers += 1

    async def live(self, terms: CampaignTerms, creator: str, name: str, rng: random.Random) -> None:
        platform = rng.choice(PLATFORMS)
        content_id = f"{name}-live"
        started = self.clock()
        publication: dict[str, Any] = {
            "content_id": content_id,
            "platform": platform,
            "affiliate_id": creator,
            "campaign_id": terms.campaign_id,
            "kind": "live",
            "url": f"https://{platform}.example.com/{creator}/{content_id}",
            "published_at": started,
            "live_started_at": started,
        }
        await self.client.publish_content(publication)
        self.tally.live_streams += 1
        orders = rng.randint(2, 3)
        surveyed = rng.randrange(orders) if reads_surveys(terms) else -1
        for n in range(orders):
            await self._think(rng)
            order_id = f"{name}-live-{n}"
            answer = survey_answer(terms, creator, rng) if n == surveyed else None
            await self.client.place_order(
                terms,
                order_id=order_id,
                kind="sale",
                amount=Money(rng.randint(2_000, 9_000), terms.currency),
                visitor_id=f"{order_id}-visitor",
                new_customer=rng.random() < 0.5,
                survey=answer,
            )
            self.ordered(terms.campaign_id, order_id)
            self.tally.live_orders += 1
            self.tally.survey_answers += answer is not None
        await self._think(rng)
        ended = max(self.clock(), started + 1)
        await self.client.publish_content({**publication, "live_ended_at": ended})
        likes = rng.randint(300, 4_000)
        await self._stats(platform, content_id, rng.randint(20_000, 120_000), likes, rng)


def kinds_wanted(terms: CampaignTerms) -> list[tuple[str, bool]]:
    return [("content", pays_engagement(terms)), ("live", attributes_streams(terms))]
