"""A step the bound refuses leaves its campaign-period cached as stored (``refused_step``):
against a real Redis and Redis Cluster, random batches of sales, refunds, leads and their
confirmations, clicks and content, each now and then with a sale that takes a whale
creator past 10^15 in the same batch. After every refusal the cached state equals the
period read afresh from Redis (lines, aggregates, click tally, confirmations, content),
the batch without the refused sale is then applied on it, and the journal ends equal to
the whole-period reference computed from every fact that was taken."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from afflux.oracle.commission import posted_amounts, reference_lines, target_amounts
from afflux.oracle.ledger_scenarios import CAMPAIGN, PERIOD, START, Facts, random_facts
from afflux.payouts.keys import Keys
from afflux.payouts.store import Batch, ClickItem, LedgerStore, PeriodsRefused, refusal_cause
from afflux.shared.core.clock import MS_PER_DAY
from afflux.shared.core.commission import ConversionFact
from afflux.shared.core.engagement import Publication, Snapshot
from afflux.shared.core.journal.bounds import CreatorSumOutOfRange
from afflux.shared.core.journal.period import PeriodState
from afflux.shared.core.journal.records import Posting, posting_from_json, record_to_json
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.io.redis_client import connect_ready

pytestmark = pytest.mark.integration

SEEDS = range(6)
WHALE = "whale"
KEYS = Keys()
CP = (CAMPAIGN, PERIOD)


def _terms(sale_percent: str) -> CampaignTerms:
    """The scenarios' plan without its caps: nothing stops a sum but the bound."""
    return CampaignTerms.model_validate(
        {
            "campaign_id": CAMPAIGN,
            "merchant_id": "m",
            "currency": "EUR",
            "lock_days": 5,
            "lead_confirmation_required": True,
            "plan": {
                "sale": {"rate": {"percent": sale_percent}},
                "tiers": [{"from_sales": 3, "rate": {"percent": "30"}}],
                "milestones": [{"at_sales": 4, "bonus_minor": 1000}],
                "lead_minor": 300,
                "base_fee_minor": 500,
                "click": {"per_click_minor": 7, "paid_click_cap": 5},
                "engagement": {"values": {"like_minor": "1"}, "minimum_interactions": 10},
            },
        }
    )


VERSIONS = (
    TermsVersion(version=1, effective_from=0, published_at=0, terms=_terms("25")),
    TermsVersion(
        version=2, effective_from=START + 15 * MS_PER_DAY, published_at=0, terms=_terms("28")
    ),
)


def _versions(campaign_id: str) -> Sequence[TermsVersion]:
    return VERSIONS


def _euro(campaign_id: str) -> str:
    return "EUR"


def _whale_sale(n: int, rng: random.Random) -> ConversionFact:
    """10^15 at 25-30 %: the whale's fourth sale takes it past the bound."""
    at = START + rng.randint(0, 29 * MS_PER_DAY)
    version = 1 if at < START + 15 * MS_PER_DAY else 2
    return ConversionFact(
        f"whale-{n}", f"ev-whale-{n}", f"order-whale-{n}", WHALE, "sale", None,
        10**15, "EUR", False, at, version,
    )  # fmt: skip


def _content(n: int, rng: random.Random) -> list[Any]:
    key = f"tiktok:v{n}"
    creator = f"creator-{rng.randint(1, 3)}"
    at = START + rng.randint(0, 20 * MS_PER_DAY)
    events: list[Any] = [Publication(key, creator, CAMPAIGN, "video", at, f"pub-{n}")]
    for s in range(rng.randint(0, 2)):
        events.append(
            Snapshot(key, at + (s + 1) * 3_600_000, 0, 0, rng.randint(0, 50), 0, 0, 0, 1000,
                     f"snap-{n}-{s}")
        )  # fmt: skip
    return events


def _batches(facts: Facts, rng: random.Random) -> list[Batch]:
    items: list[tuple[str, Any]] = [
        *(("conversion", c) for c in facts.conversions),
        *(("refund", r) for r in facts.refunds),
        *(("confirmation", x) for x in facts.confirmations),
        *(("click", k) for k in facts.clicks),
    ]
    rng.shuffle(items)
    for n in range(rng.randint(2, 5)):
        at = rng.randint(0, len(items))
        items[at:at] = [("content", e) for e in _content(n, rng)]  # in their order
    batches: list[Batch] = []
    whales = 0
    while items:
        size = rng.randint(1, 8)
        batch = Batch(confirm_required={CAMPAIGN})
        for kind, item in items[:size]:
            if kind == "conversion":
                batch.conversions.append((CAMPAIGN, PERIOD, item))
            elif kind == "refund":
                batch.refunds.append((CAMPAIGN, PERIOD, item))
            elif kind == "confirmation":
                batch.confirmations.append((CAMPAIGN, *item))
            elif kind == "content":
                batch.content.append((CAMPAIGN, PERIOD, item))
            else:
                click_id, creator, when = item
                batch.clicks.append(ClickItem(CAMPAIGN, PERIOD, click_id, creator, when))
        del items[:size]
        if rng.random() < 0.6:
            batch.conversions.insert(
                rng.randint(0, len(batch.conversions)),
                (CAMPAIGN, PERIOD, _whale_sale(whales, rng)),
            )
            whales += 1
        batches.append(batch)
    return batches


def _split_whale(batch: Batch) -> tuple[Batch, list[ConversionFact]]:
    """The batch without the whale's sales, and those sales."""
    rest = Batch(confirm_required=batch.confirm_required)
    rest.conversions = [c for c in batch.conversions if c[2].affiliate_id != WHALE]
    rest.refunds, rest.confirmations = list(batch.refunds), list(batch.confirmations)
    rest.clicks, rest.content = list(batch.clicks), list(batch.content)
    return rest, [c for _, _, c in batch.conversions if c.affiliate_id == WHALE]


def view(state: PeriodState, tally: dict[str, str]) -> dict[str, Any]:
    """Everything a step decides from, in comparable form."""
    creators = {
        a: (
            c.net_sales,
            c.counted,
            c.activity,
            c.clicks,
            None if c.scope is None else (c.scope.keys, c.scope.amount),
        )
        for a, c in state.creators.items()
        if c.net_sales or c.counted or c.activity or c.clicks
    }
    return {
        # As stored: a tuple in memory is a list once read back.
        "lines": {i: orjson.loads(orjson.dumps(record_to_json(r))) for i, r in state.lines.items()},
        "by_order": {o: sorted(ids) for o, ids in state.by_order.items() if ids},
        "confirmations": dict(state.confirmations),
        "creators": creators,
        "moments": dict(state.moments),
        "renewals": {o: sorted(ids) for o, ids in state.renewals.items() if ids},
        "outside": dict(state.outside),
        "contents": dict(state.contents),
        "seq": state.seq,
        "tally": dict(tally),
    }


async def _apply_taking_refusals(
    store: LedgerStore, fresh: LedgerStore, batch: Batch
) -> tuple[list[ConversionFact], int]:
    """Apply ``batch``; when the bound refuses it, check the cache is as stored and apply
    it again without the whale's sales, which go one by one (as the consumer does). The
    whale sales taken, and how many refusals the cache came through."""
    refused = await _refusal(store, batch)
    if refused is None:
        return [c for _, _, c in batch.conversions if c.affiliate_id == WHALE], 0
    await _assert_cached_as_stored(store, fresh)
    rest, whales = _split_whale(batch)
    await store.apply(rest, _versions, _euro)
    taken: list[ConversionFact] = []
    refusals = 1
    for sale in whales:
        if await _refusal(store, Batch(conversions=[(CAMPAIGN, PERIOD, sale)])) is None:
            taken.append(sale)
        else:
            await _assert_cached_as_stored(store, fresh)
            refusals += 1
    return taken, refusals


async def _refusal(store: LedgerStore, batch: Batch) -> CreatorSumOutOfRange | None:
    """What the bound refused of ``batch`` (only ever the whale), None when it was written."""
    try:
        await store.apply(batch, _versions, _euro)
    except PeriodsRefused as refused:
        cause = refusal_cause(refused)
    else:
        return None
    assert isinstance(cause, CreatorSumOutOfRange), cause
    assert cause.creators == {WHALE}
    return cause


async def _assert_cached_as_stored(store: LedgerStore, fresh: LedgerStore) -> None:
    cached = store._periods[CP]  # kept: not dropped for a reload
    loaded = await fresh._load(CP, VERSIONS, "EUR")
    assert view(cached.state, cached.tally) == view(loaded.state, loaded.tally)
    assert (cached.token, cached.kpis, cached.sums) == (loaded.token, loaded.kpis, loaded.sums)


async def _journal(redis: Redis[bytes]) -> list[Posting]:
    """Every posting of the period, from each creator's journal (``random_facts``' three)."""
    out: list[Posting] = []
    for creator in ("creator-1", "creator-2", "creator-3", WHALE):
        key = KEYS.period(CAMPAIGN, PERIOD, f"journal:{creator}")
        out += [posting_from_json(json.loads(m)) for m in await redis.zrange(key, 0, -1)]
    return out


@pytest.mark.parametrize("seed", SEEDS)
async def test_a_refused_step_leaves_its_period_cached_as_stored(
    ledger_redis_url: str, seed: int
) -> None:
    rng = random.Random(seed)
    facts = random_facts(rng)
    redis: Redis[bytes] = await connect_ready(ledger_redis_url)  # type: ignore[assignment]
    try:
        store, fresh = LedgerStore(redis), LedgerStore(redis)
        taken: list[ConversionFact] = []
        refusals = 0
        for batch in _batches(facts, rng):
            whales, refused = await _apply_taking_refusals(store, fresh, batch)
            taken += whales
            refusals += refused
        assert refusals >= 2, "the seed refused too little to prove anything"
        assert len(taken) == 3  # 7.5-9 x 10^14: a fourth sale would pass the bound

        postings = await _journal(redis)
        sales = [p for p in postings if p.line_kind != "engagement"]
        expected = target_amounts(
            reference_lines(
                CAMPAIGN,
                PERIOD,
                [*facts.conversions, *taken],
                facts.refunds,
                dict(facts.confirmations),
                facts.tallies(),
                VERSIONS,
            )
        )
        assert posted_amounts(sales) == expected
        assert sorted(p.seq for p in postings) == list(range(1, len(postings) + 1))
    finally:
        await redis.aclose()
