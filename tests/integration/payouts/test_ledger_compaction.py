"""Compacting a closed, fully paid campaign-period, on a plain Redis and a Redis Cluster:
every read answers the same figures before and after, to the cent; the ledger takes
no more facts for the period (the consumer dead-letters them, naming why); a rebuild
clears the snapshot with the rest and replays the same postings.

The ledger: campaign ``cmpt`` (EUR, 1000 per sale, 5 per valid click, creator cap
2500, 10 lock days, 30-day window). January: anna sells four times (the third is cut
at the cap, the fourth cut whole) and her first sale is refunded after its approval
(a clawback that releases the cuts); bob sells once and is refunded before approval
(a reduction), and has valid and bot clicks; carl has only a bot click (no postings).
April: anna sells once (pending until April 30). A payout run on March 1 pays
January. January closes at Feb 1 + 30 (window) + 10 (lock) + 30 (grace) days.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from ledger_app import DAY, HOUR, directory_of, first_version, payouts_http, sale_fact
from redis.asyncio import Redis

from afflux.cli.main import main as afflux
from afflux.cli.scenario_checks import read_topic
from afflux.payouts import approved, reads, run
from afflux.payouts import store as store_module
from afflux.payouts.compaction import compact_pass, run_every
from afflux.payouts.consumer import LedgerConsumer
from afflux.payouts.keys import Keys
from afflux.payouts.metrics import PayoutsMetrics
from afflux.payouts.rebuild import CONTENT_CLAIMS, clear_ledger
from afflux.payouts.snapshots import PeriodCompacted
from afflux.payouts.store import Batch, ClickItem, LedgerStore, PeriodsRefused, refusal_cause
from afflux.shared.core.commission import ConversionFact, RefundFact
from afflux.shared.core.journal.compaction import closes_at
from afflux.shared.core.terms import TermsVersion
from afflux.shared.events import ConversionAttributed, DeadLetter
from afflux.shared.io.campaign_publish import publish_terms
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.kafka import new_producer
from afflux.shared.io.redis_client import connect_ready
from afflux.shared.wire import encode

pytestmark = pytest.mark.integration

JAN_1 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MAR_1 = JAN_1 + 59 * DAY
APR_1 = JAN_1 + 90 * DAY
GRACE = 30 * DAY
TOKEN = "compaction-admin-token"
CAMPAIGN = "cmpt"
KEYS = Keys()

TERMS = first_version(
    {
        "campaign_id": CAMPAIGN,
        "merchant_id": "m",
        "currency": "EUR",
        "lock_days": 10,
        "cookie_window_days": 30,
        "plan": {
            "sale": {"rate": {"fixed_minor": 1000}},
            "click": {"per_click_minor": 5},
            "creator_cap_minor": 2500,
        },
    }
)
CLOSES = closes_at("2026-01", (TERMS,), GRACE)  # 2026-04-12T00:00:00Z
CREATORS = ("anna", "bob", "carl")
ORDERS = ("a1", "a2", "a3", "a4", "b1", "a5")


def _sale(name: str, affiliate: str, at: int) -> ConversionFact:
    return sale_fact(name, affiliate, at)


def _click(n: int, affiliate: str, at: int, *reasons: str) -> ClickItem:
    return ClickItem(CAMPAIGN, "2026-01", f"click-{n}", affiliate, at, reasons)


def _refund(name: str, at: int) -> tuple[str, str, RefundFact]:
    fact = RefundFact(f"rev-{name}", f"ev-rev-{name}", f"order-{name}", 10_000, at, f"conv-{name}")
    return CAMPAIGN, "2026-01", fact


BATCHES = [
    Batch(
        conversions=[
            (CAMPAIGN, "2026-01", _sale("a1", "anna", JAN_1 + 1 * HOUR)),
            (CAMPAIGN, "2026-01", _sale("a2", "anna", JAN_1 + 2 * HOUR)),
            (CAMPAIGN, "2026-01", _sale("a3", "anna", JAN_1 + 3 * HOUR)),
            (CAMPAIGN, "2026-01", _sale("b1", "bob", JAN_1 + 4 * HOUR)),
        ],
        clicks=[
            _click(1, "bob", JAN_1 + 5 * HOUR),
            _click(2, "bob", JAN_1 + 6 * HOUR),
            _click(3, "bob", JAN_1 + 7 * HOUR, "bot"),
            _click(4, "carl", JAN_1 + 8 * HOUR, "bot"),
        ],
    ),
    Batch(
        conversions=[
            (CAMPAIGN, "2026-01", _sale("a4", "anna", JAN_1 + 2 * DAY)),
            (CAMPAIGN, "2026-04", _sale("a5", "anna", APR_1 + 19 * DAY)),
        ],
        refunds=[_refund("b1", JAN_1 + 3 * DAY)],  # before b1's approval: a reduction
    ),
    Batch(refunds=[_refund("a1", JAN_1 + 20 * DAY)]),  # after a1's approval: a clawback
]
# As-of times that split the figures: January's approvals ahead, behind; April's ahead.
AS_OF = (JAN_1 + 5 * DAY, JAN_1 + 12 * DAY, MAR_1, CLOSES, APR_1 + 40 * DAY)


def _directory() -> CampaignDirectory:
    return directory_of([TERMS])


def _versions(campaign: str) -> tuple[TermsVersion, ...]:
    assert campaign == CAMPAIGN
    return (TERMS,)


@dataclass
class Ledger:
    url: str
    redis: Redis[bytes]
    store: LedgerStore
    http: httpx.AsyncClient
    now: list[int]  # the app's clock: a payout run pays only what is approved by then

    async def get(self, path: str, **params: Any) -> Any:
        response = await self.http.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    async def pay(self, as_of: int, period: str) -> list[dict[str, Any]]:
        body = {"as_of": as_of, "period": period, "campaign_id": CAMPAIGN}
        response = await self.http.post("/v1/payouts/run", json=body)
        assert response.status_code == 200, response.text
        results: list[dict[str, Any]] = response.json()["results"]
        return results


@pytest.fixture
async def ledger(ledger_redis_url: str, infra: Any) -> AsyncIterator[Ledger]:
    redis: Redis[bytes] = await connect_ready(ledger_redis_url)  # type: ignore[assignment]
    store = LedgerStore(redis)
    for batch in BATCHES:
        await store.apply(batch, _versions, lambda cid: "EUR")
    now = [CLOSES]
    try:
        async with payouts_http(
            store, _directory(), infra.kafka_bootstrap, TOKEN, lambda: now[0]
        ) as http:
            yield Ledger(ledger_redis_url, redis, store, http, now)
    finally:
        await redis.aclose()  # type: ignore[attr-defined]


async def _walk(ledger: Ledger, affiliate: str, limit: int, **narrow: Any) -> list[Any]:
    """Every page of the creator's ledger, following the cursors."""
    pages: list[Any] = []
    cursor: str | None = None
    while True:
        params = {"limit": limit, "as_of": MAR_1, **narrow}
        if cursor is not None:
            params["cursor"] = cursor
        page = await ledger.get(f"/v1/creators/{affiliate}/ledger", **params)
        pages.append(page)
        cursor = page["next_cursor"]
        if cursor is None:
            return pages


async def every_read(ledger: Ledger) -> dict[str, Any]:
    """Every figure the API and the payout run read, keyed by what was asked."""
    out: dict[str, Any] = {}
    store = ledger.store
    for a in CREATORS:
        cps = await reads.creator_periods(store, a)
        for at in AS_OF:
            out[f"balance {a} {at}"] = await ledger.get(f"/v1/creators/{a}/balance", as_of=at)
            out[f"sums {a} {at}"] = await reads.creator_sums(store, a, cps, at)
            for period in ("2026-01", "2026-04"):
                out[f"statement {a} {period} {at}"] = await ledger.get(
                    f"/v1/creators/{a}/statement", period=period, as_of=at
                )
        for limit in (1, 2, 3, 100):
            out[f"ledger {a} {limit}"] = await _walk(ledger, a, limit)
        out[f"ledger {a} january"] = await _walk(
            ledger, a, 2, campaign_id=CAMPAIGN, period="2026-01"
        )
    for order in ORDERS:
        out[f"order {order}"] = await ledger.get(
            f"/v1/campaigns/{CAMPAIGN}/orders/order-{order}/postings",
            affiliate_id=["anna", "bob"],
            as_of=MAR_1,
        )
    for period in ("2026-01", "2026-04"):
        out[f"kpis {period}"] = await ledger.get(f"/v1/kpis/campaigns/{CAMPAIGN}", period=period)
    cps = [(CAMPAIGN, p) for p in await reads.campaign_periods(store, CAMPAIGN)]
    for at in AS_OF:
        out[f"approved {at}"] = await run.approved_by_creator(store, cps, at)
    return out


async def _period_keys(redis: Redis[bytes], period: str) -> set[str]:
    names = [
        "ver", "lines", "events", "clickids", "confirmed", "facts_until", "kpis", "sums",
        "clicks", "snapshot", "compacted",
        *(f"{kind}:{a}" for a in CREATORS for kind in ("journal", "due", "dueamt")),
    ]  # fmt: skip
    found = set()
    for name in names:
        if await redis.exists(KEYS.period(CAMPAIGN, period, name)):
            found.add(name)
    return found


async def test_compaction_keeps_every_figure_and_closes_the_period(ledger: Ledger) -> None:
    store = ledger.store
    # Not paid yet: closed, but kept.
    outcomes = {
        o.period: o
        for o in await compact_pass(store, _versions, CLOSES, grace_ms=GRACE, campaign=CAMPAIGN)
    }
    assert not outcomes["2026-01"].compacted
    assert "not paid yet" in outcomes["2026-01"].reason
    paid = await ledger.pay(MAR_1, "2026-03")
    assert {r["affiliate_id"]: r["status"] for r in paid} == {"anna": "paid", "bob": "paid"}

    before = await every_read(ledger)
    postings = 0
    for a in CREATORS:
        postings += await ledger.redis.zcard(KEYS.period(CAMPAIGN, "2026-01", f"journal:{a}"))
    # 1 ms before the close: still open.
    early = {o.period: o for o in await compact_pass(store, _versions, CLOSES - 1, grace_ms=GRACE)}
    assert not early["2026-01"].compacted
    assert early["2026-01"].reason.startswith("open until")
    # A dry run writes nothing.
    dry = {
        o.period: o
        for o in await compact_pass(store, _versions, CLOSES, grace_ms=GRACE, dry_run=True)
    }
    assert dry["2026-01"].reason == "would compact (dry run)"
    assert "snapshot" not in await _period_keys(ledger.redis, "2026-01")

    done = {o.period: o for o in await compact_pass(store, _versions, CLOSES, grace_ms=GRACE)}
    january = done["2026-01"]
    assert january.compacted, january
    assert (january.creators, january.postings) == (2, postings)  # carl has none
    assert not done["2026-04"].compacted  # open, and April's sale is pending
    assert january.bytes_after < january.bytes_before
    print(
        f"\ncompaction of {january.postings} postings, {january.creators} creators: "
        f"{january.bytes_before} -> {january.bytes_after} bytes"
    )
    assert await _period_keys(ledger.redis, "2026-01") == {
        "ver", "kpis", "sums", "clicks", "snapshot", "compacted"
    }  # fmt: skip
    again = {o.period: o for o in await compact_pass(store, _versions, CLOSES, grace_ms=GRACE)}
    assert again["2026-01"].reason == "already compacted"

    after = await every_read(ledger)
    assert after.keys() == before.keys()
    for name in before:
        assert after[name] == before[name], name

    # The payout run pays April's sale once approved, nothing more for January.
    ledger.now[0] = APR_1 + 40 * DAY
    results = await ledger.pay(APR_1 + 40 * DAY, "2026-05")
    assert {r["affiliate_id"]: (r["status"], r["amount_minor"]) for r in results} == {
        "anna": ("paid", 1000),
        "bob": ("nothing_due", 0),
    }


async def test_a_compacted_period_takes_no_more_facts(ledger: Ledger, infra: Any) -> None:
    await ledger.pay(MAR_1, "2026-03")
    await compact_pass(ledger.store, _versions, CLOSES, grace_ms=GRACE)
    late = Batch(conversions=[(CAMPAIGN, "2026-01", _sale("late", "anna", JAN_1 + 9 * DAY))])
    # The store that wrote the period (its state cached) and a new one both refuse.
    for store in (ledger.store, LedgerStore(ledger.redis)):
        with pytest.raises(PeriodsRefused) as refused:
            await store.apply(late, _versions, lambda cid: "EUR")
        cause = refusal_cause(refused.value)
        assert isinstance(cause, PeriodCompacted)
        assert "'2026-01' was compacted at 2026-04-12" in str(cause)
    january = await _period_keys(ledger.redis, "2026-01")
    assert "journal:anna" not in january

    # Through the consumer: the record is dead-lettered with the reason, the rest applied.
    producer = new_producer(infra.kafka_bootstrap)
    await producer.start()
    consumer = LedgerConsumer(
        bootstrap=infra.kafka_bootstrap,
        group_id="compaction-test",
        instance_id=None,
        store=LedgerStore(ledger.redis),
        directory=_directory(),
        producer=producer,
        metrics=PayoutsMetrics(),
    )
    key = f"late-{uuid.uuid4().hex[:8]}"
    try:
        records = [
            _record(7, key, encode(_attributed("late", JAN_1 + 9 * DAY))),
            _record(8, "fine", encode(_attributed("may", APR_1 + 35 * DAY))),
        ]
        await consumer._apply({TopicPartition("conversions", 0): records})
    finally:
        await producer.stop()
    letters = [
        e
        for e in await read_topic(infra.kafka_bootstrap, "afflux.dlq", idle_s=1.0)
        if isinstance(e, DeadLetter) and e.key == key
    ]
    (letter,) = letters
    assert letter.error_class == "PeriodCompacted"
    assert "'2026-01' was compacted at" in letter.reason
    may = await ledger.redis.zrange(KEYS.period(CAMPAIGN, "2026-05", "journal:anna"), 0, -1)
    assert [json.loads(p)["order_id"] for p in may] == ["order-may"]


async def test_a_rebuild_clears_the_snapshot_and_replays_the_same_postings(ledger: Ledger) -> None:
    cps = await reads.creator_periods(ledger.store, "anna")
    before = await reads.period_postings(ledger.store, "anna", cps)
    await ledger.pay(MAR_1, "2026-03")
    await compact_pass(ledger.store, _versions, CLOSES, grace_ms=GRACE)
    await clear_ledger(ledger.redis, grace_s=0)
    assert await _period_keys(ledger.redis, "2026-01") == set()
    replay = LedgerStore(ledger.redis)
    for batch in BATCHES:
        await replay.apply(batch, _versions, lambda cid: "EUR")
    assert await _period_keys(ledger.redis, "2026-01") >= {"journal:anna", "lines"}
    assert await reads.period_postings(replay, "anna", cps) == before


async def test_a_compaction_between_the_marker_check_and_the_token_read_refuses_the_fact(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store loading the period checks the compacted marker, then reads the ``ver``
    token: a pass landing between the two left a token the step could write over, and
    the late fact was priced from empty lines (the base fee paid again)."""
    await ledger.pay(MAR_1, "2026-03")
    await compact_pass(ledger.store, _versions, CLOSES, grace_ms=GRACE)

    async def checked_before_the_pass(*_: Any) -> None:
        return None  # the marker was not there yet when this store looked

    monkeypatch.setattr(store_module, "refuse_compacted", checked_before_the_pass)
    late = Batch(conversions=[(CAMPAIGN, "2026-01", _sale("late", "anna", JAN_1 + 9 * DAY))])
    with pytest.raises(PeriodsRefused) as refused:
        await LedgerStore(ledger.redis).apply(late, _versions, lambda cid: "EUR")
    assert isinstance(refusal_cause(refused.value), PeriodCompacted)
    assert "journal:anna" not in await _period_keys(ledger.redis, "2026-01")
    ledger.now[0] = CLOSES + 20 * DAY
    results = await ledger.pay(CLOSES + 20 * DAY, "2026-05")
    # April's sale, approved by then; nothing of January again.
    assert {r["affiliate_id"]: r["amount_minor"] for r in results} == {"anna": 1000, "bob": 0}


def _pass_lands_around(
    module: Any, monkeypatch: pytest.MonkeyPatch, ledger: Ledger, *, after: bool
) -> None:
    """``module.period_figures`` with one compaction pass landing just before (or after)
    its first read, as another replica's scheduled pass or `afflux ledger compact` may."""
    real = module.period_figures

    async def with_a_pass(*args: Any) -> Any:
        monkeypatch.setattr(module, "period_figures", real)
        if not after:
            await compact_pass(ledger.store, _versions, CLOSES, grace_ms=GRACE)
        figures = await real(*args)
        if after:
            await compact_pass(ledger.store, _versions, CLOSES, grace_ms=GRACE)
        return figures

    monkeypatch.setattr(module, "period_figures", with_a_pass)


@pytest.mark.parametrize("after", [True, False], ids=["after the figures", "before them"])
async def test_a_pass_landing_while_a_run_reads_approved_money_changes_no_amount(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, after: bool
) -> None:
    """A run read the figures, then the compaction marker: a pass between the two moved
    January's pending part (at a past ``as_of``) into the snapshot after the figures had
    it from the schedule, and took it off twice: anna -25.00 approved, not 0."""
    await ledger.pay(MAR_1, "2026-03")
    cps = [(CAMPAIGN, p) for p in await reads.campaign_periods(ledger.store, CAMPAIGN)]
    as_of = JAN_1 + 5 * DAY  # before January's last approval
    calm = await approved.approved_by_creator(ledger.store, cps, as_of)

    _pass_lands_around(approved, monkeypatch, ledger, after=after)
    raced = await approved.approved_by_creator(ledger.store, cps, as_of)

    assert await _period_keys(ledger.redis, "2026-01") >= {"compacted", "snapshot"}
    assert raced == calm
    assert raced == await approved.approved_by_creator(ledger.store, cps, as_of)


async def test_a_pass_landing_between_a_balance_reads_journal_and_figures_changes_no_sum(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The per-period balance read found the period's journal, then read its figures: a
    pass between them left the figures with no schedule, so January's pending part read
    as approved."""
    await ledger.pay(MAR_1, "2026-03")
    as_of = JAN_1 + 5 * DAY
    cps = await reads.creator_periods(ledger.store, "anna")
    calm = await reads.creator_sums(ledger.store, "anna", cps, as_of)
    assert any(s.pending for s in calm)

    _pass_lands_around(reads, monkeypatch, ledger, after=False)
    raced = await reads.creator_sums(ledger.store, "anna", cps, as_of)

    assert await _period_keys(ledger.redis, "2026-01") >= {"compacted", "snapshot"}
    assert raced == calm


async def test_no_pass_compacts_a_period_while_a_rebuild_replays_the_topics(
    ledger: Ledger,
) -> None:
    """Half replayed, a period read against the payout records kept looked paid in full:
    it was compacted, the rest of its facts refused, and a debt shown that was none."""
    await ledger.pay(MAR_1, "2026-03")
    await clear_ledger(ledger.redis, grace_s=0, replay_until={"conversions|0": 3})
    replay = LedgerStore(ledger.redis)
    await replay.apply(BATCHES[0], _versions, lambda cid: "EUR")
    waiting = {o.period: o for o in await compact_pass(replay, _versions, CLOSES, grace_ms=GRACE)}
    assert not waiting["2026-01"].compacted
    assert waiting["2026-01"].reason == (
        "the rebuilt ledger has not replayed its topics yet (conversions|0 by 3 records)"
    )
    for batch in BATCHES[1:]:
        await replay.apply(batch, _versions, lambda cid: "EUR")
    await replay.apply(Batch(offsets={"conversions|0": 3}), _versions, lambda cid: "EUR")
    done = {o.period: o for o in await compact_pass(replay, _versions, CLOSES, grace_ms=GRACE)}
    assert done["2026-01"].compacted, done["2026-01"]
    assert not await ledger.redis.exists(KEYS.ledger("replay-until"))  # replayed: forgotten


def _attributed(name: str, at: int) -> ConversionAttributed:
    return ConversionAttributed(
        event_id=f"ev-{name}",
        occurred_at=at,
        conversion_id=f"conv-{name}",
        order_id=f"order-{name}",
        campaign_id=CAMPAIGN,
        affiliate_id="anna",
        reason="cookie",
        model="last_click",
        window_ms=1,
        terms_version=1,
        amount_minor=10_000,
        currency="EUR",
        order_event_id=f"oev-{name}",
    )


def _record(offset: int, key: str, value: bytes) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        "conversions", 0, offset, 0, 0, key.encode(), value, None, len(key), len(value), []
    )


async def test_the_scheduled_pass_compacts_once_the_campaigns_are_known(ledger: Ledger) -> None:
    await ledger.pay(MAR_1, "2026-03")
    ready = asyncio.Event()
    one_pass = asyncio.create_task(
        run_every(ledger.store, _versions, ready, 0.01, GRACE, lambda: CLOSES, passes=1)
    )
    await asyncio.sleep(0.1)
    assert not one_pass.done()  # waits for the campaign view
    assert "compacted" not in await _period_keys(ledger.redis, "2026-01")
    ready.set()
    await asyncio.wait_for(one_pass, timeout=60)  # a bound for a loaded machine
    assert "compacted" in await _period_keys(ledger.redis, "2026-01")
    assert "journal:anna" not in await _period_keys(ledger.redis, "2026-01")


async def test_afflux_ledger_compact_reports_what_it_compacted(
    ledger: Ledger, infra: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    await publish_terms(infra.kafka_bootstrap, [(TERMS.terms, 0)])
    command = ["ledger", "compact", "--redis-url", ledger.url]
    command += ["--kafka-bootstrap", infra.kafka_bootstrap, "--campaign", CAMPAIGN]
    command += ["--grace-days", str(GRACE // DAY)]
    assert await asyncio.to_thread(afflux, command) == 0  # today, January is closed
    kept = capsys.readouterr().out
    assert f"{CAMPAIGN} 2026-01: kept ('anna' has" in kept
    await ledger.pay(MAR_1, "2026-03")
    assert await asyncio.to_thread(afflux, [*command, "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert f"{CAMPAIGN} 2026-01: would compact (dry run), 2 creators" in dry
    assert "would compact 1 of 2 campaign-periods" in dry
    assert "snapshot" not in await _period_keys(ledger.redis, "2026-01")
    assert await asyncio.to_thread(afflux, command) == 0
    done = capsys.readouterr().out
    assert f"{CAMPAIGN} 2026-01: closed and fully paid, 2 creators" in done
    assert "compacted 1 of 2 campaign-periods" in done
    assert "snapshot" in await _period_keys(ledger.redis, "2026-01")


async def test_two_passes_at_once_compact_the_period_once(ledger: Ledger) -> None:
    await ledger.pay(MAR_1, "2026-03")
    other: Redis[bytes] = await connect_ready(ledger.url)  # type: ignore[assignment]
    try:
        first, second = await asyncio.gather(
            compact_pass(ledger.store, _versions, CLOSES, grace_ms=GRACE, campaign=CAMPAIGN),
            compact_pass(LedgerStore(other), _versions, CLOSES, grace_ms=GRACE, campaign=CAMPAIGN),
        )
    finally:
        await other.aclose()  # type: ignore[attr-defined]
    januaries = [o for o in (*first, *second) if o.period == "2026-01"]
    (done,) = [o for o in januaries if o.compacted]
    assert done.reason == "closed and fully paid"
    # The other pass finds it compacted, or (mid-way through the first) its journals
    # already emptied, and leaves it as it is either way.
    (other_pass,) = [o for o in januaries if not o.compacted]
    assert other_pass.reason == "already compacted" or other_pass.reason.endswith(
        "left as it is"
    ), other_pass.reason
    january = [(CAMPAIGN, "2026-01")]
    held = [await reads.period_postings(ledger.store, a, january) for a in CREATORS]
    assert sum(len(postings) for postings in held) == done.postings  # every one, once


async def test_a_rebuild_keeps_the_content_apis_claims(ledger: Ledger) -> None:
    """The content API's claims are written by the route, never by the replay: deleted, a
    creator whose stream was live during the rebuild could not publish its end."""
    keys = ledger.store.keys
    claims = {name: keys.ledger(name) for name in CONTENT_CLAIMS}
    for name, key in claims.items():
        await ledger.redis.hset(key, "instagram:L1", f"{name} of L1")

    await clear_ledger(ledger.redis, grace_s=0)

    for name, key in claims.items():
        assert await ledger.redis.hget(key, "instagram:L1") == f"{name} of L1".encode()
    assert not await ledger.redis.exists(keys.ledger("cps"))  # the derived ledger is gone
