"""Pay per engagement, priced from a content's latest snapshot and posted as the journal
posts everything: a change is a correction that names what it corrects."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import pytest

from afflux.oracle.engagement import engagement_lines as oracle_lines
from afflux.payouts.routes.content import release_id
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.engagement import (
    TAKEN_OVER,
    ContentEvent,
    ContentState,
    Priced,
    Publication,
    Release,
    Snapshot,
    fold,
    price,
    taken_over,
)
from afflux.shared.core.engagement_terms import EngagementCommission, EngagementReview
from afflux.shared.core.journal.period import PeriodState, StepInput
from afflux.shared.core.journal.records import Posting
from afflux.shared.core.money import MAX_AMOUNT_MINOR
from afflux.shared.core.terms import CampaignTerms, TermsVersion

pytestmark = pytest.mark.unit

NOV_1 = 1_793_491_200_000  # 2026-11-01T00:00:00Z
KEY = "instagram:C1"
PLAN = EngagementCommission.model_validate(
    {
        "values": {"like_minor": "0.05", "comment_minor": "1", "per_1000_views_minor": "2"},
        "minimum_interactions": 500,
        "tiers": [{"from_interactions": 10_000, "values": {"like_minor": "0.1"}}],
        "content_cap_minor": 5_000,
    }
)


def snap(
    n: int, likes: int, *, comments: int = 0, views: int = 0, followers: int = 10**6
) -> Snapshot:
    return Snapshot(KEY, NOV_1 + n * 3_600_000, views, 0, likes, comments, 0, 0, followers, f"s{n}")


def state_at(*snapshots: Snapshot, review: EngagementReview | None = None) -> ContentState:
    state = ContentState(KEY)
    for s in snapshots:
        state = fold(state, s, review)
    return state


@dataclass(frozen=True)
class PriceCase:
    name: str
    snapshot: Snapshot
    owed: int


PRICE_CASES = [
    # the minimum counts interactions (views are no interaction)
    PriceCase("one interaction below the minimum", snap(1, 499, views=10**6), 0),
    PriceCase("at the minimum", snap(1, 500), 25),
    PriceCase("likes and comments", snap(1, 512, comments=20), 45),  # 25.6 + 20, rounded down
    PriceCase("views per 1,000 beside", snap(1, 500, views=1_500), 28),  # 25 + 3
    # the tier from 10,000 interactions values all of them at its values
    PriceCase("one below the tier", snap(1, 9_999), 499),
    PriceCase("at the tier", snap(1, 10_000), 1_000),
    # the content cap
    PriceCase("at the cap", snap(1, 50_000), 5_000),
    PriceCase("above the cap", snap(1, 60_000), 5_000),
]


@pytest.mark.parametrize("case", PRICE_CASES, ids=lambda c: c.name)
def test_a_contents_pay_at_the_boundaries(case: PriceCase) -> None:
    assert price(PLAN, state_at(case.snapshot), 0).amount_minor == case.owed


def test_the_pay_explains_itself() -> None:
    priced = price(PLAN, state_at(snap(1, 100), snap(2, 300), snap(3, 512, comments=20)), 0)
    assert priced.rule == (
        "engagement at snapshot 3 (as of 2026-11-01T03:00:00Z): 512 likes \u00d7 0.05"
        " + 20 comments \u00d7 1 = 45"
    )
    below = price(PLAN, state_at(snap(1, 100), snap(2, 300)), 0)
    assert below.rule == (
        "engagement: 300 interactions at snapshot 2 (as of 2026-11-01T02:00:00Z): minimum 500"
        " per content not reached, nothing paid"
    )


def test_a_worth_beyond_the_largest_amount_is_paid_the_largest_and_says_so() -> None:
    """A trillion likes at a billion minor units each is 10**21: paid at the largest amount
    afflux carries, and the line states the sum it computed and the clamp, not a false
    equation."""
    plan = EngagementCommission.model_validate({"values": {"like_minor": "1000000000"}})
    priced = price(plan, state_at(snap(1, 10**12)), 0)
    assert priced.amount_minor == MAX_AMOUNT_MINOR
    assert priced.rule == (
        "engagement at snapshot 1 (as of 2026-11-01T01:00:00Z): 1,000,000,000,000 likes"
        f" \u00d7 1000000000 = {10**21}, capped at {MAX_AMOUNT_MINOR} (the largest amount"
        " afflux carries)"
    )


def test_the_minimum_per_creator_and_period_counts_all_their_content() -> None:
    plan = PLAN.model_copy(update={"minimum_scope": "creator_period"})
    state = state_at(snap(1, 300))
    assert price(plan, state, 499).amount_minor == 0
    assert price(plan, state, 500).amount_minor == 15


@dataclass(frozen=True)
class FoldCase:
    name: str
    snapshots: tuple[Snapshot, ...]
    latest: str  # the event id of the snapshot that stays the latest
    stale: int


FOLD_CASES = [
    FoldCase("in order", (snap(1, 10), snap(2, 20)), "s2", 0),
    # a late snapshot older than the latest is ignored, only counted
    FoldCase("late and older", (snap(2, 20), snap(1, 10)), "s2", 1),
    # the same as_of again: the first seen stays
    FoldCase(
        "same as_of repeated",
        (snap(1, 10), Snapshot(KEY, NOV_1 + 3_600_000, 0, 0, 99, 0, 0, 0, 1, "s1-again")),
        "s1",
        1,
    ),
    # a newer snapshot with fewer likes (fake ones removed) wins
    FoldCase("newer and lower", (snap(1, 900), snap(2, 400)), "s2", 0),
]


@pytest.mark.parametrize("case", FOLD_CASES, ids=lambda c: c.name)
def test_the_latest_snapshot_by_as_of_wins(case: FoldCase) -> None:
    state = state_at(*case.snapshots)
    assert state.latest is not None
    assert (state.latest.event_id, state.stale) == (case.latest, case.stale)


@dataclass(frozen=True)
class ReviewCase:
    name: str
    review: dict[str, Any]
    snapshots: tuple[Snapshot, ...]
    held: bool


REVIEW_CASES = [
    # engagement rate = interactions / followers
    ReviewCase("rate at the ceiling", {"max_rate": "0.5"}, (snap(1, 500, followers=1_000),), False),
    ReviewCase("rate above it", {"max_rate": "0.5"}, (snap(1, 501, followers=1_000),), True),
    ReviewCase("no followers", {"max_rate": "0.5"}, (snap(1, 1, followers=0),), True),
    # a jump between consecutive snapshots
    ReviewCase("jump at the factor", {"max_jump": "3"}, (snap(1, 100), snap(2, 300)), False),
    ReviewCase("jump above it", {"max_jump": "3"}, (snap(1, 100), snap(2, 301)), True),
    ReviewCase(
        "jump from too few to judge", {"max_jump": "3"}, (snap(1, 99), snap(2, 10_000)), False
    ),
    # a hold stays when a later snapshot is calm again
    ReviewCase(
        "held stays", {"max_jump": "3"}, (snap(1, 100), snap(2, 1_000), snap(3, 1_100)), True
    ),
]


@pytest.mark.parametrize("case", REVIEW_CASES, ids=lambda c: c.name)
def test_the_review_ceiling_holds_content(case: ReviewCase) -> None:
    review = EngagementReview.model_validate(case.review)
    state = state_at(*case.snapshots, review=review)
    assert state.on_hold is case.held
    if case.held:
        assert price(PLAN, state, 0).amount_minor == 0


# -- through the journal -----------------------------------------------------------------

TERMS = CampaignTerms.model_validate(
    {
        "campaign_id": "shoes",
        "merchant_id": "m",
        "currency": "EUR",
        "lock_days": 30,
        "plan": {
            "engagement": {
                "values": {"like_minor": "1"},
                "minimum_interactions": 100,
                "review": {"max_rate": "0.5"},
            }
        },
    }
)
VERSIONS = (TermsVersion(version=1, effective_from=0, published_at=0, terms=TERMS),)
PUBLISHED = Publication(KEY, "ana", "shoes", "post", NOV_1 + MS_PER_DAY, "pub-1")
APPROVE_AT = NOV_1 + 31 * MS_PER_DAY


def journal(*batches: tuple[ContentEvent, ...]) -> list[list[Posting]]:
    state = PeriodState("shoes", "2026-11", "EUR", VERSIONS)
    return [list(state.step(StepInput(content=batch)).postings) for batch in batches]


def row(p: Posting) -> tuple[str, int, int, str | None]:
    return (p.kind, p.amount_minor, p.approve_at, p.corrects)


def test_a_drop_after_payment_is_a_correction_naming_the_posting_it_corrects() -> None:
    first, grown, dropped = journal((PUBLISHED, snap(1, 300)), (snap(2, 400),), (snap(3, 250),))
    assert [row(p) for p in first] == [("engagement_pay", 300, APPROVE_AT, None)]
    line = first[0].line_id
    assert [row(p) for p in grown] == [
        ("engagement_correction", 100, APPROVE_AT, f"{line}.1"),
    ]
    assert [row(p) for p in dropped] == [
        ("engagement_correction", -150, APPROVE_AT, f"{line}.2"),
    ]
    assert dropped[0].rule.endswith("= 250 (was 400)")


def test_a_drop_below_the_minimum_reverses_the_line() -> None:
    _, dropped = journal((PUBLISHED, snap(1, 300)), (snap(2, 99),))
    assert [(p.kind, p.amount_minor) for p in dropped] == [("engagement_reversal", -300)]


def test_a_stale_snapshot_posts_nothing() -> None:
    _, stale = journal((PUBLISHED, snap(2, 300)), (snap(1, 900),))
    assert stale == []


def test_held_content_is_paid_once_released() -> None:
    held, released = journal(
        (PUBLISHED, snap(1, 600, followers=1_000)), (Release(KEY, "rel-1", "merchant:m"),)
    )
    assert held == []
    assert [(p.kind, p.amount_minor) for p in released] == [("engagement_pay", 600)]
    assert "released after review" in released[0].rule
    assert released[0].source_event_ids == ("pub-1", "s1", "rel-1")


def test_values_in_minor_units_may_be_fractions() -> None:
    assert PLAN.values.like_minor == Decimal("0.05")


# -- the lock counts from receipt when published_at is backdated --------------------------


@dataclass(frozen=True)
class LockCase:
    name: str
    published_at: int
    received_at: int | None
    approve_at: int


LOCK_CASES = [
    LockCase("received as published", NOV_1, NOV_1, NOV_1 + 30 * MS_PER_DAY),
    # a publication posted 45 days after its stated time: the lock starts at receipt
    LockCase("backdated 45 days", NOV_1, NOV_1 + 45 * MS_PER_DAY, NOV_1 + 75 * MS_PER_DAY),
    LockCase("backdated 1 ms", NOV_1, NOV_1 + 1, NOV_1 + 1 + 30 * MS_PER_DAY),
    # received before its stated time (a clock a little ahead): published_at counts
    LockCase("received 1 ms before", NOV_1, NOV_1 - 1, NOV_1 + 30 * MS_PER_DAY),
    # written straight to the topic, no receipt: published_at counts, as before
    LockCase("no receipt", NOV_1, None, NOV_1 + 30 * MS_PER_DAY),
]


@pytest.mark.parametrize("case", LOCK_CASES, ids=lambda c: c.name)
def test_engagement_pay_is_approved_a_lock_after_the_later_of_publication_and_receipt(
    case: LockCase,
) -> None:
    published = Publication(
        KEY, "ana", "shoes", "post", case.published_at, "pub-1", case.received_at
    )
    (postings,) = journal((published, snap(1, 300)))
    assert [row(p) for p in postings] == [("engagement_pay", 300, case.approve_at, None)]
    (line,) = oracle_lines("shoes", [(KEY, [published, snap(1, 300)])], VERSIONS)
    assert (line.time, line.approve_at) == (case.published_at, case.approve_at)


def test_republishing_keeps_the_first_receipt() -> None:
    first = Publication(KEY, "ana", "shoes", "live", NOV_1, "pub-1", NOV_1 + 40 * MS_PER_DAY)
    # the stream's end, posted later again: the lock already counts from the first receipt
    again = Publication(KEY, "ana", "shoes", "live", NOV_1, "pub-2", NOV_1 + 41 * MS_PER_DAY)
    approve_at = NOV_1 + 70 * MS_PER_DAY
    (postings,) = journal((first, again, snap(1, 300)))
    assert [row(p) for p in postings] == [("engagement_pay", 300, approve_at, None)]
    (line,) = oracle_lines("shoes", [(KEY, [first, again, snap(1, 300)])], VERSIONS)
    assert line.approve_at == approve_at


def own(n: int, likes: int, *, followers: int = 10**6) -> Snapshot:
    """A snapshot the creator posted with its own key."""
    return replace(snap(n, likes, followers=followers), event_id=f"own{n}", by_creator=True)


@dataclass(frozen=True)
class CreatorCase:
    name: str
    batches: tuple[tuple[ContentEvent, ...], ...]
    paid: list[list[tuple[str, int]]]  # (kind, amount) per batch


RELEASE = Release(KEY, "rel-1", "merchant:m")
RELEASE_2 = Release(KEY, "rel-2", "merchant:m")
CREATOR_CASES = [
    # however calm, the creator's own figures wait for the brand's release
    CreatorCase("own figures are held", ((PUBLISHED, own(1, 300)),), [[]]),
    CreatorCase(
        "released: paid at its latest own figures",
        ((PUBLISHED, own(1, 300), own(2, 400)), (RELEASE,)),
        [[], [("engagement_pay", 400)]],
    ),
    # after the release the creator's own figures move nothing (10^9 likes included)
    CreatorCase(
        "own figures after the release are stale",
        ((PUBLISHED, own(1, 300)), (RELEASE,), (own(2, 10**9),)),
        [[], [("engagement_pay", 300)], []],
    ),
    # the brand's (or a platform's) figures are taken as they come, before and after
    CreatorCase(
        "the brand's figures pay at once",
        ((PUBLISHED, snap(1, 300)), (own(2, 10**9),)),
        [[("engagement_pay", 300)], [("engagement_reversal", -300)]],
    ),
    CreatorCase(
        "the brand's figures after a release",
        ((PUBLISHED, own(1, 300)), (RELEASE,), (snap(2, 450),)),
        [[], [("engagement_pay", 300)], [("engagement_correction", 150)]],
    ),
]


@pytest.mark.parametrize("case", CREATOR_CASES, ids=lambda c: c.name)
def test_a_creators_own_figures_are_paid_only_once_the_brand_confirms_them(
    case: CreatorCase,
) -> None:
    postings = journal(*case.batches)
    assert [[(p.kind, p.amount_minor) for p in batch] for batch in postings] == case.paid
    # the batch reference nets to the same amount
    events = [event for batch in case.batches for event in batch]
    net = sum(p.amount_minor for batch in postings for p in batch)
    lines = oracle_lines("shoes", [(KEY, events)], VERSIONS)
    assert sum(line.gross for line in lines) == net


def test_a_held_creator_figure_says_why() -> None:
    state = state_at(own(1, 300))
    assert (
        state.held
        == "snapshot 1: figures reported by the creator itself, paid once the brand confirms them"
    )


# -- a content its creator's own key published waits for the brand's release ------------

CREATOR_PUBLISHED = replace(PUBLISHED, event_id="pub-own", by_creator=True)
BRAND_AGAIN = replace(PUBLISHED, event_id="pub-brand")
PUBLICATION_CASES = [
    # the squat: a creator publishes a post id under its own name, the brand's (or a
    # platform's) stats of it pay nothing until the brand releases the content
    CreatorCase(
        "the brand's figures on a creator's content", ((CREATOR_PUBLISHED, snap(1, 300)),), [[]]
    ),
    CreatorCase(
        "released: paid at the latest figures",
        ((CREATOR_PUBLISHED, snap(1, 300), snap(2, 400)), (RELEASE,)),
        [[], [("engagement_pay", 400)]],
    ),
    CreatorCase(
        "released first: the figures after it pay at once",
        ((CREATOR_PUBLISHED,), (RELEASE,), (snap(1, 300),)),
        [[], [], [("engagement_pay", 300)]],
    ),
    # the brand publishing the content again is no release: its first publication decides
    CreatorCase(
        "a brand's re-publication does not release it",
        ((CREATOR_PUBLISHED, snap(1, 300)), (BRAND_AGAIN, snap(2, 400))),
        [[], []],
    ),
    # first published by the brand: the creator's key publishing it again holds nothing
    CreatorCase(
        "the creator re-publishes the brand's content",
        ((PUBLISHED, snap(1, 300)), (CREATOR_PUBLISHED, snap(2, 400))),
        [[("engagement_pay", 300)], [("engagement_correction", 100)]],
    ),
    # the release confirmed the publication, not figures: a snapshot above the review
    # after it holds the content again, until a release of its own
    CreatorCase(
        "released first: figures above the review after it are held",
        ((CREATOR_PUBLISHED,), (RELEASE,), (snap(1, 300, followers=500),), (RELEASE_2,)),
        [[], [], [], [("engagement_pay", 300)]],
    ),
    CreatorCase(
        "released first: calm figures pay, a jump above the review is held",
        ((CREATOR_PUBLISHED,), (RELEASE,), (snap(1, 300),), (snap(2, 900, followers=1_000),)),
        [[], [], [("engagement_pay", 300)], [("engagement_reversal", -300)]],
    ),
    # the creator's own figures after a release count as stale, whatever it released
    CreatorCase(
        "released first: the creator's own figures after it are stale",
        ((CREATOR_PUBLISHED,), (RELEASE,), (own(1, 300),), (snap(2, 200),)),
        [[], [], [], [("engagement_pay", 200)]],
    ),
    # judged while the publication waits: the release is of figures the brand was shown
    CreatorCase(
        "figures above the review before the release",
        ((CREATOR_PUBLISHED, snap(1, 300, followers=500)), (RELEASE,)),
        [[], [("engagement_pay", 300)]],
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", PUBLICATION_CASES, ids=lambda c: c.name)
def test_a_content_the_creator_published_is_paid_only_once_the_brand_releases_it(
    case: CreatorCase,
) -> None:
    postings = journal(*case.batches)
    assert [[(p.kind, p.amount_minor) for p in batch] for batch in postings] == case.paid
    events = [event for batch in case.batches for event in batch]
    lines = oracle_lines("shoes", [(KEY, events)], VERSIONS)
    assert sum(line.gross for line in lines) == sum(
        p.amount_minor for batch in postings for p in batch
    )


def test_a_content_held_for_its_creators_publication_says_why() -> None:
    state = fold(ContentState(KEY), CREATOR_PUBLISHED, None)
    state = fold(state, snap(1, 300), None)
    assert (
        state.held
        == "publication: published by the creator itself, paid once the brand confirms it"
    )
    assert state.awaits_release
    owed = price(PLAN, state, 0)
    assert owed.amount_minor == 0
    assert "held for review since publication: published by the creator itself" in owed.rule
    assert "POST /v1/content/instagram/C1/release" in owed.rule
    assert not fold(state, RELEASE, None).awaits_release


def test_figures_above_the_review_join_the_publication_holds_reason() -> None:
    review = EngagementReview(max_rate=Decimal("0.5"))
    state = fold(ContentState(KEY), CREATOR_PUBLISHED, review)
    state = fold(state, snap(1, 300, followers=500), review)
    assert state.held == (
        "publication: published by the creator itself, paid once the brand confirms it;"
        " snapshot 1: engagement rate 300 / 500 followers = 0.6 above 0.5"
    )
    assert state.awaits_release


@pytest.mark.parametrize("first", [PUBLISHED, CREATOR_PUBLISHED], ids=["brand's", "creator's"])
def test_a_creators_key_never_moves_a_published_contents_date(first: Publication) -> None:
    """The date picks the terms version, the review and the place in the cap order: a
    creator re-dating the brand's post skipped a review added since."""
    earlier = replace(CREATOR_PUBLISHED, event_id="pub-redated", published_at=NOV_1)
    state = fold(fold(ContentState(KEY), first, None), earlier, None)
    assert state.publication is not None
    assert state.publication.published_at == first.published_at
    assert state.publication.event_id == "pub-redated"  # the rest of it is taken
    lines = oracle_lines("shoes", [(KEY, [first, earlier, snap(1, 300)])], VERSIONS)
    assert [line.time for line in lines] == [first.published_at]


# -- a squat taken over by the brand's publication, in the same campaign-period ------------

SQUAT = replace(PUBLISHED, affiliate_id="mallory", event_id="pub-squat", by_creator=True)
FOR_AUTHOR = replace(PUBLISHED, event_id="pub-author")


@pytest.mark.parametrize("split", [False, True], ids=["one batch", "two batches"])
def test_a_squat_taken_over_in_its_own_period_pays_the_author(split: bool) -> None:
    """The squat's line never paid (held): the content's line is then the author's, and
    pays the author the figures that follow, never the squatter."""
    taken = (taken_over(KEY, FOR_AUTHOR.event_id), FOR_AUTHOR, snap(2, 400))
    batches = ((SQUAT, snap(1, 300)), taken) if split else ((SQUAT, snap(1, 300), *taken),)
    postings = [p for batch in journal(*batches) for p in batch]
    assert [(p.affiliate_id, p.kind, p.amount_minor) for p in postings] == [
        ("ana", "engagement_pay", 400)
    ]
    events = [event for batch in batches for event in batch]
    lines = oracle_lines("shoes", [(KEY, events)], VERSIONS)
    assert [(line.affiliate_id, line.gross) for line in lines] == [("ana", 400)]


def test_a_squat_taken_over_stays_held_and_says_why() -> None:
    state = fold(fold(ContentState(KEY), SQUAT, None), snap(1, 300), None)
    state = fold(state, taken_over(KEY, "pub-author"), None)
    assert (state.held, state.latest, state.awaits_release) == (TAKEN_OVER, None, False)
    assert price(PLAN, state, 0) == Priced(0, f"engagement: {TAKEN_OVER}; nothing paid")


def test_a_content_held_again_after_a_release_takes_a_release_of_its_own() -> None:
    """The route names a release after the hold it lifts: the ledger takes a content's
    event id once, so a second release under the first one's id was dropped and the
    content stayed held for good."""
    review = EngagementReview(max_rate=Decimal("0.5"))
    published = fold(ContentState(KEY), CREATOR_PUBLISHED, review)
    first = release_id(KEY, published)
    confirmed = fold(published, Release(KEY, first, "merchant:m"), review)
    held_again = fold(confirmed, snap(1, 600, followers=1_000), review)
    second = release_id(KEY, held_again)

    assert held_again.on_hold
    assert second != first
    assert release_id(KEY, held_again) == second  # a retry is the same release
    released = fold(held_again, Release(KEY, second, "merchant:m"), review)
    assert not released.on_hold
    assert price(PLAN, released, 0).amount_minor > 0


def test_a_release_sent_again_after_the_review_reopened_is_the_same_event() -> None:
    """Once a snapshot reopened the review of a content whose publication was released,
    a release sent again (a retry, a stale page) under a new id released it for good:
    every later snapshot paid unreviewed."""
    review = EngagementReview(max_rate=Decimal("0.5"))
    published = fold(ContentState(KEY), CREATOR_PUBLISHED, review)
    first = release_id(KEY, published)
    reopened = fold(fold(published, Release(KEY, first, "m"), review), snap(1, 300), review)

    assert not reopened.on_hold
    assert release_id(KEY, reopened) == first  # the ledger takes it once: dropped
    assert release_id(KEY, None) == first  # the ledger not holding it yet
