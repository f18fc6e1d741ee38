"""Pay per engagement: a content's state from its events, and what it is owed.

A content (identity ``<platform>:<content_id>``) is published once, or again with
changed details (the latest publication on the topic wins: a live stream's end comes
that way), and then observed by cumulative snapshots that arrive late, repeat and
sometimes go down. ``fold`` takes one event into a ``ContentState``:

* a snapshot newer (by ``as_of``) than the latest becomes the latest; one at or before
  it is counted as ``stale`` and changes nothing else, so the first snapshot seen for
  an ``as_of`` stays and a replay gives the same answer;
* with a ``review`` in the terms, the snapshot that shows interactions / followers
  above ``max_rate``, or a jump above ``max_jump`` times the previous snapshot's
  interactions, holds the content; the hold stays (a later, calmer snapshot does not
  lift it) until a release, which is for good;
* a snapshot the creator posted with its own key (``by_creator``) holds the content
  the same way, whatever the terms: the brand (or an admin) confirms the creator's
  figures by releasing it. After the release the creator's own figures count as
  stale (the hold would never come back to check them); figures from the brand's key,
  the admin or a platform integration on the topic are taken as they come;
* a content whose first publication came from the creator's own key (``by_creator``:
  its campaign and creator are the creator's word) is held from that publication, whoever
  posts its stats, until the brand releases it (``CREATOR_PUBLISHED``). Its snapshots
  are reviewed all the same: what holds one is added to the hold's reason, so the
  brand's release confirms figures it was shown; a release of the publication alone
  (no figures held) confirms the content, not its figures, which are reviewed from
  then on as a brand-published content's are (a hold after it needs a release of its
  own);
* a creator's own key never moves a published content's ``published_at`` (which picks
  its terms version, its review and its place in the cap order): its re-publication
  keeps the date the content has;
* a held content the brand's publication takes over (``TakenOver``: another creator or
  campaign, ``afflux.shared.core.content.takes_over``) stays held for good where it was,
  its figures dropped; its life goes on where the brand's publication puts it.

``price`` turns the latest snapshot into the amount owed under the plan, with the
reason in words. Nothing here reads a clock or does I/O; the ledger (``journal.period``)
and the batch reference (``afflux.oracle.commission``) call the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, Decimal

from afflux.shared.core.engagement_terms import (
    EngagementCommission,
    EngagementReview,
    EngagementValues,
)
from afflux.shared.core.money import MAX_AMOUNT_MINOR

INTERACTION_KINDS = ("likes", "comments", "shares", "saves")
# Why a snapshot posted with the creator's own key holds its content: a creator's key
# could otherwise name any figures and be paid for them.
CREATOR_REPORTED = "figures reported by the creator itself, paid once the brand confirms them"
# Why a content first published with the creator's own key is held: a creator could
# otherwise publish another author's post id under its own name and be paid for the
# brand's (or a platform's) stats of it.
CREATOR_PUBLISHED = "published by the creator itself, paid once the brand confirms it"
PUBLICATION_HOLD = f"publication: {CREATOR_PUBLISHED}"
# Why a held content earns nothing for good where its creator published it: the brand's
# publication naming another creator (or campaign) took it over
# (``afflux.shared.core.content.takes_over``).
TAKEN_OVER = "taken over: the brand published this content for another creator"
TIMES = "\u00d7"  # the multiplication sign in explanations


@dataclass(frozen=True, slots=True)
class Publication:
    key: str  # <platform>:<content_id>
    affiliate_id: str
    campaign_id: str
    kind: str
    published_at: int
    event_id: str
    # When afflux first accepted a publication of the content (None: not known, a record
    # written straight to the topic): the lock counts from the later of the two times.
    received_at: int | None = None
    # Published with the creator's own key (``reported_by: creator``): when the content's
    # first publication is, it earns nothing until the brand releases it
    # (``CREATOR_PUBLISHED``).
    by_creator: bool = False

    @property
    def lock_from(self) -> int:
        """When the content's engagement pay starts its lock: a ``published_at`` backdated
        before its receipt does not bring the approval forward."""
        if self.received_at is None:
            return self.published_at
        return max(self.published_at, self.received_at)


@dataclass(frozen=True, slots=True)
class Snapshot:
    key: str
    as_of: int
    views: int
    impressions: int
    likes: int
    comments: int
    shares: int
    saves: int
    followers: int
    event_id: str
    # Posted with the creator's own key: figures that set its own pay, which the brand
    # confirms by a release before they are paid (``CREATOR_REPORTED``).
    by_creator: bool = False

    @property
    def interactions(self) -> int:
        return self.likes + self.comments + self.shares + self.saves


@dataclass(frozen=True, slots=True)
class Release:
    """A reviewer (an admin or the campaign's merchant) released a held content."""

    key: str
    event_id: str
    released_by: str


@dataclass(frozen=True, slots=True)
class TakenOver:
    """The brand's publication took over a held content (``content.takes_over``): where
    the held publication put it, the content stays held for good, its figures dropped
    (another author's post is no reach of the creator's); a publication of it folded
    there afterwards (the brand's, in the same campaign-period) starts it again."""

    key: str
    event_id: str


def taken_over(key: str, by_event_id: str) -> TakenOver:
    """The fact a taking-over publication (event id ``by_event_id``) leaves where the
    content was: the same id in the ledger, the batch reference and the what-if."""
    return TakenOver(key, f"{by_event_id}:takes-over")


ContentEvent = Publication | Snapshot | Release | TakenOver


@dataclass(frozen=True, slots=True)
class ContentState:
    key: str
    publication: Publication | None = None
    latest: Snapshot | None = None
    snapshots: int = 0  # snapshots that became the latest, in arrival order
    stale: int = 0  # snapshots at or before the latest's as_of: ignored
    held: str | None = None  # why the content is held for review
    released: str | None = None  # the release's event id
    # The latest snapshot not on hold: the figures reach and EMV show. A snapshot that
    # holds its content (a jump, a rate, a creator's own figures) counted at once, and one
    # of 10^12 likes read as 50 billion EUR of EMV on the brand's page.
    confirmed: Snapshot | None = None

    @property
    def shown(self) -> Snapshot | None:
        """The figures to report: the latest, or, on hold, the last before the hold."""
        return self.confirmed if self.on_hold else self.latest

    @property
    def interactions(self) -> int:
        return 0 if self.latest is None else self.latest.interactions

    @property
    def on_hold(self) -> bool:
        return self.held is not None and self.released is None

    @property
    def awaits_release(self) -> bool:
        """Held because the creator's own key published it: the brand has not confirmed
        the content yet (and maybe not its figures either)."""
        return self.on_hold and self.held is not None and self.held.startswith(PUBLICATION_HOLD)

    @property
    def publication_confirmed(self) -> bool:
        """Released while held only for its publication: its figures were never judged,
        so later snapshots are reviewed."""
        return self.released is not None and self.held == PUBLICATION_HOLD


def fold(state: ContentState, event: ContentEvent, review: EngagementReview | None) -> ContentState:
    """``state`` after ``event`` (events of one content, in topic order)."""
    if isinstance(event, TakenOver):
        return ContentState(
            state.key, state.publication, None, state.snapshots, state.stale, TAKEN_OVER
        )
    if isinstance(event, Publication):
        if state.held == TAKEN_OVER:
            state = ContentState(state.key)  # the brand's publication starts it again
        held = state.held
        if state.publication is None and event.by_creator and state.released is None:
            held = held or PUBLICATION_HOLD
        if event.by_creator and state.publication is not None:
            event = replace(event, published_at=state.publication.published_at)
        return replace(state, publication=first_receipt(state.publication, event), held=held)
    if isinstance(event, Release):  # the figures held are confirmed with it
        if state.released:
            return state
        return replace(state, released=event.event_id, confirmed=state.latest)
    latest = state.latest
    if latest is not None and event.as_of <= latest.as_of:
        return replace(state, stale=state.stale + 1)
    if event.by_creator and state.released is not None:
        # The release confirmed the creator's figures up to it; figures of its own after
        # it would be paid unchecked (the hold never comes back), so they count as stale.
        return replace(state, stale=state.stale + 1)
    if state.publication_confirmed:
        # the release confirmed the publication, not figures: they are judged from here
        # on, and a hold now needs a release of its own
        state = replace(state, held=None, released=None)
    number = state.snapshots + 1
    held = state.held
    if state.released is None and (held is None or held == PUBLICATION_HOLD):
        why = review_hold(review, latest, event, number) if review is not None else None
        if why is None and event.by_creator:
            why = f"snapshot {number}: {CREATOR_REPORTED}"
        if why is not None:
            held = why if held is None else f"{held}; {why}"
    after = replace(state, latest=event, snapshots=number, held=held)
    return after if after.on_hold else replace(after, confirmed=event)


def first_receipt(before: Publication | None, after: Publication) -> Publication:
    """``after`` (a later publication replaces the earlier one) with the earliest receipt
    of the two: re-publishing, as a live stream's end does, never moves the lock later."""
    if before is None or before.received_at is None:
        return after
    if after.received_at is not None and after.received_at <= before.received_at:
        return after
    return replace(after, received_at=before.received_at)


def review_hold(
    review: EngagementReview, previous: Snapshot | None, snapshot: Snapshot, number: int
) -> str | None:
    """Why ``snapshot`` (the ``number``-th accepted) holds its content, or None."""
    interactions = snapshot.interactions
    if review.max_rate is not None and interactions > 0:
        if snapshot.followers == 0:
            return f"snapshot {number}: {interactions:,} interactions and 0 followers"
        rate = Decimal(interactions) / Decimal(snapshot.followers)
        if rate > review.max_rate:
            return (
                f"snapshot {number}: engagement rate {interactions:,} / "
                f"{snapshot.followers:,} followers = {_num(rate.quantize(Decimal('0.0001')))}"
                f" above {_num(review.max_rate)}"
            )
    if (
        review.max_jump is not None
        and previous is not None
        and previous.interactions >= max(1, review.jump_min_interactions)
        and Decimal(interactions) > review.max_jump * previous.interactions
    ):
        return (
            f"snapshot {number}: {interactions:,} interactions after {previous.interactions:,},"
            f" a jump above {_num(review.max_jump)}{TIMES}"
        )
    return None


@dataclass(frozen=True, slots=True)
class Priced:
    amount_minor: int
    rule: str


def price(plan: EngagementCommission, state: ContentState, creator_interactions: int) -> Priced:
    """What the content is owed at its latest snapshot, and why.

    ``creator_interactions``: the interactions of all the creator's content of the
    period that is not held (used when the minimum is per creator and period).
    """
    if state.held == TAKEN_OVER:
        return Priced(0, f"engagement: {TAKEN_OVER}; nothing paid")
    snap = state.latest
    if snap is None:
        return Priced(0, "engagement: no stats yet")
    at = f"snapshot {state.snapshots} (as of {_iso(snap.as_of)})"
    if state.on_hold:
        return Priced(
            0,
            f"engagement: held for review since {state.held}; nothing paid until released"
            f" (POST /v1/content/{snap.key.replace(':', '/', 1)}/release)",
        )
    released = f"; released after review ({state.held})" if state.held else ""
    interactions = snap.interactions
    minimum = plan.minimum_interactions
    if plan.minimum_scope == "content" and interactions < minimum:
        return Priced(
            0,
            f"engagement: {interactions:,} interactions at {at}: minimum {minimum:,} per"
            f" content not reached, nothing paid{released}",
        )
    if plan.minimum_scope == "creator_period" and creator_interactions < minimum:
        return Priced(
            0,
            f"engagement: the creator's content of the period has {creator_interactions:,}"
            f" interactions at {at}: minimum {minimum:,} per creator and period not"
            f" reached, nothing paid{released}",
        )
    values, tier = plan.values, ""
    for candidate in plan.tiers:
        if candidate.from_interactions <= interactions:
            values, tier = candidate.values, f" (tier from {candidate.from_interactions:,})"
    total, terms = valued(snap, values)
    worth = int(total.to_integral_value(rounding=ROUND_FLOOR))
    amount = min(MAX_AMOUNT_MINOR, worth)
    rule = f"engagement at {at}: {' + '.join(terms) or 'nothing valued'} = {worth}{tier}"
    if worth > amount:  # the sum is stated as computed, then the clamp, as a cap is
        rule += f", capped at {MAX_AMOUNT_MINOR} (the largest amount afflux carries)"
    cap = plan.content_cap_minor
    if cap is not None and amount > cap:
        amount = cap
        rule += f", capped at {cap} per content"
    return Priced(amount, rule + released)


def valued(snap: Snapshot, values: EngagementValues) -> tuple[Decimal, list[str]]:
    """The snapshot's value before rounding, and its terms in words."""
    parts = (
        (snap.likes, values.like_minor, "likes"),
        (snap.comments, values.comment_minor, "comments"),
        (snap.shares, values.share_minor, "shares"),
        (snap.saves, values.save_minor, "saves"),
    )
    total = Decimal(0)
    words: list[str] = []
    for count, value, name in parts:
        if value and count:
            total += count * value
            words.append(f"{count:,} {name} {TIMES} {_num(value)}")
    if values.per_1000_views_minor and snap.views:
        total += snap.views * values.per_1000_views_minor / 1000
        words.append(f"{snap.views:,} views {TIMES} {_num(values.per_1000_views_minor)} per 1,000")
    return total, words


def _num(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
