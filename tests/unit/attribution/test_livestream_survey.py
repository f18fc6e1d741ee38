"""Livestream and survey rules of the choice, table-driven at their boundaries, and the
batch oracle agreeing with the choice on seeded streams and survey answers."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

import pytest
from pydantic import ValidationError

from afflux.attribution.content_view import ContentBook, apply_record
from afflux.oracle import attribute
from afflux.shared.core.attribution import (
    Attributed,
    ClickTouch,
    Content,
    LiveTouch,
    OrderTouch,
    Unattributed,
    choose,
    content_handles,
    settled_winner,
)
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.core.whatif.log import CampaignLog
from afflux.shared.events import (
    ClickRecorded,
    ContentPublished,
    ContentReleased,
    ConversionAttributed,
    OrderPlaced,
    OrderUnattributed,
    SurveyAnswer,
    SurveyAnswered,
)
from afflux.shared.whatif_decode import LogReader
from afflux.shared.wire import encode

pytestmark = pytest.mark.unit

MINUTE = 60_000
MS_PER_DAY = 24 * 60 * MINUTE
T = 1_793_491_200_000  # the stream's start
END = T + 60 * MINUTE  # the stream's end
TAIL = 30 * MINUTE  # the default tail
LIVE = ("click_id", "coupon", "cookie", "livestream")


def terms(**extra: Any) -> CampaignTerms:
    return CampaignTerms.model_validate(
        {"campaign_id": "shop", "merchant_id": "m", "currency": "EUR", **extra}
    )


def stream(sid: str = "tiktok:s1", who: str = "ana", start: int = T, end: int = END) -> LiveTouch:
    return LiveTouch(sid, who, "shop", start, end)


def order(at: int, **survey: str) -> OrderTouch:
    return OrderTouch(
        "o1",
        "shop",
        at,
        None,
        None,
        survey.get("affiliate_id"),
        survey.get("handle"),
    )


COOKIE = ClickTouch("v.1", "ben", "shop", T - MINUTE)


@dataclass(frozen=True)
class Case:
    name: str
    order: OrderTouch
    terms: CampaignTerms
    content: Content
    winner: tuple[str, str] | None  # (creator, rule), None: unattributed
    clicks: tuple[ClickTouch, ...] = ()


LIVE_TERMS = terms(precedence=LIVE)
ONE = Content((stream(),))
CASES = [
    # The stream's window starts at its start, inclusive.
    Case("one_ms_before_start", order(T - 1), LIVE_TERMS, ONE, None),
    Case("at_start", order(T), LIVE_TERMS, ONE, ("ana", "livestream")),
    Case("during", order(T + MINUTE), LIVE_TERMS, ONE, ("ana", "livestream")),
    # The tail (30 minutes by default) is inclusive too.
    Case("at_end_plus_tail", order(END + TAIL), LIVE_TERMS, ONE, ("ana", "livestream")),
    Case("one_ms_after_end_plus_tail", order(END + TAIL + 1), LIVE_TERMS, ONE, None),
    Case(
        "tail_from_terms",
        order(END + 5 * MINUTE + 1),
        terms(precedence=LIVE, livestream={"tail_minutes": 5}),
        ONE,
        None,
    ),
    Case(
        "no_tail",
        order(END),
        terms(precedence=LIVE, livestream={"tail_minutes": 0}),
        ONE,
        ("ana", "livestream"),
    ),
    # Without the step in the precedence, streams claim nothing.
    Case("livestream_not_in_precedence", order(T), terms(), ONE, None),
    # A cookie claims the order before the stream under the default placement...
    Case("cookie_beats_livestream", order(T), LIVE_TERMS, ONE, ("ben", "cookie"), (COOKIE,)),
    # ... unless the precedence puts the stream first.
    Case(
        "livestream_first_beats_cookie",
        order(T),
        terms(precedence=("click_id", "coupon", "livestream", "cookie")),
        ONE,
        ("ana", "livestream"),
        (COOKIE,),
    ),
    # Two streams overlap: the one started latest wins by default...
    Case(
        "overlap_latest_started",
        order(T + 30 * MINUTE),
        LIVE_TERMS,
        Content((stream(), stream("youtube:s2", "cai", T + 10 * MINUTE))),
        ("cai", "livestream"),
    ),
    # ... or the earliest, as the terms say.
    Case(
        "overlap_earliest_started",
        order(T + 30 * MINUTE),
        terms(precedence=LIVE, livestream={"overlap": "earliest_started"}),
        Content((stream(), stream("youtube:s2", "cai", T + 10 * MINUTE))),
        ("ana", "livestream"),
    ),
    # Same start: the larger stream id wins for latest, so arrival order never matters.
    Case(
        "overlap_same_start_by_stream_id",
        order(T + MINUTE),
        LIVE_TERMS,
        Content((stream("a:1", "zed"), stream("b:1", "amy"))),
        ("amy", "livestream"),
    ),
    # A stream its creator published with its own key is held until the brand releases
    # it: it claims nothing, not even an order no other stream claims...
    Case("held_stream", order(T), LIVE_TERMS, Content((replace(stream(), held=True),)), None),
    # ... and a held stream started 1 s after a brand's takes none of its orders ...
    Case(
        "held_later_stream_under_latest_started",
        order(T + 30 * MINUTE),
        LIVE_TERMS,
        Content((stream(), replace(stream("youtube:s2", "cai", T + 1_000), held=True))),
        ("ana", "livestream"),
    ),
    Case(
        "held_earlier_stream_under_earliest_started",
        order(T + 30 * MINUTE),
        terms(precedence=LIVE, livestream={"overlap": "earliest_started"}),
        Content((stream(), replace(stream("youtube:s2", "cai", T - 1_000), held=True))),
        ("ana", "livestream"),
    ),
    # ... until released: then it claims like any stream.
    Case(
        "released_later_stream",
        order(T + 30 * MINUTE),
        LIVE_TERMS,
        Content((stream(), stream("youtube:s2", "cai", T + 1_000))),
        ("cai", "livestream"),
    ),
    # An end before its start is refused upstream; here it claims nothing either.
    Case("end_before_start", order(T), LIVE_TERMS, Content((stream(end=T - 1),)), None),
    Case(
        "other_campaign_stream",
        order(T),
        LIVE_TERMS,
        Content((LiveTouch("x:1", "ana", "elsewhere", T, END),)),
        None,
    ),
    # Survey: attributes an order nothing else claims...
    Case(
        "survey_attributes",
        order(T, affiliate_id="dee"),
        terms(survey={"mode": "attribute"}),
        Content(),
        ("dee", "survey"),
    ),
    Case(
        "survey_reduced_rate_attributes",
        order(T, affiliate_id="dee"),
        terms(survey={"mode": "reduced_rate", "reduced_rate_percent": "50"}),
        Content(),
        ("dee", "survey"),
    ),
    # ... only reports when the terms say so, or have no survey settings ...
    Case("survey_report_only", order(T, affiliate_id="dee"), terms(survey={}), Content(), None),
    Case("survey_without_settings", order(T, affiliate_id="dee"), terms(), Content(), None),
    # ... and never beats a claim by cookie or stream.
    Case(
        "cookie_beats_survey",
        order(T, affiliate_id="dee"),
        terms(survey={"mode": "attribute"}),
        Content(),
        ("ben", "cookie"),
        (COOKIE,),
    ),
    Case(
        "livestream_beats_survey",
        order(T, affiliate_id="dee"),
        terms(precedence=LIVE, survey={"mode": "attribute"}),
        ONE,
        ("ana", "livestream"),
    ),
    # Handles: the terms' mapping, case-insensitive, a leading @ ignored.
    Case(
        "handle_in_terms",
        order(T, handle=" @DeeStyle "),
        terms(survey={"mode": "attribute", "handles": {"deestyle": "dee"}}),
        Content(),
        ("dee", "survey"),
    ),
    # A handle of the creator's content counts when the terms do not name it.
    Case(
        "handle_of_content",
        order(T, handle="annalive"),
        terms(survey={"mode": "attribute"}),
        Content(handles=content_handles([("@AnnaLive", "ana")])),
        ("ana", "survey"),
    ),
    Case(
        "unknown_handle",
        order(T, handle="nobody"),
        terms(survey={"mode": "attribute", "handles": {"deestyle": "dee"}}),
        Content(),
        None,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_livestream_and_survey_rules_at_their_boundaries(case: Case) -> None:
    decision = choose(case.order, case.clicks, case.terms, case.content)
    if case.winner is None:
        assert isinstance(decision, Unattributed)
    else:
        assert isinstance(decision, Attributed)
        assert (decision.affiliate_id, decision.reason) == case.winner


def test_the_winning_stream_is_named_on_the_decision() -> None:
    decision = choose(order(T), (), LIVE_TERMS, ONE)
    assert isinstance(decision, Attributed)
    assert decision.stream == stream()
    assert decision.click is None


def test_a_livestream_step_never_settles_an_order() -> None:
    # A stream (or its end) may still come: the order waits its grace like a cookie order.
    t = terms(precedence=("livestream", "coupon"), coupons={"ANA10": "ana"})
    assert settled_winner(OrderTouch("o1", "shop", T, None, "ANA10"), (), t) is None


def test_a_coupon_ahead_of_the_livestream_step_still_settles() -> None:
    t = terms(precedence=LIVE, coupons={"ANA10": "ana"})
    settled = settled_winner(OrderTouch("o1", "shop", T, None, "ANA10"), (), t)
    assert settled is not None
    assert settled.reason == "coupon"


def test_a_handle_two_creators_claim_names_nobody_in_any_order() -> None:
    claims = [("@same", "zed"), ("SAME", "amy"), ("@Zed", "zed")]
    assert "same" not in content_handles(claims)
    assert "same" not in content_handles(reversed(claims))
    assert content_handles(claims)["zed"] == "zed"  # claimed twice by one creator


@pytest.mark.parametrize(
    ("survey", "field"),
    [
        ({"mode": "reduced_rate"}, "reduced_rate_percent"),
        ({"mode": "attribute", "reduced_rate_percent": "50"}, "reduced_rate_percent"),
        ({"mode": "sometimes"}, "mode"),
    ],
)
def test_survey_terms_refuse_a_rate_without_its_mode(survey: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        terms(survey=survey)


def test_precedence_lists_livestream_at_most_once() -> None:
    with pytest.raises(ValidationError, match="livestream at most once"):
        terms(precedence=("livestream", "cookie", "livestream"))


def test_a_survey_answer_names_someone() -> None:
    with pytest.raises(ValidationError, match="affiliate_id"):
        SurveyAnswer()
    with pytest.raises(ValidationError, match="handle"):
        SurveyAnswer(handle="x" * 101)


# -- the oracle agrees with the choice on seeded streams and answers ------------------------


def _scenario(rng: random.Random) -> tuple[list[Any], CampaignTerms]:
    creators = ["ana", "ben", "cai", "dee"]
    precedence = rng.choice(
        [LIVE, ("click_id", "coupon", "livestream", "cookie"), ("livestream", "cookie")]
    )
    mode = rng.choice(["attribute", "report", "reduced_rate"])
    survey: dict[str, Any] = {"mode": mode, "handles": {"@DeeStyle": "dee"}}
    if mode == "reduced_rate":
        survey["reduced_rate_percent"] = "40"
    t = terms(
        precedence=precedence,
        coupons={"ANA10": "ana"},
        livestream={
            "tail_minutes": rng.choice([0, 5, 30]),
            "overlap": rng.choice(["latest_started", "earliest_started"]),
        },
        survey=survey,
    )
    events: list[Any] = []
    releases: list[ContentReleased] = []
    takeovers: list[ContentPublished] = []
    for i in range(rng.randint(0, 3)):
        start = T + rng.randint(0, 120) * MINUTE
        platform = rng.choice(["tiktok", "youtube"])
        # Whose key published it: the brand's, the topic's (None) or the creator's own,
        # which holds it until a release, given to some (before or after the orders).
        reported_by = rng.choice([None, "merchant", "creator", "creator"])
        if rng.random() < 0.5:
            releases.append(
                ContentReleased(
                    event_id=f"release-{i}",
                    occurred_at=start,
                    content_id=f"s{i}",
                    platform=platform,
                    released_by="merchant:m",
                )
            )
        events.append(
            ContentPublished(
                event_id=f"content-{i}",
                occurred_at=start,
                content_id=f"s{i}",
                platform=platform,
                affiliate_id=rng.choice(creators),
                campaign_id="shop",
                kind="live",
                url="https://example.com/live",
                published_at=start,
                live_started_at=start,
                live_ended_at=start + rng.randint(0, 90) * MINUTE if rng.random() < 0.9 else None,
                handle=rng.choice([None, "@CaiLive", "annalive"]),
                reported_by=reported_by,
            )
        )
        if reported_by == "creator" and rng.random() < 0.5:
            # Another author's content id, squatted: the brand (or the topic, or another
            # creator's key, which takes over nothing) publishes it for someone else.
            takeovers.append(
                events[-1].model_copy(
                    update={
                        "event_id": f"content-{i}-again",
                        "affiliate_id": rng.choice(creators),
                        "handle": rng.choice([None, "@CaiLive", "annalive"]),
                        "reported_by": rng.choice(["merchant", None, "creator"]),
                    }
                )
            )
    taken = rng.randint(0, len(takeovers))
    events += takeovers[:taken]  # before the orders came (and before any late release)
    early = rng.randint(0, len(releases))
    events += releases[:early]  # released before the orders came
    for i in range(12):
        at = T + rng.randint(-10, 260) * MINUTE
        visitor = f"v{i}"
        if rng.random() < 0.3:
            events.append(
                ClickRecorded(
                    event_id=f"click-{i}",
                    occurred_at=at - rng.randint(0, 60) * MINUTE,
                    click_id=f"{visitor}.c",
                    link_code="l",
                    affiliate_id=rng.choice(creators),
                    campaign_id="shop",
                    visitor_id=visitor,
                )
            )
        answer = rng.choice(
            [
                None,
                SurveyAnswer(affiliate_id=rng.choice(creators)),
                SurveyAnswer(handle=rng.choice(["deestyle", "@cailive", "ANNALIVE", "who"])),
            ]
        )
        placed = OrderPlaced(
            event_id=f"order-{i}",
            occurred_at=at,
            order_id=f"o{i}",
            campaign_id="shop",
            merchant_id="m",
            amount_minor=1_000,
            currency="EUR",
            visitor_id=visitor,
            coupon_code="ana10" if rng.random() < 0.1 else None,
            survey=answer if rng.random() < 0.5 else None,
        )
        events.append(placed)
        if answer is not None and placed.survey is None:
            events.append(
                SurveyAnswered(
                    event_id=f"survey-{i}",
                    occurred_at=at + MINUTE,
                    order_id=f"o{i}",
                    campaign_id="shop",
                    answer=answer,
                )
            )
    events += releases[early:]  # released after the orders were answered
    events += takeovers[taken:]  # after the orders and releases
    return events, t


def _content_views(events: list[Any]) -> dict[str, Content]:
    """The campaign's content as the worker's content view and the what-if read it, from
    the same records in the same order."""
    book = ContentBook()
    reader = LogReader(CampaignLog("shop"))
    for n, e in enumerate(events):
        if isinstance(e, ContentPublished | ContentReleased):
            at = T + MS_PER_DAY + n  # records written after every time they state
            refused = apply_record(book, encode(e), at, 0, n)  # a content taken already
            assert all(r.startswith("content_identity_changed") for r in refused)
            reader.content_record(encode(e), at)
    return {"worker": book.content("shop"), "whatif": reader.log.content_view()}


@pytest.mark.parametrize("seed", range(40))
def test_oracle_and_core_agree_on_streams_and_surveys(seed: int) -> None:
    events, t = _scenario(random.Random(seed))
    version = TermsVersion(version=1, effective_from=0, published_at=0, terms=t)
    result = attribute(events, {"shop": [version]})
    by_order = {
        e.order_id: e
        for e in [*result.conversions, *result.unmatched]
        if isinstance(e, ConversionAttributed | OrderUnattributed)
    }
    views = _content_views(events)
    answers = {e.order_id: e.answer for e in events if isinstance(e, SurveyAnswered)}
    clicks = {e.visitor_id: e for e in events if isinstance(e, ClickRecorded)}
    for o in (e for e in events if isinstance(e, OrderPlaced)):
        answer = o.survey or answers.get(o.order_id)
        touch = OrderTouch(
            o.order_id,
            o.campaign_id,
            o.occurred_at,
            None,
            o.coupon_code,
            answer.affiliate_id if answer else None,
            answer.handle if answer else None,
        )
        c = clicks.get(o.visitor_id or "")
        touches = (
            [ClickTouch(c.click_id, c.affiliate_id, c.campaign_id, c.occurred_at)] if c else []
        )
        oracle = by_order[o.order_id]
        for view, content in views.items():
            decision = choose(touch, touches, t, content)
            if isinstance(decision, Attributed):
                assert isinstance(oracle, ConversionAttributed), (view, o.order_id)
                assert (oracle.affiliate_id, oracle.reason) == (
                    decision.affiliate_id,
                    decision.reason,
                ), view
                stream_id = decision.stream.stream_id if decision.stream else None
                assert oracle.live_stream_id == stream_id, view
            else:
                assert isinstance(oracle, OrderUnattributed), (view, o.order_id)
                assert oracle.reason == decision.reason, view


def test_the_seeded_scenarios_reach_every_rule() -> None:
    rules: set[str] = set()
    streams: set[str] = set()  # whose streams won orders: held ones released, or brands'
    for seed in range(40):
        events, t = _scenario(random.Random(seed))
        version = TermsVersion(version=1, effective_from=0, published_at=0, terms=t)
        result = attribute(events, {"shop": [version]})
        rules |= {e.reason for e in result.conversions if isinstance(e, ConversionAttributed)}
        rules |= {"unattributed" for e in result.unmatched if isinstance(e, OrderUnattributed)}
        released = {
            f"{e.platform}:{e.content_id}" for e in events if isinstance(e, ContentReleased)
        }
        by = {
            f"{e.platform}:{e.content_id}": (
                e.reported_by,
                f"{e.platform}:{e.content_id}" in released,
            )
            for e in events
            if isinstance(e, ContentPublished)
        }
        won = {e.live_stream_id for e in result.conversions if isinstance(e, ConversionAttributed)}
        streams |= {"released" if by[s][1] else str(by[s][0]) for s in won if s is not None}
        # a held stream (the creator's, never released) wins nothing
        assert all(by[s] != ("creator", False) for s in won if s is not None)
    assert rules >= {"livestream", "survey", "cookie", "coupon", "unattributed"}
    assert streams >= {"released", "merchant", "None"}
