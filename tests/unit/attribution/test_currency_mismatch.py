"""Money in another currency than it is paid in is refused where it enters the worker,
as the orders service refuses it at its door (``currency``: "campaign ... is paid in
EUR"), and the batch oracle leaves out the same events:

- an order or a renewal written straight to the topic in another currency than its
  campaign's terms is dead-lettered before it is used (``currency_mismatch: order in
  USD, campaign pays in EUR``); it was attributed, and only the ledger refused it;
- a refund in another currency than its order's outcome is dead-lettered where the
  refund stage matches it to that outcome (``currency_mismatch: refund in JPY, order in
  EUR``): a JPY refund of 5000 against a EUR order reversed 5000 EUR. Whenever the
  refund comes (after the outcome, before it, or after it waited past the refund wait),
  the conversion is left as it was and the order's later refunds, that refund id too
  sent again in EUR, are applied as usual. The currency is checked before the refund
  id: a JPY copy of a refund taken in EUR is refused the same, whichever came first,
  and the batch oracle and the what-if decoder leave out exactly that copy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from recording_runtime import recording_runtime

from afflux.attribution.refunds import RefundPartition, decode_ledger
from afflux.attribution.runtime import TERMS_REFUSALS, Runtime
from afflux.attribution.stage import Owned, Record
from afflux.oracle import attribute
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.core.whatif.log import CampaignLog
from afflux.shared.events import (
    ConversionAttributed,
    ConversionReversed,
    DeadLetter,
    Envelope,
    OrderPlaced,
    OrderRefunded,
    OrderUnattributed,
    RefundUnmatched,
    SubscriptionRenewed,
)
from afflux.shared.topics import CONVERSIONS, DLQ, ORDERS, REFUNDS, REVERSALS, UNMATCHED
from afflux.shared.whatif_decode import CURRENCY_MISMATCH, LogReader
from afflux.shared.wire import decode_record, encode

pytestmark = pytest.mark.unit

TS = 1_793_491_200_000
DAY = 86_400_000
TERMS = CampaignTerms.model_validate(
    {
        "campaign_id": "camp",
        "merchant_id": "merchant",
        "currency": "EUR",
        "coupons": {"ANA": "ana"},
        "grace_seconds": 1,
        "plan": {
            "sale": {"rate": {"percent": "10"}},
            "recurring": {"rate": {"percent": "10"}, "max_renewals": 12},
        },
    }
)
VERSION = TermsVersion(version=1, effective_from=0, published_at=0, terms=TERMS)
CAMPAIGNS = {"camp": (VERSION,)}


def order(currency: str = "EUR", order_id: str = "o-1", coupon: str | None = "ANA") -> OrderPlaced:
    return OrderPlaced(
        event_id=f"ev-{order_id}-{currency}",
        occurred_at=TS,
        order_id=order_id,
        campaign_id="camp",
        merchant_id="merchant",
        currency=currency,
        amount_minor=5_000,
        coupon_code=coupon,
        visitor_id=None if coupon else "nobody",
    )


def refund(refund_id: str, amount: int, currency: str, order_id: str = "o-1") -> OrderRefunded:
    return OrderRefunded(
        event_id=f"ev-{refund_id}-{currency}",
        occurred_at=TS + DAY,
        refund_id=refund_id,
        order_id=order_id,
        campaign_id="camp",
        amount_minor=amount,
        currency=currency,
    )


def renewal(currency: str) -> SubscriptionRenewed:
    return SubscriptionRenewed(
        event_id=f"ev-renewal-{currency}",
        occurred_at=TS + 30 * DAY,
        order_id="o-1",
        renewal_order_id="o-1:renewal-1",
        renewal_number=1,
        campaign_id="camp",
        merchant_id="merchant",
        amount_minor=2_000,
        currency=currency,
    )


def outcome(o: OrderPlaced) -> Envelope:
    """The join's outcome for ``o``, as the oracle decides it (a coupon wins at once)."""
    result = attribute([o], CAMPAIGNS)
    [decided] = [*result.conversions, *result.unmatched]
    return decided


Sent = list[tuple[str, bytes | None]]


def events(sent: Sent, topic: str) -> list[Envelope]:
    return [e for t, v in sent if t == topic for e in decode_record(v)]


def letters(sent: Sent) -> list[DeadLetter]:
    found = events(sent, DLQ.name)
    assert all(isinstance(e, DeadLetter) for e in found)
    return [e for e in found if isinstance(e, DeadLetter)]


def reversed_minor(sent: Sent) -> list[int]:
    return [
        e.amount_minor for e in events(sent, REVERSALS.name) if isinstance(e, ConversionReversed)
    ]


class Worker:
    """The worker's two stages over one partition, fed record by record."""

    def __init__(self) -> None:
        self.sent: Sent = []
        self.rt: Runtime = recording_runtime(self.sent, VERSION, "currency")
        self.offsets: dict[str, int] = {}
        self.rt.join.owned[0] = Owned(self.rt.join.new_state())
        self.rt.refunds.owned[0] = Owned(self.rt.refunds.new_state())

    def feed(self, topic: str, event: Envelope, ts: int = TS + DAY) -> None:
        offset = self.offsets.get(topic, 0)
        self.offsets[topic] = offset + 1
        stage = self.rt.join if topic == ORDERS.name else self.rt.refunds
        record = Record(topic, 0, offset, b"k", encode(event), ts)
        asyncio.run(stage.handle(record))

    def expire(self) -> None:
        """Every waiting refund past its wait (a tick far later on the safe clock)."""
        self.rt.refunds.owned[0].safe_ms = TS + 1_000 * DAY
        asyncio.run(self.rt.refunds.tick())


def test_an_order_in_another_currency_than_the_campaigns_is_dead_lettered() -> None:
    w = Worker()
    w.feed(ORDERS.name, order("USD"), TS)
    [letter] = letters(w.sent)
    assert letter.reason == "currency_mismatch: order in USD, campaign pays in EUR"
    assert (letter.source_topic, letter.source_offset) == (ORDERS.name, 0)
    assert events(w.sent, CONVERSIONS.name) + events(w.sent, UNMATCHED.name) == []
    assert attribute([order("USD")], CAMPAIGNS).conversions == []  # the oracle likewise
    # The refusal changed nothing: the same order id in EUR is attributed.
    w.feed(ORDERS.name, order("EUR"), TS)
    [conversion] = events(w.sent, CONVERSIONS.name)
    assert isinstance(conversion, ConversionAttributed)
    assert (conversion.currency, conversion.affiliate_id) == ("EUR", "ana")
    assert attribute([order("USD"), order("EUR")], CAMPAIGNS).conversions == [conversion]


def test_the_reason_matches_the_orders_apis_and_newer_terms_may_lift_it() -> None:
    """The orders API answers 422 ``currency``: "campaign camp is paid in EUR"; the worker
    holds the refusal until its campaign view caught up (terms_recheck), like an unknown
    campaign's."""
    assert "currency_mismatch" in TERMS_REFUSALS


def test_a_renewal_in_another_currency_than_the_campaigns_is_dead_lettered() -> None:
    w = Worker()
    w.feed(CONVERSIONS.name, outcome(order()))
    w.feed(REFUNDS.name, renewal("USD"), TS + 30 * DAY)
    [letter] = letters(w.sent)
    assert letter.reason == "currency_mismatch: renewal in USD, campaign pays in EUR"
    assert events(w.sent, CONVERSIONS.name) + events(w.sent, UNMATCHED.name) == []
    oracle = attribute([order(), renewal("USD")], CAMPAIGNS)
    assert [c.order_id for c in oracle.conversions if isinstance(c, ConversionAttributed)] == [
        "o-1"
    ]
    # The same renewal in EUR is paid.
    w.feed(REFUNDS.name, renewal("EUR"), TS + 30 * DAY)
    [paid] = events(w.sent, CONVERSIONS.name)
    assert isinstance(paid, ConversionAttributed)
    assert (paid.order_id, paid.currency) == ("o-1:renewal-1", "EUR")


def oracle_reversals(refunds: Sequence[OrderRefunded], o: OrderPlaced | None = None) -> list[int]:
    result = attribute([o or order(), *refunds], CAMPAIGNS)
    return [r.amount_minor for r in result.reversals]


REFUNDS_IN_TURN = [
    refund("r-1", 5_000, "JPY"),  # refused: the conversion stays whole
    refund("r-2", 1_000, "EUR"),  # a later valid refund of the same order: applied
    refund("r-1", 5_000, "EUR"),  # the refused id sent again in EUR: applied, capped
]


def test_a_refund_in_another_currency_than_its_order_is_dead_lettered() -> None:
    w = Worker()
    w.feed(CONVERSIONS.name, outcome(order()))
    for r in REFUNDS_IN_TURN:
        w.feed(REFUNDS.name, r)
    [letter] = letters(w.sent)
    assert letter.reason == "currency_mismatch: refund in JPY, order in EUR"
    assert (letter.source_topic, letter.source_offset) == (REFUNDS.name, 0)
    assert reversed_minor(w.sent) == [1_000, 4_000] == oracle_reversals(REFUNDS_IN_TURN)
    every = [e for e in events(w.sent, REVERSALS.name) if isinstance(e, ConversionReversed)]
    assert {e.currency for e in every} == {"EUR"}
    assert every[-1].refunded_total_minor == 5_000


def test_a_refund_that_waited_for_its_order_is_held_to_the_orders_currency() -> None:
    w = Worker()
    for r in REFUNDS_IN_TURN:  # all before the order's outcome: they wait
        w.feed(REFUNDS.name, r)
    assert letters(w.sent) == []
    assert reversed_minor(w.sent) == []
    w.feed(CONVERSIONS.name, outcome(order()))
    [letter] = letters(w.sent)
    assert letter.reason == "currency_mismatch: refund in JPY, order in EUR"
    # Refused when the outcome came, not while its record was read.
    assert (letter.source_topic, letter.source_offset) == (REFUNDS.name, -1)
    assert letter.error_class == "Refused"
    assert reversed_minor(w.sent) == [1_000, 4_000] == oracle_reversals(REFUNDS_IN_TURN)


def test_a_refund_that_expired_waiting_is_refused_when_its_order_comes_after_all() -> None:
    w = Worker()
    w.feed(REFUNDS.name, refund("r-1", 5_000, "JPY"))
    w.expire()  # answered order_unknown: its order's currency unknown then
    [unknown] = events(w.sent, UNMATCHED.name)
    assert isinstance(unknown, RefundUnmatched)
    assert unknown.reason == "order_unknown"
    w.feed(REFUNDS.name, refund("r-2", 1_000, "EUR"))
    w.feed(CONVERSIONS.name, outcome(order()))
    [letter] = letters(w.sent)
    assert letter.reason == "currency_mismatch: refund in JPY, order in EUR"
    assert reversed_minor(w.sent) == [1_000]
    # Its id is free again: sent in EUR it is applied, and its first answer stands.
    w.feed(REFUNDS.name, refund("r-1", 5_000, "EUR"))
    assert reversed_minor(w.sent) == [1_000, 4_000] == oracle_reversals(REFUNDS_IN_TURN)
    assert len(events(w.sent, UNMATCHED.name)) == 1


def test_a_refund_of_an_unattributed_order_is_held_to_the_orders_currency() -> None:
    w = Worker()
    nobody = order(coupon=None)
    unattributed = outcome(nobody)
    assert isinstance(unattributed, OrderUnattributed)
    w.feed(UNMATCHED.name, unattributed)
    w.feed(REFUNDS.name, refund("r-1", 5_000, "JPY"))
    w.feed(REFUNDS.name, refund("r-2", 1_000, "EUR"))
    [letter] = letters(w.sent)
    assert letter.reason == "currency_mismatch: refund in JPY, order in EUR"
    [unmatched] = events(w.sent, UNMATCHED.name)
    assert isinstance(unmatched, RefundUnmatched)
    assert (unmatched.refund_id, unmatched.reason) == ("r-2", "order_unattributed")
    oracle = attribute(
        [nobody, refund("r-1", 5_000, "JPY"), refund("r-2", 1_000, "EUR")], CAMPAIGNS
    )
    assert [u for u in oracle.unmatched if isinstance(u, RefundUnmatched)] == [unmatched]


@dataclass(frozen=True)
class Copies:
    """Two copies of one refund id, in EUR (its order's currency) and in JPY, arriving in
    ``first``, ``second`` order; ``timing``: both after the order's outcome (``after``),
    both before it (``waiting``), or the first one expired waiting for it before the
    second came (``expired``)."""

    first: str
    second: str
    timing: str

    @property
    def name(self) -> str:
        return f"{self.first} then {self.second}, {self.timing}"

    @property
    def refunds(self) -> list[OrderRefunded]:
        return [refund("r-1", 700, self.first), refund("r-1", 700, self.second)]


COPIES = [
    Copies(first, second, timing)
    for timing in ("after", "waiting", "expired")
    for first, second in (("EUR", "JPY"), ("JPY", "EUR"))
]
JPY_REFUSED = "currency_mismatch: refund in JPY, order in EUR"


def worker_over(case: Copies) -> Worker:
    w = Worker()
    if case.timing == "after":
        w.feed(CONVERSIONS.name, outcome(order()))
    first, second = case.refunds
    w.feed(REFUNDS.name, first)
    if case.timing == "expired":
        w.expire()  # answered order_unknown, its order's currency unknown then
    w.feed(REFUNDS.name, second)
    if case.timing != "after":
        w.feed(CONVERSIONS.name, outcome(order()))
    return w


@pytest.mark.parametrize("case", COPIES, ids=lambda c: c.name)
def test_a_copy_in_another_currency_is_refused_whichever_copy_came_first(case: Copies) -> None:
    """The currency is checked before the refund id: the JPY copy is dead-lettered even
    when the EUR copy took the id before it (it was dropped without a trace when both
    waited, and refused as a conflicting duplicate after the outcome), and the EUR copy
    is applied once."""
    w = worker_over(case)
    [letter] = letters(w.sent)
    assert letter.reason == JPY_REFUSED
    # Refused with its record when read after the outcome; else when the outcome came.
    jpy_offset = case.refunds.index(refund("r-1", 700, "JPY"))
    assert letter.source_offset == (jpy_offset if case.timing == "after" else -1)
    reversals = [e for e in events(w.sent, REVERSALS.name) if isinstance(e, ConversionReversed)]
    assert [(e.refund_id, e.amount_minor, e.currency) for e in reversals] == [("r-1", 700, "EUR")]


def whatif_over(case: Copies) -> LogReader:
    """The what-if decoder over the same records: the refunds topic read before the
    orders topic when the refunds came before the order's outcome."""
    reader = LogReader(CampaignLog("camp"), versions=(VERSION,))
    placed = [(ORDERS.name, order(), TS)]
    refunded = [(REFUNDS.name, r, TS + DAY) for r in case.refunds]
    for topic, event, ts in placed + refunded if case.timing == "after" else refunded + placed:
        reader.record(encode(event), topic, ts)
    return reader


@pytest.mark.parametrize("case", COPIES, ids=lambda c: c.name)
def test_the_worker_the_oracle_and_the_whatif_leave_out_the_same_copy(case: Copies) -> None:
    """What the worker dead-letters, the batch oracle and the what-if decoder leave out,
    whichever copy came first: the oracle reverses what the worker does, and the
    decoder takes the EUR copy and counts the JPY one as refused for its currency."""
    w = worker_over(case)
    refused = len([letter for letter in letters(w.sent) if letter.reason == JPY_REFUSED])
    assert reversed_minor(w.sent) == oracle_reversals(case.refunds) == [700]
    reader = whatif_over(case)
    assert reader.refused == {CURRENCY_MISMATCH: refused} == {CURRENCY_MISMATCH: 1}
    assert [(r.refund_id, r.amount_minor, r.currency) for r in reader.log.refunds] == [
        ("r-1", 700, "EUR")
    ]


def test_the_refund_stage_keeps_what_it_needs_across_a_restart() -> None:
    """The currency of an unattributed outcome, of each settled refund and the ids whose
    answer stands are in the changelog: a restarted stage refuses and applies the same."""
    stage = RefundPartition()
    nobody = outcome(order(coupon=None))
    assert isinstance(nobody, OrderUnattributed)
    stage.refund("o-1", refund("r-1", 500, "JPY"), 0)
    stage.due(10**15, 0)  # expired: order_unknown
    stage.unattributed("o-1", nobody)  # EUR: r-1 refused, its id free again
    [refused] = stage.take_failed()
    assert refused.reason == "currency_mismatch: refund in JPY, order in EUR"
    changelog = dict(stage.take_dirty())
    restored = RefundPartition()
    for key, value in changelog.items():
        assert value is not None
        restored.restore(key, value)
    ledger = restored.keys["o-1"]
    assert ledger == stage.keys["o-1"]
    assert (ledger.currencies, ledger.answered) == ({"camp": "EUR"}, {("camp", "r-1")})
    assert restored.currency_refusal("o-1", refund("r-2", 1, "USD")) == (
        "currency_mismatch: refund in USD, order in EUR"
    )
    # A ledger written before currencies were kept holds every refund as before.
    old = decode_ledger(b'{"c":[],"u":["camp"],"r":{},"d":[],"w":[],"t":0,"h":[["camp","r",1,0]]}')
    assert (old.settled[0].currency, old.currencies) == ("", {})
    restored.keys["old"] = old
    assert restored.currency_refusal("old", refund("r-3", 1, "USD", "old")) == ""
