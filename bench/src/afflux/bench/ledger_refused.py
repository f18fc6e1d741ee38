"""``afflux bench ledger --refused``: what a sale the ledger must refuse costs the
polls around it.

A merchant whose creator already holds the largest amount afflux carries (10^15 minor
units) in a campaign-period can keep sending sales that take it past: each is refused
and dead-lettered. The polls that carry one must not cost much more than those that do
not, or such a merchant slows every campaign's ledger. Two more runs of the bench's
polls through the consumer's whole batch path (``LedgerConsumer._apply``: the batch,
and around a refusal the rest of the poll in one batch and the suspects one by one),
each on an emptied database:

- clean: every poll also carries ``--refused-sales`` ordinary sales of 300 creators in
  one uncapped campaign-period (``bench-uncapped``), which grows with every poll;
- refused: the same, and each poll one more sale of 10^15 by one creator of that
  campaign, of which only the first fits.

It prints both rates and how much longer the refused run's polls took, and checks that
the refused run dead-lettered every sale after the first (``CreatorSumOutOfRange``) and
nothing else, and that its journal nets to the oracle over what it took.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from redis.asyncio import Redis

from afflux.bench.ledger_checks import differences, directory_of, inspect_ledger, oracle_targets
from afflux.payouts.consumer import LedgerConsumer
from afflux.payouts.metrics import PayoutsMetrics
from afflux.payouts.store import Batch, LedgerStore
from afflux.shared.core.ids import derived_id
from afflux.shared.core.money import MAX_AMOUNT_MINOR
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.events import ConversionAttributed, Envelope
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.gc_policy import GC_THRESHOLD
from afflux.shared.io.kafka import new_producer
from afflux.shared.topics import CONVERSIONS
from afflux.shared.wire import encode_packed

UNCAPPED = CampaignTerms.model_validate(
    {
        "campaign_id": "bench-uncapped",
        "merchant_id": "merchant-bench",
        "currency": "EUR",
        "lock_days": 0,
        "max_order_minor": MAX_AMOUNT_MINOR,
        "plan": {"sale": {"rate": {"percent": "100"}}},
    }
)
PAST_BOUND = "creator-past-bound"
PACK = 50  # sales per record
Poll = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


class _BenchConsumer(LedgerConsumer):
    """The payouts consumer without a broker: the poll is taken as read (no log check),
    offsets stay in Redis (no group commit), dead letters are counted, not produced."""

    def __init__(self, store: LedgerStore, directory: CampaignDirectory) -> None:
        super().__init__(
            bootstrap="127.0.0.1:9",
            group_id="bench-ledger-refused",
            instance_id=None,
            store=store,
            directory=directory,
            producer=new_producer("127.0.0.1:9"),
            metrics=PayoutsMetrics(),
        )
        self.letters: Counter[str] = Counter()

    async def _same_log(self, polled: Poll) -> Poll:
        return polled

    async def _stored_and_committed(self, batch: Batch) -> None:
        return None

    async def _dead_letter(
        self,
        record: ConsumerRecord[bytes, bytes],
        reason: str,
        error_class: str = "Rejected",
        item: int | None = None,
    ) -> None:
        self.letters[error_class] += 1


def _sale(n: str, at: int, creator: str, amount: int) -> ConversionAttributed:
    order = f"u-{n}"
    return ConversionAttributed(
        event_id=derived_id("conv", order),
        occurred_at=at,
        conversion_id=derived_id("conversion", UNCAPPED.campaign_id, order),
        order_id=order,
        campaign_id=UNCAPPED.campaign_id,
        affiliate_id=creator,
        reason="cookie",
        model="last_click",
        window_ms=1,
        terms_version=1,
        amount_minor=amount,
        currency="EUR",
        order_event_id=derived_id("order", UNCAPPED.campaign_id, order),
    )


def extra_sales(
    polls: int, per_poll: int, at: int
) -> tuple[list[list[ConversionAttributed]], list[ConversionAttributed]]:
    """Per poll, ``per_poll`` ordinary sales of 300 creators; and per poll one sale of
    the largest amount by ``PAST_BOUND``, all in one period (a second apart)."""
    ordinary = [
        [
            _sale(f"{p}-{n}", at + p * 1000 + n, f"creator-u{n % 300:03d}", 1000 + n)
            for n in range(per_poll)
        ]
        for p in range(polls)
    ]
    past = [_sale(f"{p}-past", at + p * 1000, PAST_BOUND, MAX_AMOUNT_MINOR) for p in range(polls)]
    return ordinary, past


def _with(polls: Sequence[Poll], extra: Sequence[Sequence[Envelope]], partition: int) -> list[Poll]:
    """Each poll with its extra sales, packed ``PACK`` a record, on a partition of their own."""
    tp = TopicPartition(CONVERSIONS.name, partition)
    out: list[Poll] = []
    offset = 0
    for poll, sales in zip(polls, extra, strict=True):
        records = []
        for start in range(0, len(sales), PACK):
            value = encode_packed(list(sales[start : start + PACK]))
            records.append(
                ConsumerRecord(
                    tp.topic, tp.partition, offset, 0, 0, b"u", value, None, 1, len(value), ()
                )
            )
            offset += 1
        out.append({**poll, tp: records} if records else dict(poll))
    return out


async def _apply_all(url: str, polls: Sequence[Poll], campaigns: Sequence[CampaignTerms]) -> Any:
    redis: Redis[bytes] = Redis.from_url(url)
    await redis.flushdb()
    consumer = _BenchConsumer(LedgerStore(redis), directory_of(campaigns))
    gc.set_threshold(*GC_THRESHOLD)
    try:
        started = time.perf_counter()
        for poll in polls:
            consumer.refreezer.maybe_refreeze()
            await consumer._apply(poll)
        return time.perf_counter() - started, consumer.letters
    finally:
        await consumer.consumer.stop()
        await consumer.probe.stop()
        await consumer.producer.stop()
        await redis.aclose()  # type: ignore[attr-defined]


def run_refused(
    url: str,
    polls: Sequence[Poll],
    events: Sequence[Envelope],
    campaigns: Sequence[CampaignTerms],
    per_poll: int,
    start_ms: int,
) -> dict[str, Any]:
    """The clean and the refused runs on databases 2 and 3 of the Redis at ``url``
    (``redis://host:port``), their rates and checks."""
    partition = 1 + max(tp.partition for poll in polls for tp in poll)
    ordinary, past = extra_sales(len(polls), per_poll, start_ms)
    everything = [*campaigns, UNCAPPED]
    clean = _with(polls, ordinary, partition)
    refused = _with(polls, [[*o, p] for o, p in zip(ordinary, past, strict=True)], partition)
    # Each refused item is logged with its traceback, which would bury the report; the
    # dead letters are counted instead.
    consumer_log = logging.getLogger("afflux.payouts.consumer")
    level = consumer_log.level
    consumer_log.setLevel(logging.CRITICAL)
    try:
        clean_s, clean_letters = asyncio.run(_apply_all(f"{url}/2", clean, everything))
        refused_s, letters = asyncio.run(_apply_all(f"{url}/3", refused, everything))
    finally:
        consumer_log.setLevel(level)
    took = [*events, *(s for poll in ordinary for s in poll), past[0]]
    affiliates = sorted({getattr(e, "affiliate_id", "") for e in took} - {""})
    found, _ = asyncio.run(inspect_ledger(f"{url}/3", affiliates, memory=False))
    differ = len(differences(found.journal.nets, oracle_targets(took, everything)))
    counted = len(events) + sum(len(o) for o in ordinary)
    ok = (
        not clean_letters
        and letters["CreatorSumOutOfRange"] == sum(letters.values()) == len(polls) - 1
        and differ == 0
    )
    return {
        "refused_sales_per_poll": per_poll,
        "refused_clean_value": round(counted / clean_s),
        "refused_value": round((counted + len(past)) / refused_s),
        "refused_slowdown": round(refused_s / clean_s, 4),
        "refused_dead_letters": sum(letters.values()),
        "refused_oracle_differences": differ,
        "refused_check": "ok" if ok else "MISMATCH",
    }
