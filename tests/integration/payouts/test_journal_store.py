"""The journal store's contract, on a plain Redis and on a three-master Redis Cluster.

- Same money, any arrival order, through the real store: a random campaign-period's
  facts, shuffled and cut into batches of random sizes, applied by two stores on the
  same Redis in turn (each write of one makes the other's compare-and-set fail, so it
  reloads the period and decides again), sometimes both at once, a batch now and then
  applied twice (a replay): the postings net, per line and approval time, to the
  whole-period reference, to the cent.
- A lead confirmation that comes before its conversion is applied when it comes.
- An older batch's offsets never move the stored ones back.
- Per-event facts expire a retention after the period's end, or after the write for
  a period already over; what a creator is owed (postings, sums, counters) never does.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from redis.asyncio import Redis

from afflux.oracle.commission import posted_amounts, reference_lines, target_amounts
from afflux.oracle.ledger_scenarios import CAMPAIGN, PERIOD, Facts, plan_versions, random_facts
from afflux.payouts.creator_balance import is_reversal
from afflux.payouts.keys import Keys
from afflux.payouts.snapshots import PeriodExpired
from afflux.payouts.store import Batch, ClickItem, LedgerStore, PeriodsRefused, refusal_cause
from afflux.payouts.views import Balance
from afflux.shared.core.commission import ConversionFact
from afflux.shared.core.journal.compaction import closes_at
from afflux.shared.core.journal.records import Posting, posting_from_json
from afflux.shared.core.periods import period_of
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.io.redis_client import connect_ready

pytestmark = pytest.mark.integration

SEEDS = range(20)
DAY = 86_400_000
KEYS = Keys()


@pytest.fixture
async def clients(ledger_redis_url: str) -> AsyncIterator[tuple[Redis[bytes], Redis[bytes]]]:
    """Two connections to one empty Redis (or cluster), one per store."""
    first = await connect_ready(ledger_redis_url)
    second = await connect_ready(ledger_redis_url)
    try:
        yield first, second  # type: ignore[misc]  # a RedisCluster speaks the same commands
    finally:
        await first.aclose()  # type: ignore[union-attr]
        await second.aclose()  # type: ignore[union-attr]


def _versions(campaign_id: str) -> Sequence[TermsVersion]:
    assert campaign_id == CAMPAIGN, campaign_id
    return plan_versions()


def _euro(campaign_id: str) -> str:
    return "EUR"


async def postings_of(
    redis: Redis[bytes], campaign: str, period: str, creators: Iterable[str]
) -> list[Posting]:
    """Every posting of the creators in one campaign-period, as the journal holds them."""
    out: list[Posting] = []
    for creator in sorted(set(creators)):
        members = await redis.zrange(KEYS.period(campaign, period, f"journal:{creator}"), 0, -1)
        out += [posting_from_json(json.loads(m)) for m in members]
    return out


# -- (a) any arrival order, two stores, replays -------------------------------------------


@dataclass(frozen=True)
class Arrival:
    """How one seed's facts reach the stores."""

    batches: list[Batch]
    replayed: set[int]  # indexes of batches applied a second time right after
    at_once: set[int]  # indexes of batches applied together with the next one


def arrival(facts: Facts, rng: random.Random) -> Arrival:
    items: list[Any] = [
        *(("conversion", c) for c in facts.conversions),
        *(("refund", r) for r in facts.refunds),
        *(("confirmation", x) for x in facts.confirmations),
        *(("click", k) for k in facts.clicks),
    ]
    rng.shuffle(items)
    batches: list[Batch] = []
    at = 0
    while at < len(items):
        size = rng.randint(1, 8)
        batch = Batch(confirm_required={CAMPAIGN})
        for kind, item in items[at : at + size]:
            if kind == "conversion":
                batch.conversions.append((CAMPAIGN, PERIOD, item))
            elif kind == "refund":
                batch.refunds.append((CAMPAIGN, PERIOD, item))
            elif kind == "confirmation":
                order, event_id = item
                batch.confirmations.append((CAMPAIGN, order, event_id))
            else:
                click_id, creator, when = item
                batch.clicks.append(ClickItem(CAMPAIGN, PERIOD, click_id, creator, when))
        batches.append(batch)
        at += size
    n = len(batches)
    replayed = {i for i in range(n) if rng.random() < 0.2}
    at_once = {i for i in range(n - 1) if rng.random() < 0.25}
    return Arrival(batches, replayed, at_once)


async def feed(stores: tuple[LedgerStore, LedgerStore], plan: Arrival) -> None:
    """Batches to the two stores in turn; a replay goes to the other store; a pair marked
    ``at_once`` is applied by both stores concurrently."""
    turn = 0
    index = 0
    while index < len(plan.batches):
        store, other = stores[turn % 2], stores[(turn + 1) % 2]
        batch = plan.batches[index]
        if index in plan.at_once:
            following = plan.batches[index + 1]
            await asyncio.gather(
                store.apply(batch, _versions, _euro), other.apply(following, _versions, _euro)
            )
            index += 2
        else:
            await store.apply(batch, _versions, _euro)
            if index in plan.replayed:
                await other.apply(batch, _versions, _euro)
            index += 1
        turn += 1


def reference(facts: Facts) -> dict[tuple[str, int], int]:
    return target_amounts(
        reference_lines(
            CAMPAIGN,
            PERIOD,
            facts.conversions,
            facts.refunds,
            dict(facts.confirmations),
            facts.tallies(),
            plan_versions(),
        )
    )


@pytest.mark.parametrize("seed", SEEDS)
async def test_two_stores_in_any_arrival_order_with_replays_net_to_the_reference(
    clients: tuple[Redis[bytes], Redis[bytes]], seed: int
) -> None:
    facts = random_facts(random.Random(seed))
    plan = arrival(facts, random.Random(10_000 + seed))
    stores = (LedgerStore(clients[0]), LedgerStore(clients[1]))

    await feed(stores, plan)

    creators = {c.affiliate_id for c in facts.conversions} | {k[1] for k in facts.clicks}
    postings = await postings_of(clients[0], CAMPAIGN, PERIOD, creators)
    assert posted_amounts(postings) == reference(facts)
    # Every decision was made on the period's latest state: one journal sequence, no
    # posting twice, however the two stores took turns.
    assert sorted(p.seq for p in postings) == list(range(1, len(postings) + 1))
    assert len({p.posting_id for p in postings}) == len(postings)
    # Each creator's running sums (what a balance reads) hold every posting once.
    for creator in creators:
        assert await running_sums(stores[0], creator, postings) == sums_of(creator, postings)


AS_OF_PROBES = (0, 1_700_000_000_000, 1_800_000_000_000, 2**52)


async def running_sums(
    store: LedgerStore, creator: str, postings: Sequence[Posting]
) -> list[Balance]:
    """The creator's running sums split at approval times around its postings'."""
    probes = sorted(
        {*AS_OF_PROBES, *(p.approve_at for p in postings), *(p.approve_at - 1 for p in postings)}
    )
    return [await store.creator_sums.balance(creator, at) for at in probes]


def sums_of(creator: str, postings: Sequence[Posting]) -> list[Balance]:
    """The same from the journal's postings."""
    mine = [p for p in postings if p.affiliate_id == creator]
    probes = sorted(
        {*AS_OF_PROBES, *(p.approve_at for p in postings), *(p.approve_at - 1 for p in postings)}
    )
    out = []
    for at in probes:
        total: dict[str, int] = {}
        reversed_: dict[str, int] = {}
        pending: dict[str, int] = {}
        for p in mine:
            total[p.currency] = total.get(p.currency, 0) + p.amount_minor
            if is_reversal(p.component):
                reversed_[p.currency] = reversed_.get(p.currency, 0) - p.amount_minor
            if p.approve_at > at:
                pending[p.currency] = pending.get(p.currency, 0) + p.amount_minor
        out.append(Balance(total, {c: v for c, v in reversed_.items() if v}, pending))
    return out


def test_the_arrivals_replay_and_overlap_batches() -> None:
    """The seeds above would prove little if no batch were replayed or applied at once."""
    plans = [arrival(random_facts(random.Random(s)), random.Random(10_000 + s)) for s in SEEDS]
    assert sum(len(p.replayed) for p in plans) > 20
    assert sum(len(p.at_once) for p in plans) > 20
    assert all(len(p.batches) > 3 for p in plans)


# -- (b) a lead confirmation before its conversion -----------------------------------------

LEADS = "leads"
NOV_1 = 1_793_491_200_000  # 2026-11-01T00:00:00Z
NOVEMBER = "2026-11"
LEAD_TERMS = (
    TermsVersion(
        version=1,
        effective_from=0,
        published_at=0,
        terms=CampaignTerms.model_validate(
            {
                "campaign_id": LEADS,
                "merchant_id": "m",
                "currency": "EUR",
                "lead_confirmation_required": True,
                "plan": {"lead_minor": 400},
            }
        ),
    ),
)


def _lead_versions(campaign_id: str) -> Sequence[TermsVersion]:
    return LEAD_TERMS


def _lead(order: str, at: int) -> ConversionFact:
    return ConversionFact(
        f"conv-{order}", f"ev-{order}", order, "lena", "lead", None, 0, "EUR", False, at, 1
    )


async def test_a_confirmation_before_its_lead_is_applied_when_the_lead_comes(
    clients: tuple[Redis[bytes], Redis[bytes]],
) -> None:
    first, second = LedgerStore(clients[0]), LedgerStore(clients[1])
    early = Batch(confirmations=[(LEADS, "o-early", "confirm-early")])
    lead = Batch(conversions=[(LEADS, NOVEMBER, _lead("o-early", NOV_1 + DAY))])
    lead.confirm_required.add(LEADS)

    await first.apply(early, _lead_versions, _euro)
    assert await postings_of(clients[0], LEADS, NOVEMBER, ["lena"]) == []
    await second.apply(lead, _lead_versions, _euro)
    # Each applied again, by the other store: nothing more.
    await second.apply(early, _lead_versions, _euro)
    await first.apply(lead, _lead_versions, _euro)

    postings = await postings_of(clients[0], LEADS, NOVEMBER, ["lena"])
    assert [(p.kind, p.amount_minor, p.order_id) for p in postings] == [("accrual", 400, "o-early")]
    assert postings[0].source_event_ids == ("ev-o-early", "confirm-early")
    # The confirmation no longer waits for its conversion.
    assert await clients[0].hgetall(KEYS.campaign(LEADS, "early")) == {}


async def test_a_lead_waits_unpaid_until_its_confirmation_comes(
    clients: tuple[Redis[bytes], Redis[bytes]],
) -> None:
    """The usual order, for contrast: the lead first earns nothing, its confirmation pays it."""
    store = LedgerStore(clients[0])
    lead = Batch(conversions=[(LEADS, NOVEMBER, _lead("o-late", NOV_1 + DAY))])
    lead.confirm_required.add(LEADS)

    await store.apply(lead, _lead_versions, _euro)
    assert posted_amounts(await postings_of(clients[0], LEADS, NOVEMBER, ["lena"])) == {}
    await store.apply(
        Batch(confirmations=[(LEADS, "o-late", "confirm-late")]), _lead_versions, _euro
    )

    postings = await postings_of(clients[0], LEADS, NOVEMBER, ["lena"])
    assert sum(p.amount_minor for p in postings) == 400


# -- (c) offsets ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OffsetCase:
    name: str
    stored: int
    incoming: int
    kept: int


OFFSET_CASES = [
    # A re-delivered poll behind what is stored: the stored offset stays.
    OffsetCase("older", stored=70, incoming=50, kept=70),
    # The same offset again (a replay of the last batch): unchanged.
    OffsetCase("same", stored=70, incoming=70, kept=70),
    # Ahead: it moves.
    OffsetCase("newer", stored=70, incoming=71, kept=71),
]


@pytest.mark.parametrize("case", OFFSET_CASES, ids=[c.name for c in OFFSET_CASES])
async def test_a_batch_never_moves_a_stored_offset_back(
    clients: tuple[Redis[bytes], Redis[bytes]], case: OffsetCase
) -> None:
    ahead, behind = LedgerStore(clients[0]), LedgerStore(clients[1])
    await ahead.apply(
        Batch(offsets={"conversions|0": case.stored}, last={"conversions|0": "stored-fp"}),
        _versions,
        _euro,
    )
    await behind.apply(
        Batch(
            offsets={"conversions|0": case.incoming, "clicks|1": 9},
            last={"conversions|0": "incoming-fp", "clicks|1": "click-fp"},
        ),
        _versions,
        _euro,
    )

    offsets, last = await ahead.positions()
    assert offsets == {"conversions|0": case.kept, "clicks|1": 9}
    # The fingerprint always belongs to the stored offset's record.
    moved = case.kept != case.stored
    assert last == {
        "conversions|0": "incoming-fp" if moved else "stored-fp",
        "clicks|1": "click-fp",
    }


async def test_a_batch_that_fails_to_apply_stores_no_offset(
    clients: tuple[Redis[bytes], Redis[bytes]],
) -> None:
    """Offsets are written after every period of the batch: a batch that raises leaves
    them where they were, so the consumer reads its records again."""
    store = LedgerStore(clients[0])

    def unknown(campaign_id: str) -> Sequence[TermsVersion]:
        raise LookupError(f"no terms for {campaign_id}")

    failing = Batch(
        conversions=[(LEADS, NOVEMBER, _lead("o-failing", NOV_1 + DAY))],
        offsets={"conversions|0": 12},
        last={"conversions|0": "fp-12"},
    )
    with pytest.raises(LookupError):
        await store.apply(failing, unknown, _euro)

    assert await store.positions() == ({}, {})
    await store.apply(failing, _lead_versions, _euro)
    assert await store.positions() == ({"conversions|0": 12}, {"conversions|0": "fp-12"})


# -- (d) retention -------------------------------------------------------------------------

RETENTION_DAYS = 400
PER_EVENT = ("lines", "events", "clickids", "confirmed")
KEPT = ("journal:lena", "sums", "kpis", "due:lena", "dueamt:lena", "ver")


@dataclass(frozen=True)
class RetentionCase:
    name: str
    days_from_now: int  # where the period lies: its facts happen then
    from_close: bool  # False: the retention counts from the write


RETENTION_CASES = [
    # A period still taking facts: its facts are kept for the retention after it closes
    # to them (its end, the longest window and lock): counted from its end, its lines
    # went while a late refund could still come, and that refund was priced from nothing.
    RetentionCase("open period", days_from_now=45, from_close=True),
    # Over, its window and lock not yet: still counted from the close.
    RetentionCase("period over, not closed", days_from_now=-20, from_close=True),
    # Closed: a late fact keeps them a retention from the write.
    RetentionCase("closed period", days_from_now=-120, from_close=False),
    # Closed for longer than the retention (a rebuild replaying old topics): never an
    # expiry in the past, which would delete the ids a replay is checked against.
    RetentionCase("past its retention", days_from_now=-2 * RETENTION_DAYS, from_close=False),
]


@pytest.mark.parametrize("case", RETENTION_CASES, ids=[c.name for c in RETENTION_CASES])
async def test_per_event_facts_expire_after_the_retention_and_postings_stay(
    clients: tuple[Redis[bytes], Redis[bytes]], case: RetentionCase
) -> None:
    redis = clients[0]
    now = int(time.time() * 1000)
    at = now + case.days_from_now * DAY
    period = period_of(at, "month")
    batch = Batch(
        conversions=[(LEADS, period, _lead("o-kept", at))],
        confirmations=[(LEADS, "o-kept", "confirm-kept")],
        clicks=[ClickItem(LEADS, period, "click-1", "lena", at)],
        confirm_required={LEADS},
    )
    store = LedgerStore(redis, retention_days=RETENTION_DAYS, clock=lambda: now)
    await store.apply(batch, _lead_versions, _euro)

    closes = closes_at(period, _lead_versions(LEADS), 0)
    assert (closes > now) is case.from_close  # the case is where it says
    expire_at = max(closes, now) + RETENTION_DAYS * DAY
    for name in PER_EVENT:
        key = KEYS.period(LEADS, period, name)
        ttl = await redis.pttl(key)
        # PTTL counts from the server's now; the test's clock is the same machine's.
        elapsed = int(time.time() * 1000) - now
        assert expire_at - now - elapsed - 1_000 <= ttl <= expire_at - now, (name, ttl)
    for name in KEPT:
        key = KEYS.period(LEADS, period, name)
        assert await redis.exists(key), name
        assert await redis.pttl(key) == -1, name
    # Replayed by a store that never saw it (a restart, the other consumer): nothing more.
    await LedgerStore(clients[1], retention_days=RETENTION_DAYS).apply(batch, _lead_versions, _euro)
    postings = await postings_of(redis, LEADS, period, ["lena"])
    assert [(p.kind, p.amount_minor) for p in postings] == [("accrual", 400)]


async def test_a_period_whose_facts_expired_takes_no_more_facts(
    clients: tuple[Redis[bytes], Redis[bytes]],
) -> None:
    """A period nobody compacts (a creator below the minimum payout keeps it open) still
    loses its per-event facts after the retention. A late copy of its lead was then
    priced from nothing (a second accrual), and a refund found no line: both went by
    without a word. Now the period refuses them, like a compacted one."""
    redis = clients[0]
    at = int(time.time() * 1000) - 120 * DAY  # closed: the facts expire a retention after the write
    period = period_of(at, "month")
    batch = Batch(
        conversions=[(LEADS, period, _lead("o-old", at))],
        confirmations=[(LEADS, "o-old", "confirm-old")],
        confirm_required={LEADS},
    )
    writer = LedgerStore(redis)
    writer.retention_ms = 1_500  # Redis itself expires them, on its own clock
    await writer.apply(batch, _lead_versions, _euro)
    before = await postings_of(redis, LEADS, period, ["lena"])
    assert [(p.kind, p.amount_minor) for p in before] == [("accrual", 400)]

    events = KEYS.period(LEADS, period, "events")
    deadline = time.monotonic() + 20
    while await redis.exists(events):
        assert time.monotonic() < deadline, "the period's facts never expired"
        await asyncio.sleep(0.1)

    # The store that wrote it (the period cached) and one that never saw it both refuse.
    for store in (writer, LedgerStore(clients[1])):
        with pytest.raises(PeriodsRefused) as refused:
            await store.apply(batch, _lead_versions, _euro)
        cause = refusal_cause(refused.value)
        assert isinstance(cause, PeriodExpired), cause
        assert f"period {period!r}: its per-event facts expired at" in str(cause)
    assert await postings_of(redis, LEADS, period, ["lena"]) == before


async def test_a_period_another_store_kept_open_is_read_again_not_refused(
    clients: tuple[Redis[bytes], Redis[bytes]],
) -> None:
    """Two replicas write one closed period: the second's write keeps its facts longer
    than the first one cached. Past its own cached time the first refused a valid lead
    as expired without asking Redis; it now reads the period again."""
    now0 = int(time.time() * 1000)
    at = now0 - 120 * DAY
    period = period_of(at, "month")
    first_now, second_now = [now0], [now0 + 200 * DAY]
    first = LedgerStore(clients[0], clock=lambda: first_now[0])
    second = LedgerStore(clients[1], clock=lambda: second_now[0])

    def lead(order: str) -> Batch:
        return Batch(
            conversions=[(LEADS, period, _lead(order, at))],
            confirmations=[(LEADS, order, f"confirm-{order}")],
            confirm_required={LEADS},
        )

    await first.apply(lead("o-1"), _lead_versions, _euro)
    await second.apply(lead("o-2"), _lead_versions, _euro)  # facts kept 400 days from then
    first_now[0] = now0 + 450 * DAY  # past what the first store wrote, not what Redis holds
    await first.apply(lead("o-3"), _lead_versions, _euro)
    postings = await postings_of(clients[0], LEADS, period, ["lena"])
    assert sorted(p.order_id for p in postings) == ["o-1", "o-2", "o-3"]
