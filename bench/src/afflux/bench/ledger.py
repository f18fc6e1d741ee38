"""``afflux bench ledger [--json] [--redis cluster]``: ledger events/s applied through
the payouts consumer's batch path, beside a raw pipelined Redis client in the same run.

A seeded, realistic mix of clicks, conversions (sales, leads, installs,
signups) and reversals (partial and full refunds) for four campaigns shaped
like ``examples/campaigns.yaml`` and many creators is encoded into records as
afflux producers write them (packed per partition) and grouped into polls the
way the ledger consumer receives them (at most ``--poll-records`` records per
poll). Two sides, each on its own database of one private ``redis-server``:

- ledger: every poll goes through the consumer's own steps, by their public seams:
  decode and place each event in its campaign-period (``LedgerConsumer.placed``;
  records of clicks through the fast decoder of ``afflux.shared.click_decode``), and
  ``LedgerStore.apply`` (per campaign-period the pure step over what the poll adds,
  its postings and aggregates written in one compare-and-set on the period's slot,
  then the partitions' next offsets);
- baseline: the same polls as plain pipelines of one write per event of
  comparable size (HSET of the stored fact for a conversion or reversal,
  HINCRBY of a tally for a click) plus the offsets, with no logic.

Both figures count input events per second; the first and last quarter of polls
show whether a poll's cost grows with the period. At the end the ledger is checked
(``ledger_checks``): every fact stored once, every partition's offset at its end,
and the journal netted per line and approval time equal to the commission oracle
over all the events. ``MEMORY USAGE`` of every ledger key gives bytes per posting
and per creator with postings.

``--refused`` also times the same polls through the consumer's whole batch path with,
and without, a sale in each that the ledger must refuse (``ledger_refused``).

``--redis cluster`` also applies the same records with ``--consumers`` processes on
a local three-master Redis Cluster (``ledger_cluster``), beside the one consumer on
one Redis above, and checks that ledger the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import tempfile
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from redis.asyncio import Redis

from afflux.bench.ledger_checks import (
    ReadBack,
    Targets,
    differences,
    directory_of,
    inspect_ledger,
    oracle_targets,
)
from afflux.bench.ledger_refused import run_refused
from afflux.cli.help_format import PlainArgumentParser
from afflux.payouts.consumer import LedgerConsumer, slot
from afflux.payouts.divergence import Fingerprint
from afflux.payouts.metrics import PayoutsMetrics
from afflux.payouts.store import Batch, LedgerStore
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.ids import derived_id
from afflux.shared.core.periods import period_of
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.events import (
    ClickRecorded,
    ConversionAttributed,
    ConversionReversed,
    Envelope,
)
from afflux.shared.io.clock_source import system_clock
from afflux.shared.io.gc_policy import GC_THRESHOLD
from afflux.shared.io.kafka import new_producer
from afflux.shared.topics import CLICKS, CONVERSIONS, REVERSALS
from afflux.shared.wire import encode, encode_packed

START_MS = 1_772_323_200_000  # 2026-03-01T00:00:00Z
PARTITIONS = 4
CLUSTER_MASTERS = 3
Poll = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


def bench_campaigns() -> list[CampaignTerms]:
    """Four programs whose plans use every commission element (as the examples do)."""
    raw: list[dict[str, Any]] = [
        {
            "campaign_id": "bench-fashion",
            "merchant_id": "merchant-acme",
            "currency": "EUR",
            "lock_days": 14,
            "plan": {
                "sale": {"rate": {"percent": "8"}, "new_customer": {"percent": "12"}},
                "tiers": [
                    {"from_sales": 20, "rate": {"percent": "10"}},
                    {"from_sales": 50, "rate": {"percent": "12.5"}},
                ],
                "milestones": [
                    {"at_sales": 50, "bonus_minor": 10000},
                    {"at_sales": 100, "bonus_minor": 30000},
                ],
                "creator_cap_minor": 500000,
            },
        },
        {
            "campaign_id": "bench-apps",
            "merchant_id": "merchant-globex",
            "currency": "USD",
            "lock_days": 7,
            "plan": {
                "period": "week",
                "sale": {"rate": {"fixed_minor": 500}},
                "actions_minor": {"install": 150, "signup": 300},
                "click": {"per_click_minor": 5, "paid_click_cap": 200},
            },
        },
        {
            "campaign_id": "bench-leads",
            "merchant_id": "merchant-initech",
            "currency": "EUR",
            "lock_days": 30,
            "plan": {"lead_minor": 2500, "base_fee_minor": 10000, "campaign_budget_minor": 2000000},
        },
        {
            "campaign_id": "bench-news",
            "merchant_id": "merchant-acme",
            "currency": "USD",
            "lock_days": 0,
            "plan": {
                "lead_minor": 200,
                "sale": {"rate": {"percent": "5"}},
                "creator_cap_minor": 20000,
                "campaign_budget_minor": 500000,
            },
        },
    ]
    return [CampaignTerms.model_validate(r) for r in raw]


@dataclass
class Workload:
    events: list[Envelope]
    records: list[tuple[str, int, bytes, bytes]]  # topic, partition, key, value
    polls: list[Poll] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        return Counter(type(e).__name__ for e in self.events)


def generate(events: int, creators: int, days: int, seed: int) -> list[Envelope]:
    """Clicks (about 70 %), conversions (25 %) and reversals (5 %) in event-time order."""
    rng = random.Random(seed)
    campaigns = bench_campaigns()
    weights = [4, 3, 1, 2]
    names = [f"creator-{n:05d}" for n in range(1, creators + 1)]
    # A few creators bring most of the traffic, as in real programs.
    popularity = list(accumulate(1 / (rank**0.8) for rank in range(1, creators + 1)))
    span = days * MS_PER_DAY
    out: list[Envelope] = []
    sales: list[ConversionAttributed] = []
    refunded: set[str] = set()
    for n in range(events):
        at = START_MS + span * n // events + rng.randrange(0, 60_000)
        terms = rng.choices(campaigns, weights)[0]
        cid = terms.campaign_id
        affiliate = rng.choices(names, cum_weights=popularity)[0]
        roll = rng.random()
        sale = rng.choice(sales[-2000:]) if roll < 0.05 and sales else None
        if sale is not None and sale.conversion_id not in refunded:
            refunded.add(sale.conversion_id)
            amount = sale.amount_minor if rng.random() < 0.5 else sale.amount_minor // 3
            out.append(
                ConversionReversed(
                    event_id=derived_id("rev", str(n)),
                    occurred_at=max(at, sale.occurred_at + 1),
                    reversal_id=derived_id("reversal", str(n)),
                    refund_id=f"rf-{seed}-{n}",
                    conversion_id=sale.conversion_id,
                    order_id=sale.order_id,
                    campaign_id=sale.campaign_id,
                    affiliate_id=sale.affiliate_id,
                    amount_minor=amount,
                    requested_minor=amount,
                    refunded_total_minor=amount,
                    order_amount_minor=sale.amount_minor,
                    currency=sale.currency,
                    order_occurred_at=sale.occurred_at,
                )
            )
        elif 0.05 <= roll < 0.30:
            kind, action = _kind(rng, cid)
            amount = int(rng.lognormvariate(8.3, 0.7)) + 100 if kind == "sale" else 0
            order = f"o-{seed}-{n}"
            conversion = ConversionAttributed(
                event_id=derived_id("conv", order),
                occurred_at=at,
                conversion_id=derived_id("conversion", cid, order),
                order_id=order,
                campaign_id=cid,
                affiliate_id=affiliate,
                reason="cookie",
                model="last_click",
                window_ms=30 * MS_PER_DAY,
                click_id=f"v{n}.{rng.getrandbits(32):08x}",
                clicked_at=at - rng.randrange(0, 3 * MS_PER_DAY),
                terms_version=1,
                kind=kind,
                action=action,
                amount_minor=amount,
                currency=terms.currency,
                visitor_id=f"v{n}",
                new_customer=rng.random() < 0.3,
                order_event_id=derived_id("order", cid, order),
            )
            out.append(conversion)
            if kind == "sale":
                sales.append(conversion)
        else:
            flags = rng.random()
            visitor = f"v{rng.randrange(0, events)}"
            out.append(
                ClickRecorded(
                    event_id=f"ce-{seed}-{n}",
                    occurred_at=at,
                    click_id=f"{visitor}.{rng.getrandbits(40):010x}",
                    link_code=f"L{affiliate[-5:]}{cid[6:9]}",
                    affiliate_id=affiliate,
                    campaign_id=cid,
                    visitor_id=visitor,
                    ip_hash=f"{rng.getrandbits(128):032x}",
                    user_agent="Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36",
                    is_bot=flags < 0.03,
                    is_duplicate=0.03 <= flags < 0.07,
                )
            )
    return out


def _kind(rng: random.Random, campaign_id: str) -> tuple[str, str | None]:
    if campaign_id == "bench-apps":
        return rng.choices([("sale", None), ("install", None), ("action", "signup")], [4, 4, 2])[0]
    if campaign_id == "bench-leads":
        return "lead", None
    if campaign_id == "bench-news":
        return ("lead", None) if rng.random() < 0.6 else ("sale", None)
    return "sale", None


def _route(event: Envelope) -> tuple[str, str]:
    if isinstance(event, ClickRecorded):
        return CLICKS.name, event.visitor_id
    if isinstance(event, ConversionAttributed):
        return CONVERSIONS.name, event.order_id
    assert isinstance(event, ConversionReversed)
    return REVERSALS.name, event.order_id


def to_records(events: Sequence[Envelope], pack: int) -> list[tuple[str, int, bytes, bytes]]:
    """Packed per (topic, partition) in arrival order, at most ``pack`` events a record."""
    open_slots: dict[tuple[str, int], list[tuple[str, Envelope]]] = defaultdict(list)
    records: list[tuple[str, int, bytes, bytes]] = []

    def emit(slot: tuple[str, int], items: list[tuple[str, Envelope]]) -> None:
        value = encode(items[0][1]) if len(items) == 1 else encode_packed([e for _, e in items])
        records.append((slot[0], slot[1], items[0][0].encode(), value))

    for event in events:
        topic, key = _route(event)
        slot = (topic, zlib.crc32(key.encode()) % PARTITIONS)
        open_slots[slot].append((key, event))
        if len(open_slots[slot]) >= pack:
            emit(slot, open_slots.pop(slot))
    for slot, items in open_slots.items():
        emit(slot, items)
    return records


def to_polls(records: Sequence[tuple[str, int, bytes, bytes]], poll_records: int) -> list[Poll]:
    offsets: dict[TopicPartition, int] = defaultdict(int)
    polls: list[Poll] = []
    # Stamped as a producer stamps them, now: the ledger refuses a click dated after its
    # record's timestamp (the workload's events are all in the past).
    stamped = system_clock()
    for start in range(0, len(records), poll_records):
        poll: Poll = defaultdict(list)
        for topic, partition, key, value in records[start : start + poll_records]:
            tp = TopicPartition(topic, partition)
            poll[tp].append(
                ConsumerRecord(
                    topic=topic,
                    partition=partition,
                    offset=offsets[tp],
                    timestamp=stamped,
                    timestamp_type=0,
                    key=key,
                    value=value,
                    checksum=None,
                    serialized_key_size=len(key),
                    serialized_value_size=len(value),
                    headers=(),
                )
            )
            offsets[tp] += 1
        polls.append(dict(poll))
    return polls


def new_consumer(store: LedgerStore) -> LedgerConsumer:
    """The payouts consumer over ``store``, knowing the bench's campaigns; never started
    (the bench calls its steps), and its producer neither: dead letters would need it,
    and the workload has none."""
    directory = directory_of(bench_campaigns())
    return LedgerConsumer(
        bootstrap="127.0.0.1:9",
        group_id="bench-ledger",
        instance_id=None,
        store=store,
        directory=directory,
        producer=new_producer("127.0.0.1:9"),
        metrics=PayoutsMetrics(),
    )


@dataclass(frozen=True)
class Timing:
    started: float  # perf_counter (CLOCK_MONOTONIC: comparable across processes)
    ended: float
    in_store: float
    per_poll: list[tuple[int, float]]  # events, seconds

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    @property
    def events(self) -> int:
        return sum(n for n, _ in self.per_poll)


async def apply_polls(consumer: LedgerConsumer, polls: Sequence[Poll]) -> Timing:
    """Every poll through the consumer's steps: decode, place, ``LedgerStore.apply``."""
    store = consumer.store
    sizes = [_events_in(poll) for poll in polls]
    spent: list[float] = []
    in_store = 0.0
    # The service's collector policy: raised thresholds from its start-up, and what the
    # ledger keeps (its period cache) frozen now and then, as the consumer's tick does.
    gc.set_threshold(*GC_THRESHOLD)
    started = time.perf_counter()
    for poll in polls:
        at = time.perf_counter()
        consumer.refreezer.maybe_refreeze()
        batch = Batch()
        for records in poll.values():
            for record in records:
                await consumer.placed(record, batch)
        for tp, records in poll.items():
            batch.offsets[slot(tp)] = records[-1].offset + 1
            batch.last[slot(tp)] = Fingerprint.of_record(records[-1]).encode()
        stored_at = time.perf_counter()
        await store.apply(batch, consumer.directory.versions, consumer.currency)
        in_store += time.perf_counter() - stored_at
        spent.append(time.perf_counter() - at)
    return Timing(started, time.perf_counter(), in_store, list(zip(sizes, spent, strict=True)))


async def run_ledger(redis_url: str, polls: Sequence[Poll]) -> Timing:
    """One consumer on an emptied Redis database."""
    redis: Redis[bytes] = Redis.from_url(redis_url)
    await redis.flushdb()
    consumer = new_consumer(LedgerStore(redis))
    try:
        return await apply_polls(consumer, polls)
    finally:
        await consumer.consumer.stop()
        await consumer.probe.stop()
        await consumer.producer.stop()
        await redis.aclose()  # type: ignore[attr-defined]


def quarters(timing: Timing) -> tuple[float, float]:
    """Events/s over the first and the last quarter of polls."""
    quarter = max(1, len(timing.per_poll) // 4)
    return _rate(timing.per_poll[:quarter]), _rate(timing.per_poll[-quarter:])


def _events_in(poll: Poll) -> int:
    count = 0
    for records in poll.values():
        for record in records:
            count += record.value.count(b'"event_id"') if record.value else 0
    return count


def _rate(polls: Sequence[tuple[int, float]]) -> float:
    seconds = sum(s for _, s in polls)
    return sum(n for n, _ in polls) / seconds if seconds else 0.0


def baseline_writes(polls: Sequence[Poll], events: Sequence[Envelope]) -> list[list[Any]]:
    """Per poll: one write per event of the size the ledger stores, then the offsets."""
    by_id = {e.event_id: e for e in events}
    plans: list[list[Any]] = []
    for poll in polls:
        writes: list[Any] = []
        offsets: dict[str, str] = {}
        for tp, records in poll.items():
            for record in records:
                parsed = json.loads(record.value or b"null")
                for item in parsed if isinstance(parsed, list) else [parsed]:
                    event = by_id[item["event_id"]]
                    cid = getattr(event, "campaign_id", "")
                    period = period_of(event.occurred_at, "month")
                    if isinstance(event, ClickRecorded):
                        writes.append(("hincrby", f"raw:clicks:{cid}:{period}", event.affiliate_id))
                    else:
                        fact = json.dumps(item, separators=(",", ":"))
                        writes.append(("hset", f"raw:facts:{cid}:{period}", event.event_id, fact))
            offsets[f"{tp.topic}|{tp.partition}"] = str(records[-1].offset + 1)
        writes.append(("offsets", "raw:offsets", offsets))
        plans.append(writes)
    return plans


async def run_baseline(redis_url: str, plans: Sequence[list[Any]]) -> float:
    redis: Redis[bytes] = Redis.from_url(redis_url)
    await redis.flushdb()
    try:
        started = time.perf_counter()
        for writes in plans:
            async with redis.pipeline(transaction=False) as pipe:
                for write in writes:
                    if write[0] == "hset":
                        pipe.hset(write[1], write[2], write[3])
                    elif write[0] == "hincrby":
                        pipe.hincrby(write[1], write[2], 1)
                    else:
                        pipe.hset(write[1], mapping=write[2])
                await pipe.execute()
        return time.perf_counter() - started
    finally:
        await redis.aclose()  # type: ignore[attr-defined]


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from afflux.cli.embedded import start_redis
    from afflux.cli.processes import free_port

    events = generate(args.events, args.creators, args.days, args.seed)
    records = to_records(events, args.pack)
    polls = to_polls(records, args.poll_records)
    kinds = Counter(type(e).__name__ for e in events)
    expected = Expected(
        facts=kinds["ConversionAttributed"] + kinds["ConversionReversed"] + kinds["ClickRecorded"],
        offsets=dict(Counter(f"{t}|{p}" for t, p, _, _ in records)),
        oracle=oracle_targets(events, bench_campaigns()),
    )
    affiliates = sorted({e.affiliate_id for e in events if hasattr(e, "affiliate_id")})
    plans = baseline_writes(polls, events)
    # The workload held here (every event, record and planned write) is no part of what
    # either side keeps: frozen, the garbage collector stops scanning it, which would
    # otherwise slow both sides in proportion to --events (at 400,000 events it cost the
    # baseline almost half its time). The cluster's consumer processes inherit it frozen.
    gc.collect()
    gc.freeze()
    load = os.getloadavg()[0]  # the machine may be shared: say how busy it was
    port = free_port()
    redis = start_redis(port, work / "redis", work / "logs")
    try:
        url = f"redis://127.0.0.1:{port}"
        # A short warm-up of both sides (connections, code paths), then the runs.
        asyncio.run(run_baseline(f"{url}/1", plans[:2]))
        asyncio.run(run_ledger(f"{url}/0", polls[:2]))
        base_s = asyncio.run(run_baseline(f"{url}/1", plans))
        timing = asyncio.run(run_ledger(f"{url}/0", polls))
        found, sizes = asyncio.run(inspect_ledger(f"{url}/0", affiliates, memory=True))
        refused = (
            run_refused(url, polls, events, bench_campaigns(), args.refused_sales, START_MS)
            if args.refused
            else {}
        )
    finally:
        redis.stop()
    value = len(events) / timing.seconds
    baseline = len(events) / base_s
    first, last = quarters(timing)
    journal = found.journal
    stored = sum(sizes.values())
    result: dict[str, Any] = {
        "bench": "ledger",
        "value": round(value),
        "unit": "events/s",
        "baseline": round(baseline),
        "ratio": round(value / baseline, 4) if baseline else 0.0,
        "baseline_name": "raw pipelined Redis writes (HSET/HINCRBY), no logic",
        "redis": args.redis,
        "load_average_1m": round(load, 2),
        "events": len(events),
        "clicks": kinds["ClickRecorded"],
        "conversions": kinds["ConversionAttributed"],
        "reversals": kinds["ConversionReversed"],
        "creators": args.creators,
        "campaigns": len(bench_campaigns()),
        "records": len(records),
        "polls": len(polls),
        "ledger_seconds": round(timing.seconds, 3),
        "ledger_first_quarter_events_per_s": round(first),
        "ledger_last_quarter_events_per_s": round(last),
        "last_to_first_quarter": round(last / first, 4) if first else 0.0,
        "store_apply_seconds": round(timing.in_store, 3),
        "baseline_seconds": round(base_s, 3),
        "campaign_periods": found.periods,
        "lines": found.lines,
        "facts_stored": found.facts,
        "facts_expected": expected.facts,
        "postings": journal.postings,
        "active_creators": journal.active_creators,
        "oracle_amounts": len(expected.oracle),
        "oracle_differences": len(differences(journal.nets, expected.oracle)),
        "ledger_bytes": stored,
        "journal_bytes": sizes.get("journal", 0),
        "per_event_bytes": sizes.get("per_event", 0),
        "other_bytes": sizes.get("other", 0),
        "bytes_per_posting": round(stored / journal.postings) if journal.postings else 0,
        "journal_bytes_per_posting": (
            round(sizes.get("journal", 0) / journal.postings) if journal.postings else 0
        ),
        "bytes_per_active_creator": (
            round(stored / journal.active_creators) if journal.active_creators else 0
        ),
    }
    checked = expected.holds(found)
    if refused:
        result |= refused
        checked = checked and refused["refused_check"] == "ok"
    if args.redis == "cluster":
        result |= run_on_cluster(args, work, records, affiliates, expected, value)
        checked = checked and result["cluster_check"] == "ok"
    result["check"] = "ok" if checked else "MISMATCH"
    return result


@dataclass(frozen=True)
class Expected:
    """What a ledger holds after the whole workload, however it was applied."""

    facts: int
    offsets: dict[str, int]
    oracle: Targets

    def holds(self, found: ReadBack) -> bool:
        return (
            found.facts == self.facts
            and found.offsets == self.offsets
            and not differences(found.journal.nets, self.oracle)
        )


def run_on_cluster(
    args: argparse.Namespace,
    work: Path,
    records: Sequence[tuple[str, int, bytes, bytes]],
    affiliates: Sequence[str],
    expected: Expected,
    one_consumer: float,
) -> dict[str, Any]:
    """The same records applied by ``--consumers`` processes on a fresh three-master
    Redis Cluster, then checked as the plain run is."""
    from afflux.bench.ledger_cluster import run_consumers
    from afflux.cli.embedded import start_redis_cluster

    cluster = start_redis_cluster(work / "cluster", work / "logs", masters=CLUSTER_MASTERS)
    try:
        ran = run_consumers(cluster.url, records, args.poll_records, args.consumers)
        found, _ = asyncio.run(inspect_ledger(cluster.url, affiliates, memory=False))
    finally:
        cluster.stop()
    return {
        "cluster_masters": CLUSTER_MASTERS,
        "cluster_consumers": args.consumers,
        "cluster_value": round(ran["value"]),
        "cluster_seconds": round(ran["seconds"], 3),
        "cluster_per_consumer": ran["per_consumer"],
        "cluster_ratio_to_one_consumer": round(ran["value"] / one_consumer, 4),
        "cluster_facts_stored": found.facts,
        "cluster_postings": found.journal.postings,
        "cluster_oracle_differences": len(differences(found.journal.nets, expected.oracle)),
        "cluster_check": "ok" if expected.holds(found) else "MISMATCH",
    }


def main(argv: Sequence[str]) -> int:
    parser = PlainArgumentParser(prog="afflux bench ledger", description=__doc__)
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--events", type=int, default=40_000, help="input events")
    parser.add_argument("--creators", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=28, help="event-time span of the workload")
    parser.add_argument("--pack", type=int, default=2, help="events per packed record, at most")
    parser.add_argument("--poll-records", type=int, default=2_000, help="records per poll")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--redis",
        choices=("plain", "cluster"),
        default="plain",
        help="cluster: also run the workload on a local three-master Redis Cluster",
    )
    parser.add_argument(
        "--consumers", type=int, default=2, help="with --redis cluster: consumer processes"
    )
    parser.add_argument(
        "--refused",
        action="store_true",
        help="also time the polls with a sale the ledger must refuse in each (ledger_refused)",
    )
    parser.add_argument(
        "--refused-sales",
        type=int,
        default=500,
        help="with --refused: ordinary sales per poll in the refused sale's campaign-period",
    )
    args = parser.parse_args(list(argv))
    if args.consumers < 1:
        parser.error("--consumers: at least 1")
    if not 0 <= args.refused_sales <= 100_000:
        parser.error("--refused-sales: 0 to 100000")
    with tempfile.TemporaryDirectory(prefix="afflux-bench-ledger-") as tmp:
        try:
            result = run(args, Path(tmp))
        finally:
            gc.unfreeze()  # run freezes its workload
    report(result)
    if args.json:
        print(json.dumps(result))
    return 0 if result["check"] == "ok" else 1


def report(result: dict[str, Any]) -> None:
    """The human table."""
    rows = [
        ("ledger: decode, place, LedgerStore.apply", result["value"], result["ledger_seconds"]),
        ("  of which in LedgerStore.apply", None, result["store_apply_seconds"]),
        ("raw pipelined Redis (HSET/HINCRBY)", result["baseline"], result["baseline_seconds"]),
    ]
    if result["redis"] == "cluster":
        name = (
            f"ledger: {result['cluster_consumers']} consumers, "
            f"{result['cluster_masters']}-master cluster"
        )
        rows.append((name, result["cluster_value"], result["cluster_seconds"]))
    print(
        f"ledger bench: {result['events']:,} events ({result['clicks']:,} clicks, "
        f"{result['conversions']:,} conversions, {result['reversals']:,} reversals) for "
        f"{result['campaigns']} campaigns and {result['creators']:,} creators; "
        f"{result['records']:,} records in {result['polls']} polls; "
        f"1-minute load average {result['load_average_1m']} at the start"
    )
    print(f"{'':44}{'events/s':>12}{'seconds':>10}")
    for name, rate, seconds in rows:
        shown = f"{rate:,.0f}" if rate is not None else ""
        print(f"{name:44}{shown:>12}{seconds:>10.2f}")
    print(f"{'ratio ledger / raw':44}{result['ratio']:>12.4f}")
    if result["redis"] == "cluster":
        print(f"{'ratio cluster / one consumer on one Redis':44}", end="")
        print(f"{result['cluster_ratio_to_one_consumer']:>12.4f}")
    print(
        f"ledger over the first quarter of polls: "
        f"{result['ledger_first_quarter_events_per_s']:,} events/s, over the last: "
        f"{result['ledger_last_quarter_events_per_s']:,} events/s "
        f"({result['last_to_first_quarter']:.2f}x; each poll applies only what it adds)"
    )
    print(
        f"memory (MEMORY USAGE of every ledger key): {result['ledger_bytes']:,} bytes; "
        f"bytes per posting {result['bytes_per_posting']:,} "
        f"(the journal's sorted sets alone {result['journal_bytes_per_posting']:,}), "
        f"bytes per active creator {result['bytes_per_active_creator']:,} "
        f"({result['postings']:,} postings, {result['active_creators']:,} creators with "
        f"postings; per-event facts that expire {result['per_event_bytes']:,} bytes)"
    )
    print(
        f"check: {result['facts_stored']:,} of {result['facts_expected']:,} facts stored, "
        f"{result['lines']:,} lines in {result['campaign_periods']} campaign-periods, "
        f"offsets at the end of every partition, the journal netted per line and approval "
        f"time against the oracle's {result['oracle_amounts']:,} amounts "
        f"({result['oracle_differences']} differ): {result['check']}"
    )
    if "refused_check" in result:
        print(
            f"polls with a sale refused past the largest amount (each beside "
            f"{result['refused_sales_per_poll']:,} ordinary sales in its campaign-period): "
            f"{result['refused_value']:,} events/s against {result['refused_clean_value']:,} "
            f"without it ({result['refused_slowdown']:.2f}x the time); "
            f"{result['refused_dead_letters']:,} dead letters, "
            f"{result['refused_oracle_differences']} amounts differ from the oracle: "
            f"{result['refused_check']}"
        )
    if result["redis"] == "cluster":
        print(
            f"cluster check: {result['cluster_facts_stored']:,} facts, "
            f"{result['cluster_postings']:,} postings, "
            f"{result['cluster_oracle_differences']} amounts differ from the oracle: "
            f"{result['cluster_check']}"
        )
