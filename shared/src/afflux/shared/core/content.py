"""A creator's content and its platform stats: identity and bounds shared by the wire
contract (``afflux.shared.events``), the ledger and the oracle."""

from __future__ import annotations

from collections.abc import Iterable

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


def content_backfill_limit_ms(versions: Iterable[TermsVersion]) -> int:
    """How old a publication's times may be when a creator or merchant posts it: the
    campaign's longest cookie window plus its longest lock, the orders API's backfill
    limit. An older stream would claim orders whose commission is already approved:
    closed money, which an operator backfills. (An engagement line's lock counts from
    the publication's receipt when ``published_at`` is earlier: ``Publication.lock_from``.)"""
    terms = [v.terms for v in versions]
    if not terms:
        return 0
    return max(t.max_window_ms() for t in terms) + max(t.lock_ms for t in terms)
