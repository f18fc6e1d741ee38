"""The real worker on a real broker against the batch oracle, event for event.

Twenty-four seeded scenarios (window edges at +-1 ms, orders before their
clicks, coupon against cookie, explicit and unknown click ids, several
creators, redeliveries, lead confirmations, partial and over-refunds, refunds
of unknown orders, a terms change) go through one worker together; each
scenario's outputs must equal the oracle's for it. Once per state store. Then
renewals written straight to the topic that break the renewal rules.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import harness as h
import pytest

from afflux.bench.feed import partition_of
from afflux.oracle import OracleResult, Scenario, admitted, attribute, generate
from afflux.shared.core.event_time import DEFAULT_CLOCK_SKEW_MS
from afflux.shared.core.ids import order_partition_key
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import (
    ClickRecorded,
    DeadLetter,
    OrderPlaced,
    OrderRefunded,
    OrderUnattributed,
    SubscriptionRenewed,
)
from afflux.shared.io.kafka import new_producer
from afflux.shared.topics import CLICKS, DLQ, ORDERS, REFUNDS
from afflux.shared.wire import encode

pytestmark = [pytest.mark.integration, pytest.mark.kafka_conformance]

SEEDS = range(100, 124)


@pytest.fixture(scope="module")
def scenarios() -> dict[int, Scenario]:
    return {seed: generate(seed, grace_seconds=2, prefix="d") for seed in SEEDS}


@pytest.fixture(scope="module")
def worker_run(
    store_broker: tuple[str, Path, dict[str, str]], scenarios: dict[int, Scenario]
) -> Iterator[tuple[str, int]]:
    bootstrap, work, store = store_broker
    merged = next(iter(scenarios.values())).campaigns
    asyncio.run(h.publish_campaigns(bootstrap, merged))
    worker, port = h.start_worker(bootstrap, work, extra=store)
    try:
        events = [e for s in scenarios.values() for e in s.events]
        asyncio.run(h.produce(bootstrap, events, 4))
        expected: set[str] = set()
        for s in scenarios.values():
            expected |= h.expected_sets(attribute(s.events, s.campaigns))
        asyncio.run(h.wait_for(bootstrap, expected, timeout_s=60))
        yield bootstrap, port
    finally:
        worker.stop()


@pytest.mark.parametrize("seed", SEEDS)
def test_worker_equals_oracle(
    worker_run: tuple[str, int], scenarios: dict[int, Scenario], seed: int
) -> None:
    bootstrap, _ = worker_run
    scenario = scenarios[seed]
    expected = h.expected_sets(attribute(scenario.events, scenario.campaigns))
    got = asyncio.run(h.actual_sets(bootstrap, belongs=f"ds{seed}-"))
    h.assert_same(expected, got)


def test_replaying_every_input_changes_nothing(
    worker_run: tuple[str, int], scenarios: dict[int, Scenario]
) -> None:
    bootstrap, _ = worker_run
    before = asyncio.run(h.actual_sets(bootstrap))
    counts_before = _output_count(bootstrap)
    asyncio.run(h.produce(bootstrap, scenarios[SEEDS[0]].events, 4))
    asyncio.run(asyncio.sleep(6))  # grace + refund wait
    assert asyncio.run(h.actual_sets(bootstrap)) == before
    assert _output_count(bootstrap) == counts_before  # not even an identical copy


def _output_count(bootstrap: str) -> int:
    topics = asyncio.run(h.read_topics(bootstrap, h.OUTPUTS))
    return sum(len(v) for v in topics.values())


def test_bad_records_go_to_the_dead_letter_topic_and_the_worker_goes_on(
    worker_run: tuple[str, int], scenarios: dict[int, Scenario]
) -> None:
    bootstrap, port = worker_run

    good = generate(999, grace_seconds=2, prefix="dlq", visitors=10)
    order = next(e for e in good.events if e.type == "OrderPlaced")
    stray = order.model_copy(update={"campaign_id": "no-such-campaign", "order_id": "dlq-stray"})

    async def send_bad() -> None:
        producer = new_producer(bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(CLICKS.name, b"{not json", key=b"v-bad")
            await producer.send_and_wait(CLICKS.name, b'[{"type": "ClickRecorded"}]', key=b"v-bad")
            key = order_partition_key(stray.order_id, stray.visitor_id, stray.click_id)
            await producer.send_and_wait(ORDERS.name, encode(stray), key=key.encode())
        finally:
            await producer.stop()

    asyncio.run(send_bad())
    asyncio.run(h.produce(bootstrap, good.events, 4))
    expected = h.expected_sets(attribute(good.events, good.campaigns))
    got = asyncio.run(h.wait_for(bootstrap, expected, belongs="dlqs999-", timeout_s=30))
    h.assert_same(expected, got)
    letters = asyncio.run(h.read_topics(bootstrap, [DLQ.name]))[DLQ.name]
    reasons = sorted(getattr(e, "reason", "").split(":")[0] for e in letters)
    assert reasons[:3] == ["invalid event", "not JSON", "unknown campaign"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    assert 'afflux_dlq_total{reason="not_json",topic="clicks"} 1.0' in text
    assert "afflux_conversions_total{" in text
    clicks_read = float(
        next(
            line.rsplit(" ", 1)[1]
            for line in text.splitlines()
            if line.startswith('afflux_attribution_events_total{topic="clicks"}')
        )
    )
    clicks_sent = sum(
        e.type == "ClickRecorded" for sc in (*scenarios.values(), good) for e in sc.events
    )
    assert clicks_read >= clicks_sent  # events, not the packed records that carried them
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
        assert json.loads(resp.read())["status"] == "ok"


# The rules do not depend on the state store (its encoding of them is unit-tested): the
# memory store's run only, so CI does not pay a second worker run for them.
@pytest.mark.parametrize("state_store", ["memory"], indirect=True)
def test_renewals_written_to_the_topic_are_held_to_the_renewal_rules(
    worker_run: tuple[str, int], state_store: str
) -> None:
    # A taken number again under another renewal order id (dated earlier), a renewal of
    # that renewal, and one reusing its first order's id: the worker refuses them as the
    # oracle does, and dead-letters the last.
    bootstrap, _ = worker_run
    now = int(time.time() * 1000)
    versions = _recurring_terms("subs-hostile")
    click = ClickRecorded(
        event_id="hr-click",
        occurred_at=now - 60_000,
        click_id="hr-v.c1",
        link_code="l",
        affiliate_id="creator-01",
        campaign_id="subs-hostile",
        visitor_id="hr-v",
    )
    order = OrderPlaced(
        event_id="hr-order",
        occurred_at=now,
        order_id="hr-1",
        campaign_id="subs-hostile",
        merchant_id="m",
        amount_minor=5_000,
        currency="EUR",
        visitor_id="hr-v",
    )

    def renewal(tag: str, first: str, renewal_order: str, at: int) -> SubscriptionRenewed:
        return SubscriptionRenewed(
            event_id=f"hr-ev-{tag}",
            occurred_at=at,
            order_id=first,
            renewal_order_id=renewal_order,
            renewal_number=1,
            campaign_id="subs-hostile",
            merchant_id="m",
            amount_minor=1_000,
            currency="EUR",
        )

    paid = renewal("r1", "hr-1", "hr-1:r1", now + 1_000)
    again = renewal("again", "hr-1", "hr-1:again", now + 500)
    itself = renewal("self", "hr-1", "hr-1", now + 1_000)
    of_renewal = renewal("of", "hr-1:r1", "hr-1:r1:r1", now + 2_000)
    events = [click, order, paid, again, itself, of_renewal]
    oracle = attribute(events, {"subs-hostile": versions})

    async def scenario() -> set[str]:
        await h.publish_campaigns(bootstrap, {"subs-hostile": versions})
        await h.produce(bootstrap, [click, order], 4)
        # Each step once the one before is decided, so no renewal expires waiting (an
        # expiry adds a provisional answer the oracle does not give).
        await h.wait_for(bootstrap, _only(oracle, {"hr-1"}), belongs="hr-1", timeout_s=30)
        await _renewals(bootstrap, [paid, again, itself])
        decided = _only(oracle, {"hr-1", "hr-1:r1", "hr-1:again"})
        await h.wait_for(bootstrap, decided, belongs="hr-1", timeout_s=30)
        await _renewals(bootstrap, [of_renewal])
        return await h.wait_for(bootstrap, h.expected_sets(oracle), belongs="hr-", timeout_s=30)

    got = asyncio.run(scenario())
    h.assert_same(h.expected_sets(oracle), got)
    reasons = {e.reason for e in oracle.unmatched if isinstance(e, OrderUnattributed)}
    assert reasons == {"renewal_number_taken", "first_order_is_renewal"}
    letters = asyncio.run(h.read_topics(bootstrap, [DLQ.name]))[DLQ.name]
    assert any(
        isinstance(e, DeadLetter)
        and e.reason.startswith("renewal_order_id_is_first_order")
        and "hr-ev-self" in e.value
        for e in letters
    )


def test_money_in_another_currency_is_refused_as_the_oracle_refuses_it(
    worker_run: tuple[str, int],
) -> None:
    """Written straight to the topics: an order in USD of a EUR campaign, and a JPY refund
    of a EUR order (after its outcome, and before it). Both are dead-lettered; the EUR
    order's later refunds, the refused id sent again in EUR too, are reversed in EUR."""
    bootstrap, _ = worker_run
    now = int(time.time() * 1000)
    versions = _coupon_terms("cur-shop")

    def order(order_id: str, currency: str) -> OrderPlaced:
        return OrderPlaced(
            event_id=f"ev-{order_id}-{currency}",
            occurred_at=now,
            order_id=order_id,
            campaign_id="cur-shop",
            merchant_id="m",
            amount_minor=5_000,
            currency=currency,
            coupon_code="ANA",
        )

    def refund(order_id: str, refund_id: str, amount: int, currency: str) -> OrderRefunded:
        return OrderRefunded(
            event_id=f"ev-{refund_id}-{currency}",
            occurred_at=now + 1_000,
            refund_id=refund_id,
            order_id=order_id,
            campaign_id="cur-shop",
            amount_minor=amount,
            currency=currency,
        )

    early = refund("cur-2", "cur-r-early", 5_000, "JPY")  # before its order: it waits
    orders = [order("cur-1", "EUR"), order("cur-usd", "USD"), order("cur-2", "EUR")]
    refunds = [
        refund("cur-1", "cur-r1", 5_000, "JPY"),
        refund("cur-1", "cur-r2", 1_000, "EUR"),
        refund("cur-1", "cur-r1", 5_000, "EUR"),
    ]
    oracle = attribute([early, *orders, *refunds], {"cur-shop": versions})

    async def scenario() -> set[str]:
        await h.publish_campaigns(bootstrap, {"cur-shop": versions})
        await h.produce(bootstrap, [early], 4)
        await h.produce(bootstrap, orders, 4)
        await h.wait_for(bootstrap, _only(oracle, {"cur-1", "cur-2"}), belongs="cur-", timeout_s=30)
        for r in refunds:  # in turn: the refund stage caps them in arrival order
            await h.produce(bootstrap, [r], 4)
            await asyncio.sleep(0.3)
        return await h.wait_for(bootstrap, h.expected_sets(oracle), belongs="cur-", timeout_s=30)

    got = asyncio.run(scenario())
    h.assert_same(h.expected_sets(oracle), got)
    assert [(r.refund_id, r.amount_minor, r.currency) for r in oracle.reversals] == [
        ("cur-r2", 1_000, "EUR"),
        ("cur-r1", 4_000, "EUR"),
    ]
    letters = asyncio.run(h.read_topics(bootstrap, [DLQ.name]))[DLQ.name]
    reasons = sorted(
        e.reason for e in letters if isinstance(e, DeadLetter) and "cur-" in (e.value or "")
    )
    assert reasons == [
        "currency_mismatch: order in USD, campaign pays in EUR",
        "currency_mismatch: refund in JPY, order in EUR",
        "currency_mismatch: refund in JPY, order in EUR",
    ]


def test_history_written_straight_to_the_topics_needs_the_backfill_mark(
    worker_run: tuple[str, int],
) -> None:
    """A scenario months old (the generator's fixed dates) written now without the
    backfill header: every order and refund is dead-lettered (event_time_too_old), as the
    oracle's ``admitted`` leaves them out; written again as a backfill, it is decided as
    the oracle decides it."""
    bootstrap, _ = worker_run
    old = generate(998, grace_seconds=2, prefix="old", visitors=6)
    placed = [e for e in old.events if isinstance(e, OrderPlaced | OrderRefunded)]
    now = int(time.time() * 1000)
    assert admitted([(e, now) for e in placed], DEFAULT_CLOCK_SKEW_MS, old.campaigns) == []

    asyncio.run(h.produce(bootstrap, old.events, 4, backfill=False))

    async def letters_for_old() -> list[DeadLetter]:
        for _ in range(60):
            read = (await h.read_topics(bootstrap, [DLQ.name]))[DLQ.name]
            mine = [
                e
                for e in read
                if isinstance(e, DeadLetter) and e.reason.startswith("event_time_too_old")
            ]
            if len(mine) >= len({e.event_id for e in placed}):
                return mine
            await asyncio.sleep(0.5)
        return mine

    too_old = asyncio.run(letters_for_old())
    assert len(too_old) >= len({e.event_id for e in placed}) > 0
    assert asyncio.run(h.actual_sets(bootstrap, belongs="olds998-")) == set()

    asyncio.run(h.produce(bootstrap, old.events, 4))  # the same history, as a backfill
    expected = h.expected_sets(attribute(old.events, old.campaigns))
    got = asyncio.run(h.wait_for(bootstrap, expected, belongs="olds998-", timeout_s=30))
    h.assert_same(expected, got)


def _coupon_terms(campaign: str) -> tuple[TermsVersion, ...]:
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": campaign,
            "merchant_id": "m",
            "currency": "EUR",
            "coupons": {"ANA": "creator-01"},
            "grace_seconds": 1,
            "plan": {"sale": {"rate": {"percent": "10"}}},
        }
    )
    return (TermsVersion(version=1, effective_from=0, published_at=0, terms=terms),)


def _recurring_terms(campaign: str) -> tuple[TermsVersion, ...]:
    terms = CampaignTerms.model_validate(
        {
            "campaign_id": campaign,
            "merchant_id": "m",
            "currency": "EUR",
            "grace_seconds": 1,
            "plan": {
                "sale": {"rate": {"percent": "10"}},
                "recurring": {"rate": {"percent": "20"}, "max_renewals": 12},
            },
        }
    )
    return (TermsVersion(version=1, effective_from=0, published_at=0, terms=terms),)


def _only(result: OracleResult, orders: set[str]) -> set[str]:
    """The oracle's answers for ``orders``."""
    events = [*result.conversions, *result.reversals, *result.unmatched]
    return h.expected_sets(
        OracleResult(conversions=[e for e in events if getattr(e, "order_id", "") in orders])
    )


async def _renewals(bootstrap: str, renewals: list[SubscriptionRenewed]) -> None:
    """Written straight to the refunds topic, keyed by the first order, as an integrator
    producing to the topic does."""
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        for r in renewals:
            await producer.send_and_wait(
                REFUNDS.name,
                encode(r),
                key=r.order_id.encode(),
                partition=partition_of(r.order_id, 4),
            )
    finally:
        await producer.stop()
