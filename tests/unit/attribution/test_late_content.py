"""A live stream (or its end, or a creator's handle) and a survey answer that reach the
worker after an order they concern was decided correct it as a late click does: a new
conversion superseding the first answer, with the same ids and times on every replay.
The join's handler runs as the worker drives it, without Kafka."""

from __future__ import annotations

from collections.abc import Sequence

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
from afflux.attribution.join import CONTENT_KEY, decode_state, encode_state
from afflux.oracle import attribute, net_outcomes
from afflux.shared.events import (
    ClickRecorded,
    ContentPublished,
    ConversionAttributed,
    Envelope,
    OrderPlaced,
    OrderUnattributed,
    SurveyAnswer,
    SurveyAnswered,
)
from afflux.shared.topics import CLICKS, ORDERS
from afflux.shared.wire import encode

pytestmark = pytest.mark.unit

LATE = ARRIVED + 10 * MINUTE  # broker time of whatever comes late
VERSIONS = stream_versions("camp", survey={"mode": "attribute", "handles": {"@DeeStyle": "dee"}})


def live(
    end: int | None, *, who: str = "ana", cid: str = "s1", start: int = START
) -> ContentPublished:
    return ContentPublished(
        event_id=f"live-{cid}-{end}",
        occurred_at=start,
        content_id=cid,
        platform="tiktok",
        affiliate_id=who,
        campaign_id="camp",
        kind="live",
        url="https://tiktok.example/live",
        published_at=start,
        live_started_at=start,
        live_ended_at=end,
        handle="@AnnaLive" if who == "ana" else None,
    )


def order(oid: str, at: int, survey: SurveyAnswer | None = None) -> OrderPlaced:
    return sale("camp", oid, at, survey)


def answered(oid: str, answer: SurveyAnswer) -> SurveyAnswered:
    return SurveyAnswered(
        event_id=f"ev-survey-{oid}",
        occurred_at=ARRIVED,
        order_id=oid,
        campaign_id="camp",
        answer=answer,
    )


def conversions(events: Sequence[Envelope]) -> list[ConversionAttributed]:
    return [e for e in events if isinstance(e, ConversionAttributed)]


def test_an_order_during_a_stream_is_the_live_creators() -> None:
    w = Worker(VERSIONS)
    w.content(live(END), START)
    w.send(ORDERS.name, order("o1", START + MINUTE), ARRIVED)
    w.tick(ARRIVED + GRACE_MS)
    [conv] = conversions(w.out)
    assert (conv.affiliate_id, conv.reason, conv.live_stream_id) == (
        "ana",
        "livestream",
        "tiktok:s1",
    )
    assert conv.click_id is None


def test_a_stream_still_live_claims_nothing_until_its_end_comes_then_corrects() -> None:
    w = Worker(VERSIONS)
    w.content(live(None), START)  # still live: no end yet
    w.send(ORDERS.name, order("o1", START + MINUTE), ARRIVED)
    w.tick(ARRIVED + GRACE_MS)
    [first] = w.out
    assert isinstance(first, OrderUnattributed)
    w.content(live(END), LATE)  # the end arrives after the order was answered
    w.tick(LATE)
    [fix] = conversions(w.out)
    assert (fix.affiliate_id, fix.reason, fix.correction_reason) == (
        "ana",
        "livestream",
        "late_content",
    )
    assert fix.supersedes is None
    assert fix.corrected_at == LATE
    w.tick(LATE + 1)  # nothing new: nothing more
    assert len(w.out) == 2


def test_a_later_overlapping_stream_reattributes_and_a_replay_gives_the_same_ids() -> None:
    def run(streams_first: bool) -> list[Envelope]:
        w = Worker(VERSIONS)
        if streams_first:
            w.content(live(END), START)
            w.content(live(END, who="cai", cid="s2", start=START + 10 * MINUTE), LATE)
        else:
            w.content(live(END), START)
        w.send(ORDERS.name, order("o1", START + 30 * MINUTE), ARRIVED)
        w.tick(ARRIVED + GRACE_MS)
        if not streams_first:
            w.content(live(END, who="cai", cid="s2", start=START + 10 * MINUTE), LATE)
            w.tick(LATE)
        return w.out

    late = run(streams_first=False)
    first, fix = conversions(late)
    assert (first.affiliate_id, fix.affiliate_id) == ("ana", "cai")  # latest started wins
    assert fix.supersedes == first.conversion_id
    assert run(streams_first=False) == late  # the same record again: the same answer
    [direct] = conversions(run(streams_first=True))
    assert direct.affiliate_id == "cai"


def test_a_restarted_partition_applies_content_again_without_repeating_a_correction() -> None:
    w = Worker(VERSIONS)
    w.content(live(None), START)
    w.send(ORDERS.name, order("o1", START + MINUTE), ARRIVED)
    w.tick(ARRIVED + GRACE_MS)
    w.content(live(END), LATE)
    w.tick(LATE)
    assert len(w.out) == 2
    # Recovered from its changelog, the partition has applied nothing of the book yet.
    restored = w.handler.new_state()
    for key, value in w.state.take_dirty():
        if value is not None:
            restored.restore(key, value)
    w.state, w.out = restored, []
    w.tick(LATE + 1)
    assert w.out == []
    # It skipped what it had applied: nothing was even re-decided.
    assert w.signals("content") == {"attributed": 1}


def test_a_partition_restored_without_its_content_mark_re_decides_to_the_same_answer() -> None:
    w = Worker(VERSIONS)
    w.content(live(None), START)
    w.send(ORDERS.name, order("o1", START + MINUTE), ARRIVED)
    w.tick(ARRIVED + GRACE_MS)
    w.content(live(END), LATE)
    w.tick(LATE)
    restored = w.handler.new_state()
    for key, value in w.state.take_dirty():
        if value is not None and key != CONTENT_KEY:
            restored.restore(key, value)
    w.state, w.out = restored, []
    w.tick(LATE + 1)
    assert w.out == []  # applying a change again is a no-op
    assert w.signals("content") == {"attributed": 1, "unchanged": 1}


def test_a_late_survey_answer_attributes_an_unclaimed_order() -> None:
    w = Worker(VERSIONS)
    w.send(ORDERS.name, order("o1", START), ARRIVED)
    w.tick(ARRIVED + GRACE_MS)
    w.send(ORDERS.name, answered("o1", SurveyAnswer(handle="deestyle")), LATE)
    [fix] = conversions(w.out)
    assert (fix.affiliate_id, fix.reason, fix.correction_reason) == ("dee", "survey", "late_survey")
    assert fix.survey_affiliate_id == "dee"
    # A second answer does not replace the first.
    w.send(ORDERS.name, answered("o1", SurveyAnswer(affiliate_id="ben")), LATE + 1)
    assert len(conversions(w.out)) == 1


def test_a_survey_answer_before_the_grace_ends_is_used_by_the_first_decision() -> None:
    w = Worker(VERSIONS)
    w.send(ORDERS.name, order("o1", START), ARRIVED)
    w.send(ORDERS.name, answered("o1", SurveyAnswer(affiliate_id="dee")), ARRIVED + 10)
    w.tick(ARRIVED + GRACE_MS)
    [conv] = w.out
    assert isinstance(conv, ConversionAttributed)
    assert (conv.reason, conv.supersedes) == ("survey", None)


def test_a_survey_answer_never_beats_a_cookie() -> None:
    w = Worker(VERSIONS)
    click = ClickRecorded(
        event_id="c",
        occurred_at=START - MINUTE,
        click_id="v-o1.c",
        link_code="l",
        affiliate_id="ben",
        campaign_id="camp",
        visitor_id="v-o1",
    )
    w.send(CLICKS.name, click, ARRIVED - 10)
    w.send(ORDERS.name, order("o1", START, SurveyAnswer(affiliate_id="dee")), ARRIVED)
    w.tick(ARRIVED + GRACE_MS)
    [conv] = w.out
    assert isinstance(conv, ConversionAttributed)
    assert (conv.affiliate_id, conv.reason, conv.survey_affiliate_id) == ("ben", "cookie", "dee")


def test_a_content_handle_arriving_late_resolves_a_survey_answer() -> None:
    w = Worker(VERSIONS)
    w.send(ORDERS.name, order("o1", START - 600 * MINUTE, SurveyAnswer(handle="annalive")), ARRIVED)
    w.tick(ARRIVED + GRACE_MS)
    assert isinstance(w.out[0], OrderUnattributed)
    w.content(live(END), LATE)  # outside the stream's window, but it names the handle
    w.tick(LATE)
    [fix] = conversions(w.out)
    assert (fix.affiliate_id, fix.reason) == ("ana", "survey")


def test_a_survey_answer_for_an_order_not_held_here_is_refused() -> None:
    w = Worker(VERSIONS)
    w.send(ORDERS.name, answered("nope", SurveyAnswer(affiliate_id="dee")), ARRIVED)
    assert w.out == []
    assert w.refused[0].startswith("unknown order")


def test_the_changelog_keeps_a_survey_answer_and_a_stream_winner() -> None:
    w = Worker(VERSIONS)
    w.content(live(END), START)
    w.send(ORDERS.name, order("o1", START, SurveyAnswer(handle="@x")), ARRIVED)
    w.tick(ARRIVED + GRACE_MS)
    [state] = [s for s in w.state.keys.values() if s.decided]
    again = decode_state(encode_state(state))
    assert again.decided == state.decided
    [decided] = again.decided.values()
    assert decided.winner is not None
    assert decided.winner.stream_id == "tiktok:s1"
    assert decided.order is not None
    assert decided.order.survey_handle == "@x"


def test_the_worker_ends_where_the_oracle_is_whatever_came_late() -> None:
    """Orders first, then every stream and answer late: netted, the oracle's answer."""
    streams = [live(END), live(END + 20 * MINUTE, who="cai", cid="s2", start=START + 30 * MINUTE)]
    orders = [order(f"o{i}", START + i * 10 * MINUTE) for i in range(-1, 14)]
    answers = [answered("o12", SurveyAnswer(affiliate_id="dee"))]
    answers.append(answered("o13", SurveyAnswer(handle="DeeStyle")))
    w = Worker(VERSIONS)
    for o in orders:
        w.send(ORDERS.name, o, ARRIVED)
    w.tick(ARRIVED + GRACE_MS)
    for s in streams:
        w.content(s, LATE)
    w.tick(LATE)
    for a in answers:
        w.send(ORDERS.name, a, LATE + 1)
    oracle = attribute([*streams, *orders, *answers], {"camp": VERSIONS})
    assert net_outcomes(w.out) == net_outcomes(oracle.conversions)
    rules = {n.reason for n in net_outcomes(w.out).values()}
    assert rules == {"livestream", "survey"}


def test_a_publication_stamped_past_the_clock_skew_is_left_out_as_the_oracle_does() -> None:
    book = ContentBook(clock_skew_ms=300_000)
    stream = live(END)  # its latest time, the one held to the skew, is its end
    assert apply_record(book, encode(stream), END - 300_001)
    assert book.changes == []
    assert apply_record(book, encode(stream), END - 300_000) == []
    assert [c.stream for c in book.changes if c.stream] != []


def test_stats_records_are_passed_over_without_a_change() -> None:
    book = ContentBook()
    assert apply_record(book, b'{"type": "ContentStats", "content_id": "x"}', START) == []
    assert apply_record(book, None, START) == []
    assert book.changes == []
