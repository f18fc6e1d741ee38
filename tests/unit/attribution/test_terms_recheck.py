"""An order refused only because the worker's campaign view is a fetch behind the topic
(its campaign, or the terms that raised its amount limit, published just before it) is
held to the end of its batch and taken once the view caught up: never dead-lettered
while nothing is wrong with it. What stays refused once the view caught up, a record
stamped long before the view's last catch-up, or one stamped beyond the clock skew ahead
is dead-lettered as before, and a view that does not catch up holds it only for the
bounded wait."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from recording_runtime import recording_runtime

from afflux.attribution.runtime import Runtime
from afflux.attribution.stage import Owned, Record
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import (
    CampaignTermsPublished,
    ConversionAttributed,
    DeadLetter,
    OrderPlaced,
)
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.terms_recheck import (
    MARGIN_MS,
    SEEN_SLACK_MS,
    WAIT_SHARE,
    WINDOW_S,
    TermsRecheck,
)
from afflux.shared.topics import CONVERSIONS, DLQ, ORDERS
from afflux.shared.wire import decode_record, encode

pytestmark = pytest.mark.unit

NOW = 1_793_491_200_000


def terms(campaign: str) -> TermsVersion:
    return TermsVersion(
        version=1,
        effective_from=0,
        published_at=0,
        terms=CampaignTerms.model_validate(
            {
                "campaign_id": campaign,
                "merchant_id": "merchant",
                "currency": "EUR",
                "coupons": {"ANA": "ana"},
                "grace_seconds": 0,
                "plan": {"sale": {"rate": {"percent": "10"}}},
            }
        ),
    )


def published(version: TermsVersion) -> CampaignTermsPublished:
    return CampaignTermsPublished(
        event_id=f"terms-{version.terms.campaign_id}",
        occurred_at=0,
        campaign_id=version.terms.campaign_id,
        versions=(version,),
    )


def order(campaign: str) -> OrderPlaced:
    return OrderPlaced(
        event_id=f"ev-{campaign}",
        occurred_at=NOW - 10,
        order_id=f"order-{campaign}",
        campaign_id=campaign,
        merchant_id="merchant",
        currency="EUR",
        amount_minor=1_000,
        coupon_code="ANA",
    )


@dataclass(frozen=True)
class Case:
    name: str
    record_ts: int  # the order record's timestamp
    view_synced_at: int  # the view's last catch-up when the order is read (0: not followed)
    publish_meanwhile: bool  # the campaign arrives while the order is held
    catch_up_meanwhile: bool  # the view catches up past the order while it is held
    decided: bool  # the order is attributed (else dead-lettered as of an unknown campaign)


CASES = [
    # The campaign was published just before the order; the view reads it a moment later.
    Case("published just before the order", NOW, NOW - 200, True, True, True),
    # The view catches up without the campaign: it is unknown, dead-lettered.
    Case("really unknown campaign", NOW, NOW - 200, False, True, False),
    # The view does not catch up (broker away): dead-lettered after the bounded wait.
    Case("view stuck", NOW, NOW - 200, False, False, False),
    # Stamped by a worker or service host whose clock is 2 s behind or ahead of this
    # one's: held like any fresh record (at a 1 s margin both were dead-lettered).
    Case("stamped by a host 2 s behind", NOW - 2_000, NOW - 200, True, True, True),
    Case("stamped by a host 2 s ahead", NOW + 2_000, NOW - 200, True, True, True),
    # Stamped one ms before the view's last catch-up less the margin: the view has
    # everything published before it; dead-lettered at once.
    Case("old record", NOW - MARGIN_MS - 201, NOW - 200, True, True, False),
    # Stamped further ahead than the margin: not from our services, never held.
    Case("record stamped ahead", NOW + MARGIN_MS + 1, NOW - 200, True, True, False),
    # A view nothing follows (a worker driven without Kafka): no hold.
    Case("view not followed", NOW, 0, True, True, False),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_an_order_read_before_the_view_has_its_campaign_is_held_until_it_caught_up(
    case: Case,
) -> None:
    sent: list[tuple[str, bytes | None]] = []
    directory = CampaignDirectory()
    if case.view_synced_at:
        directory.mark_synced(case.view_synced_at)
    rt: Runtime = recording_runtime(
        sent, terms("known"), "terms-recheck", directory, clock=lambda: NOW
    )
    assert rt.join.recheck is not None
    # Long beside what handling one order takes, even on a loaded machine.
    rt.join.recheck.wait_s = 2.0
    late = terms("late")

    async def view_meanwhile() -> None:
        await asyncio.sleep(0)  # the stage holds the order first
        if case.publish_meanwhile:
            directory.apply(published(late))
        if case.catch_up_meanwhile:
            directory.mark_synced(NOW + MARGIN_MS + 50)

    async def run() -> float:
        rt.join.owned[0] = Owned(rt.join.new_state())
        loop = asyncio.get_running_loop()
        started = loop.time()
        view = asyncio.ensure_future(view_meanwhile())
        await rt.join.handle(Record(ORDERS.name, 0, 0, b"k", encode(order("late")), case.record_ts))
        took = loop.time() - started
        await view
        state = rt.join.owned[0].state
        for topic, _, event in rt.join.handler.due(state, NOW + 10_000):
            sent.append((topic, encode(event)))
        return took

    took = asyncio.run(run())
    events = [
        (t, e) for t, v in sent if t in (DLQ.name, CONVERSIONS.name) for e in decode_record(v)
    ]
    letters = [e for t, e in events if isinstance(e, DeadLetter)]
    conversions = [e for t, e in events if isinstance(e, ConversionAttributed)]
    if case.decided:
        assert letters == []
        [conversion] = conversions
        assert (conversion.order_id, conversion.affiliate_id) == ("order-late", "ana")
    else:
        [letter] = letters
        assert letter.reason == "unknown campaign"
        assert conversions == []
    if case.name != "view stuck":
        assert took < 1.5  # never the whole bounded wait
    else:
        assert took >= 2.0
    assert rt.join.owned[0].consumed[ORDERS.name] == 1


@dataclass(frozen=True)
class LagCase:
    name: str
    record_ms: int
    synced_at: int
    lags: bool


LAG_CASES = [
    # The view caught up a margin after the record: it has every campaign published before.
    LagCase("caught up exactly a margin after", NOW, NOW + MARGIN_MS, False),
    # One ms short of that: it may lag.
    LagCase("one ms short", NOW, NOW + MARGIN_MS - 1, True),
    # A record stamped exactly a margin ahead of now may still lag.
    LagCase("stamped a margin ahead", NOW + MARGIN_MS, NOW, True),
    # One ms further ahead: not one of ours, never waited for.
    LagCase("stamped beyond a margin ahead", NOW + MARGIN_MS + 1, NOW, False),
]


@pytest.mark.parametrize("case", LAG_CASES, ids=lambda c: c.name)
def test_the_view_may_lag_a_record_until_it_caught_up_a_margin_after_it(case: LagCase) -> None:
    directory = CampaignDirectory()
    directory.mark_synced(case.synced_at)
    assert directory.may_lag(case.record_ms, NOW, MARGIN_MS) is case.lags


def test_waiting_for_the_view_ends_when_it_catches_up_and_is_bounded() -> None:
    directory = CampaignDirectory()

    async def run() -> tuple[bool, bool, bool]:
        waiting = asyncio.ensure_future(directory.synced_past(NOW, 5.0))
        await asyncio.sleep(0)
        directory.mark_synced(NOW - 1)  # not yet
        await asyncio.sleep(0)
        still = not waiting.done()
        directory.mark_synced(NOW)
        caught = await waiting
        bounded = await directory.synced_past(NOW + 1, 0.01)
        return still, caught, bounded

    assert asyncio.run(run()) == (True, True, False)


def test_an_event_seen_now_waits_only_for_a_fetch_after_it_not_the_whole_skew() -> None:
    directory = CampaignDirectory()
    directory.mark_synced(NOW - 200)
    recheck = TermsRecheck(directory, lambda: NOW, ("unknown campaign",))
    # Stamped now: the view must catch up a moment after now, not a skew after it.
    assert recheck.may_lift("unknown campaign", NOW) == NOW + SEEN_SLACK_MS
    # Stamped 10 ms before the view's catch-up less the skew: final already.
    assert recheck.may_lift("unknown campaign", NOW - 200 - MARGIN_MS) is None
    # A reason newer terms cannot lift: final.
    assert recheck.may_lift("items sum to 3, amount_minor is 4", NOW) is None


def test_holding_takes_at_most_its_share_of_time_then_refusals_are_final() -> None:
    directory = CampaignDirectory()
    directory.mark_synced(NOW - 200)
    clock = [100.0]  # the monotonic clock, moved by hand
    recheck = TermsRecheck(
        directory, lambda: NOW, ("unknown campaign",), wait_s=0.01, monotonic=lambda: clock[0]
    )

    async def a_wait_that_takes(seconds: float) -> None:
        async def meanwhile() -> None:
            await asyncio.sleep(0)
            clock[0] += seconds

        moving = asyncio.ensure_future(meanwhile())
        assert not await recheck.caught_up(NOW + 10_000)  # the view never gets there
        await moving

    share_s = WAIT_SHARE * WINDOW_S
    asyncio.run(a_wait_that_takes(share_s - 0.01))
    assert recheck.may_lift("unknown campaign", NOW) is not None  # just under its share
    asyncio.run(a_wait_that_takes(0.02))
    assert recheck.may_lift("unknown campaign", NOW) is None  # its share is spent
    clock[0] += WINDOW_S  # the waits slide out of the window
    assert recheck.may_lift("unknown campaign", NOW) is not None
