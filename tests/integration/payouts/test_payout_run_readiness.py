"""A payout run pays only from a whole ledger, and every payout it recorded is announced.

- During ``afflux ledger rebuild`` the replay may apply a sale before the refund (another
  topic) that reduced it before approval: a run then paid the refunded commission.
- Before the campaign terms are loaded a run paid nobody and answered as if done.
- A payout recorded while the broker refused its ``PayoutIssued`` was announced only by
  a later run under the same period's name: the next month's run counted it as paid and
  finance never heard of it."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaTimeoutError
from ledger_app import payouts_http
from redis.asyncio import Redis
from tests.integration.payouts.test_ledger_poison import (
    NOV_15,
    _conversion,
    _directory,
    ledger_consumer,
)
from tests.integration.payouts.test_payout_run_vs_write import _on, _refund_of_order_1

from afflux.cli.scenario_checks import read_topic
from afflux.payouts import run as payout_run
from afflux.payouts.keys import Keys
from afflux.payouts.metrics import PayoutsMetrics
from afflux.payouts.rebuild import clear_ledger
from afflux.payouts.run import LedgerNotReady, RunStopped, run_payouts
from afflux.payouts.store import LedgerStore
from afflux.shared.events import PayoutIssued
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.kafka import new_producer

pytestmark = pytest.mark.integration

DAY = 86_400_000
AS_OF = NOV_15 + 40 * DAY  # both sales' 30-day locks are over


async def _pay(
    store: LedgerStore,
    directory: CampaignDirectory,
    producer: Any,
    campaign: str,
    name: str,
    metrics: PayoutsMetrics | None = None,
) -> list[tuple[str, str, int]]:
    results = await run_payouts(
        store, directory, producer, as_of=AS_OF, period=name, campaign=campaign,
        metrics=metrics or PayoutsMetrics(),
    )  # fmt: skip
    return [(r["period"], r["status"], r["amount_minor"]) for r in results]


@asynccontextmanager
async def _ledger(
    infra: Any, prefix: str
) -> AsyncIterator[tuple[Redis[bytes], AIOKafkaProducer, LedgerStore]]:
    """A Redis client, a started producer and the ledger store under ``prefix``."""
    redis: Redis[bytes] = Redis.from_url(infra.redis_url, db=3)
    producer = new_producer(infra.kafka_bootstrap)
    await producer.start()
    try:
        yield redis, producer, LedgerStore(redis, Keys(prefix))
    finally:
        await producer.stop()
        await redis.aclose()  # type: ignore[attr-defined]


async def _one_sale(consumer: Any, campaign: str) -> None:
    """Anna's sale of 100.00 (10 %: 1000) on 15 November, applied by ``consumer``."""
    sale = _on("conversions", 0, _conversion(campaign, 1, NOV_15 + 1))
    await consumer._apply({TopicPartition("conversions", 0): [sale]})


def test_no_run_pays_while_a_rebuild_replays_the_topics(infra: Any) -> None:
    run = uuid.uuid4().hex[:8]
    campaign, prefix = f"camp-{run}", f"afx:test:{run}:"
    directory = _directory(campaign, more={"lock_days": 30})
    conversions = {
        TopicPartition("conversions", 0): [
            _on("conversions", 0, _conversion(campaign, 1, NOV_15 + 1)),  # refunded on day 3
            _on("conversions", 1, _conversion(campaign, 2, NOV_15 + 2)),
        ]
    }
    reversals = {
        TopicPartition("reversals", 0): [_on("reversals", 0, _refund_of_order_1(campaign))]
    }

    async def scenario() -> tuple[Any, ...]:
        async with _ledger(infra, prefix) as (redis, producer, store):
            live = ledger_consumer(infra, run, store, directory, producer)
            await live._apply(conversions)
            await live._apply(reversals)
            first = await _pay(store, directory, producer, campaign, "2026-12")
            await clear_ledger(
                redis, prefix, grace_s=0.1, replay_until={"conversions|0": 2, "reversals|0": 1}
            )
            await store.join_generation()
            replay = ledger_consumer(infra, run + "b", store, directory, producer)
            await replay._apply(conversions)  # the sales, not yet their refund
            with pytest.raises(LedgerNotReady) as half:
                await _pay(store, directory, producer, campaign, "2027-01")
            await replay._apply(reversals)
            after = await _pay(store, directory, producer, campaign, "2027-01")
            paid = await redis.hgetall(Keys(prefix).creator("anna", "paid"))
        return first, str(half.value), after, paid

    first, half, after, paid = asyncio.run(scenario())

    assert first == [("2026-12", "paid", 1000)]  # the kept sale only
    assert "has not replayed its topics yet" in half
    assert after == [("2027-01", "nothing_due", 0)]
    assert paid == {b"EUR": b"1000"}


def test_no_run_pays_before_the_campaign_terms_are_loaded(infra: Any) -> None:
    run = uuid.uuid4().hex[:8]
    campaign, prefix = f"camp-{run}", f"afx:test:{run}:"
    loaded = _directory(campaign, more={"lock_days": 30})
    loading = CampaignDirectory()  # a service just started: its view still empty

    async def scenario() -> tuple[str, list[tuple[str, str, int]]]:
        async with _ledger(infra, prefix) as (_, producer, store):
            consumer = ledger_consumer(infra, run, store, loaded, producer)
            await _one_sale(consumer, campaign)
            with pytest.raises(LedgerNotReady) as early:
                await _pay(store, loading, producer, campaign, "2026-12")
            later = await _pay(store, loaded, producer, campaign, "2026-12")
        return str(early.value), later

    early, later = asyncio.run(scenario())

    assert early == "the campaign terms are not loaded yet"
    assert later == [("2026-12", "paid", 1000)]


def test_a_payout_the_broker_refused_is_announced_by_the_next_periods_run(
    infra: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = uuid.uuid4().hex[:8]
    campaign, prefix = f"camp-{run}", f"afx:test:{run}:"
    directory = _directory(campaign, more={"lock_days": 30})
    sent = payout_run.send_event
    broker = {"down": True}

    async def send_unless_down(*args: Any, **kwargs: Any) -> Any:
        if broker["down"]:
            raise KafkaTimeoutError("the broker did not answer")
        return await sent(*args, **kwargs)

    monkeypatch.setattr(payout_run, "send_event", send_unless_down)

    async def scenario() -> tuple[Any, ...]:
        async with _ledger(infra, prefix) as (redis, producer, store):
            consumer = ledger_consumer(infra, run, store, directory, producer)
            await _one_sale(consumer, campaign)
            counted = PayoutsMetrics()
            with pytest.raises(RunStopped) as stopped:
                await _pay(store, directory, producer, campaign, "2026-12", counted)
            assert counted.payouts.labels("paid")._value.get() == 1
            # Recorded, and said so: the run stops at the first event the broker refuses.
            [made] = stopped.value.results
            assert (made["status"], made["amount_minor"], made["announced"]) == (
                "paid",
                1000,
                False,
            )
            broker["down"] = False
            january = await _pay(store, directory, producer, campaign, "2027-01")
            records = await redis.hgetall(Keys(prefix).creator("anna", "payouts"))
        issued = [
            (e.period, e.amount_minor)
            for e in await read_topic(infra.kafka_bootstrap, "payouts", idle_s=1.0)
            if isinstance(e, PayoutIssued) and e.campaign_id == campaign
        ]
        return january, records, issued

    january, records, issued = asyncio.run(scenario())

    assert january == [("2027-01", "nothing_due", 0)]
    assert {json.loads(v)["period"]: json.loads(v)["emitted"] for v in records.values()} == {
        "2026-12": True
    }
    assert issued == [("2026-12", 1000)]


def test_a_run_the_broker_stops_answers_503_listing_the_payout_it_recorded(
    infra: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It answered a bare 500 (text/plain) after the payout was recorded, which no metric
    counted: an operator could not tell whether anything was paid."""
    run = uuid.uuid4().hex[:8]
    campaign, prefix = f"camp-{run}", f"afx:test:{run}:"
    directory = _directory(campaign, more={"lock_days": 30})

    async def broker_down(*args: Any, **kwargs: Any) -> Any:
        raise KafkaTimeoutError("the broker did not answer")

    async def scenario() -> Any:
        async with _ledger(infra, prefix) as (_, producer, store):
            consumer = ledger_consumer(infra, run, store, directory, producer)
            await _one_sale(consumer, campaign)
            monkeypatch.setattr(payout_run, "send_event", broker_down)
            async with payouts_http(
                store, directory, infra.kafka_bootstrap, "t0ken", lambda: AS_OF
            ) as http:
                answer = await http.post(
                    "/v1/payouts/run", json={"campaign_id": campaign, "period": "2026-12"}
                )
        return answer

    answer = asyncio.run(scenario())

    assert (answer.status_code, answer.headers["Retry-After"]) == (503, "30")
    body = answer.json()
    assert "a payout event was not sent (KafkaTimeoutError" in body["detail"][0]["reason"]
    assert body["detail"][0]["reason"].endswith("run again once the broker answers")
    [made] = body["results"]
    assert (made["affiliate_id"], made["status"], made["amount_minor"], made["announced"]) == (
        "anna",
        "paid",
        1000,
        False,
    )


async def test_the_run_endpoint_answers_503_naming_why_before_the_terms_are_loaded(
    infra: Any,
) -> None:
    redis: Redis[bytes] = Redis.from_url(infra.redis_url, db=3)
    store = LedgerStore(redis, Keys(f"afx:test:{uuid.uuid4().hex[:8]}:"))
    try:
        async with payouts_http(
            store, CampaignDirectory(), infra.kafka_bootstrap, "t0ken", lambda: AS_OF
        ) as http:
            answer = await http.post("/v1/payouts/run", json={})
    finally:
        await redis.aclose()  # type: ignore[attr-defined]

    assert answer.status_code == 503
    assert answer.json()["detail"] == [
        {
            "field": None,
            "reason": "no payout run now: the campaign terms are not loaded yet; run again"
            " once the payouts consumers have replayed"
            ' (afflux_consumer_lag_messages{service="payouts"} 0) and /healthz answers 200',
        }
    ]


def test_a_run_stops_when_the_ledger_is_cleared_under_it(
    infra: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis lost its data between two creators of a run (restarted empty: the client
    reconnects without an error): the next creator's payout records read as none, and the
    run paid them again everything approved, read before the loss."""
    run = uuid.uuid4().hex[:8]
    campaign, prefix = f"camp-{run}", f"afx:test:{run}:"
    directory = _directory(campaign, more={"lock_days": 30})
    sales = {
        TopicPartition("conversions", 0): [
            _on("conversions", 0, _conversion(campaign, 1, NOV_15 + 1, creator="anna")),
            _on("conversions", 1, _conversion(campaign, 2, NOV_15 + 2, creator="ben")),
        ]
    }
    recorded = payout_run.payout_records.record

    async def scenario() -> tuple[str, dict[bytes, bytes]]:
        async with _ledger(infra, prefix) as (redis, producer, store):
            await store.join_generation()
            await store.hold_until_replayed({})  # a new ledger: nothing to replay
            await ledger_consumer(infra, run, store, directory, producer)._apply(sales)

            async def record_then_lose_the_ledger(*args: Any) -> int:
                outcome = await recorded(*args)
                await redis.delete(store.keys.ledger("generation"))  # Redis emptied
                await redis.delete(store.keys.creator("ben", "payouts"))
                return outcome

            monkeypatch.setattr(payout_run.payout_records, "record", record_then_lose_the_ledger)
            with pytest.raises(LedgerNotReady) as stopped:
                await _pay(store, directory, producer, campaign, "2026-12")
            paid = await redis.hgetall(store.keys.creator("ben", "paid"))
        return str(stopped.value), paid

    stopped, ben_paid = asyncio.run(scenario())

    assert stopped == "the ledger was cleared during the run (the payouts made before stand)"
    assert ben_paid == {}  # anna was paid before; ben is not paid from a lost ledger
