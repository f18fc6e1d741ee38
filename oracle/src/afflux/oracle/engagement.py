"""Engagement lines of the batch reference: each content of a campaign-period taken from
all its events at once, then priced.

A content's events arrive in topic order (one key, one partition). Its final state is
worked out here in one pass, not incrementally: the last publication; the snapshots that
were each newer than every one before them (the others stale); the first of those that
crossed the review ceiling (the hold stays unless a release came before it); a hold from
the first publication when the creator's own key made it, its snapshots judged all the
same (what holds one joins the reason) and, once a release confirmed the publication
alone, judged again from the next one; a release. A creator's own key never re-dates a
published content. The price is the
core's (``afflux.shared.core.engagement.price``), shared like the rate helpers; the
minimum per creator and period sums the creator's content not on hold.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.engagement import (
    CREATOR_PUBLISHED,
    CREATOR_REPORTED,
    TAKEN_OVER,
    ContentEvent,
    ContentState,
    Publication,
    Release,
    Snapshot,
    TakenOver,
    first_receipt,
    price,
    review_hold,
)
from afflux.shared.core.ids import derived_id
from afflux.shared.core.terms import TermsVersion, terms_in_force


@dataclass(frozen=True, slots=True)
class EngagementLine:
    line_id: str
    affiliate_id: str
    time: int
    approve_at: int
    gross: int


def final_state(
    key: str, events: Iterable[ContentEvent], versions: Sequence[TermsVersion]
) -> ContentState:
    publication: Publication | None = None
    latest: Snapshot | None = None
    accepted = stale = 0
    held: str | None = None
    released: str | None = None
    publication_hold = f"publication: {CREATOR_PUBLISHED}"
    for event in events:
        if isinstance(event, TakenOver):
            latest, held = None, TAKEN_OVER  # held for good here, another author's figures
            continue
        if isinstance(event, Publication) and held == TAKEN_OVER:
            publication, latest, accepted, stale, held, released = None, None, 0, 0, None, None
        if isinstance(event, Publication):
            if publication is None and event.by_creator and released is None and held is None:
                held = publication_hold  # the creator's word until released
            if event.by_creator and publication is not None:
                # a creator's key never re-dates a published content (its terms, review)
                event = replace(event, published_at=publication.published_at)
            publication = first_receipt(publication, event)
            continue
        if isinstance(event, Release):
            released = released or event.event_id
            continue
        if latest is not None and event.as_of <= latest.as_of:
            stale += 1
            continue
        if event.by_creator and released is not None:
            stale += 1  # the release confirmed the creator's own figures up to it, no later
            continue
        if released is not None and held == publication_hold:
            held = released = None  # the publication confirmed; its figures not yet judged
        accepted += 1
        if released is None and held in (None, publication_hold):
            why = None
            if publication is not None:
                plan = terms_in_force(versions, publication.published_at).terms.plan.engagement
                if plan is not None and plan.review is not None:
                    why = review_hold(plan.review, latest, event, accepted)
            if why is None and event.by_creator:
                why = f"snapshot {accepted}: {CREATOR_REPORTED}"
            if why is not None:
                held = why if held is None else f"{held}; {why}"
        latest = event
    return ContentState(key, publication, latest, accepted, stale, held, released)


def engagement_lines(
    campaign_id: str,
    contents: Iterable[tuple[str, Sequence[ContentEvent]]],
    versions: Sequence[TermsVersion],
) -> list[EngagementLine]:
    """One line per published content whose terms pay engagement (zero ones included)."""
    states = [final_state(key, events, versions) for key, events in contents]
    by_creator: dict[str, list[ContentState]] = defaultdict(list)
    for state in states:
        if state.publication is not None:
            by_creator[state.publication.affiliate_id].append(state)
    out: list[EngagementLine] = []
    for creator, mine in sorted(by_creator.items()):
        total = sum(s.latest.interactions for s in mine if s.latest is not None and not s.on_hold)
        for state in mine:
            assert state.publication is not None
            at = state.publication.published_at
            terms = terms_in_force(versions, at).terms
            plan = terms.plan.engagement
            if plan is None:
                continue
            out.append(
                EngagementLine(
                    derived_id("line", "engagement", campaign_id, state.key),
                    creator,
                    at,
                    state.publication.lock_from + terms.lock_days * MS_PER_DAY,
                    price(plan, state, total).amount_minor,
                )
            )
    return out
