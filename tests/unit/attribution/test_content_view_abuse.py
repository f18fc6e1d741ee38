"""Hostile publications on the ``content`` topic against the worker's content view: a
stream's end (or start) stamped far past its record's time, and a content id published
again for another creator or campaign. Neither may give a stream orders it has no claim
to, and the batch oracle leaves out exactly what the worker leaves out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from afflux.attribution.content_view import ContentBook, apply_record
from afflux.attribution.handlers import Campaigns, JoinHandler
from afflux.attribution.metrics import AttributionMetrics
from afflux.oracle import admitted, attribute, net_outcomes
from afflux.shared.core.content import takes_over
from afflux.shared.core.event_time import DEFAULT_CLOCK_SKEW_MS
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import (
    CampaignTermsPublished,
    ContentPublished,
    ContentReleased,
    Envelope,
    OrderPlaced,
    SurveyAnswer,
)
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.topics import ORDERS
from afflux.shared.wire import encode

pytestmark = pytest.mark.unit

MINUTE = 60_000
HOUR = 60 * MINUTE
SKEW = DEFAULT_CLOCK_SKEW_MS
TS = 1_793_491_200_000  # the publication's record timestamp
ARRIVED = TS + 4 * HOUR  # broker time of the orders
TERMS = {
    "merchant_id": "m",
    "currency": "EUR",
    "grace_seconds": 1,
    "precedence": ["click_id", "coupon", "cookie", "livestream"],
    "survey": {"mode": "attribute"},
    "plan": {"sale": {"rate": {"percent": "10"}}},
}
CAMPAIGNS = {
    cid: (
        TermsVersion(
            version=1,
            effective_from=0,
            published_at=0,
            terms=CampaignTerms.model_validate({**TERMS, "campaign_id": cid}),
        ),
    )
    for cid in ("camp", "other")
}


def live(
    start: int,
    end: int | None,
    *,
    who: str = "ana",
    campaign: str = "camp",
    at: int = TS,
    handle: str | None = None,
) -> ContentPublished:
    """Stream ``tiktok:s1`` published at ``at`` (also its occurred_at and published_at)."""
    return ContentPublished(
        event_id=f"live-{who}-{campaign}-{start}-{end}",
        occurred_at=at,
        content_id="s1",
        platform="tiktok",
        affiliate_id=who,
        campaign_id=campaign,
        kind="live",
        url="https://tiktok.example/live/s1",
        published_at=at,
        live_started_at=start,
        live_ended_at=end,
        handle=handle,
    )


def order(
    oid: str, at: int, campaign: str = "camp", survey: SurveyAnswer | None = None
) -> OrderPlaced:
    return OrderPlaced(
        event_id=f"ev-{oid}",
        occurred_at=at,
        order_id=oid,
        campaign_id=campaign,
        merchant_id="m",
        amount_minor=10_000,
        currency="EUR",
        visitor_id=f"v-{oid}",
        survey=survey,
    )


class Worker:
    """The join handler fed by a content book that reads records as the worker does."""

    def __init__(self) -> None:
        directory = CampaignDirectory()
        for cid, versions in CAMPAIGNS.items():
            directory.apply(
                CampaignTermsPublished(
                    event_id=f"t-{cid}", occurred_at=0, campaign_id=cid, versions=versions
                )
            )
        self.book = ContentBook(clock_skew_ms=SKEW)
        self.book.ready.set()
        self.handler = JoinHandler(
            Campaigns(directory), AttributionMetrics(), 400 * 86_400_000, content=self.book
        )
        self.state = self.handler.new_state()
        self.out: list[Envelope] = []
        self.offset = 0

    def content(self, event: ContentPublished, ts: int) -> list[str]:
        """The next record on the content topic; the reasons of what it refused."""
        return self.content_value(encode(event), ts)

    def content_value(self, value: bytes, ts: int) -> list[str]:
        bad = apply_record(self.book, value, ts, 0, self.offset)
        self.offset += 1
        return bad

    def orders(self, *orders: OrderPlaced) -> dict[str, str]:
        for o in orders:
            outputs, _ = self.handler.on_event(self.state, ORDERS.name, o, ARRIVED)
            self.out += [e for _, _, e in outputs]
        self.out += [e for _, _, e in self.handler.due(self.state, ARRIVED + 10_000)]
        return winners(self.out)


def winners(events: list[Any]) -> dict[str, str]:
    """order id -> its creator, as netted."""
    return {order_id: n.affiliate_id for (_, order_id), n in net_outcomes(events).items()}


@dataclass(frozen=True)
class Case:
    name: str
    start: int  # live_started_at
    end: int  # live_ended_at
    refused: bool


CASES = [
    # the end exactly the clock skew after the record: still accepted
    Case("end at the skew", TS - HOUR, TS + SKEW, False),
    # one ms more: refused, as an occurred_at would be
    Case("end 1 ms past the skew", TS - HOUR, TS + SKEW + 1, True),
    # a stream that ends a day after its record was written (within 24 h of its start)
    Case("end a day ahead", TS, TS + 24 * HOUR, True),
    # the whole stream ahead of its record
    Case("start and end ahead", TS + HOUR, TS + 2 * HOUR, True),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_stream_stamped_past_the_clock_skew_of_its_record_claims_nothing(case: Case) -> None:
    w = Worker()
    bad = w.content(live(case.start, case.end), TS)
    assert bool(bad) is case.refused, bad
    if case.refused:
        assert bad[0].startswith("event_time_in_future")
    # An order inside the claimed window that nothing else claims.
    inside = order("o1", min(case.end, ARRIVED - MINUTE))
    assert w.orders(inside) == ({} if case.refused else {"o1": "ana"})
    # The oracle leaves out the same publication.
    kept = admitted([(live(case.start, case.end), TS)], SKEW)
    assert (kept == []) is case.refused


def test_a_content_published_again_by_another_creator_stays_its_first_creators() -> None:
    w = Worker()
    first = live(TS - HOUR, TS)
    assert w.content(first, TS) == []
    # The same content id, now naming another creator and a longer window.
    taken = live(TS - 2 * HOUR, TS + MINUTE, who="mallory", at=TS + 2 * MINUTE)
    bad = w.content(taken, TS + 2 * MINUTE)
    assert [reason.split(":")[0] for reason in bad] == ["content_identity_changed"]
    inside, only_new = order("o1", TS - 30 * MINUTE), order("o2", TS - 90 * MINUTE)
    assert w.orders(inside, only_new) == {"o1": "ana"}
    oracle = attribute([first, taken, inside, only_new], CAMPAIGNS)
    assert winners(oracle.conversions) == {"o1": "ana"}


def test_a_content_published_again_for_another_campaign_claims_nothing_there() -> None:
    w = Worker()
    first = live(TS - HOUR, TS)
    assert w.content(first, TS) == []
    moved = live(TS - HOUR, TS, campaign="other", handle="@ana", at=TS + MINUTE)
    bad = w.content(moved, TS + MINUTE)
    assert [reason.split(":")[0] for reason in bad] == ["content_identity_changed"]
    in_other = order("o-other", TS - 30 * MINUTE, campaign="other")
    assert w.orders(in_other) == {}
    assert w.book.content("other").streams == ()
    assert not w.book.content("other").handles
    oracle = attribute([first, moved, in_other], CAMPAIGNS)
    assert winners(oracle.conversions) == {}


def test_the_first_creator_may_publish_its_content_again_with_the_streams_end() -> None:
    w = Worker()
    assert w.content(live(TS - HOUR, None, at=TS - HOUR), TS - HOUR) == []
    assert w.content(live(TS - HOUR, TS), TS) == []
    assert w.orders(order("o1", TS - 30 * MINUTE)) == {"o1": "ana"}


def post(content_id: str, who: str, handle: str, at: int) -> ContentPublished:
    return ContentPublished(
        event_id=f"post-{content_id}",
        occurred_at=at,
        content_id=content_id,
        platform="insta",
        affiliate_id=who,
        campaign_id="camp",
        kind="post",
        url=f"https://insta.example/p/{content_id}",
        published_at=at,
        handle=handle,
    )


def test_a_handle_published_by_a_second_creator_takes_no_survey_answer_naming_it() -> None:
    """Anyone may publish content with any handle: "aaa" publishing zoe's handle must not
    take the answers naming zoe (nor does zoe keep them: the handle now names nobody,
    until the campaign maps it in its terms)."""
    zoe, squat = post("p-zoe", "zoe", "@ZoeStyle", TS - HOUR), post("p-aaa", "aaa", "zoestyle", TS)
    named = order("o1", TS + MINUTE, survey=SurveyAnswer(handle="@zoestyle"))
    alone = Worker()
    assert alone.content(zoe, TS - HOUR) == []
    assert alone.orders(named) == {"o1": "zoe"}
    w = Worker()
    assert w.content(zoe, TS - HOUR) == []
    assert w.content(squat, TS) == []
    assert w.orders(named) == {}
    assert winners(attribute([zoe, squat, named], CAMPAIGNS).conversions) == {}
    assert winners(attribute([zoe, named], CAMPAIGNS).conversions) == {"o1": "zoe"}


GOOD = live(TS - HOUR, TS)
# (record value, whether the reader reports it): what is not an object, or not a
# publication, is not the content view's business (the ledger dead-letters it).
POISON = [
    # not JSON, though it names the type the reader looks for
    (b'{"type": "ContentPublished", ', True),
    # valid JSON of another shape
    (b'["ContentPublished", 1, 2]', False),
    (b'"ContentPublished"', False),
    # the type, without its fields
    (b'{"type": "ContentPublished", "content_id": "x"}', True),
    # fields of the wrong type
    (encode(GOOD).replace(b'"affiliate_id":"ana"', b'"affiliate_id":["ana"]'), True),
    (encode(GOOD).replace(b'"live_started_at":', b'"live_started_at":true,"x":'), True),
    # larger than any record may be
    (b'{"type": "ContentPublished", "handle": "' + b"h" * (1024 * 1024) + b'"}', True),
    # nested past the decoder's depth
    (b'{"type": "ContentPublished", "x": ' + b"[" * 64 + b"]" * 64 + b"}", True),
    # a number of more digits than any field needs
    (b'{"type": "ContentPublished", "live_started_at": ' + b"9" * 5000 + b"}", True),
    # not UTF-8
    (b'{"type": "ContentPublished", "handle": "\xff\xfe"}', True),
    # a packed record whose second item is poison: the first still counts
    (b"[" + encode(post("p-cai", "cai", "@cai", TS)) + b', {"type": "ContentPublished"}]', True),
]


@pytest.mark.parametrize(("value", "reported"), POISON, ids=lambda v: repr(v)[:40])
def test_a_poisoned_content_record_never_stops_the_view_and_the_next_one_applies(
    value: bytes, reported: bool
) -> None:
    w = Worker()
    bad = w.content_value(value, TS)
    assert bool(bad) is reported, bad
    assert all(len(reason) <= 500 for reason in bad)
    assert w.content(GOOD, TS) == []
    assert w.orders(order("o1", TS - 30 * MINUTE)) == {"o1": "ana"}


def test_another_campaigns_brand_takes_over_no_content_a_creator_published_unreleased() -> None:
    """A creator's key published the stream for one campaign (held until that brand
    releases it): another campaign's brand publishing the same id for its own creator is
    refused, by the worker and the oracle alike, and its orders claim nothing by it; the
    campaign's own brand still takes it over for its author."""
    w = Worker()
    squat = live(TS - HOUR, TS).model_copy(update={"reported_by": "creator"})
    assert w.content(squat, TS) == []
    across = live(TS - HOUR, TS, who="zoe", campaign="other", at=TS + MINUTE).model_copy(
        update={"reported_by": "merchant"}
    )
    bad = w.content(across, TS + MINUTE)
    assert [reason.split(":")[0] for reason in bad] == ["content_identity_changed"]
    in_other = order("o-other", TS - 30 * MINUTE, campaign="other")
    assert w.orders(in_other) == {}
    assert winners(attribute([squat, across, in_other], CAMPAIGNS).conversions) == {}
    own = live(TS - HOUR, TS, who="zoe", at=TS + 2 * MINUTE).model_copy(
        update={"reported_by": "merchant"}
    )
    assert w.content(own, TS + 2 * MINUTE) == []  # the campaign's own brand takes it over


@pytest.mark.parametrize(
    ("first_campaign", "campaign", "expected"),
    [("camp", "camp", True), ("camp", "other", False)],
)
def test_a_takeover_never_crosses_campaigns(
    first_campaign: str, campaign: str, expected: bool
) -> None:
    assert takes_over("creator", False, "merchant", first_campaign, campaign) is expected


YEAR = 365 * 24 * HOUR


@pytest.mark.parametrize(
    ("ahead", "refused"),
    # past the skew but within the hour a consumer's own clock may lag its producers'
    [(SKEW + 1, False), (HOUR, False), (HOUR + 1, True), (YEAR, True)],
)
def test_a_stream_past_the_workers_clock_claims_nothing_though_its_record_is_stamped_alike(
    ahead: int, refused: bool
) -> None:
    """The record's timestamp is the producer's to set: a stream a year ahead in a record
    stamped alike passed the record check and would claim the campaign's orders then."""
    w = Worker()
    w.book.clock = lambda: TS
    at = TS + ahead
    bad = w.content(live(at - HOUR, at, at=at), at)
    assert bool(bad) is refused, bad
    if refused:
        assert bad[0].startswith("event_time_in_future")
        assert f"clock {TS}" in bad[0]
    kept = admitted([(live(at - HOUR, at, at=at), at)], SKEW, now_ms=TS)
    assert (kept == []) is refused


@pytest.mark.parametrize(
    ("first_by", "released", "handle_names"),
    [
        ("merchant", False, None),  # the brand's post: the creator's handle is its word alone
        ("creator", True, None),  # its own, after the release confirmed it
        ("creator", False, "eve"),  # its own, held until the brand's release confirms it
    ],
    ids=["brand's content", "own content after its release", "own content before release"],
)
def test_a_creators_key_adds_a_handle_only_where_a_release_confirms_it(
    first_by: str, released: bool, handle_names: str | None
) -> None:
    """A creator re-publishing content with a generic handle ("instagram") took every
    unclaimed order whose answer named it, at once, and re-decided past ones."""
    first = post("p-eve", "eve", "@eve_official", TS - HOUR).model_copy(
        update={"reported_by": first_by}
    )
    again = post("p-eve", "eve", "instagram", TS).model_copy(
        update={"event_id": "post-p-eve-again", "reported_by": "creator"}
    )
    release = ContentReleased(
        event_id="rel-eve", occurred_at=TS, content_id="p-eve", platform="insta",
        released_by="merchant:m",
    )  # fmt: skip
    named = order("o1", TS + MINUTE, survey=SurveyAnswer(handle="Instagram"))
    w = Worker()
    w.content(first, TS - HOUR)
    if released:
        w.book.release(release, TS)
    w.content(again, TS)
    if first_by == "creator" and not released:
        w.book.release(release, TS)  # the release that confirms both publications

    log: list[Any] = [first, *([release] if released else []), again]
    log += [] if released or first_by != "creator" else [release]
    expected = {"o1": handle_names} if handle_names else {}
    assert w.orders(named) == expected
    assert winners(attribute([*log, named], CAMPAIGNS).conversions) == expected
