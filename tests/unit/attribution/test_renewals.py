"""Subscription renewals in the refund stage: a renewal finds its first order's outcome
where that order's refunds do, pays the order's winner as a ``renewal`` conversion of its
own order id within the terms' limit, and otherwise is unattributed with the reason;
its own refunds then reverse it through the usual path, and the stage's state survives
its changelog encoding."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from afflux.attribution.handlers import Campaigns, RefundHandler
from afflux.attribution.join import Output
from afflux.attribution.refunds import RefundPartition, decode_ledger
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import (
    CampaignTermsPublished,
    ConversionAttributed,
    ConversionReversed,
    OrderRefunded,
    OrderUnattributed,
    RefundItem,
    SubscriptionRenewed,
)
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.topics import CONVERSIONS, REFUNDS, REVERSALS, UNMATCHED

pytestmark = pytest.mark.unit

DAY = 86_400_000
T0 = 1_793_491_200_000  # 2026-11-01T00:00:00Z
WAIT = 30_000


def terms(recurring: dict[str, object] | None) -> TermsVersion:
    plan: dict[str, object] = {"sale": {"rate": {"percent": "10"}}}
    if recurring is not None:
        plan["recurring"] = recurring
    t = CampaignTerms.model_validate(
        {"campaign_id": "subs", "merchant_id": "m", "currency": "EUR", "plan": plan}
    )
    return TermsVersion(version=3, effective_from=0, published_at=0, terms=t)


BY_COUNT = terms({"rate": {"percent": "20"}, "max_renewals": 2})
BY_MONTHS = terms({"rate": {"percent": "20"}, "max_months": 1})
NONE = terms(None)


def first_conversion(at: int = T0) -> ConversionAttributed:
    return ConversionAttributed(
        event_id="conv-first",
        occurred_at=at,
        conversion_id="conv-first",
        order_id="first",
        campaign_id="subs",
        affiliate_id="ana",
        reason="coupon",
        model="last_click",
        window_ms=30 * DAY,
        terms_version=1,
        amount_minor=10_000,
        currency="EUR",
        order_event_id="order-first",
    )


def unattributed_first() -> OrderUnattributed:
    return OrderUnattributed(
        event_id="u-first",
        occurred_at=T0,
        order_id="first",
        campaign_id="subs",
        reason="no_click",
        amount_minor=10_000,
        currency="EUR",
        order_event_id="order-first",
    )


def renewal(number: int, at: int) -> SubscriptionRenewed:
    return SubscriptionRenewed(
        event_id=f"renewal-ev-{number}",
        occurred_at=at,
        order_id="first",
        renewal_order_id=f"first:renewal-{number}",
        renewal_number=number,
        campaign_id="subs",
        merchant_id="m",
        amount_minor=1_999,
        currency="EUR",
    )


def stage(version: TermsVersion) -> RefundPartition:
    return RefundPartition(terms=lambda campaign, at: version)


@dataclass(frozen=True)
class Case:
    name: str
    version: TermsVersion
    number: int
    at: int
    reason: str | None  # None: a renewal conversion


CASES = [
    # The last renewal the count allows.
    Case("renewal 2 of 2", BY_COUNT, 2, T0 + 60 * DAY, None),
    # One past it.
    Case("renewal 3 of 2", BY_COUNT, 3, T0 + 90 * DAY, "renewal_beyond_limit"),
    # One month after 1 November is 1 December: one ms before it pays...
    Case("1 ms inside a month", BY_MONTHS, 1, T0 + 30 * DAY - 1, None),
    # ... at it, not.
    Case("at a month", BY_MONTHS, 1, T0 + 30 * DAY, "renewal_beyond_limit"),
    # Terms without recurring commissions.
    Case("no recurring terms", NONE, 1, T0 + DAY, "no_recurring_terms"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_renewal_pays_the_first_orders_winner_within_the_limit(case: Case) -> None:
    s = stage(case.version)
    s.conversion("first", first_conversion())

    [(topic, key, event)] = s.renewal("first", renewal(case.number, case.at), arrived=case.at)

    assert key == f"first:renewal-{case.number}"
    if case.reason is None:
        assert topic == CONVERSIONS.name
        assert isinstance(event, ConversionAttributed)
        assert (event.kind, event.affiliate_id, event.reason) == ("renewal", "ana", "coupon")
        assert (event.order_id, event.first_order_id) == (key, "first")
        assert (event.renewal_number, event.amount_minor, event.terms_version) == (
            case.number,
            1_999,
            3,
        )
    else:
        assert topic == UNMATCHED.name
        assert isinstance(event, OrderUnattributed)
        assert (event.reason, event.kind, event.order_id) == (case.reason, "renewal", key)


def test_a_renewal_of_an_unattributed_first_order_earns_nothing() -> None:
    s = stage(BY_COUNT)
    s.unattributed("first", unattributed_first())

    [(topic, _, event)] = s.renewal("first", renewal(1, T0 + DAY), arrived=T0 + DAY)

    assert topic == UNMATCHED.name
    assert isinstance(event, OrderUnattributed)
    assert event.reason == "first_order_unattributed"


def test_a_renewal_waits_for_its_first_order_then_is_decided() -> None:
    s = stage(BY_COUNT)
    assert s.renewal("first", renewal(1, T0 + DAY), arrived=T0 + DAY) == []
    restored = RefundPartition(terms=lambda campaign, at: BY_COUNT)
    for key, value in s.take_dirty():
        if value is not None:
            restored.restore(key, value)  # as after a restart, from the changelog

    [(topic, _, event)] = restored.conversion("first", first_conversion())

    assert topic == CONVERSIONS.name
    assert isinstance(event, ConversionAttributed)
    assert event.kind == "renewal"


def test_a_renewal_whose_first_order_never_comes_is_unattributed_after_the_wait() -> None:
    s = stage(BY_COUNT)
    s.renewal("first", renewal(1, T0 + DAY), arrived=T0 + DAY)

    assert s.due(T0 + DAY + WAIT - 1, WAIT) == []
    [(topic, _, event)] = s.due(T0 + DAY + WAIT, WAIT)

    assert topic == UNMATCHED.name
    assert isinstance(event, OrderUnattributed)
    assert event.reason == "first_order_unknown"


def restarted(s: RefundPartition, version: TermsVersion) -> RefundPartition:
    """The stage as a worker rebuilds it from the changelog after a restart."""
    restored = RefundPartition(terms=lambda campaign, at: version)
    for key, value in s.take_dirty():
        if value is not None:
            restored.restore(key, value)
    return restored


def test_a_renewal_expired_waiting_is_paid_when_its_first_orders_outcome_comes_late() -> None:
    # A broker outage holds the first order's outcome past the wait: the renewal is first
    # reported unknown, then paid like the oracle pays it once the outcome is known.
    s = stage(BY_COUNT)
    s.renewal("first", renewal(1, T0 + DAY), arrived=T0 + DAY)
    [(_, _, unknown)] = s.due(T0 + DAY + WAIT, WAIT)
    assert isinstance(unknown, OrderUnattributed)
    assert unknown.reason == "first_order_unknown"

    out = restarted(s, BY_COUNT).conversion("first", first_conversion())

    [(topic, key, paid)] = out
    assert (topic, key) == (CONVERSIONS.name, "first:renewal-1")
    assert isinstance(paid, ConversionAttributed)
    assert (paid.affiliate_id, paid.kind, paid.supersedes) == ("ana", "renewal", None)


def test_a_renewal_expired_waiting_stays_unattributed_when_its_first_order_earned_nothing() -> None:
    s = stage(BY_COUNT)
    s.renewal("first", renewal(1, T0 + DAY), arrived=T0 + DAY)
    s.due(T0 + DAY + WAIT, WAIT)

    assert s.unattributed("first", unattributed_first()) == []
    # ... and follows the order when a late click later gives it a creator.
    out = s.conversion("first", late_click_correction(supersedes=None))
    [moved] = [e for topic, _, e in out if topic == CONVERSIONS.name]
    assert isinstance(moved, ConversionAttributed)
    assert moved.affiliate_id == "ben"


def test_a_refund_expired_waiting_is_reversed_when_its_orders_conversion_comes_late() -> None:
    s = stage(BY_COUNT)
    refund = OrderRefunded(
        event_id="rf",
        occurred_at=T0 + DAY,
        refund_id="rf-1",
        order_id="first",
        campaign_id="subs",
        amount_minor=3_000,
        currency="EUR",
    )
    s.refund("first", refund, T0 + DAY)
    [(topic, _, _)] = s.due(T0 + DAY + WAIT, WAIT)
    assert topic == UNMATCHED.name

    out = restarted(s, BY_COUNT).conversion("first", first_conversion())

    [(topic, _, reversal)] = out
    assert topic == REVERSALS.name
    assert isinstance(reversal, ConversionReversed)
    assert (reversal.conversion_id, reversal.amount_minor) == ("conv-first", 3_000)


def test_a_renewal_paid_late_takes_the_refunds_that_found_it_unattributed() -> None:
    s = stage(BY_COUNT)
    s.renewal("first", renewal(1, T0 + DAY), arrived=T0 + DAY)
    [(_, key, unknown)] = s.due(T0 + DAY + WAIT, WAIT)
    assert isinstance(unknown, OrderUnattributed)
    s.unattributed(key, unknown)  # the stage reads its own unmatched-orders topic
    refund = OrderRefunded(
        event_id="rf-r",
        occurred_at=T0 + 2 * DAY,
        refund_id="rf-r1",
        order_id=key,
        campaign_id="subs",
        amount_minor=999,
        currency="EUR",
    )
    [(topic, _, _)] = s.refund(key, refund, T0 + 2 * DAY)
    assert topic == UNMATCHED.name
    [(_, _, paid)] = s.conversion("first", first_conversion())
    assert isinstance(paid, ConversionAttributed)

    [(topic, _, reversal)] = s.conversion(key, paid)

    assert topic == REVERSALS.name
    assert isinstance(reversal, ConversionReversed)
    assert (reversal.conversion_id, reversal.amount_minor) == (paid.conversion_id, 999)


def test_the_same_renewal_twice_is_decided_once() -> None:
    s = stage(BY_COUNT)
    s.conversion("first", first_conversion())
    assert len(s.renewal("first", renewal(1, T0 + DAY), arrived=T0 + DAY)) == 1
    assert s.renewal("first", renewal(1, T0 + DAY), arrived=T0 + DAY + 5) == []


def test_a_refund_of_the_renewal_reverses_it_and_keeps_the_items_it_names() -> None:
    s = stage(BY_COUNT)
    s.conversion("first", first_conversion())
    [(_, key, paid)] = s.renewal("first", renewal(1, T0 + DAY), arrived=T0 + DAY)
    assert isinstance(paid, ConversionAttributed)
    s.conversion(key, paid)  # the stage reads its own conversions topic
    refund = OrderRefunded(
        event_id="rf",
        occurred_at=T0 + 2 * DAY,
        refund_id="rf-1",
        order_id=key,
        campaign_id="subs",
        amount_minor=5_000,
        currency="EUR",
        items=(RefundItem(sku="plan", quantity=1),),
    )

    out: list[Output] = s.refund(key, refund, T0 + 2 * DAY)

    [(topic, _, reversal)] = out
    assert topic == REVERSALS.name
    assert isinstance(reversal, ConversionReversed)
    assert (reversal.conversion_id, reversal.amount_minor) == (paid.conversion_id, 1_999)
    assert reversal.items == (RefundItem(sku="plan", quantity=1),)
    restored = decode_ledger(dict(s.take_dirty())[key] or b"")
    assert restored.settled[0].items == (("plan", 1, None),)


def late_click_correction(supersedes: str | None) -> ConversionAttributed:
    """A late click of ben's won the first order (replacing ana's coupon, or the order's
    unattributed answer when ``supersedes`` is None)."""
    return first_conversion().model_copy(
        update={
            "event_id": "conv-first-ben",
            "conversion_id": "conv-first-ben",
            "affiliate_id": "ben",
            "reason": "cookie",
            "click_id": "late-click",
            "supersedes": supersedes,
            "correction_reason": "late_click",
            "corrected_at": T0 + 2 * DAY,
        }
    )


def test_a_renewal_follows_a_correction_of_its_first_order_to_the_new_winner() -> None:
    s = stage(BY_COUNT)
    s.conversion("first", first_conversion())
    [(_, _, paid_ana)] = s.renewal("first", renewal(1, T0 + DAY), arrived=T0 + DAY)
    assert isinstance(paid_ana, ConversionAttributed)

    out = s.conversion("first", late_click_correction(supersedes="conv-first"))

    moved = [e for topic, _, e in out if topic == CONVERSIONS.name]
    assert len(moved) == 1
    [renewal_conversion] = moved
    assert isinstance(renewal_conversion, ConversionAttributed)
    assert (renewal_conversion.affiliate_id, renewal_conversion.reason) == ("ben", "cookie")
    assert renewal_conversion.order_id == "first:renewal-1"
    assert renewal_conversion.supersedes == paid_ana.conversion_id
    assert renewal_conversion.correction_reason == "late_click"
    assert renewal_conversion.conversion_id != paid_ana.conversion_id


def test_a_renewal_left_unattributed_with_its_order_is_attributed_by_the_orders_correction() -> (
    None
):
    s = stage(BY_COUNT)
    s.unattributed("first", unattributed_first())
    s.renewal("first", renewal(1, T0 + DAY), arrived=T0 + DAY)
    restored = RefundPartition(terms=lambda campaign, at: BY_COUNT)
    for key, value in s.take_dirty():
        if value is not None:
            restored.restore(key, value)  # the renewals to follow survive a restart

    out = restored.conversion("first", late_click_correction(supersedes=None))

    [renewal_conversion] = [e for topic, _, e in out if topic == CONVERSIONS.name]
    assert isinstance(renewal_conversion, ConversionAttributed)
    assert (renewal_conversion.affiliate_id, renewal_conversion.supersedes) == ("ben", None)
    assert renewal_conversion.correction_reason == "late_click"


def test_a_renewal_past_the_limit_stays_unattributed_whoever_wins_the_order() -> None:
    s = stage(BY_COUNT)
    s.conversion("first", first_conversion())
    s.renewal("first", renewal(3, T0 + 90 * DAY), arrived=T0 + 90 * DAY)

    out = s.conversion("first", late_click_correction(supersedes="conv-first"))

    assert [e for topic, _, e in out if topic == CONVERSIONS.name] == []


def another_order_with(number: int, at: int) -> SubscriptionRenewed:
    """A renewal written straight to the topic reusing ``number`` under a new order id."""
    return renewal(number, at).model_copy(
        update={"event_id": f"renewal-ev-{number}-again", "renewal_order_id": f"again-{number}"}
    )


def reason_of(out: list[Output]) -> str:
    [(topic, _, event)] = out
    assert topic == UNMATCHED.name
    assert isinstance(event, OrderUnattributed)
    assert event.kind == "renewal"
    return event.reason


def test_a_renewal_number_is_paid_once_whatever_order_id_repeats_it() -> None:
    s = stage(BY_COUNT)
    # The first order's outcome is not known yet: the number is taken on arrival.
    assert s.renewal("first", renewal(1, T0 + DAY), arrived=T0 + DAY) == []
    s = restarted(s, BY_COUNT)  # the taken numbers survive in the changelog

    refused = s.renewal("first", another_order_with(1, T0 + DAY - 1), arrived=T0 + DAY + 1)

    assert reason_of(refused) == "renewal_number_taken"
    assert s.renewal("first", renewal(1, T0 + DAY), arrived=T0 + DAY + 2) == []  # a copy
    assert s.renewal("first", another_order_with(1, T0 + DAY), arrived=T0 + DAY + 3) == []
    [(_, key, paid)] = s.conversion("first", first_conversion())
    assert (key, isinstance(paid, ConversionAttributed)) == ("first:renewal-1", True)


def renewal_of(r: ConversionAttributed | OrderUnattributed) -> SubscriptionRenewed:
    """A renewal naming the renewal order ``r`` decided as its first order."""
    return renewal(1, T0 + 40 * DAY).model_copy(
        update={"event_id": "renewal-of-renewal", "order_id": r.order_id, "renewal_order_id": "x"}
    )


def test_a_renewal_of_a_renewal_earns_nothing_whichever_arrives_first() -> None:
    s = stage(BY_COUNT)
    s.conversion("first", first_conversion())
    [(_, key, paid)] = s.renewal("first", renewal(1, T0 + DAY), arrived=T0 + DAY)
    assert isinstance(paid, ConversionAttributed)
    # Read back first, then the renewal of it: refused at once.
    read_back_first = stage(BY_COUNT)
    read_back_first.conversion(key, paid)
    out = read_back_first.renewal(key, renewal_of(paid), arrived=T0 + 40 * DAY)
    assert reason_of(out) == "first_order_is_renewal"
    # The renewal of it first: it waits, expires, and the read-back decides nothing more.
    renewal_first = stage(BY_COUNT)
    assert renewal_first.renewal(key, renewal_of(paid), arrived=T0 + 40 * DAY) == []
    assert reason_of(renewal_first.due(T0 + 40 * DAY + WAIT, WAIT)) == "first_order_unknown"
    assert restarted(renewal_first, BY_COUNT).conversion(key, paid) == []


def test_a_renewal_reusing_its_first_orders_id_is_dead_lettered() -> None:
    directory = CampaignDirectory()
    directory.apply(
        CampaignTermsPublished(
            event_id="t", occurred_at=0, campaign_id="subs", versions=(BY_COUNT,)
        )
    )
    handler = RefundHandler(Campaigns(directory), WAIT, 400 * DAY)
    state = handler.new_state()
    state.conversion("first", first_conversion())
    hostile = renewal(1, T0 + DAY).model_copy(update={"renewal_order_id": "first"})

    outputs, refused = handler.on_event(state, REFUNDS.name, hostile, T0 + DAY)

    assert (list(outputs), refused.split(":")[0]) == ([], "renewal_order_id_is_first_order")
