"""A creator's content and its platform stats: identity and bounds shared by the wire
contract (``afflux.shared.events``), the ledger and the oracle."""

from __future__ import annotations

from collections.abc import Iterable

from afflux.shared.core.event_time import BackfillLimits
from afflux.shared.core.terms import TermsVersion

MAX_COUNT = 10**12
"""The largest count a snapshot may carry (views, likes, followers, ...)."""

PLATFORM_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,31}$"

CONTENT_ID_PATTERN = r"^[^\s/\x00-\x1f\x7f]+$"
"""A platform's content id: no whitespace, no control character and no ``/`` (a content
is addressed as ``/v1/content/{platform}/{content_id}/...``; one with a slash could be
published but never given stats or released over HTTP)."""

MAX_LIVE_STREAM_MS = 24 * 60 * 60 * 1000
"""The longest a live stream may last (``live_ended_at - live_started_at``): every order
of its campaign in that span no click, code or cookie claims is its creator's, so an
unbounded span would let one publication claim a campaign's orders of months or years."""


def content_key(platform: str, content_id: str) -> str:
    """The record key of a content's events on the ``content`` topic, and its identity."""
    return f"{platform}:{content_id}"


def content_backfill_limit_ms(versions: Iterable[TermsVersion], at: int | None = None) -> int:
    """How old a publication's time ``at`` may be when a creator or merchant posts it: the
    campaign's longest cookie window plus its longest lock among the versions in force by
    ``at`` (None: every version), the orders API's backfill limit for an order of that
    time (``BackfillLimits``). An older stream would claim orders whose commission is
    already approved: closed money, which an operator backfills. A version lengthening
    the lock from now on leaves the orders before it under the shorter lock, approved
    already: counting it let a stream be dated back over them. (An engagement line's lock
    counts from the publication's receipt when ``published_at`` is earlier:
    ``Publication.lock_from``.)"""
    return BackfillLimits.of(versions, None).at(at)


def held_for_release(first_reported_by: str | None, released: bool) -> bool:
    """Whether a content is held until the brand confirms it: what a creator's own key
    publishes (``reported_by`` of the content's first publication, which fixes its
    campaign and creator) counts only from its release (``ContentReleased``), by the
    campaign's merchant or the admin. Held, a live stream claims no order and a handle
    names nobody in survey answers (attribution), and the content earns no engagement pay
    (the ledger). Content the brand published (or written to the topic: no
    ``reported_by``) counts at once."""
    return first_reported_by == "creator" and not released


def handle_counts(first_reported_by: str | None, released: bool, reported_by: str | None) -> bool:
    """Whether a publication's ``handle`` may name its creator in survey answers. A
    creator's own key adds a handle only in what the brand's release confirms: the
    publications of a content it first published, before that release. Its handle on a
    content the brand published (or on its own after the release) was its word alone,
    counted at once: a generic handle ("instagram") took every unclaimed order whose
    answer named it, and re-decided those of the last 400 days."""
    return reported_by != "creator" or (first_reported_by == "creator" and not released)


def takes_over(
    first_reported_by: str | None,
    released: bool,
    reported_by: str | None,
    first_campaign: str,
    campaign: str,
) -> bool:
    """Whether a publication naming another creator than a content's first one takes the
    content over, rather than being refused (``content_identity_changed``): the content
    is still held (``held_for_release``: its campaign and creator are only a creator's
    word, never confirmed by a release), this publication is the brand's (a merchant key,
    the admin, or written to the topic without ``reported_by``), and it names the
    content's campaign (``first_campaign``).

    A creator who publishes another author's content id first (a squat) is never paid
    for it (held), and without this the author could not be credited at all: the brand
    publishes it for its author, which takes it over. The held publications are then
    forgotten, and the content's campaign, creator and first publication are the
    brand's (counted at once, fixed for good). A creator's key takes over nothing (two
    creators would take a content from each other in turns), and a released content is
    fixed: the brand confirmed whose it is. Nor does another campaign's publication take
    it over: the brand of one campaign has no say on a content a creator published for
    another brand's campaign (it would take it from that brand, which alone may release
    it or publish it for its author)."""
    return (
        held_for_release(first_reported_by, released)
        and reported_by != "creator"
        and campaign == first_campaign
    )


# How long after a stream's start (or end) its creator may report it with its own key.
# A creator declares its own streams: reported days later, a stream would claim orders
# already decided (or another creator's stream sales) on the creator's word alone.
CREATOR_LIVE_LAG_MS = 15 * 60 * 1000


def creator_live_problem(
    started_at: int | None,
    ended_at: int | None,
    now: int,
    recorded: tuple[int, int | None] | None,
    republished: bool,
) -> tuple[str, str] | None:
    """(field, reason) when a creator's own key may not publish these live times, else
    None. ``recorded``: the stream's start and end as published before (None: never
    published over HTTP); ``republished``: the content was published before at all.

    A creator reports its stream as it starts (the start at most ``CREATOR_LIVE_LAG_MS``
    before the request) and its end as it ends (likewise); a re-publication keeps the
    start and may only add an end the stream did not have. Older or moved times are the
    brand's to publish (a merchant key or the admin)."""
    lag = f"{CREATOR_LIVE_LAG_MS // 60_000} minutes"
    if started_at is None:
        return None
    if not republished:
        if now - started_at > CREATOR_LIVE_LAG_MS:
            return (
                "live_started_at",
                f"{(now - started_at) // 60_000} minutes ago: a creator reports its stream"
                f" within {lag} of its start; an older stream is published by the brand",
            )
        return None
    if recorded is None:
        return (
            "content_id",
            "this stream was not published by its creator's key: its end is published by the brand",
        )
    start, end = recorded
    if started_at != start:
        return ("live_started_at", f"a stream's start never moves: it was published as {start}")
    if end is not None:
        if ended_at != end:
            return ("live_ended_at", f"the stream's end was published already, as {end}")
        return None
    if ended_at is not None and now - ended_at > CREATOR_LIVE_LAG_MS:
        return (
            "live_ended_at",
            f"{(now - ended_at) // 60_000} minutes ago: a creator reports its stream's end"
            f" within {lag} of it; a later one is published by the brand",
        )
    return None
