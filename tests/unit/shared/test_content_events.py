"""The content contract: a publication and its cumulative stats, refused at the edges."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from afflux.shared.core.content import (
    MAX_COUNT,
    MAX_LIVE_STREAM_MS,
    content_backfill_limit_ms,
    content_key,
)
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import AnyEvent, ContentPublished, ContentStats

EVENTS: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)

pytestmark = pytest.mark.unit

T0 = 1_780_000_000_000


def published(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "ContentPublished",
        "event_id": "e1",
        "occurred_at": T0,
        "content_id": "C1",
        "platform": "instagram",
        "affiliate_id": "creator-01",
        "campaign_id": "acme",
        "kind": "post",
        "url": "https://instagram.com/p/C1",
        "published_at": T0,
    }
    return {**base, **changes}


def stats(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "ContentStats",
        "event_id": "s1",
        "content_id": "C1",
        "platform": "instagram",
        "as_of": T0 + 1,
        "views": 10,
        "impressions": 20,
        "likes": 3,
        "comments": 2,
        "shares": 1,
        "saves": 0,
        "followers": 1_000,
    }
    return {**base, **changes}


@dataclass(frozen=True)
class Case:
    name: str
    payload: dict[str, Any]
    field: str | None  # None: accepted; else the field the refusal names


CASES = [
    Case("a post", published(), None),
    # a live stream needs its start; its end may come later
    Case("live without start", published(kind="live"), "live_started_at"),
    Case("live, still running", published(kind="live", live_started_at=T0), None),
    Case(
        "live ends at its start", published(kind="live", live_started_at=T0, live_ended_at=T0), None
    ),
    Case(
        "live ends 1 ms before its start",
        published(kind="live", live_started_at=T0, live_ended_at=T0 - 1),
        "live_ended_at",
    ),
    # a stream lasts at most 24 h: a longer one would claim a campaign's orders for ever
    Case(
        "live lasting exactly 24 h",
        published(kind="live", live_started_at=T0, live_ended_at=T0 + MAX_LIVE_STREAM_MS),
        None,
    ),
    Case(
        "live lasting 24 h and 1 ms",
        published(kind="live", live_started_at=T0, live_ended_at=T0 + MAX_LIVE_STREAM_MS + 1),
        "live_ended_at",
    ),
    Case(
        "live from the epoch to now",
        published(kind="live", live_started_at=0, live_ended_at=T0),
        "live_ended_at",
    ),
    # a content id is addressed in a URL path and shown on pages
    Case("content id 200 characters", published(content_id="c" * 200), None),
    Case("content id 201 characters", published(content_id="c" * 201), "content_id"),
    Case("content id not ASCII", published(content_id="été-ø"), None),
    Case("content id with a slash", published(content_id="a/b"), "content_id"),
    Case("content id with a space", published(content_id="a b"), "content_id"),
    Case("content id with a newline", published(content_id="a\nb"), "content_id"),
    Case("content id with a NUL", published(content_id="a\x00b"), "content_id"),
    Case("content id with DEL", published(content_id="a\x7fb"), "content_id"),
    Case("content id with a line separator", published(content_id="a\u2028b"), "content_id"),
    Case("stats of a content id with a slash", stats(content_id="../x"), "content_id"),
    Case("platform upper case", published(platform="Instagram"), "platform"),
    Case("platform 32 characters", published(platform="a" * 32), None),
    Case("platform 33 characters", published(platform="a" * 33), "platform"),
    Case("url not http", published(url="ftp://x"), "url"),
    Case("url 2049 characters", published(url="https://" + "x" * 2041), "url"),
    Case("unknown kind", published(kind="reel"), "kind"),
    Case("stats", stats(), None),
    Case("count at the bound", stats(likes=MAX_COUNT), None),
    Case("count one beyond", stats(likes=MAX_COUNT + 1), "likes"),
    Case("negative count", stats(views=-1), "views"),
    Case("count as a string", stats(saves="3"), "saves"),
    Case("count as a float", stats(shares=1.5), "shares"),
    Case("followers missing", {k: v for k, v in stats().items() if k != "followers"}, "followers"),
    Case("occurred_at other than as_of", stats(occurred_at=T0), "occurred_at"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_content_events_are_refused_naming_the_field(case: Case) -> None:
    if case.field is None:
        EVENTS.validate_python(case.payload)
        return
    with pytest.raises(ValidationError) as refused:
        EVENTS.validate_python(case.payload)
    assert case.field in str(refused.value)


def test_stats_take_as_of_as_their_event_time() -> None:
    event = EVENTS.validate_python(stats())
    assert isinstance(event, ContentStats)
    assert event.occurred_at == event.as_of == T0 + 1


def test_a_live_streams_times_are_kept() -> None:
    event = ContentPublished.model_validate(
        published(kind="live", live_started_at=T0, live_ended_at=T0 + 60_000)
    )
    assert (event.live_started_at, event.live_ended_at) == (T0, T0 + 60_000)


def test_a_contents_key_is_platform_and_id() -> None:
    assert content_key("tiktok", "7312") == "tiktok:7312"


def _version(n: int, **terms: Any) -> TermsVersion:
    base = {"campaign_id": "acme", "merchant_id": "m", "currency": "EUR", **terms}
    return TermsVersion(
        version=n, effective_from=n, published_at=n, terms=CampaignTerms.model_validate(base)
    )


def test_a_posted_publication_may_be_as_old_as_the_longest_window_plus_lock() -> None:
    day = 86_400_000
    assert content_backfill_limit_ms([]) == 0
    assert content_backfill_limit_ms([_version(1)]) == 60 * day  # 30 + 30 by default
    versions = [
        _version(1, cookie_window_days=7, lock_days=45),
        _version(2, cookie_window_days=7, window_overrides_days={"star": 90}, lock_days=0),
    ]
    assert content_backfill_limit_ms(versions) == (90 + 45) * day


def test_a_longer_window_or_lock_widens_the_content_limit_only_from_its_start() -> None:
    """Before version 2's start its orders are under version 1's 30-day lock, approved
    already: a stream dated back there would claim closed money."""
    day = 86_400_000
    versions = [
        _version(1, cookie_window_days=7, lock_days=30),
        TermsVersion(
            version=2,
            effective_from=100 * day,
            published_at=100 * day,
            terms=CampaignTerms.model_validate(
                {"campaign_id": "acme", "merchant_id": "m", "currency": "EUR",
                 "cookie_window_days": 60, "lock_days": 90}
            ),
        ),
    ]  # fmt: skip
    assert content_backfill_limit_ms(versions, 100 * day - 1) == (7 + 30) * day
    assert content_backfill_limit_ms(versions, 100 * day) == (60 + 90) * day
    assert content_backfill_limit_ms(versions) == (60 + 90) * day
