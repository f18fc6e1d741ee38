"""Content events as the journal's facts (the payouts consumer and the batch reference
place them through the same mapping)."""

from __future__ import annotations

from afflux.shared.core.content import content_key
from afflux.shared.core.engagement import ContentEvent, Publication, Release, Snapshot
from afflux.shared.events import ContentPublished, ContentReleased, ContentStats, Envelope

ContentInput = ContentPublished | ContentStats | ContentReleased


def key_of(event: ContentInput) -> str:
    return content_key(event.platform, event.content_id)


def latest_time(event: Envelope) -> int:
    """The latest time an event states, which the clock-skew check holds against its
    record's timestamp: a publication's ``published_at`` and live times as well as its
    ``occurred_at`` (a stream's end far ahead would claim the campaign's orders until then)."""
    if isinstance(event, ContentPublished):
        times = (event.published_at, event.live_started_at, event.live_ended_at)
        return max(event.occurred_at, *(t for t in times if t is not None))
    return event.occurred_at


def content_fact(event: ContentInput) -> ContentEvent:
    key = key_of(event)
    if isinstance(event, ContentPublished):
        return Publication(
            key,
            event.affiliate_id,
            event.campaign_id,
            event.kind,
            event.published_at,
            event.event_id,
            event.received_at,
            event.reported_by == "creator",
        )
    if isinstance(event, ContentStats):
        return Snapshot(
            key,
            event.as_of,
            event.views,
            event.impressions,
            event.likes,
            event.comments,
            event.shares,
            event.saves,
            event.followers,
            event.event_id,
            event.reported_by == "creator",
        )
    return Release(key, event.event_id, event.released_by)
