"""The review queue read from its index, through the real journal store and the payouts
API, on a plain Redis and a Redis Cluster.

Campaign ``rq`` (EUR): 10 % per sale, self-referrals held. Held sales of ``ana`` and
``bo`` in November and December (two campaign-periods), one sale that nothing holds; then
decisions. The queue lists the oldest first across periods, at most ``limit`` rows,
counts every status, and moves a conversion between statuses as decisions land.

Before the index a queue read loaded every conversion ever indexed (one ``HGETALL`` of
``{ledger}:reviews``) and every line record of them, for a page of one row.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis
from ledger_app import (
    DAY,
    HOUR,
    NOV_1,
    directory_of,
    first_version,
    ledger_and_http,
    payouts_http,
    reviewed_batch,
    sale_fact,
)

from afflux.payouts.store import QUEUE_SET, QUEUE_WRITTEN, Batch, LedgerStore
from afflux.shared.core.commission import ConversionFact, RefundFact
from afflux.shared.core.journal.review_lines import ReviewFact
from afflux.shared.core.journal.review_queue import STATUSES
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import CampaignTermsPublished
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.redis_client import connect_ready

pytestmark = pytest.mark.integration

DEC_1 = NOV_1 + 30 * DAY
TOKEN = "review-queue-index-admin-token"
CAMPAIGN = "rq"
TERMS = first_version(
    {
        "campaign_id": CAMPAIGN,
        "merchant_id": "merchant-rq",
        "currency": "EUR",
        "lock_days": 0,
        "plan": {"sale": {"rate": {"percent": "10"}}},
        "review": {"hold_on": ["self_referral"]},
    }
)


NO_REVIEW = first_version(
    {
        "campaign_id": "no-review",
        "merchant_id": "merchant-rq",
        "currency": "EUR",
        "plan": {"sale": {"rate": {"percent": "10"}}},
    }
)


def _any_period(at: int) -> str:
    return time.strftime("%Y-%m", time.gmtime(at // 1000))


def _period(at: int) -> str:
    return "2026-11" if at < DEC_1 else "2026-12"


def _sale(name: str, affiliate: str, at: int, held: bool = True) -> ConversionFact:
    return sale_fact(name, affiliate, at, risk_signals=("self_referral",) if held else ())


def _batch(*conversions: ConversionFact) -> Batch:
    return reviewed_batch(CAMPAIGN, _period, *conversions)


def _decision(name: str, period: str, decision: str) -> Batch:
    at = DEC_1 + 3 * DAY
    fact = ReviewFact(f"conv-{name}", f"review-{name}", decision, "checked", "merchant:m", at)
    return Batch(reviews=[(CAMPAIGN, period, fact)])


# Arrival order is not time order: the December sale first, November's after it.
SALES = (
    _sale("dec-ana", "ana", DEC_1 + HOUR),
    _sale("nov-bo", "bo", NOV_1 + 3 * HOUR),
    _sale("nov-ana", "ana", NOV_1 + HOUR),
    _sale("nov-clean", "bo", NOV_1 + 2 * HOUR, held=False),
    _sale("dec-bo", "bo", DEC_1 + 2 * HOUR),
)


@dataclass
class Queue:
    http: httpx.AsyncClient
    store: LedgerStore

    async def apply(self, batch: Batch) -> None:
        await self.store.apply(batch, lambda cid: (TERMS,), lambda cid: "EUR")

    async def read(self, **params: Any) -> dict[str, Any]:
        answer = await self.http.get("/v1/reviews", params={"campaign_id": CAMPAIGN, **params})
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def orders(self, **params: Any) -> list[tuple[str, str]]:
        body = await self.read(**params)
        return [(r["order_id"], r["status"]) for r in body["reviews"]]


@pytest.fixture
async def queue(ledger_redis_url: str, infra: Any) -> AsyncIterator[Queue]:
    async with ledger_and_http(
        ledger_redis_url, [TERMS], infra.kafka_bootstrap, TOKEN, lambda: DEC_1 + 10 * DAY
    ) as (store, http):
        yield Queue(http, store)


async def test_the_queue_lists_the_oldest_first_across_periods_and_counts_every_status(
    queue: Queue,
) -> None:
    for sale in SALES:
        await queue.apply(_batch(sale))

    held = await queue.read(limit=3)
    assert [r["order_id"] for r in held["reviews"]] == [
        "order-nov-ana",
        "order-nov-bo",
        "order-dec-ana",
    ]
    assert held["total"] == 4
    assert held["counts"] == {"held": 4, "approved": 0, "declined": 0}
    assert held["reviews"][0]["affiliate_id"] == "ana"
    assert held["reviews"][0]["period"] == "2026-11"
    assert held["reviews"][0]["commission_minor"] == 1_000
    assert held["reviews"][0]["signals"] == ["self_referral"]
    every = await queue.orders(status="all")
    assert [(o, s) for o, s in every if s == "not_held"] == [("order-nov-clean", "not_held")]


async def test_decisions_move_conversions_between_statuses(queue: Queue) -> None:
    await queue.apply(_batch(*SALES))
    await queue.apply(_decision("nov-bo", "2026-11", "approve"))
    await queue.apply(_decision("dec-ana", "2026-12", "decline"))

    body = await queue.read()
    assert [r["order_id"] for r in body["reviews"]] == ["order-nov-ana", "order-dec-bo"]
    assert body["counts"] == {"held": 2, "approved": 1, "declined": 1}
    assert await queue.orders(status="approved") == [("order-nov-bo", "approved")]
    assert await queue.orders(status="declined") == [("order-dec-ana", "declined")]
    assert await queue.orders(status="all") == [
        ("order-nov-ana", "held"),
        ("order-nov-clean", "not_held"),
        ("order-nov-bo", "approved"),
        ("order-dec-ana", "declined"),
        ("order-dec-bo", "held"),
    ]
    assert (await queue.read(status="all"))["total"] == 5


async def test_a_period_written_before_the_queue_index_gets_it_at_its_next_step(
    queue: Queue,
) -> None:
    """Until then it is read from its line records: left out, an upgrade emptied the
    queue, and a period nothing came to again never showed its held sales to decide."""
    await queue.apply(_batch(*SALES[:4]))
    # A ledger written before the index: no status sets in either period.
    for period in ("2026-11", "2026-12"):
        for name in (*(QUEUE_SET + s for s in STATUSES), QUEUE_WRITTEN):
            await queue.store.redis.delete(queue.store.keys.period(CAMPAIGN, period, name))
    fresh = LedgerStore(queue.store.redis)  # a restarted consumer: nothing cached
    queue.store = fresh
    before = await queue.read(status="all")
    assert [(r["order_id"], r["status"]) for r in before["reviews"]] == [
        ("order-nov-ana", "held"),
        ("order-nov-clean", "not_held"),
        ("order-nov-bo", "held"),
        ("order-dec-ana", "held"),
    ]
    assert before["counts"] == {"held": 3, "approved": 0, "declined": 0}
    assert await queue.orders(limit=1) == [("order-nov-ana", "held")]

    await queue.apply(_batch(_sale("nov-late", "ana", NOV_1 + 4 * HOUR)))

    assert await queue.store.redis.exists(
        queue.store.keys.period(CAMPAIGN, "2026-11", QUEUE_WRITTEN)
    )
    assert await queue.orders() == [
        ("order-nov-ana", "held"),
        ("order-nov-bo", "held"),
        ("order-nov-late", "held"),
        ("order-dec-ana", "held"),
    ]


async def test_a_page_reads_only_its_own_rows(plain_redis_url: str, infra: Any) -> None:
    client = await connect_ready(plain_redis_url)
    store = LedgerStore(client)  # type: ignore[arg-type]
    sales = [_sale(f"bulk-{n:03d}", "ana", NOV_1 + n * 60_000) for n in range(300)]
    # A campaign without review terms, with periods of its own: it has no queue to read.
    plain = [sale_fact(f"plain-{n}", "bo", NOV_1 + n * 40 * DAY) for n in range(3)]
    by_campaign = {CAMPAIGN: TERMS, "no-review": NO_REVIEW}
    try:
        await store.apply(_batch(*sales), lambda cid: (TERMS,), lambda cid: "EUR")
        await store.apply(
            Batch(conversions=[("no-review", _any_period(c.occurred_at), c) for c in plain]),
            lambda cid: (by_campaign[cid],),
            lambda cid: "EUR",
        )
        async with payouts_http(
            store, directory_of([TERMS, NO_REVIEW]), infra.kafka_bootstrap, TOKEN, lambda: DEC_1
        ) as http:
            with redis.Redis.from_url(plain_redis_url) as r:
                r.config_resetstat()
                answer = await http.get("/v1/reviews", params={"limit": 2})
                stats = r.info("commandstats")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert [row["order_id"] for row in body["reviews"]] == ["order-bulk-000", "order-bulk-001"]
        assert body["total"] == 300
        # No read of the whole index, nor of the period's every line record.
        assert "cmdstat_hgetall" not in stats
        assert stats["cmdstat_hmget"]["calls"] == 1
        # Four status sets' sizes of the one period of the one campaign with a queue.
        assert stats["cmdstat_zcard"]["calls"] == 4
    finally:
        await client.aclose()


async def test_a_held_sales_commission_in_the_queue_is_less_its_refund_before_approval(
    queue: Queue,
) -> None:
    """The queue showed the gross: 8.00 EUR for a line paying 5.00 after a refund."""
    held = _sale("nov-ana", "ana", NOV_1 + HOUR)
    await queue.apply(_batch(held))
    refund = RefundFact(
        "rv-q", "ev-rv-q", held.order_id, 4_000, NOV_1 + 2 * HOUR, held.conversion_id
    )
    await queue.apply(Batch(refunds=[(CAMPAIGN, "2026-11", refund)]))

    [row] = (await queue.read())["reviews"]

    assert row["amount_minor"] == held.amount_minor
    assert row["commission_minor"] == 1_000 * (held.amount_minor - 4_000) // held.amount_minor


async def test_the_status_sets_expire_with_the_line_records_whatever_the_step_moves(
    ledger_redis_url: str,
) -> None:
    """A step that moves no conversion (a late refund of a held sale) still moves the
    lines' expiry: the sets expired first, and a conversion still held left the queue."""
    now = {"ms": DEC_1 + 40 * DAY}
    client = await connect_ready(ledger_redis_url)
    store = LedgerStore(client, clock=lambda: now["ms"])  # type: ignore[arg-type]
    try:
        held = _sale("nov-ana", "ana", NOV_1 + HOUR)
        await store.apply(_batch(held), lambda cid: (TERMS,), lambda cid: "EUR")
        now["ms"] += 30 * DAY  # the period long closed: its expiry counts from now
        refund = RefundFact("rv-1", "ev-rv-1", held.order_id, 1_000, now["ms"], held.conversion_id)
        await store.apply(
            Batch(refunds=[(CAMPAIGN, "2026-11", refund)]), lambda cid: (TERMS,), lambda cid: "EUR"
        )

        def at(name: str) -> str:
            return store.keys.period(CAMPAIGN, "2026-11", name)

        # Redis 6 has no PEXPIRETIME: the times left, read together, within a minute
        # (the refund moved the expiry by about 30 days).
        lines = await client.pttl(at("lines"))
        assert lines > 0
        for name in (QUEUE_SET + "held", QUEUE_WRITTEN):
            assert abs(await client.pttl(at(name)) - lines) < 60_000, name
    finally:
        await client.aclose()  # type: ignore[union-attr]


async def test_a_period_stepped_before_its_campaign_reviewed_anything_is_not_read_whole(
    plain_redis_url: str, infra: Any
) -> None:
    """A campaign that gained review terms from December: its November period, stepped
    before, never gets status sets. Taken for a period written before them, it was read
    from every line record on every queue read, for good."""
    base = {
        "campaign_id": "late-review",
        "merchant_id": "merchant-rq",
        "currency": "EUR",
        "lock_days": 0,
        "plan": {"sale": {"rate": {"percent": "10"}}},
    }
    v1 = first_version(base)
    v2 = TermsVersion(
        version=2,
        effective_from=DEC_1,
        published_at=0,
        terms=CampaignTerms.model_validate({**base, "review": {"hold_on": ["self_referral"]}}),
    )
    directory = CampaignDirectory()
    directory.apply(
        CampaignTermsPublished(
            event_id="late-review", occurred_at=0, campaign_id="late-review", versions=(v1, v2)
        )
    )
    directory.ready.set()
    client = await connect_ready(plain_redis_url)
    store = LedgerStore(client)  # type: ignore[arg-type]
    november = [sale_fact(f"lr-{n}", "bo", NOV_1 + n * 60_000) for n in range(40)]
    held = sale_fact(
        "lr-dec", "ana", DEC_1 + HOUR, risk_signals=("self_referral",), terms_version=2
    )
    try:
        await store.apply(
            Batch(conversions=[("late-review", "2026-11", c) for c in november]),
            lambda cid: (v1,),  # before the second version was published
            lambda cid: "EUR",
        )
        await store.apply(
            reviewed_batch("late-review", _period, held), lambda cid: (v1, v2), lambda cid: "EUR"
        )
        async with payouts_http(
            store, directory, infra.kafka_bootstrap, TOKEN, lambda: DEC_1 + DAY
        ) as http:
            with redis.Redis.from_url(plain_redis_url) as r:
                r.config_resetstat()
                answer = await http.get("/v1/reviews", params={"campaign_id": "late-review"})
                stats = r.info("commandstats")
        assert answer.status_code == 200, answer.text
        assert [row["order_id"] for row in answer.json()["reviews"]] == ["order-lr-dec"]
        assert "cmdstat_hgetall" not in stats
    finally:
        await client.aclose()  # type: ignore[union-attr]
