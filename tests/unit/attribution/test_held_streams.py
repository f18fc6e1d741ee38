"""A live stream (or handle) a creator published with its own key counts only once the
brand releases it: before, it claims no order; the release is read like a late
publication, correcting the orders answered before it at the release record's broker
time. The worker's content view (driven as the worker drives it, without Kafka) and the
batch oracle agree on every case."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest
from join_harness import (
    ARRIVED,
    END,
    GRACE_MS,
    MINUTE,
    START,
    Worker,
    sale,
    stream_versions,
)

from afflux.attribution.content_view import ContentBook, apply_record
from afflux.oracle import attribute
from afflux.shared.core.attribution import Attributed, OrderTouch, choose
from afflux.shared.events import (
    ContentPublished,
    ContentReleased,
    ConversionAttributed,
    Envelope,
    OrderPlaced,
    SurveyAnswer,
)
from afflux.shared.topics import ORDERS
from afflux.shared.wire import encode

pytestmark = pytest.mark.unit

RELEASED = ARRIVED + 10 * MINUTE  # broker time of the release
VERSIONS = stream_versions(
    "glow", livestream={"overlap": "latest_started"}, survey={"mode": "attribute"}
)
By = Literal["creator", "merchant", "admin"] | None


def live(
    cid: str, who: str, by: By, *, start: int = START, end: int | None = END, n: int = 0
) -> ContentPublished:
    return ContentPublished(
        event_id=f"live-{cid}-{by}-{n}",
        occurred_at=start,
        content_id=cid,
        platform="tiktok",
        affiliate_id=who,
        campaign_id="glow",
        kind="live",
        url=f"https://tiktok.example/live/{cid}",
        published_at=start,
        live_started_at=start,
        live_ended_at=end,
        handle=f"@{who}live",
        reported_by=by,
    )


def release(cid: str) -> ContentReleased:
    return ContentReleased(
        event_id=f"release-{cid}",
        occurred_at=RELEASED,
        content_id=cid,
        platform="tiktok",
        released_by="merchant:m",
    )


def order(oid: str, at: int, survey: SurveyAnswer | None = None) -> OrderPlaced:
    return sale("glow", oid, at, survey)


# -- which stream (or handle) claims an order, after the content records of each case ----

REAL = live("legit-live-2", "creator-02", "merchant")
STEAL = live("steal-3", "creator-03", "creator", start=START + 1_000)


@dataclass(frozen=True)
class Case:
    name: str
    content: tuple[Envelope, ...]  # content records, in topic order
    winner: str | None  # of an order during both streams; None: nobody
    order_survey: SurveyAnswer | None = None


CASES = [
    Case("the brand's stream claims", (REAL,), "creator-02"),
    Case("a stream written to the topic (no key) claims", (live("s", "ana", None),), "ana"),
    Case("the admin's stream claims", (live("s", "ana", "admin"),), "ana"),
    # a member creator's stream started 1 s after the real one takes none of its orders
    Case("a creator's stream beside it is held", (REAL, STEAL), "creator-02"),
    Case("a creator's stream alone is held", (STEAL,), None),
    Case("released, it claims like any stream", (REAL, STEAL, release("steal-3")), "creator-03"),
    # a release before any publication is refused by the ledger (unknown_content): held
    Case("a release before the publication changes nothing", (release("steal-3"), STEAL), None),
    Case(
        "released before and after the publication: counts from the later release",
        (release("steal-3"), STEAL, release("steal-3")),
        "creator-03",
    ),
    Case("another content's release is not its", (REAL, STEAL, release("other")), "creator-02"),
    # its first publication decides: the brand publishing it again is no release...
    Case(
        "the brand re-publishing a creator's stream",
        (STEAL, live("steal-3", "creator-03", "merchant", start=START + 1_000, n=1)),
        None,
    ),
    # ... and the creator's key adding to the brand's stream holds nothing
    Case(
        "the creator re-publishing the brand's stream",
        (live("s", "ana", "merchant", end=None), live("s", "ana", "creator", n=1)),
        "ana",
    ),
    # released while still live: its end, published later, counts
    Case(
        "released while live, its end after",
        (STEAL, release("steal-3"), live("steal-3", "creator-03", "creator", n=1)),
        "creator-03",
    ),
    # a held content's handle names nobody in a survey answer, until released
    Case(
        "a held content's handle",
        (live("p", "dee", "creator", end=None),),
        None,
        SurveyAnswer(handle="@deelive"),
    ),
    Case(
        "a released content's handle",
        (live("p", "dee", "creator", end=None), release("p")),
        "dee",
        SurveyAnswer(handle="@deelive"),
    ),
]


def assert_worker_and_oracle_pick(
    winner: str | None, case: Case | Takeover, placed: OrderPlaced, book: ContentBook
) -> None:
    """The worker's choice over ``book`` and the oracle's over the case's records agree
    on ``winner`` (None: nobody)."""
    touch = OrderTouch(
        "o1",
        "glow",
        placed.occurred_at,
        survey_handle=case.order_survey.handle if case.order_survey else None,
    )
    decision = choose(touch, (), VERSIONS[0].terms, book.content("glow"))
    worker = decision.affiliate_id if isinstance(decision, Attributed) else None
    assert worker == winner
    result = attribute([*case.content, placed], {"glow": VERSIONS})
    oracle = [c.affiliate_id for c in result.conversions if isinstance(c, ConversionAttributed)]
    assert oracle == ([] if winner is None else [winner])


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_creator_published_stream_claims_only_once_released(case: Case) -> None:
    placed = order("o1", START + 30 * MINUTE, case.order_survey)
    book = ContentBook()
    for n, record in enumerate(case.content):
        assert apply_record(book, encode(record), RELEASED, 0, n) == []
    assert_worker_and_oracle_pick(case.winner, case, placed, book)


# -- the release corrects orders answered before it, the same on every replay -------------


def steal_then_release() -> list[Envelope]:
    w = Worker(VERSIONS)
    w.content(REAL, END)  # published as they ended, before the orders came
    w.content(STEAL, END + 1_000)
    for i in range(3):
        w.send(ORDERS.name, order(f"o{i}", START + (10 + i) * MINUTE), ARRIVED)
    w.tick(ARRIVED + GRACE_MS)
    w.content(release("steal-3"), RELEASED)
    w.tick(RELEASED)
    return w.out


def test_orders_stay_the_real_streams_until_the_brand_releases_the_creators() -> None:
    out = steal_then_release()
    first = [e for e in out if isinstance(e, ConversionAttributed) and e.corrected_at is None]
    assert [(c.affiliate_id, c.reason) for c in first] == [("creator-02", "livestream")] * 3
    fixes = [e for e in out if isinstance(e, ConversionAttributed) and e.corrected_at]
    assert [(c.affiliate_id, c.correction_reason, c.corrected_at) for c in fixes] == [
        ("creator-03", "late_content", RELEASED)
    ] * 3
    assert {c.live_stream_id for c in fixes} == {"tiktok:steal-3"}
    assert [c.supersedes for c in fixes] == [c.conversion_id for c in first]
    assert steal_then_release() == out  # a replay: the same records, the same answers


def test_a_release_stamped_past_the_clock_skew_after_its_record_is_left_out() -> None:
    """As the oracle leaves out every input event stamped too far ahead (``admitted``)."""
    book = ContentBook()
    assert apply_record(book, encode(STEAL), END, 0, 0) == []
    early = RELEASED - book.clock_skew_ms - 1  # the record, before the release's own time
    [reason] = apply_record(book, encode(release("steal-3")), early, 0, 1)
    assert reason.startswith("event_time_in_future")
    (stream,) = book.content("glow").streams
    assert stream.held
    assert apply_record(book, encode(release("steal-3")), early + 1, 0, 2) == []
    (stream,) = book.content("glow").streams
    assert not stream.held


# -- a squat: a creator's key publishes another author's content id first ------------------

SQUAT = live("real-9", "creator-03", "creator")  # held: the creator's word only


def real(by: By, *, who: str = "creator-02", end: int | None = END, n: int = 1) -> ContentPublished:
    return live("real-9", who, by, end=end, n=n)


@dataclass(frozen=True)
class Takeover:
    name: str
    content: tuple[Envelope, ...]
    winner: str | None
    refused: int = 0  # publications left out (content_identity_changed)
    order_survey: SurveyAnswer | None = None


TAKEOVERS = [
    Takeover("the brand publishes it for its author", (SQUAT, real("merchant")), "creator-02"),
    Takeover("the admin publishes it for its author", (SQUAT, real("admin")), "creator-02"),
    Takeover("a platform integration writes it", (SQUAT, real(None)), "creator-02"),
    # a creator's key takes over nothing: two creators would take it from each other
    Takeover("the author's own key", (SQUAT, real("creator")), None, refused=1),
    # released, it is the brand's confirmed word: fixed for good
    Takeover(
        "released before the brand's publication",
        (SQUAT, release("real-9"), real("merchant")),
        "creator-03",
        refused=1,
    ),
    # a release before any publication is refused by the ledger: the squat is still open
    Takeover(
        "a release before the squat does not fix it",
        (release("real-9"), SQUAT, real("merchant")),
        "creator-02",
    ),
    Takeover(
        "released after the takeover: nothing more",
        (SQUAT, real("merchant"), release("real-9")),
        "creator-02",
    ),
    Takeover(
        "the squatter publishes again after the takeover",
        (SQUAT, real("merchant"), live("real-9", "creator-03", "creator", n=2)),
        "creator-02",
        refused=1,
    ),
    Takeover(
        "the brand's own stream is not taken over",
        (real("merchant"), live("real-9", "creator-03", "merchant", n=2)),
        "creator-02",
        refused=1,
    ),
    Takeover(
        # another brand has no say on a content published for this campaign: refused,
        # and the squat stays held here
        "not taken over by another campaign's publication",
        (SQUAT, real("merchant").model_copy(update={"campaign_id": "other"})),
        None,
        refused=1,
    ),
    Takeover(
        "the squatter's handle names nobody after the takeover",
        (live("real-9", "creator-03", "creator", end=None), real("merchant", end=None)),
        None,
        order_survey=SurveyAnswer(handle="@creator-03live"),
    ),
    Takeover(
        "the author's handle names the author",
        (live("real-9", "creator-03", "creator", end=None), real("merchant", end=None)),
        "creator-02",
        order_survey=SurveyAnswer(handle="@creator-02live"),
    ),
]


@pytest.mark.parametrize("case", TAKEOVERS, ids=lambda c: c.name)
def test_the_brand_takes_over_a_held_content_another_creator_published_first(
    case: Takeover,
) -> None:
    """A squat is never paid (held), and the brand then credits the real author by
    publishing the content for it: a held content's identity yields to the brand's
    publication, never to a creator's key, and never once released. The worker's
    content view and the oracle agree."""
    placed = order("o1", START + 30 * MINUTE, case.order_survey)
    book = ContentBook()
    refused = [
        reason
        for n, record in enumerate(case.content)
        for reason in apply_record(book, encode(record), RELEASED, 0, n)
    ]
    assert len(refused) == case.refused, refused
    assert all(r.startswith("content_identity_changed") for r in refused)
    assert_worker_and_oracle_pick(case.winner, case, placed, book)
