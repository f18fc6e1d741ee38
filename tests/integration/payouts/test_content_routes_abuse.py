"""Hostile requests to the content routes, in process on a real Redis (the payouts app of
``access_app``, without a broker: a request that passes every check gets the 503 of a
service still starting, so here a 503 means "accepted as far as the checks go").

- re-publishing another creator's content is refused without saying whose it is (only
  the admin is told);
- concurrent publications of one new content by different creators: one gets through;
- hostile bodies (ids, urls, handles, counts, times) are 422s naming the field;
- a creator may not release, and nobody releases a content that was never published.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from access_app import (
    ADMIN_TOKEN,
    CREATOR,
    OTHER_CAMPAIGN,
    OTHER_CREATOR,
    AccessWorld,
    own_content,
    post,
    sent_to_topic,
)

from afflux.oracle.ledger_scenarios import CAMPAIGN, PERIOD
from afflux.payouts.store import Batch
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.content import (
    CREATOR_LIVE_LAG_MS,
    MAX_COUNT,
    MAX_LIVE_STREAM_MS,
    content_backfill_limit_ms,
)
from afflux.shared.core.engagement import ContentEvent, Publication, Release
from afflux.shared.events import CampaignTermsPublished

pytestmark = pytest.mark.integration

HOUR = 3_600_000
STARTING = 503  # past every check; this world has no broker to take the event


def _now() -> int:
    return int(time.time() * 1000)


def publication(content_id: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "content_id": content_id,
        "platform": "insta",
        "affiliate_id": CREATOR,
        "campaign_id": CAMPAIGN,
        "kind": "post",
        "url": f"https://insta.example/p/{content_id}",
        "published_at": _now() - HOUR,
    }
    return {**body, **changes}


def stats(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "as_of": _now() - 60_000,
        "views": 10,
        "impressions": 20,
        "likes": 3,
        "comments": 0,
        "shares": 0,
        "saves": 0,
        "followers": 100,
    }
    return {**body, **changes}


def _field(answer: httpx.Response) -> str | None:
    return answer.json()["detail"][0].get("field")  # type: ignore[no-any-return]


async def test_republishing_anothers_content_tells_only_the_admin_whose_it_is(
    world: AccessWorld,
) -> None:
    await own_content(world, "c-taken", OTHER_CAMPAIGN, OTHER_CREATOR)
    body = publication("c-taken")
    for bearer in (world.creator_key, world.merchant_key):
        refused = await post(world, "/v1/content", body, bearer)
        assert refused.status_code == 422, refused.text
        assert _field(refused) == "content_id"
        assert OTHER_CAMPAIGN not in refused.text
        assert OTHER_CREATOR not in refused.text
    told = await post(world, "/v1/content", body, ADMIN_TOKEN)
    assert told.status_code == 422, told.text
    assert OTHER_CAMPAIGN in told.text
    assert OTHER_CREATOR in told.text


async def test_concurrent_publications_of_one_content_by_different_creators_let_one_through(
    world: AccessWorld,
) -> None:
    creators = [f"creator-{n:02d}" for n in range(16)]
    answers = await asyncio.gather(
        *(
            post(world, "/v1/content", publication("c-race", affiliate_id=c), ADMIN_TOKEN)
            for c in creators
        )
    )
    through = [c for c, a in zip(creators, answers, strict=True) if a.status_code == STARTING]
    refused = [a for a in answers if a.status_code == 422]
    assert len(through) == 1, [a.status_code for a in answers]
    assert len(refused) == len(creators) - 1
    assert {_field(a) for a in refused} == {"content_id"}
    store = world.app.state.store
    owner = await store.redis.hget(store.keys.ledger("content_owner"), "insta:c-race")
    assert orjson.loads(owner) == [CAMPAIGN, through[0]]


@dataclass(frozen=True)
class Case:
    name: str
    body: dict[str, Any]
    field: str | None  # None: past every check (503 here); else the 422's field


def _live(content_id: str, start: int, end: int | None) -> dict[str, Any]:
    return publication(content_id, kind="live", live_started_at=start, live_ended_at=end)


def publication_cases() -> list[Case]:
    now = _now()
    end, longest = now - HOUR, MAX_LIVE_STREAM_MS
    return [
        # a stream of exactly the longest allowed length
        Case("live of 24 h", _live("l-24h", end - longest, end), None),
        # 1 ms longer
        Case("live of 24 h 1 ms", _live("l-24h1", end - longest - 1, end), "live_ended_at"),
        # a stream "from the epoch" claiming every order ever placed
        Case("live since 1970", _live("l-1970", 0, now - HOUR), "live_started_at"),
        Case("published in 1970", publication("p-1970", published_at=0), "published_at"),
        # an end an hour ahead claims the orders of the hour to come
        Case("live end ahead", _live("l-ahead", now - HOUR, now + HOUR), "live_ended_at"),
        Case("live end before start", _live("l-back", now - HOUR, now - 2 * HOUR), "live_ended_at"),
        Case("live without start", publication("l-nostart", kind="live"), "live_started_at"),
        Case("published ahead", publication("p-ahead", published_at=now + HOUR), "published_at"),
        Case("content id with a slash", publication("a/b"), "content_id"),
        # dot segments: a browser or curl resolves its stats and release URLs away
        Case("content id '.'", publication("."), "content_id"),
        Case("content id '..'", publication(".."), "content_id"),
        # read as a dot segment by browsers and URL libraries: its stats URL unreachable
        Case("content id '%2e%2e'", publication("%2e%2e"), "content_id"),
        Case("content id '%2E'", publication("%2E"), "content_id"),
        Case("content id '...'", publication("..."), None),
        Case("content id with a newline", publication("a\nb"), "content_id"),
        Case("content id with a NUL", publication("a\x00b"), "content_id"),
        Case("content id of 201 characters", publication("c" * 201), "content_id"),
        Case("content id not ASCII", publication("été"), None),
        # looks like another content: its engagement would be paid twice
        Case("content id with a zero-width space", publication("c-zw\u200b"), "content_id"),
        Case("content id with a byte order mark", publication("\ufeffc-bom"), "content_id"),
        Case("content id with a C1 control", publication("c-\x80c1"), "content_id"),
        Case("content id with a word joiner", publication("c-\u2060wj"), "content_id"),
        # a creator nobody sees
        Case(
            "affiliate id with a zero-width space",
            publication("c-aff-zw", affiliate_id=f"{CREATOR}\u200b"),
            "affiliate_id",
        ),
        # counters name a creator between '|': this one read as the creator before it
        Case(
            "affiliate id holding the counters' separator",
            publication("c-aff-bar", affiliate_id=f"{CREATOR}|2026-11-03"),
            "affiliate_id",
        ),
        # creators no page, key or link can name, listed beside the real one
        Case(
            "affiliate id a look-alike (the admin's token)",
            publication("c-aff-cyr", affiliate_id=f"\u0441{CREATOR[1:]}"),
            "affiliate_id",
        ),
        Case(
            "affiliate id with a slash (the admin's token)",
            publication("c-aff-slash", affiliate_id=f"team/{CREATOR}"),
            "affiliate_id",
        ),
        Case(
            "affiliate id '..' (the admin's token)",
            publication("c-aff-dots", affiliate_id=".."),
            "affiliate_id",
        ),
        Case("url with a space", publication("u1", url="https://x.example/a b"), "url"),
        Case("url javascript:", publication("u2", url="javascript:alert(1)"), "url"),
        Case("url of 2049 characters", publication("u3", url="https://" + "x" * 2041), "url"),
        Case("handle of 201 characters", publication("h1", handle="h" * 201), "handle"),
        Case("published_at a boolean", publication("t1", published_at=True), "published_at"),
        Case("an unknown field", publication("x1", paid=True), "paid"),
        # A creator's key: the 403 of a campaign it does not belong to (below, in
        # test_a_creator_key_cannot_tell_a_campaign_it_is_not_part_of_from_none_or_a_published_id)
        Case(
            "an unknown campaign (the admin's token)",
            publication("x2", campaign_id="camp-nope"),
            "campaign_id",
        ),
    ]


@pytest.mark.parametrize("case", publication_cases(), ids=lambda c: c.name)
async def test_a_hostile_publication_is_a_422_naming_the_field(
    world: AccessWorld, case: Case
) -> None:
    # Streams of the past are the brand's to publish (a creator reports its own as they
    # start and end: test_a_creator_reports_its_stream_as_it_starts_and_ends).
    bearer = world.merchant_key if case.body.get("kind") == "live" else world.creator_key
    if "admin" in case.name:
        bearer = ADMIN_TOKEN
    answer = await post(world, "/v1/content", case.body, bearer)
    if case.field is None:
        assert answer.status_code == STARTING, answer.text
        return
    assert answer.status_code == 422, answer.text
    assert case.field in (_field(answer) or ""), answer.text


@pytest.mark.parametrize(
    ("field", "days"),
    [
        ("published_at", -1),  # a day inside the campaign's backfill limit: taken
        ("published_at", 1),  # a day past it: what it earns would already be approved
        ("live_started_at", -1),
        ("live_started_at", 1),
    ],
)
async def test_a_publication_older_than_the_backfill_limit_is_a_422(
    world: AccessWorld, field: str, days: int
) -> None:
    limit = content_backfill_limit_ms(world.app.state.directory.versions(CAMPAIGN))
    at = _now() - limit - days * MS_PER_DAY
    body = publication(f"old-{field}-{days}", published_at=at)
    bearer = world.creator_key
    if field == "live_started_at":  # published now, of a stream that old: by the brand
        body, bearer = _live(f"old-{field}-{days}", at, at + HOUR), world.merchant_key
    answer = await post(world, "/v1/content", body, bearer)
    if days < 0:
        assert answer.status_code == STARTING, answer.text
        return
    assert answer.status_code == 422, answer.text
    assert _field(answer) == field
    assert "backfill limit" in answer.text


STATS_CASES = [
    Case("good", stats(), None),
    Case("likes at the bound", stats(likes=MAX_COUNT), None),
    Case("likes one beyond", stats(likes=MAX_COUNT + 1), "likes"),
    Case("likes negative", stats(likes=-1), "likes"),
    Case("likes a boolean", stats(likes=True), "likes"),
    Case("likes a float", stats(likes=3.0), "likes"),
    Case("likes a string", stats(likes="3"), "likes"),
    Case("likes far beyond 64 bits", stats(likes=10**40), "likes"),
    Case("followers null", stats(followers=None), "followers"),
    Case("as_of an hour ahead", stats(as_of=_now() + HOUR), "as_of"),
    Case("as_of of 10^30 ms", stats(as_of=10**30), "as_of"),
    Case("as_of not a time", stats(as_of="yesterday"), "as_of"),
    Case("as_of negative", stats(as_of=-1), "as_of"),
    Case("an unknown field", stats(bots=0), "bots"),
]


@pytest.mark.parametrize("case", STATS_CASES, ids=lambda c: c.name)
async def test_hostile_stats_are_a_422_naming_the_field(world: AccessWorld, case: Case) -> None:
    await own_content(world, "c-stats", CAMPAIGN, CREATOR)
    answer = await post(world, "/v1/content/insta/c-stats/stats", case.body, world.creator_key)
    if case.field is None:
        assert answer.status_code == STARTING, answer.text
        return
    assert answer.status_code == 422, answer.text
    assert case.field in (_field(answer) or ""), answer.text


async def test_a_content_id_with_a_control_character_in_the_path_is_a_422(
    world: AccessWorld,
) -> None:
    answer = await post(world, "/v1/content/insta/a%0Ab/stats", stats(), ADMIN_TOKEN)
    assert answer.status_code == 422, answer.text
    assert (_field(answer) or "").endswith("content_id")


async def test_only_the_admin_or_the_campaigns_merchant_releases_a_published_content(
    world: AccessWorld,
) -> None:
    await own_content(world, "c-held", CAMPAIGN, CREATOR)
    release = "/v1/content/insta/{}/release"
    creator = await post(world, release.format("c-held"), None, world.creator_key)
    assert creator.status_code == 403, creator.text
    other = await post(world, release.format("c-held"), None, world.other_merchant_key)
    unknown = await post(world, release.format("c-none"), None, world.other_merchant_key)
    assert (other.status_code, unknown.status_code) == (404, 404)
    assert other.json() == orjson.loads(unknown.content.replace(b"insta:c-none", b"insta:c-held"))
    never = await post(world, release.format("c-none"), None, ADMIN_TOKEN)
    assert never.status_code == 404, never.text
    note = await post(world, release.format("c-held"), {"note": "n" * 501}, world.merchant_key)
    assert note.status_code == 422, note.text
    assert "note" in (_field(note) or "")
    mine = await post(world, release.format("c-held"), {"note": "checked"}, world.merchant_key)
    assert mine.status_code == STARTING, mine.text


async def test_stats_and_a_release_wait_for_the_publication_to_be_on_the_topic(
    world: AccessWorld,
) -> None:
    """A publication whose request has not had the broker's acknowledgement (here: none,
    this world has no broker) has claimed its content, yet is not on the topic: stats or a
    release sent then would reach the ledger first, which refuses them after their 202."""
    content_id = f"c-unsent-{_now()}"
    published = await post(world, "/v1/content", publication(content_id), world.creator_key)
    assert published.status_code == STARTING, published.text
    path = f"/v1/content/insta/{content_id}"
    early = [
        await post(world, f"{path}/stats", stats(), world.creator_key),
        await post(world, f"{path}/release", None, world.merchant_key),
    ]
    for answer in early:
        assert answer.status_code == 409, answer.text
        assert _field(answer) == "content_id"
        assert "publication_not_sent" in answer.text
    # The publication sent again, this time taken by the broker: both go through.
    await sent_to_topic(world, content_id)
    later = await post(world, f"{path}/stats", stats(), world.creator_key)
    assert later.status_code == STARTING, later.text
    release = await post(world, f"{path}/release", None, world.merchant_key)
    assert release.status_code == STARTING, release.text


async def test_a_takeover_whose_publication_is_not_sent_yet_holds_back_a_release(
    world: AccessWorld,
) -> None:
    """The squat reached the topic; the brand's takeover claimed the content, but its own
    publication has not: a release now would reach the ledger before it and fix the squat
    for good there."""
    cid = f"c-take-unsent-{_now()}"
    squat = await post(world, "/v1/content", publication(cid), world.creator_key)
    assert squat.status_code == STARTING, squat.text
    await sent_to_topic(world, cid)
    author = publication(cid, affiliate_id=OTHER_CREATOR)
    taken = await post(world, "/v1/content", author, world.merchant_key)
    assert taken.status_code == STARTING, taken.text  # claimed: the content is the author's
    path = f"/v1/content/insta/{cid}/release"
    early = await post(world, path, None, world.merchant_key)
    assert early.status_code == 409, early.text
    assert "publication_not_sent" in early.text
    await sent_to_topic(world, cid)  # the takeover's publication taken by the broker
    release = await post(world, path, None, world.merchant_key)
    assert release.status_code == STARTING, release.text


async def test_a_content_the_ledger_holds_from_the_topic_takes_stats_and_a_release(
    world: AccessWorld,
) -> None:
    """Published straight to the topic (no claim here) or claimed before the mark was
    kept: the ledger's own record says its publication is on the topic."""
    store = world.app.state.store
    content_id = f"c-topic-{_now()}"
    key = f"insta:{content_id}"
    published = Publication(
        key, CREATOR, CAMPAIGN, "post", _now() - HOUR, f"p-{content_id}", by_creator=True
    )
    batch = Batch(
        content=[(CAMPAIGN, PERIOD, published)],
        content_routes={key: (CAMPAIGN, PERIOD, CREATOR)},
        awaiting={key},
    )
    await store.apply(batch, world.app.state.directory.versions, lambda _: "EUR")
    path = f"/v1/content/insta/{content_id}"
    answer = await post(world, f"{path}/stats", stats(), world.creator_key)
    assert answer.status_code == STARTING, answer.text
    # A snapshot from before the publication is none: it was a 202, counted as stale.
    early = await post(world, f"{path}/stats", stats(as_of=_now() - 2 * HOUR), world.creator_key)
    assert early.status_code == 422, early.text
    [problem] = early.json()["detail"]
    assert problem["field"] == "as_of"
    assert problem["reason"].startswith("before the content's publication (")
    # Claimed over HTTP before the mark existed, and applied by the ledger since.
    await store.redis.hset(
        store.keys.ledger("content_owner"),
        f"insta:{content_id}",
        orjson.dumps([CAMPAIGN, CREATOR]),
    )
    release = await post(world, f"{path}/release", None, world.merchant_key)
    assert release.status_code == STARTING, release.text


async def test_a_creator_key_publishes_no_new_content_into_a_campaign_it_is_not_part_of(
    world: AccessWorld,
) -> None:
    # ana's coupon names her in CAMPAIGN only; this app knows no clicks service, so
    # whether she has a link in OTHER_CAMPAIGN cannot be told: 503 naming why, nothing
    # published. Her postings there would not count (a posting is history, not a part).
    body = publication(f"c-foreign-{_now()}", campaign_id=OTHER_CAMPAIGN, kind="post")
    answer = await post(world, "/v1/content", body, world.creator_key)
    assert answer.status_code == 503, answer.text
    assert _field(answer) == "campaign_id"
    assert "cannot be told now: AFFLUX_CLICKS_URL is not set" in answer.text
    store = world.app.state.store
    owners = store.keys.ledger("content_owner")
    assert await store.redis.hget(owners, "insta:" + body["content_id"]) is None
    # Her own campaign takes it, as the admin's token anywhere.
    mine = await post(world, "/v1/content", publication(f"c-mine-{_now()}"), world.creator_key)
    assert mine.status_code == STARTING
    assert "belong" not in mine.text
    anywhere = await post(world, "/v1/content", body, ADMIN_TOKEN)
    assert anywhere.status_code == STARTING
    assert "belong" not in anywhere.text


# ana's coupon names her in CAMPAIGN only. Each of these she may not publish, and must
# learn from the answer neither that the campaign exists nor that the id was published
# (ben's, in OTHER_CAMPAIGN): one answer for all four. The unknown campaign's id has
# OTHER_CAMPAIGN's length, so the two answers' headers compare whole.
UNKNOWN_CAMPAIGN = "camp-zzzzz"
NOT_HERS = [
    ("another brand's campaign, an id never published", OTHER_CAMPAIGN, "c-free"),
    ("another brand's campaign, an id its creator published", OTHER_CAMPAIGN, "c-bens"),
    ("a campaign that does not exist, an id never published", UNKNOWN_CAMPAIGN, "c-free"),
    ("a campaign that does not exist, an id published", UNKNOWN_CAMPAIGN, "c-bens"),
]


@pytest.mark.parametrize(
    ("links", "status"),
    [
        # the clicks service says she has no link anywhere
        ("none", 403),
        # this app knows no clicks service: whether she has a link cannot be told
        ("unavailable", 503),
    ],
)
async def test_a_creator_key_cannot_tell_a_campaign_it_is_not_part_of_from_none_or_a_published_id(
    world: AccessWorld, monkeypatch: pytest.MonkeyPatch, links: str, status: int
) -> None:
    if links == "none":

        async def no_links(*_: Any) -> list[dict[str, Any]]:
            return []

        monkeypatch.setattr("afflux.payouts.belonging.creator_links", no_links)
    await own_content(world, "c-bens", OTHER_CAMPAIGN, OTHER_CREATOR)
    answers = {}
    for name, campaign, content_id in NOT_HERS:
        body = publication(content_id, campaign_id=campaign)
        answer = await post(world, "/v1/content", body, world.creator_key)
        reason = answer.json()["detail"][0]
        answers[name] = (
            answer.status_code,
            dict(answer.headers),
            orjson.dumps(reason).replace(campaign.encode(), b"<campaign>"),
        )
        assert answer.status_code == status, f"{name}: {answer.text}"
        assert reason["field"] == "campaign_id", f"{name}: {answer.text}"
    first, *others = answers.values()
    assert all(other == first for other in others), answers
    store = world.app.state.store
    owners = store.keys.ledger("content_owner")
    assert await store.redis.hget(owners, "insta:c-free") is None
    # The admin is told the campaign does not exist.
    told = await post(
        world, "/v1/content", publication("c-free", campaign_id=UNKNOWN_CAMPAIGN), ADMIN_TOKEN
    )
    assert (told.status_code, _field(told)) == (422, "campaign_id"), told.text
    assert "unknown campaign" in told.text


async def test_a_coupon_of_the_creator_in_the_terms_makes_it_part_of_the_campaign(
    world: AccessWorld,
) -> None:
    directory = world.app.state.directory
    versions = directory.versions(OTHER_CAMPAIGN)
    body = publication(f"c-coupon-{_now()}", campaign_id=OTHER_CAMPAIGN, affiliate_id=OTHER_CREATOR)
    before = await post(world, "/v1/content", body, world.other_creator_key)
    assert before.status_code == 503
    assert "cannot be told" in before.text
    latest = versions[-1]
    coupons = {**latest.terms.coupons, "BEN10": OTHER_CREATOR}
    named = latest.model_copy(
        update={
            "version": latest.version + 1,
            "terms": latest.terms.model_copy(update={"coupons": coupons}),
        }
    )
    directory.apply(
        CampaignTermsPublished(
            event_id="terms-coupon", occurred_at=0, campaign_id=OTHER_CAMPAIGN,
            versions=(*versions, named),
        )
    )  # fmt: skip
    answer = await post(world, "/v1/content", body, world.other_creator_key)
    assert answer.status_code == STARTING, answer.text
    assert "belong" not in answer.text


LAG = CREATOR_LIVE_LAG_MS


async def test_a_creator_reports_its_stream_as_it_starts_and_ends(world: AccessWorld) -> None:
    """A creator's own stream claims orders on its word alone: reported days later it
    would take orders already decided, so its key reports the start and the end as they
    happen, and a re-publication keeps the start (the brand publishes older streams)."""
    now = _now()
    steps: list[tuple[str, dict[str, Any], str, int, str | None]] = [
        # (what, body, bearer, status, field)
        ("started 3 days ago", _live("cl-old", now - 3 * MS_PER_DAY, None), "creator", 422,
         "live_started_at"),
        ("ended 3 days ago, reported now", _live("cl-old2", now - 3 * MS_PER_DAY - HOUR,
         now - 3 * MS_PER_DAY), "creator", 422, "live_started_at"),
        ("the brand publishes an old one", _live("cl-brand", now - 3 * MS_PER_DAY, None),
         "merchant", STARTING, None),
        ("started at the lag", _live("cl-live", now - LAG + 60_000, None), "creator", STARTING,
         None),
        ("its start moved earlier", _live("cl-live", now - 2 * HOUR, now), "creator", 422,
         "live_started_at"),
        ("its end, as it ends", _live("cl-live", now - LAG + 60_000, now - 1_000), "creator",
         STARTING, None),
        ("the same again (a retry)", _live("cl-live", now - LAG + 60_000, now - 1_000),
         "creator", STARTING, None),
        ("its end moved later", _live("cl-live", now - LAG + 60_000, now), "creator", 422,
         "live_ended_at"),
        ("the brand's old stream, an old end by the creator", _live("cl-brand",
         now - 3 * MS_PER_DAY, now - 3 * MS_PER_DAY + HOUR), "creator", 422, "live_ended_at"),
    ]  # fmt: skip
    keys = {"creator": world.creator_key, "merchant": world.merchant_key}
    for what, body, bearer, status, field in steps:
        answer = await post(world, "/v1/content", body, keys[bearer])
        assert answer.status_code == status, (what, answer.text)
        if field is not None:
            assert _field(answer) == field, (what, answer.text)
        else:
            assert "live" not in (_field(answer) or ""), (what, answer.text)


async def test_concurrent_creator_publications_of_one_stream_keep_exactly_one_start(
    world: AccessWorld,
) -> None:
    """The start of a stream a creator reports never moves: publications racing on the
    same stream each read it unset, and only the first to write it may keep its start
    (the others are checked again against it and refused)."""
    now, cid = _now(), f"cl-race-{_now()}"
    starts = [now - 60_000 - n * 1_000 for n in range(12)]
    answers = await asyncio.gather(
        *(post(world, "/v1/content", _live(cid, s, None), world.creator_key) for s in starts)
    )
    through = [s for s, a in zip(starts, answers, strict=True) if a.status_code == STARTING]
    refused = [a for a in answers if a.status_code == 422]
    assert len(through) == 1, [a.status_code for a in answers]
    assert len(refused) == len(starts) - 1
    assert {_field(a) for a in refused} == {"live_started_at"}
    store = world.app.state.store
    kept = await store.redis.hget(store.keys.ledger("content_live"), f"insta:{cid}")
    assert orjson.loads(kept) == [through[0], None]


async def test_concurrent_creator_ends_of_one_stream_keep_exactly_one_end(
    world: AccessWorld,
) -> None:
    """A stream's end is given once: ends racing on a stream with none yet keep one."""
    now, cid = _now(), f"cl-ends-{_now()}"
    start = now - 10 * 60_000
    first = await post(world, "/v1/content", _live(cid, start, None), world.creator_key)
    assert first.status_code == STARTING, first.text
    ends = [now - n * 1_000 for n in range(12)]
    answers = await asyncio.gather(
        *(post(world, "/v1/content", _live(cid, start, e), world.creator_key) for e in ends)
    )
    through = [e for e, a in zip(ends, answers, strict=True) if a.status_code == STARTING]
    assert len(through) == 1, [a.status_code for a in answers]
    assert {_field(a) for a in answers if a.status_code != STARTING} == {"live_ended_at"}
    store = world.app.state.store
    kept = await store.redis.hget(store.keys.ledger("content_live"), f"insta:{cid}")
    assert orjson.loads(kept) == [start, through[0]]


async def test_a_creators_refused_stream_records_no_times(world: AccessWorld) -> None:
    """An end before the start is refused before anything is recorded: the creator then
    publishes the right end (it was never given)."""
    now, cid = _now(), f"cl-fix-{_now()}"
    start = now - 10 * 60_000
    wrong = await post(world, "/v1/content", _live(cid, start, start - 1), world.creator_key)
    assert wrong.status_code == 422, wrong.text
    assert _field(wrong) == "live_ended_at"
    right = await post(world, "/v1/content", _live(cid, start, now - 1_000), world.creator_key)
    assert right.status_code == STARTING, right.text


async def test_racing_first_publications_of_a_stream_keep_only_its_owners_times(
    world: AccessWorld,
) -> None:
    """Creators of the campaign racing to publish one new stream id: one owns it, and the
    stream's recorded times are that one's. A loser refused for the identity never leaves
    its times behind (its end on the owner's stream would refuse the owner's real end)."""
    directory = world.app.state.directory
    access = world.app.state.access
    versions = directory.versions(CAMPAIGN)
    creators = [f"racer-{n:02d}" for n in range(12)]
    latest = versions[-1]
    coupons = {**latest.terms.coupons, **{f"RACE{n}": c for n, c in enumerate(creators)}}
    named = latest.model_copy(
        update={
            "version": latest.version + 1,
            "terms": latest.terms.model_copy(update={"coupons": coupons}),
        }
    )
    directory.apply(
        CampaignTermsPublished(
            event_id="terms-racers", occurred_at=0, campaign_id=CAMPAIGN,
            versions=(*versions, named),
        )
    )  # fmt: skip
    keys = [(await access.issue("creator", c, _now()))[1] for c in creators]
    now, cid = _now(), f"cl-owner-race-{_now()}"
    start = now - 10 * 60_000
    # Half report the stream live, half with an end already: an end is checked against
    # the recorded start only, so a loser's end would pass that check.
    ends = [None if n % 2 == 0 else now - n * 1_000 for n in range(len(creators))]
    answers = await asyncio.gather(
        *(
            post(world, "/v1/content", _live(cid, start, e) | {"affiliate_id": c}, k)
            for c, e, k in zip(creators, ends, keys, strict=True)
        )
    )
    through = [
        (c, e) for c, e, a in zip(creators, ends, answers, strict=True) if a.status_code == STARTING
    ]
    assert len(through) == 1, [a.text for a in answers]
    assert {a.status_code for a in answers} == {STARTING, 422}
    store = world.app.state.store
    owner = await store.redis.hget(store.keys.ledger("content_owner"), f"insta:{cid}")
    kept = await store.redis.hget(store.keys.ledger("content_live"), f"insta:{cid}")
    assert orjson.loads(owner) == [CAMPAIGN, through[0][0]]
    assert orjson.loads(kept) == [start, through[0][1]]


# -- a squat: a creator's key publishes another author's content id first ------------------


async def _links_of_ben_in_campaign(_: Any, affiliate_id: str) -> list[dict[str, Any]]:
    """The clicks service's answer: the author (ben) has an active link in CAMPAIGN, so his
    key belongs there and is refused for the content's identity alone."""
    return [{"campaign_id": CAMPAIGN, "active": True}] if affiliate_id == OTHER_CREATOR else []


async def test_the_brand_publishes_a_squatted_content_for_its_author(
    world: AccessWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A creator's key publishing another author's post id first is held (never paid);
    the author's own key is still refused, but the brand publishes the content for its
    author, which takes it over (held content is only the creator's word). From then on
    the identity is the brand's: fixed for the squatter, and for any other publication."""
    monkeypatch.setattr("afflux.payouts.belonging.creator_links", _links_of_ben_in_campaign)
    cid = f"c-squat-{_now()}"
    squat = await post(world, "/v1/content", publication(cid), world.creator_key)
    assert squat.status_code == STARTING, squat.text
    author = publication(cid, affiliate_id=OTHER_CREATOR)
    refused = await post(world, "/v1/content", author, world.other_creator_key)
    assert refused.status_code == 422, refused.text
    assert _field(refused) == "content_id"
    taken = await post(world, "/v1/content", author, world.merchant_key)
    assert taken.status_code == STARTING, taken.text
    store = world.app.state.store
    owner = await store.redis.hget(store.keys.ledger("content_owner"), f"insta:{cid}")
    assert orjson.loads(owner) == [CAMPAIGN, OTHER_CREATOR]
    again = await post(world, "/v1/content", publication(cid), world.creator_key)
    assert again.status_code == 422, again.text
    third = publication(cid, affiliate_id="cleo")
    assert (await post(world, "/v1/content", third, ADMIN_TOKEN)).status_code == 422


async def test_another_campaigns_brand_cannot_take_over_a_creators_unreleased_content(
    world: AccessWorld,
) -> None:
    """A creator's key published the id for one campaign, unreleased: another merchant
    publishing it for its own campaign takes nothing over (only the content's campaign's
    brand may), and is told only that the id is not its own, never that it was
    published (as for an id it may not publish for any other reason)."""
    cid = f"c-across-{_now()}"
    squat = await post(world, "/v1/content", publication(cid), world.creator_key)
    assert squat.status_code == STARTING, squat.text
    theirs = publication(cid, campaign_id=OTHER_CAMPAIGN, affiliate_id=OTHER_CREATOR)
    refused = await post(world, "/v1/content", theirs, world.other_merchant_key)
    assert refused.status_code == 422, refused.text
    assert _field(refused) == "content_id"
    assert refused.json()["detail"][0]["reason"] == f"insta:{cid} is not yours to publish"
    store = world.app.state.store
    owner = await store.redis.hget(store.keys.ledger("content_owner"), f"insta:{cid}")
    assert orjson.loads(owner) == [CAMPAIGN, CREATOR]


async def test_a_released_content_is_fixed_for_good(world: AccessWorld) -> None:
    """The brand confirmed whose it is: its publication for another creator is refused."""
    cid = f"c-confirmed-{_now()}"
    first = await post(world, "/v1/content", publication(cid), world.creator_key)
    assert first.status_code == STARTING, first.text
    await sent_to_topic(world, cid)
    release = await post(world, f"/v1/content/insta/{cid}/release", None, world.merchant_key)
    assert release.status_code == STARTING, release.text  # past every check: no broker here
    other = publication(cid, affiliate_id=OTHER_CREATOR)
    refused = await post(world, "/v1/content", other, world.merchant_key)
    assert refused.status_code == 422, refused.text
    assert _field(refused) == "content_id"


async def test_a_release_racing_the_brands_takeover_lets_one_through(world: AccessWorld) -> None:
    """Released and taken over at once: one of them is taken, the other answered as if it
    had come after it (a 404 for the release of a content now another's, a 422 for the
    takeover of a released one), so the topic never carries both."""
    for n in range(8):
        cid = f"c-race-release-{n}-{_now()}"
        first = await post(world, "/v1/content", publication(cid), world.creator_key)
        assert first.status_code == STARTING, first.text
        await sent_to_topic(world, cid)
        other = publication(cid, affiliate_id=OTHER_CREATOR, campaign_id=OTHER_CAMPAIGN)
        release, takeover = await asyncio.gather(
            post(world, f"/v1/content/insta/{cid}/release", None, world.merchant_key),
            post(world, "/v1/content", other, world.other_merchant_key),
        )
        codes = (release.status_code, takeover.status_code)
        assert codes in {(STARTING, 422), (404, STARTING)}, (release.text, takeover.text)


@pytest.mark.parametrize("released", [False, True], ids=["awaiting", "released"])
async def test_a_squat_recorded_before_the_mark_is_taken_over_as_the_ledger_holds_it(
    world: AccessWorld, released: bool
) -> None:
    """A content a creator's key published before its identity carried whether it awaits
    its release: the ledger's state of it decides."""
    cid = f"c-legacy-{released}-{_now()}"
    key = f"insta:{cid}"
    published_at = _now() - HOUR
    store = world.app.state.store
    squat = Publication(key, CREATOR, CAMPAIGN, "post", published_at, "p", by_creator=True)
    facts: list[tuple[str, str, ContentEvent]] = [(CAMPAIGN, PERIOD, squat)]
    if released:
        facts.append((CAMPAIGN, PERIOD, Release(key, "r", "merchant:m")))
    batch = Batch(content=facts, content_routes={key: (CAMPAIGN, PERIOD, CREATOR)}, awaiting={key})
    await store.apply(batch, world.app.state.directory.versions, lambda _: "EUR")
    await own_content(world, cid, CAMPAIGN, CREATOR)  # no mark: as recorded before it
    author = publication(cid, affiliate_id=OTHER_CREATOR, published_at=published_at)
    answer = await post(world, "/v1/content", author, world.merchant_key)
    assert answer.status_code == (422 if released else STARTING), answer.text


async def test_a_creators_key_cannot_move_the_date_of_a_published_content(
    world: AccessWorld,
) -> None:
    """The date picks the terms version, the review and the place in the cap order: a
    creator re-dating the brand's post skipped a review its terms added since."""
    store = world.app.state.store
    content_id = f"c-dated-{_now()}"
    key = f"insta:{content_id}"
    at = _now() - 2 * HOUR
    brands = Publication(key, CREATOR, CAMPAIGN, "post", at, f"p-{content_id}")
    batch = Batch(
        content=[(CAMPAIGN, PERIOD, brands)], content_routes={key: (CAMPAIGN, PERIOD, CREATOR)}
    )
    await store.apply(batch, world.app.state.directory.versions, lambda _: "EUR")

    earlier = await post(
        world, "/v1/content", publication(content_id, published_at=at - HOUR), world.creator_key
    )
    same = await post(
        world, "/v1/content", publication(content_id, published_at=at), world.creator_key
    )
    by_brand = await post(
        world, "/v1/content", publication(content_id, published_at=at - HOUR), world.merchant_key
    )

    assert earlier.status_code == 409, earlier.text
    assert _field(earlier) == "published_at"
    assert "a creator's key does not move its date" in earlier.text
    assert same.status_code == STARTING, same.text
    assert by_brand.status_code == STARTING, by_brand.text


@pytest.mark.parametrize(("mark", "status"), [(b"0", 409), (b"1", STARTING)])
async def test_a_creators_key_names_no_handle_on_content_counted_without_a_release(
    world: AccessWorld, mark: bytes, status: int
) -> None:
    """Attribution leaves such a handle out (it was the creator's word alone, and a
    generic one took every unclaimed order naming it): the route says so."""
    store = world.app.state.store
    content_id = f"c-handle-{_now()}-{mark.decode()}"
    key = f"insta:{content_id}"
    await store.redis.hset(
        store.keys.ledger("content_owner"), key, orjson.dumps([CAMPAIGN, CREATOR])
    )
    await store.redis.hset(store.keys.ledger("content_unreleased"), key, mark)

    answer = await post(
        world, "/v1/content", publication(content_id, handle="instagram"), world.creator_key
    )

    assert answer.status_code == status, answer.text
    if status == 409:
        assert _field(answer) == "handle"


async def test_a_creators_handle_on_brand_content_from_the_topic_is_refused_too(
    world: AccessWorld,
) -> None:
    """Published straight to the topic, the content has no mark here: the ledger's state
    says the brand published it."""
    store = world.app.state.store
    content_id = f"c-topic-handle-{_now()}"
    key = f"insta:{content_id}"
    brands = Publication(key, CREATOR, CAMPAIGN, "post", _now() - HOUR, f"p-{content_id}")
    batch = Batch(
        content=[(CAMPAIGN, PERIOD, brands)], content_routes={key: (CAMPAIGN, PERIOD, CREATOR)}
    )
    await store.apply(batch, world.app.state.directory.versions, lambda _: "EUR")

    answer = await post(
        world,
        "/v1/content",
        publication(content_id, handle="instagram", published_at=brands.published_at),
        world.creator_key,
    )

    assert answer.status_code == 409, answer.text
    assert _field(answer) == "handle"


async def test_a_creator_key_publishes_at_most_its_bound_of_contents_in_a_campaign(
    world: AccessWorld,
) -> None:
    """Without a bound one creator key published 1,000 contents in 31 s, each of them
    Redis state and a row of the brand's pages. A content published again, the brand's
    and the admin's publications are not counted."""
    most = 3
    app = world.app
    store = app.state.store
    # The creator's earlier tests' contents in this world counted too: start from none.
    await store.redis.hdel(store.keys.ledger("content_counts"), f"{CAMPAIGN}|{CREATOR}")
    settings = app.state.settings
    app.state.settings = settings.model_copy(update={"creator_content_per_campaign": most})
    try:
        for n in range(most):
            body = publication(f"c-bound-{n}")
            answer = await post(world, "/v1/content", body, world.creator_key)
            assert answer.status_code == STARTING, answer.text
        extra = publication("c-bound-extra")
        refused = await post(world, "/v1/content", extra, world.creator_key)
        assert refused.status_code == 422, refused.text
        assert _field(refused) == "content_id"
        assert "you have published 3 contents in this campaign" in refused.text
        again = await post(world, "/v1/content", publication("c-bound-0"), world.creator_key)
        assert again.status_code == STARTING, again.text
        by_admin = await post(world, "/v1/content", publication("c-bound-admin"), ADMIN_TOKEN)
        assert by_admin.status_code == STARTING, by_admin.text
    finally:
        app.state.settings = settings
