"""A second event that reuses an id with other content is dead-lettered
(``conflicting_duplicate``), never dropped without a trace; a redelivery stays a silent
no-op.

Exactly once rests on dropping copies: an order, a refund or a click whose id the worker
holds changes nothing. But a copy that says something else (an order sent again with a
larger amount, in another currency, for another coupon; a refund id sent again with
another amount; a click id naming another creator) is a producer's bug or an attempt to
be paid more, and vanished silently. It is refused with its record now, naming what the
copy held said and what this one says; the first decision stands, so conversions and
reversals are the batch oracle's (which ignores later copies) either way.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from recording_runtime import recording_runtime

from afflux.attribution.join import JoinPartition, VisitorState, decode_state, encode_state
from afflux.attribution.metrics import AttributionMetrics
from afflux.attribution.outbox import Outbox
from afflux.attribution.refunds import RefundPartition, decode_ledger
from afflux.attribution.runtime import Runtime
from afflux.attribution.stage import Owned, Record
from afflux.oracle import attribute
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import (
    CampaignTermsPublished,
    ClickRecorded,
    ConversionAttributed,
    ConversionReversed,
    DeadLetter,
    Envelope,
    OrderItem,
    OrderPlaced,
    OrderRefunded,
    OrderUnattributed,
)
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.topics import CLICKS, CONVERSIONS, DLQ, ORDERS, REFUNDS, REVERSALS, UNMATCHED
from afflux.shared.wire import decode_record, encode

pytestmark = pytest.mark.unit

TS = 1_793_491_200_000
DAY = 86_400_000
# The campaign pays in USD from this time on: a copy dated after it may be in USD.
USD_FROM = TS + 10_000


def versions(coupons: bool) -> tuple[TermsVersion, ...]:
    """The campaign's terms: EUR, then USD from ``USD_FROM``. With ``coupons``, ANA is
    ana's code and an order carrying it is decided at once; without, it waits its grace."""

    def terms(currency: str) -> CampaignTerms:
        return CampaignTerms.model_validate(
            {
                "campaign_id": "camp",
                "merchant_id": "merchant",
                "currency": currency,
                "coupons": {"ANA": "ana"} if coupons else {},
                "grace_seconds": 1,
                "plan": {"sale": {"rate": {"percent": "10"}}},
            }
        )

    return (
        TermsVersion(version=1, effective_from=0, published_at=0, terms=terms("EUR")),
        TermsVersion(version=2, effective_from=USD_FROM, published_at=0, terms=terms("USD")),
    )


FIRST = OrderPlaced(
    event_id="ev-1",
    occurred_at=TS,
    order_id="order-1",
    campaign_id="camp",
    merchant_id="merchant",
    currency="EUR",
    amount_minor=1_000,
    visitor_id="v-1",
    coupon_code="ANA",
)
BOB_CLICK = ClickRecorded(
    event_id="ev-click",
    occurred_at=TS - 1_000,
    click_id="click-1",
    link_code="lnk",
    affiliate_id="bob",
    campaign_id="camp",
    visitor_id="v-1",
)

Sent = list[tuple[str, bytes | None]]


def events(sent: Sent, *topics: str) -> list[Envelope]:
    return [e for t, v in sent if t in topics for e in decode_record(v)]


def letters(sent: Sent) -> list[DeadLetter]:
    found = events(sent, DLQ.name)
    assert all(isinstance(e, DeadLetter) for e in found)
    return [e for e in found if isinstance(e, DeadLetter)]


def outcomes(sent: Sent) -> list[ConversionAttributed | OrderUnattributed]:
    return [
        e
        for e in events(sent, CONVERSIONS.name, UNMATCHED.name)
        if isinstance(e, ConversionAttributed | OrderUnattributed)
    ]


class Worker:
    """The worker's two stages over one partition, fed record by record."""

    def __init__(self, campaign: tuple[TermsVersion, ...]) -> None:
        self.sent: Sent = []
        directory = _with(CampaignDirectory(), campaign)  # both versions
        self.rt: Runtime = recording_runtime(self.sent, campaign[0], "conflicts", directory)
        self.offsets: dict[str, int] = {}
        self.rt.join.owned[0] = Owned(self.rt.join.new_state())
        self.rt.refunds.owned[0] = Owned(self.rt.refunds.new_state())

    def feed(self, topic: str, event: Envelope, ts: int) -> int:
        """Handle ``event`` in a record of its own; its offset."""
        offset = self.offsets.get(topic, 0)
        self.offsets[topic] = offset + 1
        stage = self.rt.join if topic in (ORDERS.name, CLICKS.name) else self.rt.refunds
        asyncio.run(stage.handle(Record(topic, 0, offset, b"k", encode(event), ts)))
        return offset

    def decide_waiting(self) -> None:
        """Every waiting order past its grace (a tick far later on the safe clock)."""
        self.rt.join.owned[0].safe_ms = TS + DAY
        asyncio.run(self.rt.join.tick())


def _with(directory: CampaignDirectory, campaign: tuple[TermsVersion, ...]) -> CampaignDirectory:
    directory.apply(
        CampaignTermsPublished(
            event_id="terms", occurred_at=0, campaign_id="camp", versions=campaign
        )
    )
    return directory


# -- orders ------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderCase:
    name: str
    copy: dict[str, Any]  # what the copy changes of FIRST
    reason: str | None  # its dead letter's reason; None: dropped silently


CONFLICT = "conflicting_duplicate: order order-1 of campaign camp was placed before with"
ORDER_CASES = [
    OrderCase("an identical redelivery", {}, None),
    # The orders service's retry: same content, its own receive time; risk facts, the
    # customer and the survey are no part of what an order pays and to whom.
    OrderCase(
        "the same content, another event id, time and customer",
        {"event_id": "ev-2", "occurred_at": TS + 5, "customer_id": "c-9"},
        None,
    ),
    OrderCase("the coupon in lower case", {"event_id": "ev-2", "coupon_code": " ana"}, None),
    OrderCase(
        "another amount",
        {"event_id": "ev-2", "amount_minor": 5_000},
        f"{CONFLICT} amount_minor 1000 EUR (event ev-1); this one says 5000 EUR (event ev-2)",
    ),
    OrderCase(
        "the same event id, another amount",
        {"amount_minor": 5_000},
        f"{CONFLICT} amount_minor 1000 EUR (event ev-1); this one says 5000 EUR (event ev-1)",
    ),
    # Dated under the terms that pay in USD: a currency the campaign takes then.
    OrderCase(
        "another currency",
        {"event_id": "ev-2", "occurred_at": USD_FROM + 1, "currency": "USD"},
        f"{CONFLICT} amount_minor 1000 EUR (event ev-1); this one says 1000 USD (event ev-2)",
    ),
    # Under the same terms: refused for the campaign's currency, as any order is.
    OrderCase(
        "another currency than the campaign's",
        {"event_id": "ev-2", "currency": "USD"},
        "currency_mismatch: order in USD, campaign pays in EUR",
    ),
    OrderCase(
        "another coupon",
        {"event_id": "ev-2", "coupon_code": "BOB"},
        f'{CONFLICT} coupon_code "ANA" (event ev-1); this one says "BOB" (event ev-2)',
    ),
    OrderCase(
        "a click id",
        {"event_id": "ev-2", "click_id": "click-1"},
        f'{CONFLICT} click_id null (event ev-1); this one says "click-1" (event ev-2)',
    ),
    OrderCase(
        "items",
        {"event_id": "ev-2", "items": (OrderItem(sku="a", quantity=2, price_minor=500),)},
        f'{CONFLICT} items [] (event ev-1); this one says [["a", null, 2, 500]] (event ev-2)',
    ),
    OrderCase(
        "another kind",
        {"event_id": "ev-2", "kind": "lead"},
        f'{CONFLICT} kind "sale" (event ev-1); this one says "lead" (event ev-2)',
    ),
]


@pytest.mark.parametrize("decided", [True, False], ids=["decided", "waiting"])
@pytest.mark.parametrize("case", ORDER_CASES, ids=lambda c: c.name)
def test_a_copy_of_an_order_that_says_something_else_is_dead_lettered(
    case: OrderCase, decided: bool
) -> None:
    """Whether the order held was decided at once (ana's coupon) or still waits for its
    grace (the coupon no creator's, bob's click to win it)."""
    campaign = versions(coupons=decided)
    w = Worker(campaign)
    w.feed(CLICKS.name, BOB_CLICK, TS)
    w.feed(ORDERS.name, FIRST, TS)
    assert len(outcomes(w.sent)) == int(decided)
    copy = FIRST.model_copy(update=case.copy)
    offset = w.feed(ORDERS.name, copy, max(TS, copy.occurred_at))
    w.decide_waiting()

    if case.reason is None:
        assert letters(w.sent) == []
    else:
        [letter] = letters(w.sent)
        assert letter.reason == case.reason
        assert (letter.source_topic, letter.source_offset) == (ORDERS.name, offset)
        assert letter.error_class == "Rejected"
    # The first decision stands: one outcome, the first copy's, as the oracle's.
    [outcome] = outcomes(w.sent)
    assert isinstance(outcome, ConversionAttributed)
    assert (outcome.order_event_id, outcome.amount_minor, outcome.currency) == (
        "ev-1",
        1_000,
        "EUR",
    )
    assert outcome.affiliate_id == ("ana" if decided else "bob")
    oracle = attribute([BOB_CLICK, FIRST, copy], {"camp": campaign})
    assert oracle.conversions == [outcome]


def test_the_first_order_is_kept_whatever_the_copies_say() -> None:
    """A copy refused changes nothing: the copy after it that says what the first said
    is a redelivery, and one that says something else again is refused again."""
    w = Worker(versions(coupons=True))
    w.feed(ORDERS.name, FIRST, TS)
    w.feed(ORDERS.name, FIRST.model_copy(update={"amount_minor": 9_000}), TS)
    w.feed(ORDERS.name, FIRST, TS)
    w.feed(ORDERS.name, FIRST.model_copy(update={"amount_minor": 7_000}), TS)
    reasons = [letter.reason for letter in letters(w.sent)]
    assert [r.rsplit("says ", 1)[1] for r in reasons] == [
        "9000 EUR (event ev-1)",
        "7000 EUR (event ev-1)",
    ]
    assert all("before with amount_minor 1000 EUR" in r for r in reasons)
    assert [o.amount_minor for o in outcomes(w.sent)] == [1_000]


def test_a_decided_order_is_compared_after_a_restart_and_old_state_behaves_as_before() -> None:
    """The facts of a decided order are on the changelog: a restored partition refuses
    the same copies. A decided order written before decided orders kept their facts
    holds nothing to compare with: its copies are dropped silently, as before."""
    campaign = versions(coupons=True)
    join = JoinPartition()

    def terms(c: str, at: int) -> TermsVersion | None:
        return campaign[0] if at < USD_FROM else campaign[1]

    assert join.place("v-1", FIRST, TS, terms) != []
    restored = JoinPartition()
    for key, value in join.take_dirty():
        assert value is not None
        restored.restore(key, value)
    more = FIRST.model_copy(update={"event_id": "ev-2", "amount_minor": 5_000})
    assert restored.conflicting_copy("v-1", FIRST) == ""
    assert restored.conflicting_copy("v-1", more) == (
        f"{CONFLICT} amount_minor 1000 EUR (event ev-1); this one says 5000 EUR (event ev-2)"
    )
    # Another key (another visitor) holds no copy of the order.
    assert restored.conflicting_copy("v-2", more) == ""

    old = decode_state(b'{"c":[],"d":[["camp","order-1",' + str(TS).encode() + b",true,false]]}")
    assert old.decided[("camp", "order-1")].order is None
    legacy = JoinPartition()
    legacy.restore("v-1", encode_state(old))
    assert legacy.conflicting_copy("v-1", more) == ""
    assert legacy.place("v-1", more, TS, terms) == []  # a copy, as before
    assert isinstance(legacy.keys["v-1"], VisitorState)


# -- refunds -----------------------------------------------------------------------


def outcome_of(order: OrderPlaced) -> Envelope:
    """The join's outcome for ``order``, as the oracle decides it (a coupon wins at once)."""
    result = attribute([order], {"camp": versions(coupons=True)})
    [decided] = [*result.conversions, *result.unmatched]
    return decided


REFUND = OrderRefunded(
    event_id="ev-r1",
    occurred_at=TS + DAY,
    refund_id="refund-1",
    order_id="order-1",
    campaign_id="camp",
    amount_minor=1_000,
    currency="EUR",
)


@dataclass(frozen=True)
class RefundCase:
    name: str
    copy: dict[str, Any]  # what the copy changes of REFUND
    # The copy's dead letter's reason when it comes after the refund was taken, and when
    # both wait for their order's outcome; None: dropped silently.
    taken: str | None
    waiting: str | None


REFUND_CONFLICT = "conflicting_duplicate: refund refund-1 of order order-1 of campaign camp"
REFUND_CASES = [
    RefundCase("an identical redelivery", {}, None, None),
    RefundCase(
        "the same amount, another event id and time",
        {"event_id": "ev-r2", "occurred_at": TS + DAY + 5},
        None,
        None,
    ),
    RefundCase(
        "another amount",
        {"event_id": "ev-r2", "amount_minor": 400},
        f"{REFUND_CONFLICT} came before with amount_minor 1000 EUR; this one says 400 EUR"
        " (event ev-r2)",
        f"{REFUND_CONFLICT} came before with amount_minor 1000 EUR (event ev-r1); this one"
        " says 400 EUR (event ev-r2)",
    ),
    # A copy in another currency is no conflict: its currency is checked first, and it is
    # refused as ``currency_mismatch`` whichever copy came first, after the order's outcome
    # or waiting for it (test_currency_mismatch).
]


@pytest.mark.parametrize("waiting", [False, True], ids=["taken", "waiting"])
@pytest.mark.parametrize("case", REFUND_CASES, ids=lambda c: c.name)
def test_a_copy_of_a_refund_that_asks_something_else_is_dead_lettered(
    case: RefundCase, waiting: bool
) -> None:
    order = FIRST.model_copy(update={"visitor_id": None})
    w = Worker(versions(coupons=True))
    copy = REFUND.model_copy(update=case.copy)
    if not waiting:
        w.feed(CONVERSIONS.name, outcome_of(order), TS + DAY)
    w.feed(REFUNDS.name, REFUND, TS + DAY)
    offset = w.feed(REFUNDS.name, copy, TS + DAY + 10)
    if waiting:
        w.feed(CONVERSIONS.name, outcome_of(order), TS + DAY)

    reason = case.waiting if waiting else case.taken
    if reason is None:
        assert letters(w.sent) == []
    else:
        [letter] = letters(w.sent)
        assert letter.reason == reason
        assert (letter.source_topic, letter.source_offset) == (REFUNDS.name, offset)
    # The first refund is applied once, as the oracle applies it.
    reversals = [e for e in events(w.sent, REVERSALS.name) if isinstance(e, ConversionReversed)]
    assert [(r.refund_id, r.requested_minor, r.amount_minor, r.currency) for r in reversals] == [
        ("refund-1", 1_000, 1_000, "EUR")
    ]
    oracle = attribute([order, REFUND, copy], {"camp": versions(coupons=True)})
    assert [(r.refund_id, r.requested_minor, r.amount_minor) for r in oracle.reversals] == [
        ("refund-1", 1_000, 1_000)
    ]


def test_a_refund_ledger_kept_before_is_compared_with_what_it_holds() -> None:
    """A settled refund from before currencies were kept is compared by its amount only;
    a refund id taken before settled refunds were kept holds nothing to compare with."""
    stage = RefundPartition()
    stage.keys["o"] = decode_ledger(
        b'{"c":[],"u":["camp"],"r":{},"d":[["camp","r"]],"w":[],"t":0,"h":[["camp","r",700,0]]}'
    )
    stage.keys["older"] = decode_ledger(
        b'{"c":[],"u":["camp"],"r":{},"d":[["camp","r"]],"w":[],"t":0}'
    )

    def refund(order_id: str, amount: int, currency: str) -> OrderRefunded:
        return REFUND.model_copy(
            update={
                "order_id": order_id,
                "refund_id": "r",
                "amount_minor": amount,
                "currency": currency,
            }
        )

    assert stage.conflicting_copy("o", refund("o", 700, "USD")) == ""
    assert stage.conflicting_copy("o", refund("o", 900, "USD")) == (
        "conflicting_duplicate: refund r of order o of campaign camp came before with"
        " amount_minor 700 USD; this one says 900 USD (event ev-r1)"
    )
    assert stage.conflicting_copy("older", refund("older", 900, "USD")) == ""
    assert stage.refund("older", refund("older", 900, "USD"), 0) == []  # a copy, as before


# -- clicks ------------------------------------------------------------------------


@dataclass(frozen=True)
class ClickCase:
    name: str
    copy: dict[str, Any]  # what the copy changes of BOB_CLICK
    reason: str | None


CLICK_CASES = [
    ClickCase("an identical redelivery", {}, None),
    ClickCase("another event id and time", {"event_id": "ev-2", "occurred_at": TS - 500}, None),
    ClickCase(
        "another creator",
        {"event_id": "ev-2", "affiliate_id": "eve"},
        "conflicting_duplicate: click click-1 was recorded before for affiliate bob of"
        " campaign camp; this one says affiliate eve of campaign camp (event ev-2)",
    ),
    ClickCase(
        "another campaign",
        {"event_id": "ev-2", "campaign_id": "other"},
        "conflicting_duplicate: click click-1 was recorded before for affiliate bob of"
        " campaign camp; this one says affiliate bob of campaign other (event ev-2)",
    ),
]


@pytest.mark.parametrize("case", CLICK_CASES, ids=lambda c: c.name)
def test_a_copy_of_a_click_that_names_someone_else_is_dead_lettered(case: ClickCase) -> None:
    campaign = versions(coupons=False)
    w = Worker(campaign)
    copy = BOB_CLICK.model_copy(update=case.copy)
    w.feed(CLICKS.name, BOB_CLICK, TS)
    offset = w.feed(CLICKS.name, copy, TS)
    order = FIRST.model_copy(update={"coupon_code": None})
    w.feed(ORDERS.name, order, TS)
    w.decide_waiting()
    if case.reason is None:
        assert letters(w.sent) == []
    else:
        [letter] = letters(w.sent)
        assert letter.reason == case.reason
        assert (letter.source_topic, letter.source_offset) == (CLICKS.name, offset)
    [outcome] = outcomes(w.sent)
    assert isinstance(outcome, ConversionAttributed)
    assert (outcome.affiliate_id, outcome.click_id) == ("bob", "click-1")
    assert attribute([BOB_CLICK, copy, order], {"camp": campaign}).conversions == [outcome]


# -- the metric --------------------------------------------------------------------


def test_a_conflicting_duplicate_is_counted_under_its_own_label() -> None:
    metrics = AttributionMetrics()
    outbox = Outbox(metrics, lambda: 0)
    reason = f"{CONFLICT} amount_minor 1000 EUR (event ev-1); this one says 5000 EUR (event ev-2)"
    letter = outbox.letter("orders", 0, 7, 0, b"k", None, reason, b"{}")
    outbox.records([], [letter], lambda topic: None)
    sample = metrics.registry.get_sample_value(
        "afflux_dlq_total", {"topic": "orders", "reason": "conflicting_duplicate"}
    )
    assert sample == 1.0
