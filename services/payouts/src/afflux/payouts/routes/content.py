"""Creators' content and its platform stats over HTTP, onto the ``content`` topic.

- ``POST /v1/content``: a publication (``ContentPublished``); again with the same
  content to add a live stream's end (the latest publication wins);
- ``POST /v1/content/{platform}/{content_id}/stats``: a cumulative snapshot
  (``ContentStats``);
- ``POST /v1/content/{platform}/{content_id}/release``: release a content held for
  review or awaiting the brand's confirmation (``ContentReleased``).

Who may post: the admin token anything; a creator key its own content only, only into a
campaign it belongs to (an active tracking link in it, or its terms name it:
``afflux.payouts.belonging``; checked before the campaign or the content is looked at,
one 403 for a campaign it is not part of and one that does not exist), a live stream
only as it starts and its end as it ends (``creator_live_problem``; the times kept in
``{ledger}:content_live``, checked and written atomically with the content's identity),
and no release; a merchant key the content of its campaigns only.
Someone else's content answers the 404 of an unknown one. A content's campaign and
creator are fixed by its first publication (``{ledger}:content_owner``, then the
ledger's own record of it), except that the brand's publication (merchant key, admin)
takes over a content another creator's key published first and nobody released yet
(``takes_over``; ``{ledger}:content_unreleased`` says whether it awaits its release).
A publication carries whose key sent it (``reported_by``): a content first published by
its creator's own key is held until the brand releases it (its live stream claims no
order, it earns no engagement pay: ``afflux.shared.core.content.held_for_release``).

Bad input is a 422 naming the field and why: counts below 0 or above 10^12, a live
stream's end before its start, an ``as_of`` (or publication time) more than the clock
skew allowance ahead of the service's clock, a publication time older than the
campaign's backfill limit, a new content's ``content_id`` or ``affiliate_id`` with an
invisible character (``afflux.shared.core.visible_text``). Event ids derive from the content and the
body, so a retried request is the same event (the ledger applies it once). The answer,
202, comes once the broker has the event; the ledger applies it moments later.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import unquote

import orjson
from fastapi import APIRouter, Path, Request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from afflux.payouts.belonging import LinksUnavailable, belongs
from afflux.payouts.deps import ClockDep, DirectoryDep, StoreDep
from afflux.payouts.errors import ERROR_RESPONSES, ProblemBody
from afflux.payouts.store import LedgerStore
from afflux.shared.core.access import Principal
from afflux.shared.core.clock import MS_PER_DAY, from_ms
from afflux.shared.core.content import (
    CONTENT_ID_PATTERN,
    content_backfill_limit_ms,
    content_key,
    creator_live_problem,
)
from afflux.shared.core.engagement import PUBLICATION_HOLD, ContentState
from afflux.shared.core.event_time import DEFAULT_CLOCK_SKEW_MS
from afflux.shared.core.ids import derived_id
from afflux.shared.core.terms import answered_creator_problem
from afflux.shared.core.visible_text import visible_new_id
from afflux.shared.events import (
    ContentId,
    ContentKind,
    ContentPublished,
    ContentReleased,
    ContentStats,
    Count,
    Envelope,
    EventTime,
    Id,
    Platform,
)
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.http.principals import CsrfDep
from afflux.shared.io.http.problems import Problem
from afflux.shared.io.kafka import send_event
from afflux.shared.topics import CONTENT

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES, tags=["content"])
# A stats snapshot or release of a content whose publication is not on the topic yet.
NOT_SENT_YET: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ProblemBody,
        "description": "the content's publication is not on the topic yet: retry in a moment,"
        " or publish it again if its own request failed",
    }
}


def _not_dot_segment(value: str) -> str:
    """ "." and ".." are path segments browsers and curl resolve away: such a content
    could be published but its stats and release URLs would reach another path. So are
    their percent-encodings ("%2e%2e"): URL libraries read them as dot segments."""
    if value in (".", "..") or unquote(value) in (".", ".."):
        raise ValueError("may not be '.' or '..', encoded or not (its URLs would be resolved away)")
    return value


PlatformPath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_.-]{0,31}$")]
ContentIdPath = Annotated[str, Path(min_length=1, max_length=200, pattern=CONTENT_ID_PATTERN)]
E = TypeVar("E", bound=Envelope)
# A new content's identity: "p-1" with a zero-width space (or another invisible
# character) would be a second content that looks like the first, its engagement paid
# twice, or a creator nobody sees. Only here, where content enters: the topic's own
# records still decode as ``ContentPublished`` has always decoded them.
NewContentId = Annotated[
    ContentId, AfterValidator(visible_new_id), AfterValidator(_not_dot_segment)
]
# The creator it names, compared as the terms hold it: in NFC like every id made here,
# so one written decomposed names nobody though it looks like a creator (refused).
VisibleId = Annotated[Id, AfterValidator(visible_new_id)]


def _no_separator(value: str) -> str:
    """The ledger's counters name a creator between '|' (``views|<creator>|<day>``): a
    creator id holding one read as another creator's (``ana|2026-11-03`` as ana's), so a
    merchant could add any reach to a creator's KPIs. Tracking links never allowed it."""
    if "|" in value:
        raise ValueError("may not contain '|'")
    return value


CreatorId = Annotated[VisibleId, AfterValidator(_no_separator)]


class ContentBody(BaseModel):
    """A ``ContentPublished`` without its envelope (docs/events/ContentPublished.schema.json)."""

    model_config = ConfigDict(extra="forbid")

    content_id: NewContentId
    platform: Platform
    affiliate_id: CreatorId
    campaign_id: Id
    kind: ContentKind
    url: Annotated[str, Field(max_length=2048, pattern=r"^https?://\S+$")]
    published_at: EventTime
    live_started_at: EventTime | None = None
    live_ended_at: EventTime | None = None
    handle: Annotated[str, Field(max_length=200)] | None = None


class StatsBody(BaseModel):
    """A ``ContentStats`` without its envelope and identity (both from the path)."""

    model_config = ConfigDict(extra="forbid")

    as_of: EventTime
    views: Count
    impressions: Count
    likes: Count
    comments: Count
    shares: Count
    saves: Count
    followers: Count


class ReleaseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Annotated[str, Field(max_length=500)] | None = None


class Accepted(BaseModel):
    event_id: str
    key: str = Field(description="<platform>:<content_id>, the record key on the content topic")
    topic: str = CONTENT.name


@router.post("/content", status_code=202, response_model=Accepted)
async def publish_content(
    body: ContentBody,
    principal: CsrfDep,  # with a session cookie: only from our pages (docs/portal.md)
    store: StoreDep,
    request: Request,
    directory: DirectoryDep,
    clock: ClockDep,
) -> Accepted:
    """A creator's post, story, video or live stream for a campaign."""
    merchant = _merchant(directory, body.campaign_id)
    if not (
        principal.is_admin
        or (principal.role == "creator" and principal.subject == body.affiliate_id)
        or (principal.role == "merchant" and merchant is not None and principal.subject == merchant)
    ):
        if principal.role == "creator":
            raise Problem(403, "affiliate_id", "a creator key may publish only its own content")
        raise Problem(404, "campaign_id", f"unknown campaign {body.campaign_id!r}")
    if principal.role == "creator":
        # First of all, and the same for a campaign that does not exist: anything the
        # content or the campaign answered before this would tell a creator of no
        # campaign which content ids were published and which campaign ids exist.
        await _creator_belongs(request, directory, body.affiliate_id, body.campaign_id)
    if merchant is None:
        raise Problem(422, "campaign_id", f"unknown campaign {body.campaign_id!r}")
    now = clock()
    versions = directory.versions(body.campaign_id)
    # A look-alike ("\u0441reator-01"), "a/b" or "..": a creator no page or key can name,
    # listed beside the real one; ids the campaign's terms name stay (published before).
    named = answered_creator_problem(directory.at(body.campaign_id, now).terms, body.affiliate_id)
    if named is not None:
        raise Problem(422, "affiliate_id", named)
    for name in ("published_at", "live_started_at", "live_ended_at"):
        at = getattr(body, name)
        _not_ahead(name, at, now)
        if at is not None:
            _not_older(name, at, now, content_backfill_limit_ms(versions, at))
    key = content_key(body.platform, body.content_id)
    identity = (body.campaign_id, body.affiliate_id)
    owner_raw = await _owner_raw(store, key)
    owner = await _owner(store, key, owner_raw)
    # The brand's publication takes over a content another creator's key published first
    # and the brand has not released (a squat): see ``takes_over``.
    taking = (
        owner is not None
        and owner != identity
        and owner[0] == identity[0]  # never across campaigns (``takes_over``)
        and principal.role != "creator"
        and await _awaits_release(store, key)
    )
    if not taking:
        _same_identity(principal, key, owner, identity)
    if principal.role == "creator":
        await _same_date(store, key, body.published_at)
        if body.handle and await _counts_as_is(store, key):
            # attribution leaves it out (``content.handle_counts``): say so
            raise Problem(
                409,
                "handle",
                "a creator's key names no survey handle on a content the brand published"
                " or released (it would count on the creator's word alone); ask the brand",
            )
    lives = store.keys.ledger("content_live")
    live = orjson.dumps([body.live_started_at, body.live_ended_at])
    # A content its creator's own key publishes counts once the brand releases it (its
    # stream claims no order, it earns no engagement pay): the key is part of the event,
    # and of its id, so a brand's identical publication is another event.
    fields = {**body.model_dump(), "reported_by": principal.role}
    if principal.role == "creator" and owner is None:
        # a new content: counted against the creator's bound
        most = request.app.state.settings.creator_content_per_campaign
        await _count_creator_content(store, identity, most)
    event = _validated(
        ContentPublished,
        {
            **fields,
            "event_id": _event_id("content", key, fields),
            "occurred_at": body.published_at,
            "received_at": now,
        },
    )
    # Last of the checks: a creator's stream records the times it accepts, and with them
    # the content's identity when it is the first (one step: a publication refused for
    # the identity never leaves its times on another creator's stream).
    if (
        principal.role == "creator"
        and body.kind == "live"
        and not await _creator_live_times(store, key, body, now, owner is not None, live, identity)
    ):
        _same_identity(principal, key, await _owner(store, key), identity)
    if taking:
        if not await _take_over(store, key, owner_raw, identity):
            # Released, or taken, between the read and here: as if it had come after.
            _same_identity(principal, key, await _owner(store, key), identity)
    elif not await _claim(store, key, identity, principal.role == "creator"):
        # Another publication of the content got there between the read and here: the
        # first one written fixes its identity, and only that one goes to the topic.
        _same_identity(principal, key, await _owner(store, key), identity)
    if body.kind == "live" and principal.role != "creator":
        # What a creator's later publication of the stream is held to (its start and end);
        # the brand's times replace any (a creator's were set by ``_creator_live_times``).
        await store.redis.hset(lives, key, live)
    accepted = await _sent(request, key, event)
    # From now on its stats and releases may follow it onto the topic (``_on_topic``): the
    # identity sent, so that a takeover whose own publication failed is not taken as sent.
    await store.redis.hset(store.keys.ledger("content_sent"), key, orjson.dumps(list(identity)))
    return accepted


@router.post(
    "/content/{platform}/{content_id}/stats",
    status_code=202,
    response_model=Accepted,
    responses=NOT_SENT_YET,
)
async def post_stats(
    platform: PlatformPath,
    content_id: ContentIdPath,
    body: StatsBody,
    principal: CsrfDep,  # with a session cookie: only from our pages (docs/portal.md)
    store: StoreDep,
    request: Request,
    directory: DirectoryDep,
    clock: ClockDep,
) -> Accepted:
    """A platform's cumulative snapshot of the content at ``as_of``."""
    key = content_key(platform, content_id)
    owner_raw = await _owner_raw(store, key)
    await _may_post(principal, store, directory, key, owner_raw)
    await _on_topic(store, key, owner_raw)
    _not_ahead("as_of", body.as_of, clock())
    await _not_before_publication(store, key, body.as_of)
    # A creator's own figures hold its content until the brand confirms them (a release):
    # the key that posts them is part of the event, and of its id.
    fields = {**body.model_dump(), "reported_by": principal.role}
    event = _validated(
        ContentStats,
        {
            **fields,
            "content_id": content_id,
            "platform": platform,
            "event_id": _event_id("stats", key, fields),
            "occurred_at": body.as_of,
        },
    )
    return await _sent(request, key, event)


@router.post(
    "/content/{platform}/{content_id}/release",
    status_code=202,
    response_model=Accepted,
    responses=NOT_SENT_YET,
)
async def release_content(
    platform: PlatformPath,
    content_id: ContentIdPath,
    principal: CsrfDep,  # with a session cookie: only from our pages (docs/portal.md)
    store: StoreDep,
    request: Request,
    directory: DirectoryDep,
    clock: ClockDep,
    body: ReleaseBody | None = None,
) -> Accepted:
    """Release a content held for engagement review: paid from then on (admin or the
    campaign's merchant)."""
    if principal.role == "creator":
        raise Problem(403, "Authorization", "a creator key may not release content")
    key = content_key(platform, content_id)
    owner_raw = await _owner_raw(store, key)
    await _may_post(principal, store, directory, key, owner_raw)
    await _on_topic(store, key, owner_raw)
    state = await store.content_state(key)
    # Released, a content's identity is fixed for good (no publication takes it over):
    # only if it is still whose it was read as (a takeover in between is a 404, as if the
    # release had come after it).
    if not await _released_here(store, key, owner_raw):
        raise Problem(
            404, "content_id", f"unknown_content: {key} (publish it first: POST /v1/content)"
        )
    released_by = "admin" if principal.is_admin else f"merchant:{principal.subject}"
    event = ContentReleased(
        event_id=release_id(key, state),
        occurred_at=clock(),
        content_id=content_id,
        platform=platform,
        released_by=released_by,
        note=body.note if body is not None else None,
    )
    return await _sent(request, key, event)


# -- helpers -----------------------------------------------------------------------------


def release_id(key: str, state: ContentState | None) -> str:
    """One release per hold: a retry is the same event, but a content held for its
    figures after a release of its publication needs another, and the ledger takes a
    content's event id once (a second release under the first id was dropped, the content
    held for good). The release of a publication, of a content the ledger does not hold
    (yet, or any more) and of one not on hold is the content's first id: sent again once
    a snapshot has reopened the review, a new id would release it for good, every later
    snapshot paid unreviewed."""
    if state is None or not state.on_hold or state.held == PUBLICATION_HOLD:
        return derived_id("release", key)
    return derived_id("release", key, state.held or "")


async def _creator_belongs(
    request: Request,
    directory: CampaignDirectory,
    affiliate_id: str,
    campaign_id: str,
) -> None:
    """A creator key publishes a content only into a campaign it belongs to
    (``afflux.payouts.belonging``): 403 otherwise, a campaign that does not exist too
    (the same body), 503 when only its links could tell and the clicks service cannot
    say (asked for an unknown campaign as well, so that a 503 tells nothing either)."""
    try:
        found = await belongs(request.app.state.settings, directory, affiliate_id, campaign_id)
    except LinksUnavailable as exc:
        raise Problem(
            503, "campaign_id", f"whether {affiliate_id!r} belongs to it cannot be told now: {exc}"
        ) from None
    if not found:
        raise Problem(
            403,
            "campaign_id",
            f"{affiliate_id!r} does not belong to campaign {campaign_id!r} (no active tracking"
            " link in it, and its terms name no coupon, survey handle or window of it)",
        )


# Set a stream's recorded times only if they are still what the check read (compare and
# set): two publications racing each pass the check on the same old times, and only the
# first to write may keep them; the other is checked again against what it wrote. In the
# same step the content's identity (KEYS[2], ``content_owner``) is checked and, when
# none is recorded yet, set: -1 when another campaign or creator holds the content, and
# then nothing is written (of racing first publications by different creators, the one
# that writes the times is the one that owns the content).
_SET_LIVE_IF = """
local owner = redis.call('HGET', KEYS[2], ARGV[1])
if owner and owner ~= ARGV[4] then return -1 end
local now = redis.call('HGET', KEYS[1], ARGV[1])
if (now or '') ~= ARGV[2] then return 0 end
if not owner then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
  redis.call('HSET', KEYS[3], ARGV[1], '1')
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""
_LIVE_ATTEMPTS = 8


async def _creator_live_times(
    store: LedgerStore,
    key: str,
    body: ContentBody,
    now: int,
    published: bool,
    live: bytes,
    identity: tuple[str, str],
) -> bool:
    """Check a creator's live times against the stream's recorded ones
    (``creator_live_problem``: a 422 when refused) and record them, atomically with the
    content's identity: a publication that lost a race to another is checked again
    against the winner's times (a start that differs is refused, as if it had come
    after). False, with nothing written, when the content is another campaign's or
    creator's (``content_owner``)."""
    lives = store.keys.ledger("content_live")
    owners = store.keys.ledger("content_owner")
    unreleased = store.keys.ledger("content_unreleased")
    owner = orjson.dumps(list(identity))
    for _ in range(_LIVE_ATTEMPTS):
        raw: bytes | None = await store.redis.hget(lives, key)
        problem = creator_live_problem(
            body.live_started_at,
            body.live_ended_at,
            now,
            _live_times(raw),
            # Recorded times mean a publication got there first, even one whose owner
            # record is not written yet.
            republished=published or raw is not None,
        )
        if problem is not None:
            raise Problem(422, *problem)
        swapped = await store.redis.eval(  # type: ignore[no-untyped-call]
            _SET_LIVE_IF, 3, lives, owners, unreleased, key, raw or b"", live, owner
        )
        if swapped != 0:
            return bool(swapped == 1)
    raise Problem(503, "content_id", "the stream's times are being changed concurrently: retry")


async def _count_creator_content(store: LedgerStore, identity: tuple[str, str], most: int) -> None:
    """Count a creator key's new content in its campaign (``{ledger}:content_counts``,
    field ``<campaign>|<creator>``), or 422 past ``most``: each one is Redis state and a
    row of the brand's pages, and a key published 1,000 in 31 s without a bound. Counted
    before its claim, so requests at once never both take the last room (one that then
    loses the claim to another publication stays counted: the bound errs on the safe
    side)."""
    counts = store.keys.ledger("content_counts")
    field = "|".join(identity)
    if await store.redis.hincrby(counts, field, 1) <= most:
        return
    await store.redis.hincrby(counts, field, -1)
    raise Problem(
        422,
        "content_id",
        f"you have published {most} contents in this campaign, the most a creator's key may"
        f" publish here ({most}): ask the brand to publish more",
    )


def _live_times(raw: bytes | None) -> tuple[int, int | None] | None:
    if raw is None:
        return None
    start, end = orjson.loads(raw)
    return int(start), None if end is None else int(end)


def _merchant(directory: CampaignDirectory, campaign_id: str) -> str | None:
    return directory.latest(campaign_id).terms.merchant_id if campaign_id in directory else None


async def _owner_raw(store: LedgerStore, key: str) -> bytes | None:
    """A content's identity as posted here (``{ledger}:content_owner``), as stored."""
    raw: bytes | None = await store.redis.hget(store.keys.ledger("content_owner"), key)
    return raw


async def _owner(
    store: LedgerStore, key: str, raw: bytes | Literal[False] | None = False
) -> tuple[str, str] | None:
    """(campaign, creator) of a published content: as posted here (``raw``, when already
    read), else as the ledger holds it (a publication that came over the topic)."""
    if raw is False:
        raw = await _owner_raw(store, key)
    if raw is not None:
        campaign, affiliate = orjson.loads(raw)
        return str(campaign), str(affiliate)
    state = await store.content_state(key)
    if state is None or state.publication is None:
        return None
    return state.publication.campaign_id, state.publication.affiliate_id


async def _on_topic(store: LedgerStore, key: str, raw: bytes | None) -> None:
    """409 unless the content's publication is on the topic: a stats snapshot or release
    sent before it (a publication request still waiting for the broker, or one that
    failed) would reach the ledger first, which refuses it (``unknown_content``) after its
    202. Known only from the ledger (``raw`` None), it came over the topic; claimed here,
    it is on the topic once a publication of that identity got the broker's
    acknowledgement (``{ledger}:content_sent``), or once the ledger applied one (claimed
    before that mark was kept). A brand's takeover whose own publication failed leaves
    the squatter's mark: its identity is not the one claimed now."""
    if raw is None:
        return
    sent: bytes | None = await store.redis.hget(store.keys.ledger("content_sent"), key)
    if sent is not None and orjson.loads(sent) == orjson.loads(raw):
        return
    state = await store.content_state(key)
    publication = state.publication if state is not None else None
    if publication is not None and [publication.campaign_id, publication.affiliate_id] == (
        orjson.loads(raw)
    ):
        return
    raise Problem(
        409,
        "content_id",
        f"publication_not_sent: the publication of {key} is not on the topic yet: retry in"
        " a moment, or publish it again if its own request failed",
    )


async def _may_post(
    principal: Principal,
    store: LedgerStore,
    directory: CampaignDirectory,
    key: str,
    raw: bytes | Literal[False] | None = False,
) -> None:
    """Admin, the content's creator or its campaign's merchant; anyone else (and a content
    never published) gets the same 404."""
    owner = await _owner(store, key, raw)
    allowed = owner is not None and (
        principal.is_admin
        or (principal.role == "creator" and principal.subject == owner[1])
        or (principal.role == "merchant" and principal.subject == _merchant(directory, owner[0]))
    )
    if not allowed:
        raise Problem(
            404, "content_id", f"unknown_content: {key} (publish it first: POST /v1/content)"
        )


# A content's identity, set once (compare and set): its first publication's here, and
# whether it awaits its release (``{ledger}:content_unreleased``: 1 when its creator's own
# key published it, 0 for the brand's, and 0 once released or taken over over HTTP).
# 1: set; 0: another publication got there first.
_CLAIM = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
"""
# The brand's publication takes over a content awaiting its release: only if its identity
# is still the one read ('': none recorded here, the ledger's) and it still awaits its
# release (marked 1; unmarked, as recorded before the mark, when ARGV[4] is 1: the
# ledger's state said so). The squat's stream times go with it.
_TAKE_OVER = """
local now = redis.call('HGET', KEYS[1], ARGV[1])
if (now or '') ~= ARGV[2] then return 0 end
local mark = redis.call('HGET', KEYS[2], ARGV[1])
if mark ~= '1' and (mark or ARGV[4] ~= '1') then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], '0')
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
"""
# A release: the content's identity is fixed from then on, if it is still the one read.
_RELEASE_IF = """
local now = redis.call('HGET', KEYS[1], ARGV[1])
if (now or '') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], '0')
return 1
"""


async def _claim(store: LedgerStore, key: str, identity: tuple[str, str], creator: bool) -> bool:
    claimed = await store.redis.eval(  # type: ignore[no-untyped-call]
        _CLAIM,
        2,
        store.keys.ledger("content_owner"),
        store.keys.ledger("content_unreleased"),
        key,
        orjson.dumps(list(identity)),
        "1" if creator else "0",
    )
    return bool(claimed == 1)


async def _awaits_release(store: LedgerStore, key: str) -> bool:
    """Whether a published content awaits its release (its first publication was its
    creator's own key, and no release of it is known): as marked here, unless the ledger
    has applied a release written to the topic; unmarked (published over the topic, or
    recorded before the mark), as the ledger holds it."""
    mark: bytes | None = await store.redis.hget(store.keys.ledger("content_unreleased"), key)
    if mark == b"0":
        return False
    state = await store.content_state(key)
    if mark is None:
        return state is not None and state.awaits_release
    return state is None or state.awaits_release


async def _counts_as_is(store: LedgerStore, key: str) -> bool:
    """Whether a published content counts without a release: the brand published it, or
    released it (marked so here)."""
    mark: bytes | None = await store.redis.hget(store.keys.ledger("content_unreleased"), key)
    if mark == b"0":
        return True
    # published or released straight on the topic: as the ledger holds it
    state = await store.content_state(key)
    return state is not None and state.publication is not None and not state.awaits_release


async def _take_over(
    store: LedgerStore, key: str, raw: bytes | None, identity: tuple[str, str]
) -> bool:
    taken = await store.redis.eval(  # type: ignore[no-untyped-call]
        _TAKE_OVER,
        3,
        store.keys.ledger("content_owner"),
        store.keys.ledger("content_unreleased"),
        store.keys.ledger("content_live"),
        key,
        raw or b"",
        orjson.dumps(list(identity)),
        "1",  # checked by ``_awaits_release``: for a content recorded before the mark
    )
    return bool(taken == 1)


async def _released_here(store: LedgerStore, key: str, raw: bytes | None) -> bool:
    done = await store.redis.eval(  # type: ignore[no-untyped-call]
        _RELEASE_IF,
        2,
        store.keys.ledger("content_owner"),
        store.keys.ledger("content_unreleased"),
        key,
        raw or b"",
    )
    return bool(done == 1)


def _same_identity(
    principal: Principal, key: str, owner: tuple[str, str] | None, identity: tuple[str, str]
) -> None:
    """A content's campaign and creator never change. Only the admin is told whose it is
    (and that it was published): anyone else is told only that the id is not theirs to
    publish, learning nothing of another creator's content or another merchant's
    campaign (beside the 202 of an unused id it does learn that someone published it:
    post ids are public, and trying an unused one publishes it)."""
    if owner is None or owner == identity:
        return
    if principal.is_admin:
        raise Problem(
            422,
            "content_id",
            f"{key} was already published for campaign {owner[0]!r} by {owner[1]!r}:"
            " a content's campaign and creator never change",
        )
    raise Problem(422, "content_id", f"{key} is not yours to publish")


async def _same_date(store: LedgerStore, key: str, published_at: int) -> None:
    """A creator's key never moves a published content's date (the ledger keeps the date
    it has, ``engagement.fold``): the date picks its terms version, its review and its
    place in the cap order, so re-dating the brand's post skipped a review added since."""
    state = await store.content_state(key)
    publication = state.publication if state is not None else None
    if publication is not None and publication.published_at != published_at:
        raise Problem(
            409,
            "published_at",
            f"the content was published at {from_ms(publication.published_at).isoformat()}: a"
            " creator's key does not move its date (it picks the terms that pay it); ask"
            " the brand",
        )


async def _not_before_publication(store: LedgerStore, key: str, as_of: int) -> None:
    """A snapshot of a content before it was published is none (taken as stale, it was
    answered 202 and counted among ``stale_snapshots``). Known once the ledger holds the
    publication; until then the ledger judges it."""
    state = await store.content_state(key)
    publication = state.publication if state is not None else None
    if publication is not None and as_of < publication.published_at:
        raise Problem(
            422,
            "as_of",
            f"before the content's publication ({from_ms(publication.published_at).isoformat()})",
        )


def _not_ahead(name: str, at: int | None, now: int) -> None:
    if at is not None and at - now > DEFAULT_CLOCK_SKEW_MS:
        raise Problem(
            422,
            name,
            f"{at - now} ms in the future: more than the clock skew allowance"
            f" ({DEFAULT_CLOCK_SKEW_MS} ms)",
        )


def _not_older(name: str, at: int, now: int, limit: int) -> None:
    if now - at > limit:
        raise Problem(
            422,
            name,
            f"{(now - at) // MS_PER_DAY} days old: older than the campaign's backfill limit"
            f" ({limit // MS_PER_DAY} days, its longest cookie window plus its longest lock"
            " in force by then),"
            " so what it would earn is already approved; an operator backfills it on the"
            " content topic",
        )


def _event_id(kind: str, key: str, fields: dict[str, Any]) -> str:
    """The same request again is the same event."""
    return derived_id(kind, key, orjson.dumps(fields, option=orjson.OPT_SORT_KEYS).decode())


def _validated(model: type[E], payload: dict[str, Any]) -> E:
    """The event, or the contract's refusal as a 422 naming the field (a rule across
    fields names it first in its message: ``live_ended_at: before live_started_at``)."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = ".".join(str(part) for part in error.get("loc", ()))
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        field, sep, reason = message.partition(": ")
        if not loc and sep:
            raise Problem(422, field, reason) from None
        raise Problem(422, loc or None, message) from None


async def _sent(request: Request, key: str, event: Envelope) -> Accepted:
    producer = getattr(request.app.state, "producer", None)  # after the checks: they need
    if producer is None:  # no broker, so a refusal never depends on whether it is up
        raise Problem(503, None, "starting")
    try:
        await send_event(producer, CONTENT.name, key, event)
    except Exception as exc:  # nothing was accepted: the client retries, same event id
        raise Problem(503, None, f"the broker did not take the event: {exc}") from None
    return Accepted(event_id=event.event_id, key=key)
