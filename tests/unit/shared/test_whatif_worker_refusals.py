"""The what-if decoder leaves out every event the attribution worker refuses before using
it, as the batch oracle does (``admitted``, ``attribute``, and ``wrong_topic`` as
``afflux verify`` applies it): an event stamped more than the clock skew after its
record, an order, refund or renewal dated more than the campaign's backfill limit plus
the skew before its record (unless the record is marked a backfill), an order or renewal
in another currency than the campaign's terms in force at its time, a refund in another
currency than its order's, and an event on a topic it does not travel on. A what-if read
them as recorded and showed commission the worker never paid. Each refused case has a
neighbour exactly at its bound that both keep; each left-out event is counted in
``skipped`` and by reason in ``refused``."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord

from afflux.oracle import admitted, attribute, reference_from_events
from afflux.oracle.batch import OracleResult
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.event_time import (
    BACKFILL_HEADERS,
    DEFAULT_CLOCK_SKEW_MS,
    EVENT_TIME_IN_FUTURE,
    EVENT_TIME_TOO_OLD,
    allowed_age_ms,
    backfill_limit_ms,
)
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.core.whatif.log import EVER, CampaignLog
from afflux.shared.core.whatif.replay import replay
from afflux.shared.events import (
    ClickRecorded,
    ContentPublished,
    ContentReleased,
    ConversionAttributed,
    Envelope,
    LeadConfirmed,
    OrderPlaced,
    OrderRefunded,
    OrderUnattributed,
    RefundUnmatched,
    SubscriptionRenewed,
)
from afflux.shared.io import whatif_source
from afflux.shared.io.whatif_source import ReplayBounds, run_whatif
from afflux.shared.schemas import WRONG_TOPIC, wrong_topic
from afflux.shared.topics import CLICKS, ORDERS, REFUNDS
from afflux.shared.whatif_decode import CURRENCY_MISMATCH, LogReader
from afflux.shared.wire import encode

pytestmark = pytest.mark.unit

TS = 1_793_491_200_000  # 2026-11-01
DAY = MS_PER_DAY
SKEW = DEFAULT_CLOCK_SKEW_MS
TERMS = CampaignTerms.model_validate(
    {
        "campaign_id": "camp",
        "merchant_id": "m",
        "currency": "EUR",
        "cookie_window_days": 30,
        "plan": {"sale": {"rate": {"percent": "10"}}},
    }
)
EUR = (TermsVersion(version=1, effective_from=0, published_at=0, terms=TERMS),)
# The campaign's terms pay in USD from SWITCH on: an order's currency is held to the
# terms in force at its time.
SWITCH = TS + 100 * DAY
SWITCHED = (
    *EUR,
    TermsVersion(
        version=2,
        effective_from=SWITCH,
        published_at=SWITCH,
        terms=TERMS.model_copy(update={"currency": "USD"}),
    ),
)
LIMIT = backfill_limit_ms(EUR, None)
ALLOWED = allowed_age_ms(LIMIT, SKEW)
RENEWED_AT = TS + 10 * DAY


def click(at: int = TS - 1000) -> ClickRecorded:
    return ClickRecorded(
        event_id="e-c1", occurred_at=at, click_id="c1", link_code="l", affiliate_id="ana",
        campaign_id="camp", visitor_id="v1",
    )  # fmt: skip


def order(at: int = TS, currency: str = "EUR") -> OrderPlaced:
    return OrderPlaced(
        event_id="e-o1", occurred_at=at, order_id="o1", campaign_id="camp", merchant_id="m",
        amount_minor=10_000, currency=currency, visitor_id="v1",
    )  # fmt: skip


def refund(at: int = TS + DAY, currency: str = "EUR") -> OrderRefunded:
    return OrderRefunded(
        event_id=f"e-r1-{currency}", occurred_at=at, refund_id="r1", order_id="o1",
        campaign_id="camp", amount_minor=2_000, currency=currency,
    )  # fmt: skip


def renewal(at: int = RENEWED_AT, currency: str = "EUR") -> SubscriptionRenewed:
    return SubscriptionRenewed(
        event_id="e-n1", occurred_at=at, order_id="o1", renewal_order_id="o1-n1",
        renewal_number=1, campaign_id="camp", merchant_id="m", amount_minor=5_000,
        currency=currency,
    )  # fmt: skip


def confirmation(at: int = TS + DAY) -> LeadConfirmed:
    return LeadConfirmed(event_id="e-l1", occurred_at=at, order_id="o1", campaign_id="camp")


HOME = {
    ClickRecorded: CLICKS.name,
    OrderPlaced: ORDERS.name,
    LeadConfirmed: ORDERS.name,
    OrderRefunded: REFUNDS.name,
    SubscriptionRenewed: REFUNDS.name,
}


@dataclass(frozen=True)
class Rec:
    """One record: an event, the topic it was read on, its timestamp and whether it is
    marked a backfill (by default: its home topic, stamped at the event's own time)."""

    event: Envelope
    topic: str = ""
    ts: int | None = None
    backfill: bool = False

    @property
    def on(self) -> str:
        return self.topic or HOME[type(self.event)]

    @property
    def stamp(self) -> int:
        return self.event.occurred_at if self.ts is None else self.ts


def base(*replaced: Rec) -> list[Rec]:
    """A click, the order it wins, the order's refund, renewal and lead confirmation; a
    record in ``replaced`` stands in for the base record of its event type."""
    swapped = {type(r.event): r for r in replaced}
    events: list[Envelope] = [click(), order(), refund(), renewal(), confirmation()]
    return [swapped.get(type(e), Rec(e)) for e in events]


Subject = Callable[[LogReader, OracleResult], tuple[bool, bool]]


def clicked(reader: LogReader, result: OracleResult) -> tuple[bool, bool]:
    won = [c for c in result.conversions if isinstance(c, ConversionAttributed)]
    return "c1" in reader.log.click_ids, any(c.click_id == "c1" for c in won)


def ordered(reader: LogReader, result: OracleResult) -> tuple[bool, bool]:
    outcomes = [
        e
        for e in (*result.conversions, *result.unmatched)
        if isinstance(e, ConversionAttributed | OrderUnattributed)
    ]
    return "o1" in reader.log.order_ids, any(e.order_id == "o1" for e in outcomes)


def refunded(reader: LogReader, result: OracleResult) -> tuple[bool, bool]:
    unmatched = [e for e in result.unmatched if isinstance(e, RefundUnmatched)]
    answered = [*result.reversals, *unmatched]
    return ("o1", "r1") in reader.log.refund_ids, any(e.refund_id == "r1" for e in answered)


def renewed(reader: LogReader, result: OracleResult) -> tuple[bool, bool]:
    outcomes = [
        e
        for e in (*result.conversions, *result.unmatched)
        if isinstance(e, ConversionAttributed | OrderUnattributed)
    ]
    return "o1-n1" in reader.log.renewal_ids, any(e.order_id == "o1-n1" for e in outcomes)


def confirmed(reader: LogReader, result: OracleResult) -> tuple[bool, bool]:
    leads = [e for e in result.conversions if isinstance(e, LeadConfirmed)]
    return "o1" in reader.log.confirmations, bool(leads)


@dataclass(frozen=True)
class Case:
    name: str
    records: list[Rec]
    subject: Subject
    kept: bool  # the subject event is used (by the worker, the oracle, the decoder)
    reason: str = ""  # why events are left out ("": none is)
    left_out: int = 1
    versions: tuple[TermsVersion, ...] = EUR
    refunds_first: bool = False  # the refunds topic read before the orders topic


FUTURE, PAST = SKEW + 1, ALLOWED + 1
CASES = [
    Case("every event on its home topic, at its record's time", base(), ordered, True),
    # 1. Event time more than the clock skew after the record's timestamp.
    Case("a click 1 ms past the skew", base(Rec(click(), ts=TS - 1000 - FUTURE)),
         clicked, False, EVENT_TIME_IN_FUTURE),
    Case("a click exactly the skew ahead", base(Rec(click(), ts=TS - 1000 - SKEW)),
         clicked, True),
    Case("an order 1 ms past the skew", base(Rec(order(), ts=TS - FUTURE)),
         ordered, False, EVENT_TIME_IN_FUTURE),
    Case("an order exactly the skew ahead", base(Rec(order(), ts=TS - SKEW)), ordered, True),
    Case("a refund 1 ms past the skew", base(Rec(refund(), ts=TS + DAY - FUTURE)),
         refunded, False, EVENT_TIME_IN_FUTURE),
    Case("a refund exactly the skew ahead", base(Rec(refund(), ts=TS + DAY - SKEW)),
         refunded, True),
    Case("a renewal 1 ms past the skew", base(Rec(renewal(), ts=RENEWED_AT - FUTURE)),
         renewed, False, EVENT_TIME_IN_FUTURE),
    Case("a lead confirmation 1 ms past the skew",
         base(Rec(confirmation(), ts=TS + DAY - FUTURE)), confirmed, False,
         EVENT_TIME_IN_FUTURE),
    # 2. Event time more than the backfill limit plus the skew before the record's.
    Case("an order 1 ms older than the limit", base(Rec(order(), ts=TS + PAST)),
         ordered, False, EVENT_TIME_TOO_OLD),
    Case("an order exactly the limit old", base(Rec(order(), ts=TS + ALLOWED)), ordered, True),
    Case("an order older than the limit, marked a backfill",
         base(Rec(order(), ts=TS + PAST, backfill=True)), ordered, True),
    Case("a refund 1 ms older than the limit", base(Rec(refund(), ts=TS + DAY + PAST)),
         refunded, False, EVENT_TIME_TOO_OLD),
    Case("a refund exactly the limit old", base(Rec(refund(), ts=TS + DAY + ALLOWED)),
         refunded, True),
    Case("a refund older than the limit, marked a backfill",
         base(Rec(refund(), ts=TS + DAY + PAST, backfill=True)), refunded, True),
    Case("a renewal 1 ms older than the limit", base(Rec(renewal(), ts=RENEWED_AT + PAST)),
         renewed, False, EVENT_TIME_TOO_OLD),
    Case("a renewal exactly the limit old", base(Rec(renewal(), ts=RENEWED_AT + ALLOWED)),
         renewed, True),
    Case("a click has no lower bound", base(Rec(click(), ts=TS + PAST)), clicked, True),
    # 3. Currency: an order's and a renewal's the campaign's at its time; a refund's its
    # order's.
    Case("an order in another currency", base(Rec(order(currency="USD"))),
         ordered, False, CURRENCY_MISMATCH),
    Case("an order in USD a millisecond before the terms pay in USD",
         base(Rec(order(SWITCH - 1, "USD")), Rec(refund(currency="USD"))), ordered, False,
         CURRENCY_MISMATCH, versions=SWITCHED),
    Case("an order in USD exactly when the terms pay in USD",
         base(Rec(order(SWITCH, "USD")), Rec(refund(currency="USD"))), ordered, True,
         versions=SWITCHED),
    Case("a renewal in another currency", base(Rec(renewal(currency="USD"))),
         renewed, False, CURRENCY_MISMATCH),
    Case("a refund in another currency than its order's", base(Rec(refund(currency="USD"))),
         refunded, False, CURRENCY_MISMATCH),
    Case("a refund in another currency, read before its order",
         base(Rec(refund(currency="USD"))), refunded, False, CURRENCY_MISMATCH,
         refunds_first=True),
    Case("a refund in its order's currency, read before its order", base(),
         refunded, True, refunds_first=True),
    Case("a copy in the order's currency after one in another",
         [*base(Rec(refund(currency="USD"))), Rec(refund())], refunded, True,
         CURRENCY_MISMATCH),
    # 4. An event on a topic it does not travel on.
    Case("an order on clicks", base(Rec(order(), topic=CLICKS.name)),
         ordered, False, WRONG_TOPIC),
    Case("a click on orders", base(Rec(click(), topic=ORDERS.name)),
         clicked, False, WRONG_TOPIC),
    Case("a refund on orders", base(Rec(refund(), topic=ORDERS.name)),
         refunded, False, WRONG_TOPIC),
    Case("a renewal on orders", base(Rec(renewal(), topic=ORDERS.name)),
         renewed, False, WRONG_TOPIC),
    Case("a lead confirmation on refunds", base(Rec(confirmation(), topic=REFUNDS.name)),
         confirmed, False, WRONG_TOPIC),
    Case("a lead confirmation on orders, its topic", base(), confirmed, True),
]  # fmt: skip


def read_order(case: Case) -> list[Rec]:
    """The records in the order the decoder reads them (and the oracle takes them)."""
    if not case.refunds_first:
        return case.records
    return sorted(case.records, key=lambda r: r.on != REFUNDS.name)  # stable


def decoded(case: Case) -> LogReader:
    reader = LogReader(CampaignLog("camp"), versions=case.versions)
    for r in read_order(case):
        headers = BACKFILL_HEADERS if r.backfill else ()
        reader.record(encode(r.event), r.on, r.stamp, headers)
    return reader


def oracle_inputs(case: Case) -> list[Envelope]:
    """The oracle's input as ``afflux verify`` builds it: events on their topics only,
    then ``admitted`` (time bounds); ``attribute`` then leaves out the currencies."""
    on_topic = [
        (r.event, r.stamp, r.backfill)
        for r in read_order(case)
        if not wrong_topic(type(r.event).__name__, r.on)
    ]
    return admitted(on_topic, SKEW, {"camp": case.versions})


def oracle(case: Case) -> OracleResult:
    return attribute(oracle_inputs(case), {"camp": case.versions})


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_decoder_and_the_oracle_leave_out_the_same_events(case: Case) -> None:
    reader, result = decoded(case), oracle(case)
    in_log, in_oracle = case.subject(reader, result)
    assert in_oracle is case.kept
    assert in_log is case.kept
    left_out = case.left_out if case.reason else 0
    assert reader.skipped == left_out
    assert reader.refused == ({case.reason: left_out} if case.reason else {})


def oracle_pay(case: Case) -> dict[str, int]:
    """creator -> what the commission reference pays for the attribution oracle's output."""
    result = oracle(case)
    clicks = [e for e in oracle_inputs(case) if isinstance(e, ClickRecorded)]
    lines = reference_from_events(
        [*result.conversions, *result.reversals, *clicks], {"camp": case.versions}
    )
    pay: dict[str, int] = defaultdict(int)
    for found in lines.values():
        for line in found:
            pay[line.affiliate_id] += line.pays_minor
    return {a: v for a, v in pay.items() if v}


@pytest.mark.parametrize("case", [c for c in CASES if c.versions == EUR], ids=lambda c: c.name)
def test_the_replay_pays_what_the_oracle_pays_for_the_events_it_used(case: Case) -> None:
    paid = replay(decoded(case).log, case.versions).commission_by_creator()
    assert {a: v for a, v in paid.items() if v} == oracle_pay(case)


def test_an_order_the_worker_refused_earns_nothing_in_the_whatif() -> None:
    """What the bug showed: an order stamped an hour after its record, paid 10 %."""
    case = Case("", base(Rec(order(), ts=TS - 3_600_000)), ordered, False)
    assert replay(decoded(case).log, EUR).commission_by_creator() == {}
    as_before = LogReader(CampaignLog("camp"))  # no record facts given: nothing refused
    for r in case.records:
        as_before.record(encode(r.event))
    assert replay(as_before.log, EUR).commission_by_creator() == {"ana": 800}


def test_an_amount_above_max_order_minor_is_left_unpaid_by_the_replay() -> None:
    """Already applied, per side: the replay decides the order but the ledger's rule
    leaves it unpaid under terms whose ``max_order_minor`` it exceeds (a draft that
    raises the bound pays it), as the commission reference does."""

    def bound(max_order_minor: int) -> tuple[TermsVersion, ...]:
        terms = TERMS.model_copy(update={"max_order_minor": max_order_minor})
        return (EUR[0].model_copy(update={"terms": terms}),)

    log = decoded(Case("", base(), ordered, True)).log
    assert replay(log, bound(10_000 - 1)).commission_by_creator().get("ana", 0) == 0
    assert replay(log, bound(10_000)).commission_by_creator() == {"ana": 800}


@dataclass
class FakeTopics:
    """``read_records_to_end`` over records held in memory."""

    records: list[ConsumerRecord[bytes, bytes]] = field(default_factory=list)

    async def read(
        self,
        bootstrap: str,
        topics: Sequence[str],
        on_record: Callable[[ConsumerRecord[bytes, bytes]], None],
        **_: Any,
    ) -> int:
        for record in self.records:
            if record.topic in topics:
                on_record(record)
        return len(self.records)


def consumer_record(r: Rec) -> ConsumerRecord[bytes, bytes]:
    value = encode(r.event)
    return ConsumerRecord(
        topic=r.on, partition=0, offset=0, timestamp=r.stamp, timestamp_type=0, key=None,
        value=value, checksum=None, serialized_key_size=-1, serialized_value_size=len(value),
        headers=list(BACKFILL_HEADERS) if r.backfill else [],
    )  # fmt: skip


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c.versions == EUR and not c.refunds_first],
    ids=lambda c: c.name,
)
def test_run_whatif_gives_the_decoder_each_records_topic_timestamp_and_headers(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    topics = FakeTopics([consumer_record(r) for r in case.records])
    monkeypatch.setattr(whatif_source, "read_records_to_end", topics.read)
    _, reader = asyncio.run(run_whatif("fake:9092", EUR, TERMS, EVER, ReplayBounds()))
    assert reader.log == decoded(case).log
    assert reader.refused == decoded(case).refused


def test_content_stated_past_the_skew_is_left_out() -> None:
    """A publication whose time is more than the skew after its record: the worker's
    content view and the ledger refuse it, and so does the decoder."""

    def published(ts: int) -> LogReader:
        event = ContentPublished(
            event_id="e-p1", occurred_at=TS, content_id="p1", platform="youtube",
            campaign_id="camp", affiliate_id="ana", published_at=TS, kind="video",
            url="https://example.com/p1",
        )  # fmt: skip
        reader = LogReader(CampaignLog("camp"))
        reader.content_record(encode(event), ts)
        return reader

    assert published(TS - SKEW).log.content_routes
    refused = published(TS - SKEW - 1)
    assert not refused.log.content_routes
    assert refused.refused == {EVENT_TIME_IN_FUTURE: 1}


def held_post(content_id: str) -> ContentPublished:
    """A video of the campaign its creator's own key published: held until released."""
    return ContentPublished(
        event_id=f"e-{content_id}", occurred_at=TS, content_id=content_id, platform="youtube",
        campaign_id="camp", affiliate_id="ana", published_at=TS, kind="video",
        url=f"https://example.com/{content_id}", reported_by="creator",
    )  # fmt: skip


def release_of(content_id: str) -> ContentReleased:
    return ContentReleased(
        event_id=f"e-release-{content_id}", occurred_at=TS, content_id=content_id,
        platform="youtube", released_by="merchant:m",
    )  # fmt: skip


def test_a_release_stamped_past_the_skew_is_left_out() -> None:
    """A release written to the topic an instant beyond the skew after its record: the
    worker's content view, the oracle and the ledger leave it out, so the decoder keeps
    the creator's content held; at the skew it is released."""

    def released(ts: int) -> LogReader:
        reader = LogReader(CampaignLog("camp"))
        reader.content_record(encode(held_post("p1")), TS)
        reader.content_record(encode(release_of("p1")), ts)
        return reader

    assert released(TS - SKEW).log.released == {"youtube:p1"}
    refused = released(TS - SKEW - 1)
    assert refused.log.released == set()
    assert refused.refused == {EVENT_TIME_IN_FUTURE: 1}


@pytest.mark.parametrize("release_first", [True, False])
def test_a_release_before_the_publication_releases_nothing(release_first: bool) -> None:
    """The ledger refuses a release of a content it has no publication of
    (``unknown_content``), and the worker's content view and the oracle leave it out: the
    decoder keeps the creator's content held too."""
    reader = LogReader(CampaignLog("camp"))
    published, release = held_post("p2"), release_of("p2")
    records = [release, published] if release_first else [published, release]
    for record in records:
        reader.content_record(encode(record), TS)
    assert reader.log.released == (set() if release_first else {"youtube:p2"})


@pytest.mark.parametrize("version", [True, 1.0, "1", 0])
def test_an_order_whose_schema_version_is_not_the_integer_1_earns_nothing(
    version: object,
) -> None:
    """true and 1.0 equal 1 in Python: the fast path took them while the worker (strict)
    refuses the order."""
    reader = LogReader(CampaignLog("camp"))
    for event in (click(), order()):
        raw = event.model_dump(mode="json")
        if isinstance(event, OrderPlaced):
            raw["schema_version"] = version
        reader.record(json.dumps(raw).encode())
    assert replay(reader.log, EUR).commission_by_creator() == {}
    assert reader.skipped >= 1
