"""Random content streams for the engagement differential tests: creators publish
posts and live streams for two campaigns (one with the minimum per content, one per
creator and period), and their stats arrive late, repeated, with the same ``as_of``
twice and shrinking (fake likes removed); some jump or show an engagement rate above
the review ceiling and are held, some of those released; some content is first published
by its creator's own key (held until released), and some is published again for another
creator, which the brand's publication takes over while it awaits its release (refused
otherwise); a few stats name content never published. Caps per content, per creator and
per campaign all bind."""

from __future__ import annotations

import random
from collections.abc import Sequence

from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import ContentPublished, ContentReleased, ContentStats, Envelope

START = 1_793_491_200_000  # 2026-11-01T00:00:00Z
HOUR = 3_600_000
CAMPAIGNS = ("per-content", "per-creator")
CREATORS = ("ana", "bo", "cy")


def _terms(campaign: str, scope: str) -> CampaignTerms:
    return CampaignTerms.model_validate(
        {
            "campaign_id": campaign,
            "merchant_id": "m",
            "currency": "EUR",
            "lock_days": 3,
            "plan": {
                "engagement": {
                    "values": {
                        "like_minor": "0.5",
                        "comment_minor": "2",
                        "share_minor": "3",
                        "save_minor": "1.25",
                        "per_1000_views_minor": "4",
                    },
                    "minimum_interactions": 400,
                    "minimum_scope": scope,
                    "tiers": [{"from_interactions": 3_000, "values": {"like_minor": "0.8"}}],
                    "content_cap_minor": 1_500,
                    "review": {"max_rate": "0.3", "max_jump": "4", "jump_min_interactions": 50},
                },
                "creator_cap_minor": 2_500,
                "campaign_budget_minor": 5_000,
            },
        }
    )


def content_versions() -> dict[str, tuple[TermsVersion, ...]]:
    scopes = {"per-content": "content", "per-creator": "creator_period"}
    return {
        c: (TermsVersion(version=1, effective_from=0, published_at=0, terms=_terms(c, scopes[c])),)
        for c in CAMPAIGNS
    }


def random_content_stream(seed: int) -> list[Envelope]:
    """The events of one run, in topic order (each content's own events in order)."""
    rng = random.Random(seed)
    streams: list[list[Envelope]] = []
    for n in range(rng.randint(4, 9)):
        streams.append(_content(rng, n, seed))
    for n in range(rng.randint(0, 2)):  # stats of content never published
        streams.append([_stats(rng, f"ghost-{seed}-{n}", 1, START + HOUR, 100, 1_000)])
    # Interleave the contents, keeping each one's own order (one key, one partition).
    out: list[Envelope] = []
    while any(streams):
        stream = rng.choice([s for s in streams if s])
        out.append(stream.pop(0))
    return out


def _content(rng: random.Random, n: int, seed: int) -> list[Envelope]:
    content_id = f"c{seed}-{n}"
    campaign = rng.choice(CAMPAIGNS)
    creator = rng.choice(CREATORS)
    published_at = START + rng.randint(0, 25) * MS_PER_DAY + rng.randint(0, 23) * HOUR
    live = rng.random() < 0.3
    # whose key published it first: the creator's own holds it until a release
    by_creator = rng.random() < 0.4
    publication = ContentPublished(
        event_id=f"{content_id}-pub",
        occurred_at=published_at,
        content_id=content_id,
        platform="tiktok",
        affiliate_id=creator,
        campaign_id=campaign,
        kind="live" if live else "video",
        url=f"https://tiktok.com/@{creator}/video/{content_id}",
        published_at=published_at,
        live_started_at=published_at if live else None,
        reported_by="creator" if by_creator else None,
    )
    events: list[Envelope] = [publication]
    followers = rng.choice((3_000, 20_000, 100_000))
    likes = rng.randint(0, 600)
    snapshots: list[ContentStats] = []
    for k in range(1, rng.randint(2, 7)):
        step = rng.random()
        if step < 0.15:
            likes = max(0, likes - rng.randint(50, 400))  # fake likes removed
        elif step < 0.25:
            likes = likes * rng.randint(5, 8) + 60  # a jump
        else:
            likes += rng.randint(0, 900)
        as_of = published_at + k * HOUR
        snapshots.append(_stats(rng, content_id, k, as_of, likes, followers))
    delivered: list[Envelope] = []
    for snap in snapshots:
        delivered.append(snap)
        if rng.random() < 0.2:  # the same snapshot again, or another one for its as_of
            delivered.append(
                snap
                if rng.random() < 0.5
                else _stats(rng, content_id, 90 + len(delivered), snap.as_of, 5, followers)
            )
    rng.shuffle(delivered)  # late arrivals
    events += delivered
    if live and rng.random() < 0.5:  # the stream's end, published again once it ended
        end = published_at + HOUR
        events.append(
            publication.model_copy(
                update={"event_id": f"{content_id}-end", "occurred_at": end, "live_ended_at": end}
            )
        )
    if rng.random() < 0.4:
        # Another creator's (or campaign's) publication of it: refused, unless the brand's
        # (or the topic's) takes over a content that still awaits its release (a squat).
        events.insert(rng.randint(1, len(events)), _again(rng, publication))
    if rng.random() < 0.35:
        at = rng.randint(1, len(events))
        release = ContentReleased(
            event_id=f"{content_id}-release",
            occurred_at=published_at + 2 * HOUR,
            content_id=content_id,
            platform="tiktok",
            released_by="merchant:m",
        )
        events.insert(at, release)
    return events


def _again(rng: random.Random, first: ContentPublished) -> ContentPublished:
    """A publication of ``first``'s content for another creator, maybe in the other
    campaign and days later (another period), by the brand's key, the topic's or a
    creator's."""
    creator = rng.choice([c for c in CREATORS if c != first.affiliate_id])
    published_at = first.published_at + rng.randint(0, 12) * MS_PER_DAY
    return first.model_copy(
        update={
            "event_id": f"{first.content_id}-again",
            "occurred_at": published_at,
            "published_at": published_at,
            "live_started_at": published_at if first.kind == "live" else None,
            "affiliate_id": creator,
            "campaign_id": rng.choice(CAMPAIGNS),
            "url": f"https://tiktok.com/@{creator}/video/{first.content_id}",
            "reported_by": rng.choice(["merchant", None, "creator"]),
        }
    )


def _stats(
    rng: random.Random, content_id: str, k: int, as_of: int, likes: int, followers: int
) -> ContentStats:
    return ContentStats(
        event_id=f"{content_id}-s{k}",
        occurred_at=as_of,
        content_id=content_id,
        platform="tiktok",
        as_of=as_of,
        views=likes * rng.randint(5, 30),
        impressions=likes * 40,
        likes=likes,
        comments=likes // rng.randint(5, 20),
        shares=likes // 30,
        saves=likes // 25,
        followers=followers,
        # some figures posted with the creator's own key: held until a release, and
        # stale after it
        reported_by="creator" if rng.random() < 0.25 else None,
    )


def batches(rng: random.Random, events: Sequence[Envelope]) -> list[list[Envelope]]:
    """``events`` cut into consecutive batches of random sizes."""
    out: list[list[Envelope]] = []
    at = 0
    while at < len(events):
        size = rng.randint(1, 6)
        out.append(list(events[at : at + size]))
        at += size
    return out
