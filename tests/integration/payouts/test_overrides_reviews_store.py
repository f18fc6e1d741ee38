"""Agency overrides and review holds through the real journal store, on a plain Redis and
on a Redis Cluster: random campaign-periods whose creators belong to agencies (three
levels, an override cap) and whose conversions carry risk signals (bursts, decisions,
some twice), shuffled into batches applied by two stores in turn with replays, net per
line and approval time to the batch reference; the review index names every conversion
of the campaign."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Any

import pytest
from redis.asyncio import Redis

from afflux.oracle.commission import posted_amounts, reference_lines, target_amounts
from afflux.oracle.ledger_scenarios import CAMPAIGN, PERIOD, Facts, plan_versions, random_facts
from afflux.payouts.keys import Keys
from afflux.payouts.store import REVIEW_ENTRY, Batch, ClickItem, LedgerStore
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.journal.records import Posting, posting_from_json
from afflux.shared.core.journal.review_lines import ReviewFact
from afflux.shared.core.terms import TermsVersion
from afflux.shared.io.redis_client import connect_ready

pytestmark = pytest.mark.integration

SEEDS = range(6)
KEYS = Keys()
AGENCIES = ("north", "group", "holding")
SETTINGS = {
    "overrides": {
        "levels": 3,
        "cap_minor": 400,
        "agencies": {
            "creator-1": {"agency_id": "north", "share_percent": "10"},
            "creator-2": {"agency_id": "north", "share_percent": "12.5"},
            "north": {"agency_id": "group", "share_percent": "5"},
            "group": {"agency_id": "holding", "share_percent": "1"},
        },
    },
    "review": {"hold_on": ["self_referral", "burst"], "thresholds": {"burst_per_hour": 2}},
}


def versions() -> tuple[TermsVersion, ...]:
    return tuple(
        v.model_copy(update={"terms": v.terms.model_validate({**v.terms.model_dump(), **SETTINGS})})
        for v in plan_versions()
    )


VERSIONS = versions()


def _versions(campaign_id: str) -> Sequence[TermsVersion]:
    return VERSIONS


def _euro(campaign_id: str) -> str:
    return "EUR"


@pytest.fixture
async def clients(ledger_redis_url: str) -> AsyncIterator[tuple[Redis[bytes], Redis[bytes]]]:
    first = await connect_ready(ledger_redis_url)
    second = await connect_ready(ledger_redis_url)
    try:
        yield first, second  # type: ignore[misc]  # a RedisCluster speaks the same commands
    finally:
        await first.aclose()  # type: ignore[union-attr]
        await second.aclose()  # type: ignore[union-attr]


def scenario(rng: random.Random) -> tuple[Facts, list[ReviewFact]]:
    facts = random_facts(rng)
    for i, c in enumerate(facts.conversions):
        at = c.occurred_at
        if i and rng.random() < 0.3:
            at = facts.conversions[rng.randrange(i)].occurred_at + rng.randint(0, 1_800_000)
        signals = ("self_referral",) if rng.random() < 0.2 else ()
        facts.conversions[i] = replace(c, occurred_at=at, risk_signals=signals)
    decisions = [
        ReviewFact(
            c.conversion_id,
            f"d-{c.conversion_id}-{n}",
            rng.choice(["approve", "decline"]),
            "checked",
            "admin",
            c.occurred_at + rng.randint(0, 40 * MS_PER_DAY),
        )
        for c in facts.conversions
        for n in range(rng.choice([0, 1, 2]))
    ]
    return facts, decisions


def batches(facts: Facts, decisions: list[ReviewFact], rng: random.Random) -> list[Batch]:
    items: list[tuple[str, Any]] = [
        *(("conversion", c) for c in facts.conversions),
        *(("refund", r) for r in facts.refunds),
        *(("confirmation", x) for x in facts.confirmations),
        *(("click", k) for k in facts.clicks),
    ]
    rng.shuffle(items)
    # Decisions keep their order among themselves (one partition of the reviews topic).
    slots = sorted(rng.randrange(len(items) + 1) for _ in decisions)
    for offset, (slot, d) in enumerate(zip(slots, decisions, strict=True)):
        items.insert(slot + offset, ("review", d))
    out: list[Batch] = []
    at = 0
    while at < len(items):
        size = rng.randint(1, 8)
        batch = Batch(confirm_required={CAMPAIGN})
        for kind, item in items[at : at + size]:
            if kind == "conversion":
                batch.conversions.append((CAMPAIGN, PERIOD, item))
                batch.review_index[item.conversion_id] = [CAMPAIGN, PERIOD, "", "", 0]
            elif kind == "refund":
                batch.refunds.append((CAMPAIGN, PERIOD, item))
            elif kind == "confirmation":
                order, event_id = item
                batch.confirmations.append((CAMPAIGN, order, event_id))
            elif kind == "review":
                batch.reviews.append((CAMPAIGN, PERIOD, item))
            else:
                click_id, creator, when = item
                batch.clicks.append(ClickItem(CAMPAIGN, PERIOD, click_id, creator, when))
        out.append(batch)
        at += size
    return out


async def postings_of(redis: Redis[bytes], creators: set[str]) -> list[Posting]:
    out: list[Posting] = []
    for creator in sorted(creators):
        members = await redis.zrange(KEYS.period(CAMPAIGN, PERIOD, f"journal:{creator}"), 0, -1)
        out += [posting_from_json(json.loads(m)) for m in members]
    return out


@pytest.mark.parametrize("seed", SEEDS)
async def test_overrides_and_holds_through_two_stores_net_to_the_reference(
    clients: tuple[Redis[bytes], Redis[bytes]], seed: int
) -> None:
    rng = random.Random(seed)
    facts, decisions = scenario(rng)
    stores = (LedgerStore(clients[0]), LedgerStore(clients[1]))
    for n, batch in enumerate(batches(facts, decisions, rng)):
        await stores[n % 2].apply(batch, _versions, _euro)
        if rng.random() < 0.2:  # a replay by the other store changes nothing
            await stores[(n + 1) % 2].apply(batch, _versions, _euro)

    first: dict[str, tuple[str, int]] = {}
    for d in decisions:
        first.setdefault(d.conversion_id, (d.decision, d.occurred_at))
    want = target_amounts(
        reference_lines(
            CAMPAIGN,
            PERIOD,
            facts.conversions,
            facts.refunds,
            dict(facts.confirmations),
            facts.tallies(),
            VERSIONS,
            reviews=first,
        )
    )
    creators = {c.affiliate_id for c in facts.conversions} | {k[1] for k in facts.clicks}
    postings = await postings_of(clients[0], creators | set(AGENCIES))
    assert posted_amounts(postings) == want
    assert {p.affiliate_id for p in postings if p.line_kind == "override"} <= set(AGENCIES)
    for c in facts.conversions:
        assert await clients[0].exists(KEYS.review(c.conversion_id, REVIEW_ENTRY))
