"""The webhook sender against the session's broker and a real Redis: registered through
the admin API, every event reaches its merchant's and creator's endpoints signed in the
Standard Webhooks format (checked with the reference package); a failing receiver gets
each event again with the same webhook id until it answers 2xx; one that never does
ends up in the endpoint's dead letters; a replay sends an endpoint's events again."""

from __future__ import annotations

import asyncio
import contextlib
import time
import tracemalloc
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from webhook_receiver import Receiver

from afflux.payouts.settings import PayoutsSettings
from afflux.payouts.webhooks import policy, routes
from afflux.payouts.webhooks.metrics import WebhookMetrics
from afflux.payouts.webhooks.policy import webhook_id
from afflux.payouts.webhooks.redis_store import WebhookStore
from afflux.payouts.webhooks.sender import start_sender, webhook_store
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import (
    Assist,
    CampaignTermsPublished,
    ConversionAttributed,
    ConversionReversed,
    Envelope,
    PayoutIssued,
)
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.clock_source import system_clock
from afflux.shared.io.http.problems import install_problem_handlers
from afflux.shared.io.kafka import new_producer
from afflux.shared.wire import encode

pytestmark = pytest.mark.integration

NOV_15 = 1_794_700_800_000  # 2026-11-15T00:00:00Z
TOKEN = "webhooks-test-admin-token"
REDIS_DB = 12  # this module's own database on the session Redis
ALL_TYPES = ["conversion.attributed", "conversion.reversed", "payout.issued"]


@dataclass
class Program:
    campaign: str
    merchant: str
    creators: list[str]


def new_program(creators: int = 3) -> Program:
    tag = uuid.uuid4().hex[:8]
    return Program(f"wh-{tag}", f"merchant-{tag}", [f"creator-{tag}-{n}" for n in range(creators)])


def directory_of(*programs: Program) -> CampaignDirectory:
    directory = CampaignDirectory()
    for program in programs:
        terms = CampaignTerms.model_validate(
            {
                "campaign_id": program.campaign,
                "merchant_id": program.merchant,
                "currency": "EUR",
                "plan": {"sale": {"rate": {"percent": "10"}}},
            }
        )
        version = TermsVersion(version=1, effective_from=0, published_at=0, terms=terms)
        directory.apply(
            CampaignTermsPublished(
                event_id=f"terms-{program.campaign}",
                occurred_at=0,
                campaign_id=program.campaign,
                versions=(version,),
            )
        )
    directory.ready.set()
    return directory


def conversion(program: Program, n: int) -> ConversionAttributed:
    return ConversionAttributed(
        event_id=f"ev-{program.campaign}-{n}",
        occurred_at=NOV_15 + n,
        conversion_id=f"conv-{program.campaign}-{n}",
        order_id=f"o-{program.campaign}-{n}",
        campaign_id=program.campaign,
        affiliate_id=program.creators[n % len(program.creators)],
        reason="cookie",
        model="last_click",
        window_ms=1,
        terms_version=1,
        amount_minor=10_000 + n,
        currency="EUR",
        order_event_id=f"oev-{program.campaign}-{n}",
        visitor_id=f"v-{n}",
        customer_id=f"customer-{n}@example.com",
        click_id=f"v-{n}.own",
        assists=(Assist(affiliate_id="creator-rival", click_id=f"v-{n}.rival", clicked_at=1),),
    )


def reversal(program: Program, n: int) -> ConversionReversed:
    return ConversionReversed(
        event_id=f"rev-{program.campaign}-{n}",
        occurred_at=NOV_15 + 1_000 + n,
        reversal_id=f"rev-{program.campaign}-{n}",
        refund_id=f"ref-{program.campaign}-{n}",
        conversion_id=f"conv-{program.campaign}-{n}",
        order_id=f"o-{program.campaign}-{n}",
        campaign_id=program.campaign,
        affiliate_id=program.creators[n % len(program.creators)],
        amount_minor=500,
        requested_minor=500,
        refunded_total_minor=500,
        order_amount_minor=10_000 + n,
        currency="EUR",
        order_occurred_at=NOV_15 + n,
    )


def payout(program: Program, n: int) -> PayoutIssued:
    return PayoutIssued(
        event_id=f"pay-{program.campaign}-{n}",
        occurred_at=NOV_15 + 2_000 + n,
        payout_id=f"pay-{program.campaign}-{n}",
        affiliate_id=program.creators[n % len(program.creators)],
        campaign_id=program.campaign,
        period="2026-11",
        amount_minor=1_000,
        currency="EUR",
    )


async def produce(bootstrap: str, events: Sequence[Envelope]) -> None:
    topics = {
        ConversionAttributed: "conversions",
        ConversionReversed: "reversals",
        PayoutIssued: "payouts",
    }
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        for event in events:
            key = getattr(event, "order_id", None) or event.affiliate_id
            await producer.send(topics[type(event)], encode(event), key=key.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Wait for progress (polled), failing with ``what`` after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():
        assert loop.time() < deadline, f"not within {timeout_s:.0f}s: {what}"
        await asyncio.sleep(0.05)


async def until_settled(store: WebhookStore, timeout_s: float = 30) -> None:
    """Until no delivery is scheduled: the sender has marked each one it sent."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while (pending := await store.pending()) != 0:
        assert loop.time() < deadline, f"{pending} deliveries still scheduled"
        await asyncio.sleep(0.05)


@dataclass
class Harness:
    settings: PayoutsSettings
    store: WebhookStore
    api: httpx.AsyncClient
    receiver: Receiver
    metrics: WebhookMetrics

    def count(self, outcome: str) -> float:
        return float(self.metrics.deliveries.labels(outcome)._value.get())

    async def register(self, kind: str, owner: str, path: str, types: list[str]) -> str:
        answer = await self.api.post(
            "/v1/webhooks/endpoints",
            json={
                "owner_kind": kind,
                "owner_id": owner,
                "url": self.receiver.base_url + path,
                "event_types": types,
            },
        )
        assert answer.status_code == 201, answer.text
        created = answer.json()
        self.receiver.secrets[path] = created["secret"]
        return str(created["endpoint_id"])


@contextlib.asynccontextmanager
async def harness(
    infra: Any,
    program: Program,
    receiver: Receiver,
    *,
    more: Sequence[Program] = (),
    **webhook_settings: Any,
) -> AsyncIterator[Harness]:
    """The sender running in this process (its own consumer group), its admin API,
    and ``receiver`` started; ``more``: other merchants' programs it knows of."""
    base = infra.redis_url.rsplit("/", 1)[0]
    settings = PayoutsSettings(
        kafka_bootstrap=infra.kafka_bootstrap,
        redis_url=f"{base}/{REDIS_DB}",
        admin_token=TOKEN,
        webhooks_group_id=f"webhooks-{uuid.uuid4().hex[:8]}",
        webhooks_retry_base_s=0.05,
        webhooks_retry_cap_s=0.2,
        **webhook_settings,
    )
    redis: Redis[bytes] = Redis.from_url(settings.redis_url)
    await redis.flushdb()  # no endpoint of an earlier test hears of this one's events
    store = webhook_store(redis, settings)
    directory = directory_of(program, *more)
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(routes.router)
    app.state.settings, app.state.clock = settings, system_clock
    app.state.directory, app.state.webhooks = directory, store
    metrics = WebhookMetrics(CollectorRegistry())
    tasks = start_sender(settings, store, directory, metrics, system_clock)
    receiver.start()
    transport = httpx.ASGITransport(app=app)
    headers = {"authorization": f"Bearer {TOKEN}"}
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://admin", headers=headers
        ) as api:
            yield Harness(settings, store, api, receiver, metrics)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        receiver.stop()
        await redis.aclose()


async def test_every_event_reaches_its_merchants_and_creators_endpoints_signed(
    infra: Any,
) -> None:
    program = new_program()
    receiver = Receiver()
    async with harness(infra, program, receiver) as h:
        merchant = await h.register("merchant", program.merchant, "/merchant", ALL_TYPES)
        creator = program.creators[0]
        await h.register("affiliate", creator, "/creator", ["conversion.attributed"])
        conversions = [conversion(program, n) for n in range(12)]
        reversals = [reversal(program, n) for n in range(3)]
        payouts = [payout(program, n) for n in range(2)]
        await produce(infra.kafka_bootstrap, [*conversions, *reversals, *payouts])

        expected = {
            "conversion.attributed": {e.event_id for e in conversions},
            "conversion.reversed": {e.event_id for e in reversals},
            "payout.issued": {e.event_id for e in payouts},
        }
        mine = {e.event_id for e in conversions if e.affiliate_id == creator}
        await until(
            lambda: (
                receiver.events("/merchant") == expected
                and receiver.events("/creator") == {"conversion.attributed": mine}
            ),
            60,
            "every event at the merchant's endpoint, the creator's conversions at theirs",
        )
        assert receiver.unverified == []
        assert receiver.ids("/merchant") == {
            webhook_id(merchant, e.event_id) for e in [*conversions, *reversals, *payouts]
        }
        # The merchant gets the event as on its topic; the creator its view: nothing of
        # the merchant's customer or of the rival creator who assisted.
        for arrival in receiver.received("/merchant"):
            if arrival.event_type == "conversion.attributed":
                assert arrival.data["customer_id"].startswith("customer-")
                assert arrival.data["assists"][0]["affiliate_id"] == "creator-rival"
        for arrival in receiver.received("/creator"):
            assert arrival.data["affiliate_id"] == creator
            assert arrival.data.keys() == policy.CREATOR_VIEWS["conversion.attributed"].kept
            assert not {"customer_id", "visitor_id", "click_id", "assists"} & arrival.data.keys()
        listed = (await h.api.get("/v1/webhooks/endpoints")).json()["endpoints"]
        assert {e["owner_id"] for e in listed} >= {program.merchant, creator}
        assert all("secret" not in e for e in listed)


async def test_an_endpoint_failing_three_times_gets_each_event_on_the_fourth_attempt(
    infra: Any,
) -> None:
    program = new_program()
    receiver = Receiver(fail_first=3)
    async with harness(infra, program, receiver) as h:
        await h.register("merchant", program.merchant, "/flaky", ["conversion.attributed"])
        conversions = [conversion(program, n) for n in range(5)]
        await produce(infra.kafka_bootstrap, conversions)
        await until(lambda: len(receiver.received("/flaky")) == len(conversions), 60, "every event")
        assert receiver.unverified == []
        # Every attempt carried the same webhook id; the fourth was the one accepted.
        assert set(receiver.attempts.values()) == {4}
        await until_settled(h.store)
        assert h.count("retry_scheduled") == 3 * len(conversions)
        assert h.count("delivered") == len(conversions)
        assert h.metrics.seconds._sum.get() > 0


async def test_an_endpoint_that_always_fails_gets_a_dead_letter_per_event(infra: Any) -> None:
    program = new_program()
    receiver = Receiver(fail_always=True)
    async with harness(infra, program, receiver, webhooks_max_attempts=3) as h:
        endpoint = await h.register("merchant", program.merchant, "/down", ALL_TYPES)
        conversions = [conversion(program, n) for n in range(4)]
        await produce(infra.kafka_bootstrap, conversions)

        async def dead() -> list[dict[str, Any]]:
            path = f"/v1/webhooks/endpoints/{endpoint}/dead-letters"
            answer = await h.api.get(path)
            assert answer.status_code == 200
            return list(answer.json()["dead_letters"])

        letters: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while len(letters) < len(conversions):
            assert loop.time() < deadline, f"dead letters: {letters}"
            letters = await dead()
            await asyncio.sleep(0.05)
        assert {d["event_id"] for d in letters} == {e.event_id for e in conversions}
        assert all(d["attempts"] == 3 and "HTTP 500" in d["last_error"] for d in letters)
        assert set(receiver.attempts.values()) == {3}
        await until_settled(h.store)
        assert h.count("dead_lettered") == len(conversions)

        # The webhook-timestamp header's seconds passed back as ms replayed from 1970.
        seconds = await h.api.post(
            f"/v1/webhooks/endpoints/{endpoint}/replay", json={"since": NOV_15 // 1000}
        )
        assert seconds.status_code == 422, seconds.text
        [problem] = seconds.json()["detail"]
        assert problem["field"] == "since"
        assert "it looks like seconds; give milliseconds" in problem["reason"]

        # The receiver is fixed: a replay from before the events sends them again.
        receiver.fail_always = False
        answer = await h.api.post(
            f"/v1/webhooks/endpoints/{endpoint}/replay", json={"since": NOV_15 - 10**12}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["scheduled"] == len(conversions)
        await until(
            lambda: (
                receiver.ids("/down") == {webhook_id(endpoint, e.event_id) for e in conversions}
            ),
            60,
            "the replayed events, under their first webhook ids",
        )


async def test_a_compressed_answer_is_not_inflated_past_the_bytes_read(infra: Any) -> None:
    # 128 MiB of zeros in about 130 KB of gzip: inflating the answer's first read to take
    # its first 4 KB held about 140 MB per delivery, 16 deliveries at once.
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = packer.compress(bytes(128 * 1024 * 1024)) + packer.flush()
    program = new_program()
    receiver = Receiver(
        fail_always=True, answer_body=bomb, answer_headers={"content-encoding": "gzip"}
    )
    async with harness(infra, program, receiver, webhooks_max_attempts=1) as h:
        endpoint = await h.register("merchant", program.merchant, "/bomb", ALL_TYPES)
        tracemalloc.start()
        try:
            await produce(infra.kafka_bootstrap, [conversion(program, 0)])
            await until(lambda: h.count("dead_lettered") == 1, 60, "the failed delivery")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 32 * 1024 * 1024, f"{peak / 2**20:.0f} MiB held reading the answer"
        letters = (await h.api.get(f"/v1/webhooks/endpoints/{endpoint}/dead-letters")).json()
        assert "HTTP 500" in letters["dead_letters"][0]["last_error"]


async def test_a_slow_endpoint_holds_its_share_of_the_sender_not_every_slot(
    infra: Any,
) -> None:
    # Each event goes to a merchant endpoint answering in 3 s and to a creator's answering
    # at once. The slow one took all 16 slots, so the creator's events came at its pace.
    # (At its share of 4 slots the slow one finishes 4 deliveries per 3 s: the fast 48
    # have 12 s to go before 16 slow ones are done, however loaded the machine.)
    program = new_program(creators=1)
    receiver = Receiver(slow_paths={"/slow": 3.0})
    async with harness(infra, program, receiver) as h:
        await h.register("merchant", program.merchant, "/slow", ["conversion.attributed"])
        await h.register("affiliate", program.creators[0], "/fast", ["conversion.attributed"])
        conversions = [conversion(program, n) for n in range(48)]
        await produce(infra.kafka_bootstrap, conversions)
        await until(lambda: len(receiver.ids("/fast")) == len(conversions), 60, "the fast ones")
        slow_done = len(receiver.received("/slow"))
        assert slow_done < 16, f"{slow_done} slow deliveries went before the fast ones"
        await until(lambda: len(receiver.ids("/slow")) >= 8, 60, "the slow one served too")


@contextlib.asynccontextmanager
async def held_and_other(infra: Any) -> AsyncIterator[tuple[Harness, Program, Program, set[str]]]:
    """A merchant with four endpoints whose requests are held until released, and another
    merchant with one that answers at once (``/other``); the held requests never time out
    during a test: they stay in flight."""
    slow, other = new_program(), new_program()
    slow_paths = {f"/slow-{n}" for n in range(4)}
    receiver = Receiver(held_paths=slow_paths)
    async with harness(infra, slow, receiver, more=[other], webhooks_timeout_s=60) as h:
        for path in sorted(slow_paths):
            await h.register("merchant", slow.merchant, path, ["conversion.attributed"])
        await h.register("merchant", other.merchant, "/other", ["conversion.attributed"])
        yield h, slow, other, slow_paths


async def test_one_merchants_slow_endpoints_leave_another_merchants_deliveries_going(
    infra: Any,
) -> None:
    # A merchant with four endpoints that do not answer, and another merchant with one
    # that answers at once. With a quarter of the 16 slots per endpoint, the four took
    # every slot, and the other merchant's deliveries waited for them (9 to 59 s each,
    # with answers cut at the 10 s timeout). Per owner, the four share a quarter.
    async with held_and_other(infra) as (h, slow, other, slow_paths):
        receiver = h.receiver
        slow_events = [conversion(slow, n) for n in range(8)]  # 32 deliveries, 4 endpoints
        await produce(infra.kafka_bootstrap, slow_events)
        share = 16 // 4
        await until(lambda: receiver.held(slow_paths) >= share, 60, "the slow owner's share")
        other_events = [conversion(other, n) for n in range(12)]
        await produce(infra.kafka_bootstrap, other_events)

        await until(
            lambda: len(receiver.ids("/other")) == len(other_events),
            60,
            "the other merchant's deliveries while the slow one's are held",
        )
        assert receiver.events("/other") == {
            "conversion.attributed": {e.event_id for e in other_events}
        }
        # Every one of them arrived while the slow owner's first requests were still
        # unanswered, and it never had more than its share in flight.
        assert all(not receiver.received(path) for path in slow_paths)
        assert receiver.held(slow_paths) == share
        assert receiver.most_held == share

        receiver.release.set()
        await until(
            lambda: sum(len(receiver.ids(p)) for p in slow_paths) == 4 * len(slow_events),
            60,
            "the slow owner's deliveries, once its endpoints answer",
        )
        assert receiver.unverified == []


@pytest.mark.slow
async def test_another_owners_delivery_does_not_wait_behind_a_held_owners_deep_backlog(
    infra: Any,
) -> None:
    # Claimed from one schedule, oldest first, a few times the free slots at a time, the
    # held owner's 4,000 deliveries came back at every claim and went back a moment
    # later: a new delivery of another owner waited about 4,000 / 96 x 0.5 s (20 s and
    # more). Claimed owner by owner, the held owner (at its share) is passed over.
    async with held_and_other(infra) as (h, slow, other, slow_paths):
        receiver = h.receiver
        backlog = [conversion(slow, n) for n in range(1_000)]
        await produce(infra.kafka_bootstrap, backlog)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        while await h.store.pending() < 4 * len(backlog):
            assert loop.time() < deadline, "the backlog was not scheduled"
            await asyncio.sleep(0.1)
        await until(lambda: receiver.held(slow_paths) == 4, 60, "the held owner's share")

        other_events = [conversion(other, n) for n in range(4)]
        await produce(infra.kafka_bootstrap, other_events)
        started = loop.time()
        await until(
            lambda: len(receiver.ids("/other")) == len(other_events),
            60,
            "the other merchant's deliveries",
        )
        waited = loop.time() - started
        assert waited < 8, f"the other owner waited {waited:.1f} s behind the backlog"
        assert all(not receiver.received(path) for path in slow_paths)
        assert receiver.most_held == 4
        receiver.release.set()


async def test_the_admin_api_refuses_other_schemes_and_too_many_endpoints(infra: Any) -> None:
    program = new_program()
    async with harness(infra, program, Receiver(), webhooks_max_endpoints_per_owner=2) as h:
        bad = await h.api.post(
            "/v1/webhooks/endpoints",
            json={
                "owner_kind": "merchant",
                "owner_id": program.merchant,
                "url": "ftp://example.com/h",
                "event_types": ALL_TYPES,
            },
        )
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["field"] == "url"
        await h.register("merchant", program.merchant, "/a", ALL_TYPES)
        await h.register("merchant", program.merchant, "/b", ALL_TYPES)
        third = await h.api.post(
            "/v1/webhooks/endpoints",
            json={
                "owner_kind": "merchant",
                "owner_id": program.merchant,
                "url": h.receiver.base_url + "/c",
                "event_types": ALL_TYPES,
            },
        )
        assert third.status_code == 409
        unauthorised = await h.api.get("/v1/webhooks/endpoints", headers={"authorization": ""})
        assert unauthorised.status_code == 401


@pytest.mark.parametrize(
    ("kind", "owner", "reason"),
    [
        ("affiliate", "creator-01 ", "a creator id holds ASCII letters, digits"),
        (
            "affiliate",
            "cr\u0435ator-01",
            "a creator id holds ASCII letters, digits",
        ),  # a Cyrillic e
        ("affiliate", "..", "only dots"),
        ("merchant", "merchant-acme\x00b", "contains U+0000"),
        ("merchant", " merchant-acme", "leading or trailing whitespace"),
        ("merchant", "m" * 65, "a merchant id is at most 64 characters"),
    ],
)
async def test_an_endpoint_for_an_owner_no_event_can_name_is_refused(
    infra: Any, kind: str, owner: str, reason: str
) -> None:
    """Such an endpoint was registered (201) and silently received nothing."""
    program = new_program()
    async with harness(infra, program, Receiver()) as h:
        answer = await h.api.post(
            "/v1/webhooks/endpoints",
            json={
                "owner_kind": kind,
                "owner_id": owner,
                "url": h.receiver.base_url + "/x",
                "event_types": ALL_TYPES,
            },
        )
        assert answer.status_code == 422
        [problem] = answer.json()["detail"]
        assert problem["field"] == "owner_id"
        assert reason in problem["reason"]


async def test_a_creator_with_a_long_id_can_have_an_endpoint(infra: Any) -> None:
    program = new_program()
    async with harness(infra, program, Receiver()) as h:
        await h.register("affiliate", "c" * 200, "/long", ALL_TYPES)


async def test_production_refuses_a_loopback_endpoint(infra: Any) -> None:
    program = new_program()
    async with harness(infra, program, Receiver(), webhooks_allow_private=False) as h:
        answer = await h.api.post(
            "/v1/webhooks/endpoints",
            json={
                "owner_kind": "merchant",
                "owner_id": program.merchant,
                "url": h.receiver.base_url + "/x",
                "event_types": ALL_TYPES,
            },
        )
        assert answer.status_code == 422
        assert "loopback" in answer.json()["detail"][0]["reason"]


async def test_a_truncated_replay_sends_the_earliest_events_and_says_where_to_resume(
    infra: Any,
) -> None:
    """Twelve events over four partitions, five per replay: each call schedules the five
    earliest left and answers the time of the first it left out; calls from there cover
    every event. It kept the first five the fetches returned, whichever partition: the
    newest event, none of another partition's oldest, and nowhere to resume from."""
    program = new_program()
    receiver = Receiver()
    async with harness(infra, program, receiver, webhooks_replay_max_events=5) as h:
        endpoint = await h.register("merchant", program.merchant, "/replayed", ALL_TYPES)
        start = int(time.time() * 1000) - 3_600_000
        events = [conversion(program, n) for n in range(12)]
        # Another merchant's events first, stamped now: record times need not rise with
        # offsets (a stop at the first partition read past the latest time kept left
        # these twelve's later ones unread).
        await produce(infra.kafka_bootstrap, [conversion(new_program(), n) for n in range(12)])
        producer = new_producer(infra.kafka_bootstrap)
        await producer.start()
        try:
            for n, event in enumerate(events):  # one second apart, keys across partitions
                await producer.send(
                    "conversions",
                    encode(event),
                    key=event.order_id.encode(),
                    timestamp_ms=start + n * 1000,
                )
            await producer.flush()
        finally:
            await producer.stop()

        answers = []
        since: int | None = start
        while since is not None:
            answer = await h.api.post(
                f"/v1/webhooks/endpoints/{endpoint}/replay", json={"since": since}
            )
            assert answer.status_code == 200, answer.text
            answers.append(answer.json())
            since = answers[-1]["resume_since"]
            assert len(answers) <= 3

        assert [(a["events"], a["truncated"], a["resume_since"]) for a in answers] == [
            (5, True, start + 5_000),
            (5, True, start + 10_000),
            (2, False, None),
        ]
