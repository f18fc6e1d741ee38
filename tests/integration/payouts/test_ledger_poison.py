"""The ledger consumer against a real Redis and broker: when applying a batch raises
anything but a Redis outage, it applies the batch item by item, dead-letters the item
that fails, and stores the offsets past all of them; a failed apply writes nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from ledger_app import payouts_http
from ledger_stack import renewal_of
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from afflux.cli.scenario_checks import read_topic
from afflux.payouts.consumer import STALL_S, WRITES_FAILING_S, LedgerConsumer
from afflux.payouts.keys import Keys
from afflux.payouts.metrics import PayoutsMetrics
from afflux.payouts.store import LedgerStore
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import (
    CampaignTermsPublished,
    ConversionAttributed,
    ConversionReversed,
    DeadLetter,
)
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.kafka import new_producer
from afflux.shared.wire import encode, encode_packed

pytestmark = pytest.mark.integration

OCT_15 = 1_792_022_400_000  # 2026-10-15T00:00:00Z
NOV_15 = 1_794_700_800_000  # 2026-11-15T00:00:00Z


def _directory(
    campaign: str,
    rate: dict[str, Any] | None = None,
    recurring: bool = False,
    more: dict[str, Any] | None = None,
) -> CampaignDirectory:
    plan: dict[str, Any] = {"sale": {"rate": rate or {"percent": "10"}}}
    if recurring:
        plan["recurring"] = {"rate": rate or {"percent": "10"}, "max_renewals": 12}
    terms = CampaignTerms.model_validate(
        {"campaign_id": campaign, "merchant_id": "m", "currency": "EUR", "plan": plan}
        | (more or {})
    )
    directory = CampaignDirectory()
    directory.apply(
        CampaignTermsPublished(
            event_id="t",
            occurred_at=0,
            campaign_id=campaign,
            versions=(TermsVersion(version=1, effective_from=0, published_at=0, terms=terms),),
        )
    )
    directory.ready.set()  # loaded: the whole view is the one version above
    return directory


def ledger_consumer(
    infra: Any, run: str, store: LedgerStore, directory: CampaignDirectory, producer: Any
) -> LedgerConsumer:
    """A ledger consumer of its own group, never started: its batches are handed to it."""
    return LedgerConsumer(
        bootstrap=infra.kafka_bootstrap,
        group_id=f"g-{run}",
        instance_id=None,
        store=store,
        directory=directory,
        producer=producer,
        metrics=PayoutsMetrics(),
    )


def _conversion(
    campaign: str, n: int, at: int, amount: int = 10_000, creator: str = "anna"
) -> ConversionAttributed:
    return ConversionAttributed(
        event_id=f"ev-{n}",
        occurred_at=at,
        conversion_id=f"conv-{n}",
        order_id=f"order-{n}",
        campaign_id=campaign,
        affiliate_id=creator,
        reason="cookie",
        model="last_click",
        window_ms=1,
        terms_version=1,
        amount_minor=amount,
        currency="EUR",
        order_event_id=f"oev-{n}",
    )


def _record(offset: int, key: str, value: bytes) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        "conversions", 0, offset, 0, 0, key.encode(), value, None, len(key), len(value), []
    )


async def _dead_letters(infra: Any, keep: Callable[[str], bool]) -> list[DeadLetter]:
    """The dead letters whose key ``keep`` takes (this test's own)."""
    return [
        e
        for e in await read_topic(infra.kafka_bootstrap, "afflux.dlq", idle_s=5.0)
        if isinstance(e, DeadLetter) and keep(e.key or "")
    ]


async def _posted(redis: Redis[bytes], journal: str) -> list[tuple[str, int]]:
    """(order, amount) of every posting of a creator's journal, sorted."""
    return sorted(
        (p["order_id"], p["amount_minor"])
        for p in map(json.loads, await redis.zrange(journal, 0, -1))
    )


def test_an_item_that_breaks_the_batch_is_dead_lettered_and_the_rest_applied(
    infra: Any,
) -> None:
    run = uuid.uuid4().hex[:8]
    campaign = f"camp-{run}"
    prefix = f"afx:test:{run}:"

    async def scenario() -> tuple[dict[str, int], list[bytes], list[bytes], list[DeadLetter]]:
        redis: Redis[bytes] = Redis.from_url(infra.redis_url, db=3)
        producer = new_producer(infra.kafka_bootstrap)
        await producer.start()
        store = LedgerStore(redis, Keys(prefix))
        consumer = ledger_consumer(infra, run, store, _directory(campaign), producer)
        try:
            # A stored line of October that cannot be read: any batch touching October fails.
            await redis.hset(f"{prefix}{{p:{campaign}|2026-10}}:lines", "corrupt", "{not json")
            october = encode(_conversion(campaign, 1, OCT_15))
            packed = encode_packed(
                [_conversion(campaign, 2, NOV_15), _conversion(campaign, 3, NOV_15 + 1)]
            )
            tp = TopicPartition("conversions", 0)
            await consumer._apply(
                {tp: [_record(100, f"poison-{run}-oct", october), _record(101, run, packed)]}
            )
            offsets = await store.offsets()
            nov = await redis.zrange(f"{prefix}{{p:{campaign}|2026-11}}:journal:anna", 0, -1)
            octo = await redis.zrange(f"{prefix}{{p:{campaign}|2026-10}}:journal:anna", 0, -1)
        finally:
            await producer.stop()
            await redis.aclose()  # type: ignore[attr-defined]
        letters = await _dead_letters(infra, lambda key: key == f"poison-{run}-oct")
        return offsets, nov, octo, letters

    offsets, november, october, letters = asyncio.run(scenario())

    assert offsets == {"conversions|0": 102}  # past every record, the failed one too
    assert {json.loads(posting)["order_id"] for posting in november} == {"order-2", "order-3"}
    assert october == []  # the failed apply wrote nothing
    (letter,) = letters
    assert letter.source_offset == 100
    assert letter.error_class == "JSONDecodeError"
    assert "failed" in letter.reason


def test_sales_that_would_take_a_creator_past_the_largest_amount_are_dead_lettered_alone(
    infra: Any,
) -> None:
    """A plan paying the largest amount (10^15) per sale: the creator's second sale in the
    period would make its total 2 x 10^15. It and the next are dead-lettered, nothing of
    them written; the first, another creator's sale and the creator's running sums stand,
    and the ledger goes on (such a sum once reached its running sums' script as 1e+17,
    which Redis refused, and every later write of the period failed with it)."""
    run = uuid.uuid4().hex[:8]
    campaign = f"camp-{run}"
    prefix = f"afx:test:{run}:"
    most = 10**15

    async def scenario() -> tuple[dict[str, int], dict[str, list[str]], Any, list[DeadLetter]]:
        redis: Redis[bytes] = Redis.from_url(infra.redis_url, db=3)
        producer = new_producer(infra.kafka_bootstrap)
        await producer.start()
        store = LedgerStore(redis, Keys(prefix))
        consumer = ledger_consumer(
            infra, run, store, _directory(campaign, {"fixed_minor": most}), producer
        )
        try:
            sales = encode_packed(
                [
                    _conversion(campaign, 1, NOV_15),
                    _conversion(campaign, 2, NOV_15 + 1),
                    _conversion(campaign, 3, NOV_15 + 2, creator="ben"),
                    _conversion(campaign, 4, NOV_15 + 3),
                ]
            )
            later = encode(_conversion(campaign, 5, NOV_15 + 4, creator="cy"))
            tp = TopicPartition("conversions", 0)
            await consumer._apply({tp: [_record(300, f"big-{run}", sales)]})
            await consumer._apply({tp: [_record(301, run, later)]})
            offsets = await store.offsets()
            orders = {}
            for creator in ("anna", "ben", "cy"):
                journal = f"{prefix}{{p:{campaign}|2026-11}}:journal:{creator}"
                postings = await redis.zrange(journal, 0, -1)
                orders[creator] = sorted(json.loads(p)["order_id"] for p in postings)
            anna = await store.creator_sums.balance("anna", NOV_15)
            outbox = await redis.hlen(f"{prefix}{{p:{campaign}|2026-11}}:outbox")
            assert outbox == 0, "a write left in the outbox stops the period's later writes"
        finally:
            await producer.stop()
            await redis.aclose()  # type: ignore[attr-defined]
        letters = await _dead_letters(infra, lambda key: key == f"big-{run}")
        return offsets, orders, anna, letters

    offsets, orders, anna, letters = asyncio.run(scenario())

    assert offsets == {"conversions|0": 302}
    assert orders == {"anna": ["order-1"], "ben": ["order-3"], "cy": ["order-5"]}
    assert anna.total == {"EUR": most}
    assert sorted(letter.reason.partition(":")[0] for letter in letters) == ["item 1", "item 3"]
    assert {letter.error_class for letter in letters} == {"CreatorSumOutOfRange"}
    assert all(f"its total would be {2 * most}, beyond {most}" in x.reason for x in letters)


def test_a_conversion_written_again_under_its_id_with_other_facts_is_refused_not_repriced(
    infra: Any,
) -> None:
    """The worker writes a conversion once, under a derived id. A record under a held
    conversion id naming another creator and amount (written straight to the topic) once
    re-priced the line and moved it to that creator; now it is dead-lettered, held or
    earlier in its own poll, and a same-facts copy under another event id changes nothing."""
    run = uuid.uuid4().hex[:8]
    campaign = f"camp-{run}"
    prefix = f"afx:test:{run}:"

    def forged(n: int, event_id: str, **change: Any) -> ConversionAttributed:
        return _conversion(campaign, n, NOV_15 + n).model_copy(
            update={"event_id": event_id, **change}
        )

    async def scenario() -> tuple[dict[str, int], Any, dict[str, list[Any]], list[DeadLetter]]:
        redis: Redis[bytes] = Redis.from_url(infra.redis_url, db=3)
        producer = new_producer(infra.kafka_bootstrap)
        await producer.start()
        store = LedgerStore(redis, Keys(prefix))
        # A campaign that reviews held conversions: its review queue names each one's creator.
        directory = _directory(campaign, more={"review": {"hold_on": ["self_referral"]}})
        consumer = ledger_consumer(infra, run, store, directory, producer)
        tp = TopicPartition("conversions", 0)
        try:
            await consumer._apply({tp: [_record(10, run, encode(forged(1, "ev-1")))]})
            await consumer._apply(
                {
                    tp: [
                        # Conversion 1's very facts under another event id: a copy.
                        _record(11, f"copy-{run}", encode(forged(1, "z"))),
                        _record(12, run, encode(forged(2, "ev-2"))),
                        # The same poll's conversion 2 again, at another amount.
                        _record(13, f"batch-{run}", encode(forged(2, "y", amount_minor=90_000))),
                        # Held from the first poll: another creator (last, so the review
                        # queue's entry would be its own if it were written).
                        _record(14, f"held-{run}", encode(forged(1, "x", affiliate_id="bob"))),
                    ]
                }
            )
            offsets = await store.offsets()
            queued = {
                conversion: json.loads(await redis.get(Keys(prefix).review(conversion, "entry")))
                for conversion in ("conv-1", "conv-2")
            }
            journals: dict[str, list[Any]] = {}
            for creator in ("anna", "bob"):
                key = f"{prefix}{{p:{campaign}|2026-11}}:journal:{creator}"
                journals[creator] = await _posted(redis, key)
        finally:
            await producer.stop()
            await redis.aclose()  # type: ignore[attr-defined]
        letters = await _dead_letters(infra, lambda key: run in key)
        return offsets, queued, journals, letters

    offsets, queued, journals, letters = asyncio.run(scenario())

    assert offsets == {"conversions|0": 15}
    # The review queue names the first decision's creator and time, not the copy's.
    assert {c: (entry[3], entry[4]) for c, entry in queued.items()} == {
        "conv-1": ("anna", NOV_15 + 1),
        "conv-2": ("anna", NOV_15 + 2),
    }
    # 10 % of 100.00 each, once, to the creator the worker chose.
    assert journals == {"anna": [("order-1", 1_000), ("order-2", 1_000)], "bob": []}
    assert sorted((x.key, x.error_class) for x in letters) == [
        (f"batch-{run}", "ConversionConflict"),
        (f"held-{run}", "ConversionConflict"),
    ]
    by_key = {x.key: x.reason for x in letters}
    assert "affiliate_id 'anna' then 'bob'" in by_key[f"held-{run}"]
    assert "amount_minor 10000 then 90000" in by_key[f"batch-{run}"]


def test_a_conversion_written_again_dated_in_another_period_is_refused_not_paid_twice(
    infra: Any,
) -> None:
    """An order written to the topic again under another visitor and time is decided again
    under the same conversion id. Dated in another period, that copy once made a second line
    there (the period had never seen the id): the order was paid twice. Now each conversion
    id belongs to the first period that placed it, in an earlier poll or earlier in the same
    one; a copy elsewhere is dead-lettered and names nothing (no line, no review entry, no
    creator index entry)."""
    run = uuid.uuid4().hex[:8]
    campaign = f"camp-{run}"
    prefix = f"afx:test:{run}:"
    keys = Keys(prefix)

    def copy(n: int, event_id: str, at: int, **change: Any) -> ConversionAttributed:
        return _conversion(campaign, n, at).model_copy(update={"event_id": event_id, **change})

    async def scenario() -> tuple[Any, ...]:
        redis: Redis[bytes] = Redis.from_url(infra.redis_url, db=3)
        producer = new_producer(infra.kafka_bootstrap)
        await producer.start()
        store = LedgerStore(redis, keys)
        directory = _directory(campaign, more={"review": {"hold_on": ["self_referral"]}})
        consumer = ledger_consumer(infra, run, store, directory, producer)
        tp = TopicPartition("conversions", 0)
        try:
            await consumer._apply({tp: [_record(10, run, encode(copy(1, "ev-1", NOV_15)))]})
            await consumer._apply(
                {
                    tp: [
                        # Held by November: a copy dated in October, for another creator.
                        _record(
                            11, f"held-{run}", encode(copy(1, "x", OCT_15, affiliate_id="bob"))
                        ),
                        _record(12, run, encode(copy(2, "ev-2", OCT_15 + 2))),
                        # The same poll's conversion 2 again, dated in November.
                        _record(
                            13, f"batch-{run}", encode(copy(2, "y", NOV_15 + 2, affiliate_id="bob"))
                        ),
                    ]
                }
            )
            # A replay of the first decisions changes nothing and refuses nothing.
            await consumer._apply({tp: [_record(14, run, encode(copy(1, "ev-1", NOV_15)))]})
            offsets = await store.offsets()
            queued = {
                c: json.loads(await redis.get(keys.review(c, "entry")))
                for c in ("conv-1", "conv-2")
            }
            journals = {
                (period, creator): await _posted(
                    redis, keys.period(campaign, period, f"journal:{creator}")
                )
                for period in ("2026-10", "2026-11")
                for creator in ("anna", "bob")
            }
            bob_indexed = await redis.zrange(keys.creator_index("bob"), 0, -1)
        finally:
            await producer.stop()
            await redis.aclose()  # type: ignore[attr-defined]
        letters = await _dead_letters(infra, lambda key: run in key)
        return offsets, queued, journals, bob_indexed, letters

    offsets, queued, journals, bob_indexed, letters = asyncio.run(scenario())

    assert offsets == {"conversions|0": 15}
    # 10 % of 100.00 each, once, in the period of the first decision, to its creator.
    assert journals == {
        ("2026-10", "anna"): [("order-2", 1_000)],
        ("2026-10", "bob"): [],
        ("2026-11", "anna"): [("order-1", 1_000)],
        ("2026-11", "bob"): [],
    }
    assert {c: (entry[1], entry[3]) for c, entry in queued.items()} == {
        "conv-1": ("2026-11", "anna"),
        "conv-2": ("2026-10", "anna"),
    }
    assert bob_indexed == []
    assert sorted((x.key, x.error_class) for x in letters) == [
        (f"batch-{run}", "ConversionConflict"),
        (f"held-{run}", "ConversionConflict"),
    ]
    by_key = {x.key: x.reason for x in letters}
    assert "already held by period '2026-11'" in by_key[f"held-{run}"]
    assert "already held by period '2026-10'" in by_key[f"batch-{run}"]


class CountingStore(LedgerStore):
    """The real store, counting its applies: how many round trips a poll cost."""

    applies = 0

    async def apply(self, *args: Any, **kwargs: Any) -> Any:
        self.applies += 1
        return await super().apply(*args, **kwargs)


@pytest.mark.parametrize("renewal", [False, True], ids=["sales", "with-a-renewal"])
def test_an_item_refused_in_one_period_costs_that_periods_items_not_the_polls(
    infra: Any, renewal: bool
) -> None:
    """A poll of 40 October sales and three November ones, anna's second of which takes
    her past the largest amount: October is written in the poll's first apply, ben's
    November sale in one more with October confirmed, and only anna's two items go one
    by one (the whole poll went item by item: 44 applies, about ten times a normal
    poll). The creators' running sums and the commission in the metrics stand whole.
    The same with a renewal of c00's October sale among November's items (a batch with
    a renewal steps its periods in order, and went item by item on any refusal)."""
    run = uuid.uuid4().hex[:8]
    campaign = f"camp-{run}"
    prefix = f"afx:test:{run}:"
    most = 10**15
    creators = [f"c{n:02d}" for n in range(40)]

    async def scenario() -> tuple[int, dict[str, int], list[str], dict[str, Any], float]:
        redis: Redis[bytes] = Redis.from_url(infra.redis_url, db=3)
        producer = new_producer(infra.kafka_bootstrap)
        await producer.start()
        store = CountingStore(redis, Keys(prefix))
        directory = _directory(campaign, {"fixed_minor": most}, recurring=renewal)
        consumer = ledger_consumer(infra, run, store, directory, producer)
        try:
            october = [
                _record(
                    10 + n,
                    f"oct-{run}-{n}",
                    encode(_conversion(campaign, n, OCT_15 + n, creator=c)),
                )
                for n, c in enumerate(creators)
            ]
            november = encode_packed(
                [
                    _conversion(campaign, 100, NOV_15, creator="anna"),
                    _conversion(campaign, 101, NOV_15 + 1, creator="anna"),
                    _conversion(campaign, 102, NOV_15 + 2, creator="ben"),
                ]
                + [renewal_of(_conversion(campaign, 0, OCT_15, creator="c00"), "order-103", NOV_15)]
                * renewal
            )
            tp = TopicPartition("conversions", 0)
            await consumer._apply({tp: [*october, _record(50, f"big-{run}", november)]})
            nov = await redis.zrange(f"{prefix}{{p:{campaign}|2026-11}}:journal:anna", 0, -1)
            nov += await redis.zrange(f"{prefix}{{p:{campaign}|2026-11}}:journal:ben", 0, -1)
            nov += await redis.zrange(f"{prefix}{{p:{campaign}|2026-11}}:journal:c00", 0, -1)
            sums = {
                c: (await store.creator_sums.balance(c, OCT_15)).total.get("EUR", 0)
                for c in [*creators, "anna", "ben"]
            }
            paid = consumer.metrics.registry.get_sample_value(
                "afflux_commission_minor_total",
                {"campaign": campaign, "currency": "EUR", "kind": "accrual"},
            )
            return store.applies, await store.offsets(), nov, sums, paid or 0.0
        finally:
            await producer.stop()
            await redis.aclose()  # type: ignore[attr-defined]

    applies, offsets, november, sums, counted = asyncio.run(scenario())

    assert applies == 1 + 1 + 2 + 1  # the poll, its rest, anna's two items, the offsets
    assert offsets == {"conversions|0": 51}
    renewed = ["order-103"] * renewal
    assert [json.loads(p)["order_id"] for p in november] == ["order-100", "order-102", *renewed]
    assert sums == dict.fromkeys([*creators, "anna", "ben"], most) | {"c00": most * (1 + renewal)}
    assert counted == (42 + renewal) * most


def test_a_record_too_large_to_repeat_in_a_letter_is_dead_lettered_cut_and_the_ledger_goes_on(
    infra: Any,
) -> None:
    """A 100 KB key of control bytes (600 KB once escaped in JSON, twice in a letter)
    with a 2 MB value: its letter used to exceed the producer's 1 MiB, was retried
    forever, and no later record was ever applied."""
    run = uuid.uuid4().hex[:8]
    campaign = f"camp-{run}"
    prefix = f"afx:test:{run}:"
    hostile_key = f"huge-{run}-".encode() + b"\x01" * 100_000

    async def scenario() -> tuple[dict[str, int], list[bytes], list[DeadLetter]]:
        redis: Redis[bytes] = Redis.from_url(infra.redis_url, db=3)
        producer = new_producer(infra.kafka_bootstrap)
        await producer.start()
        store = LedgerStore(redis, Keys(prefix))
        consumer = ledger_consumer(infra, run, store, _directory(campaign), producer)
        try:
            hostile = ConsumerRecord(
                "conversions", 0, 200, 0, 0, hostile_key, b"\x02" * 2_000_000, None, 0, 0, []
            )
            good = _record(201, run, encode(_conversion(campaign, 4, NOV_15)))
            tp = TopicPartition("conversions", 0)
            await asyncio.wait_for(consumer._apply({tp: [hostile, good]}), 60)
            offsets = await store.offsets()
            nov = await redis.zrange(f"{prefix}{{p:{campaign}|2026-11}}:journal:anna", 0, -1)
        finally:
            await producer.stop()
            await redis.aclose()  # type: ignore[attr-defined]
        letters = await _dead_letters(infra, lambda key: key.startswith(f"huge-{run}-"))
        return offsets, nov, letters

    offsets, november, letters = asyncio.run(scenario())

    assert offsets == {"conversions|0": 202}
    assert [json.loads(posting)["order_id"] for posting in november] == ["order-4"]
    (letter,) = letters
    assert letter.source_offset == 200
    assert letter.reason == "record of 2000000 bytes exceeds 1048576"
    assert letter.key is not None
    assert "…[cut: 100014 bytes, sha256 " in letter.key
    assert letter.value.endswith("]")
    assert "…[cut: 2000000 bytes, sha256 " in letter.value
    assert len(encode(letter)) < 1024 * 1024


def _unstarted(
    infra: Any, redis: Redis[bytes], prefix: str, metrics: PayoutsMetrics
) -> LedgerConsumer:
    """A ledger consumer of a group of its own, never started: its health is asked."""
    return LedgerConsumer(
        bootstrap=infra.kafka_bootstrap,
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        instance_id=None,
        store=LedgerStore(redis, Keys(prefix)),
        directory=_directory("c"),
        producer=new_producer(infra.kafka_bootstrap),
        metrics=metrics,
    )


def test_a_consume_loop_that_has_not_turned_for_two_minutes_is_reported_stalled(
    infra: Any,
) -> None:
    """A batch that never ends (a wait that is not coming back) used to leave /healthz at
    200 while nothing more was applied."""

    async def scenario() -> tuple[list[str], list[str], list[str]]:
        redis: Redis[bytes] = Redis.from_url(infra.redis_url, db=3)
        consumer = _unstarted(infra, redis, "afx:test:stall:", PayoutsMetrics())
        try:
            consumer.ready.set()
            consumer.turned_at = time.monotonic() - STALL_S + 5
            turning = consumer.health()
            consumer.turned_at = time.monotonic() - STALL_S - 5
            stalled = consumer.health()
            consumer.halted = "the ledger is being rebuilt"
            rebuilding = consumer.health()
        finally:
            await redis.aclose()  # type: ignore[attr-defined]
        return turning, stalled, rebuilding

    turning, stalled, rebuilding = asyncio.run(scenario())

    assert turning == []
    (problem,) = stalled
    assert problem.startswith("stalled: no batch finished for 12")
    assert rebuilding == ["the ledger is being rebuilt: nothing is consumed"]  # said once


def test_ledger_writes_redis_keeps_refusing_are_reported_after_ten_seconds(
    infra: Any,
) -> None:
    """A Redis out of memory refused every batch (each retried from the stored offsets)
    while /healthz answered ok and afflux_ledger_ready stayed 1."""

    async def scenario() -> tuple[list[str], list[str], list[str], float]:
        redis: Redis[bytes] = Redis.from_url(infra.redis_url, db=3)
        metrics = PayoutsMetrics()
        consumer = _unstarted(infra, redis, "afx:test:oom:", metrics)
        oom = ResponseError("OOM command not allowed when used memory > 'maxmemory'.")
        try:
            consumer.ready.set()
            await consumer._resume_from_stored(oom)
            just_failed = consumer.health()
            assert consumer.failing_since is not None
            consumer.failing_since -= WRITES_FAILING_S + 1
            failing = consumer.health()
            consumer.failing_since = None  # a batch went through
            recovered = consumer.health()
        finally:
            await redis.aclose()  # type: ignore[attr-defined]
        counted = metrics.registry.get_sample_value("afflux_ledger_write_failures_total")
        return just_failed, failing, recovered, counted or 0.0

    just_failed, failing, recovered, counted = asyncio.run(scenario())

    assert just_failed == []  # one refused write is retried, not yet a problem
    (problem,) = failing
    assert problem.startswith("ledger writes failing for 1")
    assert "ResponseError: OOM command not allowed" in problem
    assert recovered == []
    assert counted == 1


def test_a_reversal_written_again_under_its_id_with_other_facts_is_refused(
    infra: Any,
) -> None:
    """A refund of 10.00 reversed 8 % of a 100.00 sale (0.80). A second record under the
    same reversal id and another event id, for 90.00, was added as a second refund and
    took back the whole commission; now it is dead-lettered (held, or earlier in its own
    poll), and a same-facts copy under another event id changes nothing."""
    run = uuid.uuid4().hex[:8]
    campaign = f"camp-{run}"
    prefix = f"afx:test:{run}:"

    def reversal(event_id: str, amount: int = 1_000) -> ConversionReversed:
        return ConversionReversed(
            event_id=event_id,
            occurred_at=NOV_15 + 1_000,
            reversal_id="rev-1",
            refund_id="ref-1",
            conversion_id="conv-1",
            order_id="order-1",
            campaign_id=campaign,
            affiliate_id="anna",
            amount_minor=amount,
            requested_minor=amount,
            refunded_total_minor=amount,
            order_amount_minor=10_000,
            currency="EUR",
            order_occurred_at=NOV_15 + 1,
        )

    def on_reversals(offset: int, key: str, value: bytes) -> ConsumerRecord[bytes, bytes]:
        return dataclasses.replace(_record(offset, key, value), topic="reversals")

    async def scenario() -> tuple[list[Any], list[DeadLetter]]:
        redis: Redis[bytes] = Redis.from_url(infra.redis_url, db=3)
        producer = new_producer(infra.kafka_bootstrap)
        await producer.start()
        store = LedgerStore(redis, Keys(prefix))
        consumer = ledger_consumer(infra, run, store, _directory(campaign), producer)
        conversions, reversals = TopicPartition("conversions", 0), TopicPartition("reversals", 0)
        try:
            sale = _conversion(campaign, 1, NOV_15 + 1)
            await consumer._apply({conversions: [_record(20, run, encode(sale))]})
            await consumer._apply({reversals: [on_reversals(30, run, encode(reversal("r-a")))]})
            await consumer._apply(
                {
                    reversals: [
                        on_reversals(31, f"copy-{run}", encode(reversal("r-b"))),
                        on_reversals(32, f"held-{run}", encode(reversal("r-c", 9_000))),
                    ]
                }
            )
            journal = f"{prefix}{{p:{campaign}|2026-11}}:journal:anna"
            posted = await _posted(redis, journal)
        finally:
            await producer.stop()
            await redis.aclose()  # type: ignore[attr-defined]
        letters = await _dead_letters(infra, lambda key: run in key)
        return posted, letters

    posted, letters = asyncio.run(scenario())
    assert sum(amount for _, amount in posted) == 1_000 - 100  # 10 % of 100.00, less 10 %
    assert [(x.key, x.error_class) for x in letters] == [(f"held-{run}", "ReversalConflict")]
    assert "reversal 'rev-1' is already held from event 'r-a'" in letters[0].reason


def test_a_conversion_the_ledger_refuses_is_named_in_its_orders_postings_answer(
    infra: Any,
) -> None:
    """The order's outcome once read ``attributed`` with no posting, as if its creator
    were paid: a conversion the ledger dead-letters is now noted under its order, and the
    order's postings answer lists it with the letter's reason and class; the orders the
    ledger took list none."""
    run = uuid.uuid4().hex[:8]
    campaign = f"camp-{run}"
    prefix = f"afx:test:{run}:"
    most = 10**15

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], list[DeadLetter]]:
        redis: Redis[bytes] = Redis.from_url(infra.redis_url, db=3)
        producer = new_producer(infra.kafka_bootstrap)
        await producer.start()
        store = LedgerStore(redis, Keys(prefix))
        directory = _directory(campaign, {"fixed_minor": most})
        consumer = ledger_consumer(infra, run, store, directory, producer)
        try:
            sales = encode_packed(
                [
                    _conversion(campaign, 1, NOV_15),
                    _conversion(campaign, 2, NOV_15 + 1),
                    # Of a campaign nobody knows: dead-lettered, never noted (no outcome).
                    _conversion(f"nowhere-{run}", 3, NOV_15),
                ]
            )
            tp = TopicPartition("conversions", 0)
            await consumer._apply({tp: [_record(400, f"refused-{run}", sales)]})
            async with payouts_http(
                store, directory, infra.kafka_bootstrap, "t", lambda: NOV_15
            ) as http:
                answers = [
                    (
                        await http.get(
                            f"/v1/campaigns/{campaign}/orders/order-{n}/postings",
                            params={"affiliate_id": "anna"},
                        )
                    ).json()
                    for n in (1, 2)
                ]
            unknown = await redis.exists(
                store.keys.refused_conversions(f"nowhere-{run}", "order-3")
            )
            assert unknown == 0
        finally:
            await producer.stop()
            await redis.aclose()  # type: ignore[attr-defined]
        letters = await _dead_letters(infra, lambda key: key == f"refused-{run}")
        return answers[0], answers[1], letters

    taken, refused, letters = asyncio.run(scenario())

    assert [p["kind"] for p in taken["postings"]] == ["accrual"]
    (line,) = taken["lines"]  # the same, with its explanation in the campaign's currency
    assert line["posting_ids"] == [taken["postings"][0]["posting_id"]]
    assert "EUR" in line["explanation"]
    assert taken["refusals"] == []
    assert refused["postings"] == []
    (letter,) = [x for x in letters if x.error_class == "CreatorSumOutOfRange"]
    assert len(letters) == 2  # and the unknown campaign's, with no note
    (refusal,) = refused["refusals"]
    assert refusal["event_id"] == "ev-2"
    assert refusal["conversion_id"] == "conv-2"
    assert refusal["affiliate_id"] == "anna"
    assert refusal["error_class"] == "CreatorSumOutOfRange" == letter.error_class
    assert refusal["reason"] in letter.reason
    assert f"beyond {most}" in refusal["reason"]
