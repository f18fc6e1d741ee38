"""A campaign-period's engagement lines: one per content published in the period.

The line of a content belongs to the period of its publication (``published_at``),
whenever its stats arrive; it is dated at ``published_at`` and approved ``lock_days``
(of the terms in force then) after it, like a conversion at that time, or after its
receipt when ``published_at`` was backdated (``Publication.lock_from``). What it owes
follows the content's latest snapshot (``afflux.shared.core.engagement.price``): a
later snapshot that changes the amount, up or down, is a correction posting on the
same line, before or after approval, never a rewrite. With the minimum counted per
creator and period, every content of the creator in the period is priced again when
one of them changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.engagement import ContentEvent, ContentState, Priced, fold, price
from afflux.shared.core.engagement_terms import EngagementCommission
from afflux.shared.core.ids import derived_id
from afflux.shared.core.terms import TermsVersion, terms_in_force

ENGAGEMENT = "engagement"


def engagement_line_id(campaign_id: str, key: str) -> str:
    return derived_id("line", ENGAGEMENT, campaign_id, key)


def content_terms(versions: Sequence[TermsVersion], state: ContentState) -> TermsVersion | None:
    """The version in force at the content's publication: its values, review and lock."""
    if state.publication is None or not versions:
        return None
    return terms_in_force(versions, state.publication.published_at)


def plan_of(versions: Sequence[TermsVersion], state: ContentState) -> EngagementCommission | None:
    version = content_terms(versions, state)
    return None if version is None else version.terms.plan.engagement


def fold_events(
    contents: dict[str, ContentState],
    events: Iterable[ContentEvent],
    versions: Sequence[TermsVersion],
) -> set[str]:
    """Take ``events`` (in topic order) into ``contents``; the keys that changed."""
    changed: set[str] = set()
    for event in events:
        state = contents.get(event.key) or ContentState(event.key)
        plan = plan_of(versions, state)
        after = fold(state, event, plan.review if plan is not None else None)
        if after != state:
            contents[event.key] = after
            changed.add(event.key)
    return changed


def creator_interactions(states: Iterable[ContentState]) -> int:
    """What counts toward a minimum per creator and period: content not on hold."""
    return sum(s.interactions for s in states if not s.on_hold)


def priced(
    versions: Sequence[TermsVersion], state: ContentState, creator_total: int
) -> tuple[Priced, int, int] | None:
    """(what the content owes, its line's approval time, its terms version), or None
    before its publication is known."""
    version = content_terms(versions, state)
    if version is None or state.publication is None:
        return None
    plan = version.terms.plan.engagement
    approve_at = state.publication.lock_from + version.terms.lock_days * MS_PER_DAY
    if plan is None:
        return (
            Priced(0, "engagement: the campaign's terms pay no engagement"),
            approve_at,
            (version.version),
        )
    return price(plan, state, creator_total), approve_at, version.version


def by_creator(contents: Mapping[str, ContentState]) -> dict[str, list[ContentState]]:
    out: dict[str, list[ContentState]] = {}
    for key in sorted(contents):
        state = contents[key]
        if state.publication is not None:
            out.setdefault(state.publication.affiliate_id, []).append(state)
    return out
