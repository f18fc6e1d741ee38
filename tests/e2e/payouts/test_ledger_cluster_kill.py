"""kill -9 of one of two ledger consumers on a three-master Redis Cluster, mid-stream.

Two payouts processes (one consumer group, distinct static instance ids) write the
journal to a local Redis Cluster of three masters while conversions, lead
confirmations, refunds and clicks of three campaigns (tiers, a milestone, a creator
cap, a campaign budget, a base fee, paid clicks, leads confirmed before and after
their conversion) are put on the topics. Once the ledger's stored offsets show half
of the first part applied, one process is killed with SIGKILL and not restarted: the
other must take its partitions over from the offsets stored in Redis. The rest of
the stream is produced after the kill. When every partition's stored offset has
reached its log end, each creator's postings, netted per line and approval time,
must equal the commission reference over the same events, to the cent: nothing lost,
nothing applied twice.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.structs import RecordMetadata
from redis.asyncio import Redis

from afflux.cli.brokers import BrokerKind, broker_with_topics
from afflux.cli.embedded import RedisClusterNodes, start_redis_cluster
from afflux.cli.processes import Child, free_port
from afflux.oracle.commission import posted_amounts, reference_from_events, target_amounts
from afflux.payouts.keys import Keys
from afflux.shared.core.journal.records import Posting, posting_from_json
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.events import (
    ClickRecorded,
    ConversionAttributed,
    ConversionReversed,
    LeadConfirmed,
)
from afflux.shared.io.campaign_publish import publish_terms, read_all_versions
from afflux.shared.io.http import tls as oneshot
from afflux.shared.io.kafka import new_producer
from afflux.shared.io.redis_client import connect_ready
from afflux.shared.topics import CLICKS, CONVERSIONS, REVERSALS
from afflux.shared.wire import encode

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PARTITIONS = 4
GROUP = "afflux-payouts-cluster-kill"
NOV_1 = 1_793_491_200_000  # 2026-11-01T00:00:00Z
DAY = 86_400_000
KEYS = Keys()
SEED = 20261201


def _terms(campaign: str, plan: dict[str, Any], **extra: Any) -> CampaignTerms:
    return CampaignTerms.model_validate(
        {"campaign_id": campaign, "merchant_id": "m", "currency": "EUR", "plan": plan, **extra}
    )


TERMS = (
    # Tiers re-rank as refunds take net sales away; a milestone comes and goes; the
    # creator cap binds for the best sellers; paid clicks up to a cap.
    _terms(
        "ck-tiers",
        {
            "sale": {"rate": {"percent": "8"}},
            "tiers": [
                {"from_sales": 4, "rate": {"percent": "10"}},
                {"from_sales": 9, "rate": {"percent": "12.5"}},
            ],
            "milestones": [{"at_sales": 6, "bonus_minor": 1500}],
            "click": {"per_click_minor": 3, "paid_click_cap": 40},
            "creator_cap_minor": 25_000,
        },
        lock_days=5,
    ),
    # A fixed fee per sale under a campaign budget that runs out; a base fee per creator.
    _terms(
        "ck-budget",
        {
            "sale": {"rate": {"fixed_minor": 600}},
            "base_fee_minor": 200,
            "campaign_budget_minor": 40_000,
        },
        lock_days=3,
    ),
    # Leads paid once confirmed, installs, and sales.
    _terms(
        "ck-leads",
        {"sale": {"rate": {"percent": "5"}}, "lead_minor": 350, "actions_minor": {"install": 90}},
        lock_days=7,
        lead_confirmation_required=True,
    ),
)
CREATORS = tuple(f"ck-creator-{n}" for n in range(6))


# -- the stream ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    topic: str
    key: str
    event: object


def stream(rng: random.Random, orders: int, clicks: int) -> list[Record]:
    """Conversions with their refunds and confirmations, and clicks, shuffled; a record's
    own order (a refund after its conversion, an early confirmation before it) holds
    only where both share a partition, as on the real topics."""
    groups: list[list[Record]] = []
    for n in range(orders):
        terms = rng.choice(TERMS)
        campaign = terms.campaign_id
        kind = rng.choice(["sale", "sale", "lead", "install"]) if campaign == "ck-leads" else "sale"
        order = f"{campaign}-o{n}"
        at = NOV_1 + rng.randint(0, 29 * DAY)
        amount = rng.randint(500, 30_000) if kind == "sale" else 0
        conversion = ConversionAttributed(
            event_id=f"ev-{order}",
            occurred_at=at,
            conversion_id=f"conv-{order}",
            order_id=order,
            campaign_id=campaign,
            affiliate_id=rng.choice(CREATORS),
            reason="cookie",
            model="last_click",
            window_ms=30 * DAY,
            terms_version=1,
            kind=kind,
            action="install" if kind == "install" else None,
            amount_minor=amount,
            currency="EUR",
            new_customer=rng.random() < 0.2,
            order_event_id=f"oev-{order}",
        )
        group = [Record(CONVERSIONS.name, order, conversion)]
        if kind == "lead" and rng.random() < 0.8:
            confirmation = Record(
                CONVERSIONS.name,
                order,
                LeadConfirmed(
                    event_id=f"confirm-{order}",
                    occurred_at=at + DAY,
                    order_id=order,
                    campaign_id=campaign,
                ),
            )
            # Some confirmations reach the ledger before their conversion.
            group.insert(0 if rng.random() < 0.3 else 1, confirmation)
        if amount and rng.random() < 0.25:
            refunded = 0
            for j in range(rng.choice([1, 1, 2])):
                part = rng.randint(1, amount - refunded) if refunded < amount else 0
                if not part:
                    break
                refunded += part
                group.append(Record(REVERSALS.name, order, _reversal(conversion, j, part, rng)))
        if rng.random() < 0.05:  # a producer retry: the same record twice
            group.append(group[-1])
        groups.append(group)
    for n in range(clicks):
        terms = rng.choice(TERMS[:2])
        flags = rng.choice([(), (), (), (), ("bot",), ("duplicate",)])
        click = ClickRecorded(
            event_id=f"ck-click-{n}",
            occurred_at=NOV_1 + rng.randint(0, 29 * DAY),
            click_id=f"ck-click-{n}",
            link_code="ck-link",
            affiliate_id=rng.choice(CREATORS),
            campaign_id=terms.campaign_id,
            visitor_id=f"ck-visitor-{n}",
            flags=flags,
        )
        groups.append([Record(CLICKS.name, click.visitor_id, click)])
    rng.shuffle(groups)
    return [record for group in groups for record in group]


def _reversal(
    conversion: ConversionAttributed, j: int, part: int, rng: random.Random
) -> ConversionReversed:
    reversal = f"{conversion.order_id}-r{j}"
    return ConversionReversed(
        event_id=f"ev-{reversal}",
        # Before or after the line's approval (the locks are 3 to 7 days).
        occurred_at=conversion.occurred_at + rng.randint(0, 12 * DAY),
        reversal_id=reversal,
        refund_id=f"refund-{reversal}",
        conversion_id=conversion.conversion_id,
        order_id=conversion.order_id,
        campaign_id=conversion.campaign_id,
        affiliate_id=conversion.affiliate_id,
        amount_minor=part,
        requested_minor=part,
        refunded_total_minor=part,
        order_amount_minor=conversion.amount_minor,
        currency="EUR",
        order_occurred_at=conversion.occurred_at,
        reason="refund",
    )


@dataclass
class LogEnds:
    """Where each partition's log ends, from the broker's acknowledgements of our sends
    (nothing else produces to this broker's ledger topics)."""

    ends: dict[str, int] = field(default_factory=dict)  # "topic|partition" -> next offset

    def add(self, sent: RecordMetadata) -> None:
        slot = f"{sent.topic}|{sent.partition}"
        self.ends[slot] = max(self.ends.get(slot, 0), sent.offset + 1)


async def produce(bootstrap: str, records: Sequence[Record], ends: LogEnds) -> None:
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        for at in range(0, len(records), 100):
            chunk = records[at : at + 100]
            futures = [
                await producer.send(r.topic, encode(r.event), key=r.key.encode()) for r in chunk
            ]
            for sent in await asyncio.gather(*futures):
                ends.add(sent)
    finally:
        await producer.stop()


# -- the processes ---------------------------------------------------------------------------


@dataclass
class Payouts:
    child: Child
    url: str

    def healthy(self) -> bool:
        try:
            return oneshot.get(f"{self.url}/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def metric(self, name: str) -> float | None:
        """The sum of a metric's samples (None: no sample, e.g. no partition assigned)."""
        text = oneshot.get(f"{self.url}/metrics", timeout=2.0).text
        values = [
            float(line.rpartition(" ")[2])
            for line in text.splitlines()
            if line.startswith((f"{name} ", f"{name}{{"))
        ]
        return sum(values) if values else None


def start_payouts(work: Path, bootstrap: str, redis_url: str, instance: str) -> Payouts:
    port = free_port()
    env = {
        "AFFLUX_KAFKA_BOOTSTRAP": bootstrap,
        "AFFLUX_REDIS_URL": redis_url,
        "AFFLUX_TOPIC_PARTITIONS": str(PARTITIONS),
        "AFFLUX_DATA_DIR": str(work / f"data-{instance}"),
        "AFFLUX_PAYOUTS_PORT": str(port),
        "AFFLUX_PAYOUTS_GROUP_ID": GROUP,
        "AFFLUX_INSTANCE_ID": instance,
        # Small batches: the kill lands between many writes, not after one big one.
        "AFFLUX_LEDGER_MAX_POLL_RECORDS": "40",
    }
    argv = [sys.executable, "-m", "afflux.payouts"]
    child = Child(f"payouts-{instance}", argv, work / "logs" / f"payouts-{instance}.log", env=env)
    return Payouts(child.start(), f"http://127.0.0.1:{port}")


@dataclass
class Cluster:
    bootstrap: str
    redis: RedisClusterNodes
    work: Path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, broker_kind: BrokerKind) -> Iterator[Cluster]:
    """A broker with the three campaigns' terms, and a three-master Redis Cluster."""
    work = tmp_path_factory.mktemp("ledger-cluster-kill")
    with broker_with_topics(broker_kind, work, PARTITIONS) as bootstrap:
        asyncio.run(publish_terms(bootstrap, [(t, 0) for t in TERMS]))
        redis = start_redis_cluster(work / "redis", work / "logs")
        try:
            yield Cluster(bootstrap, redis, work)
        finally:
            redis.stop()


@pytest.fixture
async def ledger(cluster: Cluster) -> AsyncIterator[Redis[bytes]]:
    client = await connect_ready(cluster.redis.url)
    try:
        yield client  # type: ignore[misc]  # a RedisCluster speaks the same commands
    finally:
        await client.aclose()  # type: ignore[union-attr]


async def stored_offsets(ledger: Redis[bytes]) -> dict[str, int]:
    raw = await ledger.hgetall(KEYS.ledger("positions"))
    return {name.decode()[2:]: int(value) for name, value in raw.items() if name.startswith(b"o:")}


async def until(check: Any, timeout_s: float, what: str) -> None:
    """Poll ``check()`` (an awaitable predicate) until it holds."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"not within {timeout_s:.0f}s: {what}"
        await asyncio.sleep(0.05)


async def postings_of(ledger: Redis[bytes], cp: tuple[str, str], creator: str) -> list[Posting]:
    members = await ledger.zrange(KEYS.period(*cp, f"journal:{creator}"), 0, -1)
    return [posting_from_json(json.loads(m)) for m in members]


# -- the test --------------------------------------------------------------------------------


async def test_killing_one_of_two_ledger_consumers_on_a_redis_cluster_keeps_the_oracles_money(
    cluster: Cluster, ledger: Redis[bytes]
) -> None:
    records = stream(random.Random(SEED), orders=1_400, clicks=900)
    first, rest = records[: len(records) * 6 // 10], records[len(records) * 6 // 10 :]
    ends = LogEnds()
    processes = [
        start_payouts(cluster.work, cluster.bootstrap, cluster.redis.url, instance)
        for instance in ("1", "2")
    ]
    try:
        for p in processes:
            await asyncio.to_thread(p.child.wait_until, p.healthy, 60)

        async def both(name: str, holds: Callable[[float | None], bool]) -> bool:
            values = await asyncio.gather(*(asyncio.to_thread(p.metric, name) for p in processes))
            return all(holds(v) for v in values)

        async def both_assigned() -> bool:
            # The lag gauge has a sample once the process fetched from a partition it owns.
            return await both("afflux_consumer_lag_messages", lambda v: v is not None)

        await until(both_assigned, 60, "partitions assigned to both consumers")
        # A backlog both consumers work through when one of them is killed.
        await produce(cluster.bootstrap, first, ends)

        async def half_applied_by_both() -> bool:
            applied = sum((await stored_offsets(ledger)).values())
            if applied < len(first) // 2:
                return False
            return await both("afflux_ledger_batches_total", lambda v: (v or 0) > 0)

        await until(half_applied_by_both, 60, "half of the first part applied, by both")
        victim, survivor = processes
        await asyncio.to_thread(victim.child.kill)  # SIGKILL, mid-stream
        applied_at_kill = sum((await stored_offsets(ledger)).values())
        # The ledger was still behind the log when it lost a consumer.
        assert applied_at_kill < len(first)
        await produce(cluster.bootstrap, rest, ends)
        assert sum(ends.ends.values()) == len(records)

        async def at_log_end() -> bool:
            stored = await stored_offsets(ledger)
            return all(stored.get(slot, 0) >= end for slot, end in ends.ends.items())

        # The survivor takes the victim's partitions once its session times out (10 s).
        await until(at_log_end, 60, "every partition's stored offset at its log end")
        assert survivor.child.alive()
    finally:
        for p in processes:
            p.child.stop()

    versions = await read_all_versions(cluster.bootstrap)
    reference = reference_from_events([r.event for r in records], versions)
    assert len(reference) == len(TERMS)  # one November per campaign
    for creator in CREATORS:
        # Every campaign-period the ledger has the creator in, and every one the
        # reference has: nothing posted where the oracle has nothing.
        indexed = await ledger.smembers(KEYS.creator(creator, "cps"))
        cps = set(reference) | {tuple(cp.decode().split("|")) for cp in indexed}
        for cp in sorted(cps):
            lines = reference.get((cp[0], cp[1]), ())
            want = target_amounts(line for line in lines if line.affiliate_id == creator)
            got = posted_amounts(await postings_of(ledger, (cp[0], cp[1]), creator))
            assert got == want, (cp, creator)
