"""Review decisions asked before the ledger applied the first one, on a real Redis and the
session broker (the payouts app in process, its ledger consumer not running, so the
window between a decision's 202 and the ledger applying it stays open).

Approve then decline used to answer 202 twice: the decline went to the topic with the
approval's event id and the ledger kept the approval, so the merchant was told a
decline happened that never would. Now the second, different decision is a 409
``already_decided``; the same decision again (a retry) is the same 202, and the topic
holds one decision."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
import redis
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError
from redis.asyncio import Redis

from afflux.cli.processes import Child
from afflux.oracle.ledger_scenarios import CAMPAIGN, PERIOD, START, plan_versions
from afflux.payouts.app import create_app
from afflux.payouts.reviews import MAX_LISTED
from afflux.payouts.settings import PayoutsSettings
from afflux.payouts.store import Batch, LedgerStore
from afflux.shared.core.commission import ConversionFact
from afflux.shared.core.terms import TermsVersion
from afflux.shared.events import CampaignTermsPublished
from afflux.shared.io.http.principals import AccessStore
from afflux.shared.io.whatif_source import read_to_end
from afflux.shared.topics import REVIEWS

pytestmark = pytest.mark.integration

ADMIN = "admin-token-for-the-review-race-tests-0123456789"
HELD = tuple(f"held-{n}" for n in range(1, 9))
BULK = tuple(f"bulk-{n:03d}" for n in range(MAX_LISTED))  # past the listing bound with HELD


def _versions() -> tuple[TermsVersion, ...]:
    review = {"review": {"hold_on": ["self_referral"]}}
    return tuple(
        v.model_copy(update={"terms": v.terms.model_validate({**v.terms.model_dump(), **review})})
        for v in plan_versions()
    )


def _held(name: str, n: int) -> ConversionFact:
    return ConversionFact(
        f"conv-{name}", f"ev-{name}", f"o-{name}", "ana", "sale", None, 10_000, "EUR", False,
        START + n * 60_000, 1, risk_signals=("self_referral",),
    )  # fmt: skip


@dataclass
class World:
    app: Any
    http: httpx.AsyncClient
    merchant_key: str
    bootstrap: str


@pytest.fixture(scope="module")
async def world(plain_redis: tuple[Child, int], infra: Any) -> AsyncIterator[World]:
    _, port = plain_redis
    with redis.Redis(port=port) as sync:
        sync.flushall()
    url = f"redis://127.0.0.1:{port}/0"
    client: Redis[bytes] = Redis.from_url(url)
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap)
    await producer.start()
    try:
        app = create_app(PayoutsSettings(admin_token=ADMIN, redis_url=url))
        versions = _versions()
        app.state.directory.apply(
            CampaignTermsPublished(
                event_id="terms", occurred_at=0, campaign_id=CAMPAIGN, versions=versions
            )
        )
        store = LedgerStore(client)
        conversions = [(CAMPAIGN, PERIOD, _held(name, n)) for n, name in enumerate((*HELD, *BULK))]
        batch = Batch(conversions=conversions)
        batch.review_index = {
            c.conversion_id: [CAMPAIGN, PERIOD, c.order_id, c.affiliate_id, c.occurred_at]
            for _, _, c in conversions
        }
        await store.apply(batch, lambda _: versions, lambda _: "EUR")
        access = AccessStore(client)
        app.state.store, app.state.access, app.state.producer = store, access, producer
        _, merchant_key = await access.issue("merchant", "m", START)
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="https://payouts") as http:
            yield World(app, http, merchant_key, infra.kafka_bootstrap)
    finally:
        await producer.stop()
        await client.aclose()


async def decide(
    world: World, name: str, decision: str, bearer: str = ADMIN, reason: str = "checked"
) -> httpx.Response:
    return await world.http.post(
        f"/v1/reviews/conv-{name}/{decision}",
        json={"reason": reason},
        headers={"authorization": f"Bearer {bearer}"},
    )


async def decisions_on_topic(bootstrap: str, conversion_id: str) -> list[str]:
    """Every decision on the reviews topic for ``conversion_id``, read to its end."""
    found: list[str] = []

    def take(value: bytes | None) -> None:
        parsed = orjson.loads(value or b"null")
        for item in parsed if isinstance(parsed, list) else [parsed]:
            if isinstance(item, dict) and item.get("conversion_id") == conversion_id:
                found.append(item["decision"])

    deadline = asyncio.get_running_loop().time() + 30
    await read_to_end(bootstrap, (REVIEWS.name,), take, deadline=deadline)
    return found


@pytest.mark.parametrize(
    ("name", "first", "then"),
    [("held-1", "approve", "decline"), ("held-2", "decline", "approve")],
)
async def test_the_other_decision_before_the_ledger_applied_the_first_is_refused(
    world: World, name: str, first: str, then: str
) -> None:
    assert (await decide(world, name, first)).status_code == 202

    answer = await decide(world, name, then, world.merchant_key)

    assert answer.status_code == 409, answer.text
    detail = answer.json()["detail"][0]
    assert detail["field"] == "conversion_id"
    assert detail["reason"].startswith(f"already_decided: conv-{name} was {first}d")
    assert await decisions_on_topic(world.bootstrap, f"conv-{name}") == [first]


async def test_the_same_request_again_is_the_same_accepted_event(world: World) -> None:
    one = await decide(world, "held-3", "approve")
    two = await decide(world, "held-3", "approve")
    assert (one.status_code, two.status_code) == (202, 202)
    assert one.json()["event_id"] == two.json()["event_id"]


async def test_the_same_decision_by_someone_else_names_who_decided_and_why(
    world: World,
) -> None:
    """The ledger keeps the first decision's reason and decider: a 202 for the merchant's
    copy told it a decision of its own stood that the ledger never recorded."""
    assert (await decide(world, "held-7", "decline", reason="stolen card")).status_code == 202

    copy = await decide(world, "held-7", "decline", world.merchant_key, reason="mine")

    assert copy.status_code == 409, copy.text
    assert copy.json()["detail"][0]["reason"] == (
        "already_decided: conv-held-7 was declined by admin ('stolen card')"
    )


async def test_of_declines_sent_at_once_one_is_accepted_and_the_rest_name_it(
    world: World,
) -> None:
    answers = await asyncio.gather(
        *(decide(world, "held-8", "decline", reason=f"reason-{n}") for n in range(20))
    )

    accepted = [a for a in answers if a.status_code == 202]
    assert len(accepted) == 1, [a.status_code for a in answers]
    refused = [a.json()["detail"][0]["reason"] for a in answers if a.status_code == 409]
    assert len(refused) == 19
    assert len(set(refused)) == 1  # each names the one reason that stands
    assert await decisions_on_topic(world.bootstrap, "conv-held-8") == ["decline"]


async def test_a_decision_on_an_unknown_conversion_is_a_404_and_claims_nothing(
    world: World,
) -> None:
    answer = await decide(world, "never-seen", "decline")
    assert answer.status_code == 404
    assert answer.json()["detail"][0]["field"] == "conversion_id"
    # Nothing was claimed for it: the held conversion beside it still takes either.
    assert (await decide(world, "held-4", "decline")).status_code == 202


async def test_the_queue_lists_at_most_its_bound_and_counts_them_all(world: World) -> None:
    headers = {"authorization": f"Bearer {world.merchant_key}"}
    listed = await world.http.get("/v1/reviews", params={"status": "all"}, headers=headers)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert len(body["reviews"]) == MAX_LISTED
    assert body["total"] == len(HELD) + len(BULK)
    assert sum(body["counts"].values()) == len(HELD) + len(BULK)
    times = [row["occurred_at"] for row in body["reviews"]]
    assert times == sorted(times)  # the oldest first

    two = await world.http.get("/v1/reviews", params={"limit": 2}, headers=headers)
    assert [len(two.json()["reviews"]), two.json()["total"]] == [2, two.json()["counts"]["held"]]
    for bad in (0, -1, MAX_LISTED + 1, "x"):
        refused = await world.http.get("/v1/reviews", params={"limit": bad}, headers=headers)
        assert refused.status_code == 422, refused.text
        assert "limit" in refused.text


async def test_a_decision_the_broker_did_not_take_is_released(world: World) -> None:
    # A real producer that refuses every record the route sends (too large for it).
    refusing = AIOKafkaProducer(bootstrap_servers=world.bootstrap, max_request_size=64)
    await refusing.start()
    working, world.app.state.producer = world.app.state.producer, refusing
    try:
        failed = await decide(world, "held-5", "approve")
    finally:
        world.app.state.producer = working
        await refusing.stop()
    assert failed.status_code == 503, failed.text
    # Nothing was accepted: the other decision may still be taken.
    assert (await decide(world, "held-5", "decline")).status_code == 202
    assert await decisions_on_topic(world.bootstrap, "conv-held-5") == ["decline"]


class AcknowledgementLost:
    """The real producer, whose acknowledgements never come back: the record is handed
    over and stored by the broker, the answer lost on the way (a timeout, a connection
    cut after the request)."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    async def send(self, topic: str, value: bytes, key: bytes) -> Any:
        stored = await self.producer.send(topic, value, key=key)
        await stored

        async def lost() -> None:
            raise KafkaTimeoutError("no answer within the request timeout")

        return lost()


async def test_a_decision_the_broker_may_have_taken_keeps_the_other_refused(world: World) -> None:
    """Released, the other decision got a 202 the ledger then ignored (the first on the
    topic stands): a merchant was told a sale was declined that the ledger approved."""
    working, world.app.state.producer = (
        world.app.state.producer,
        AcknowledgementLost(world.app.state.producer),
    )
    try:
        unconfirmed = await decide(world, "held-6", "approve")
    finally:
        world.app.state.producer = working

    assert unconfirmed.status_code == 503, unconfirmed.text
    assert "send the same decision again" in unconfirmed.json()["detail"][0]["reason"]
    other = await decide(world, "held-6", "decline", world.merchant_key)
    assert other.status_code == 409, other.text
    assert (await decide(world, "held-6", "approve")).status_code == 202  # the retry
    assert set(await decisions_on_topic(world.bootstrap, "conv-held-6")) == {"approve"}
