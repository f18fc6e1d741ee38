"""The webhook store's steps on a plain Redis and on a Redis Cluster: scheduling is
idempotent per webhook id, a claim hides a delivery for its lease, a full queue and the
last failure go to the endpoint's dead letters (bounded), removing an endpoint takes
its deliveries along, endpoints are read many at once, and an owner's endpoints are
bounded."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from typing import cast

import pytest
from redis.asyncio import Redis

from afflux.payouts.webhooks.policy import Endpoint
from afflux.payouts.webhooks.redis_store import ENDPOINTS, Job, TooManyEndpoints, WebhookStore
from afflux.shared.io.redis_client import connect_ready

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(ledger_redis_url: str) -> AsyncIterator[WebhookStore]:
    redis = cast("Redis[bytes]", await connect_ready(ledger_redis_url))
    try:
        yield WebhookStore(
            redis, max_endpoints_per_owner=2, max_queue_per_endpoint=3, max_dead_per_endpoint=2
        )
    finally:
        await redis.aclose()  # type: ignore[attr-defined]


def endpoint(endpoint_id: str, owner: str = "m-1") -> Endpoint:
    return Endpoint(
        endpoint_id, "merchant", owner, "https://x.example/h", ("payout.issued",), "whsec_x", 0
    )


def job(endpoint_id: str, n: int) -> Job:
    return Job(f"msg-{endpoint_id}-{n}", endpoint_id, "payout.issued", f"ev-{n}", "{}", 0)


async def test_scheduling_the_same_webhook_id_twice_schedules_it_once(
    store: WebhookStore,
) -> None:
    await store.add(endpoint("ep-1"))
    first = await store.enqueue([(job("ep-1", 1), 100)], now=100)
    again = await store.enqueue([(job("ep-1", 1), 100)], now=100)
    assert first["scheduled"] == 1
    assert again == {"scheduled": 0, "already_scheduled": 1, "queue_full": 0}
    assert await store.pending("ep-1") == 1


async def test_a_claim_hides_a_delivery_until_its_lease_ends(store: WebhookStore) -> None:
    await store.enqueue([(job("ep-1", 1), 100)], now=100)
    assert await store.claim(now=99, lease_until=1_000, limit=10) == []  # not due yet
    claimed = await store.claim(now=100, lease_until=1_000, limit=10)
    assert [j.webhook_id for j in claimed] == ["msg-ep-1-1"]
    assert await store.claim(now=999, lease_until=2_000, limit=10) == []  # leased
    assert len(await store.claim(now=1_000, lease_until=2_000, limit=10)) == 1  # lease over
    await store.done(claimed[0])
    assert await store.pending() == 0


async def test_a_retry_keeps_the_attempts_and_moves_the_due_time(store: WebhookStore) -> None:
    await store.enqueue([(job("ep-1", 1), 100)], now=100)
    [claimed] = await store.claim(now=100, lease_until=10_000, limit=1)
    failed = dataclasses.replace(claimed, attempts=1, last_error="HTTP 500")
    await store.retry(failed, 200)
    [again] = await store.claim(now=200, lease_until=10_000, limit=1)
    assert (again.attempts, again.last_error) == (1, "HTTP 500")


async def test_a_full_queue_and_a_last_failure_go_to_the_bounded_dead_letters(
    store: WebhookStore,
) -> None:
    counts = await store.enqueue([(job("ep-1", n), 100) for n in range(5)], now=100)
    assert counts == {"scheduled": 3, "already_scheduled": 0, "queue_full": 2}
    [claimed] = await store.claim(now=100, lease_until=10_000, limit=1)
    await store.bury(claimed, "8 attempts failed", 500)
    letters = await store.dead_letters("ep-1")
    assert len(letters) == 2  # the newest two of three
    assert letters[0]["reason"] == "8 attempts failed"
    assert letters[1]["reason"] == "retry queue full"
    assert await store.pending("ep-1") == 2


async def test_removing_an_endpoint_takes_its_deliveries_and_dead_letters(
    store: WebhookStore,
) -> None:
    await store.add(endpoint("ep-1"))
    await store.add(endpoint("ep-2"))
    await store.enqueue([(job("ep-1", 1), 100), (job("ep-2", 1), 100)], now=100)
    assert await store.remove("ep-1")
    assert await store.get("ep-1") is None
    assert await store.pending() == 1
    assert await store.dead_letters("ep-1") == []
    assert not await store.remove("ep-1")
    assert [
        e.endpoint_id
        for e in (await store.endpoints_of([("merchant", "m-1")]))[("merchant", "m-1")]
    ] == ["ep-2"]


async def test_of_two_removals_at_once_only_the_one_that_removed_it_says_so(
    store: WebhookStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second request reads the endpoint, then the first removes it before the second
    writes: the second must answer 'not found', not a second 'removed' (HTTP 204)."""
    await store.add(endpoint("ep-1"))
    await store.enqueue([(job("ep-1", 1), 100)], now=100)
    read_deliveries = store.redis.zrange
    other: list[bool] = []

    async def another_removal_in_between(*args: object, **kwargs: object) -> object:
        if not other:
            other.append(False)
            other[0] = await store.remove("ep-1")
        return await read_deliveries(*args, **kwargs)

    monkeypatch.setattr(store.redis, "zrange", another_removal_in_between)

    assert await store.remove("ep-1") is False
    assert other == [True]
    assert await store.pending() == 0


async def test_endpoints_are_read_many_at_once_by_id(store: WebhookStore) -> None:
    await store.add(endpoint("ep-1"))
    await store.add(endpoint("ep-2", owner="m-2"))
    found = await store.get_many(["ep-2", "ep-gone", "ep-1", "ep-2"])
    assert found == {"ep-1": endpoint("ep-1"), "ep-2": endpoint("ep-2", owner="m-2")}
    assert await store.get_many([]) == {}


@pytest.mark.parametrize(
    "damage", [b"not json", b"{}", b'{"endpoint_id": "ep-bad", "event_types": 3}', b"[]"]
)
async def test_an_unreadable_endpoint_record_is_none_and_the_others_are_read(
    store: WebhookStore, damage: bytes
) -> None:
    """One damaged record must not stop the sender (which reads every claimed job's
    endpoint at once) nor take the others with it: it is None, its deliveries held back."""
    await store.add(endpoint("ep-1"))
    await store.redis.hset(ENDPOINTS, "ep-bad", damage)
    found = await store.get_many(["ep-bad", "ep-1", "ep-gone"])
    assert found == {"ep-1": endpoint("ep-1"), "ep-bad": None}


async def test_an_owner_has_a_bounded_number_of_endpoints(store: WebhookStore) -> None:
    await store.add(endpoint("ep-1"))
    await store.add(endpoint("ep-2"))
    with pytest.raises(TooManyEndpoints):
        await store.add(endpoint("ep-3"))
    await store.add(endpoint("ep-4", owner="m-2"))  # another owner's count is its own


def owned(endpoint_id: str, n: int, owner: str) -> Job:
    return dataclasses.replace(job(endpoint_id, n), owner=owner)


async def test_a_claim_takes_owners_in_turn_and_none_of_an_owner_without_room(
    ledger_redis_url: str,
) -> None:
    """Claimed from one schedule oldest first, a deep backlog of one owner came back at
    every claim, and another owner's new delivery waited behind all of it."""
    redis = cast("Redis[bytes]", await connect_ready(ledger_redis_url))
    store = WebhookStore(redis)
    try:
        backlog = [(owned("ep-slow", n, "merchant:slow"), 100 + n) for n in range(50)]
        await store.enqueue(backlog, now=100)
        await store.enqueue([(owned("ep-other", 1, "merchant:other"), 500)], now=500)

        # The slow owner has no room: the other owner's delivery comes first.
        claimed = await store.claim(
            now=600, lease_until=10_000, limit=4, share=4, room={"merchant:slow": 0}
        )
        assert [j.webhook_id for j in claimed] == ["msg-ep-other-1"]

        # With room for 2, it gets 2 (its oldest), however many are free.
        claimed = await store.claim(
            now=600, lease_until=10_000, limit=16, share=4, room={"merchant:slow": 2}
        )
        assert [j.webhook_id for j in claimed] == ["msg-ep-slow-0", "msg-ep-slow-1"]

        # Unnamed owners get the share each; leased ones are not claimed again.
        claimed = await store.claim(now=600, lease_until=10_000, limit=16, share=4)
        assert [j.webhook_id for j in claimed] == [f"msg-ep-slow-{n}" for n in range(2, 6)]
        assert await store.pending() == 51
    finally:
        await redis.aclose()  # type: ignore[attr-defined]


async def test_done_retried_deferred_and_buried_jobs_leave_their_owners_queue(
    store: WebhookStore,
) -> None:
    jobs = [owned("ep-1", n, "merchant:m-1") for n in range(4)]
    await store.enqueue([(j, 100) for j in jobs], now=100)
    claimed = await store.claim(now=100, lease_until=10_000, limit=10)
    assert len(claimed) == 3  # the queue of ep-1 holds 3 (the fixture's bound)
    await store.done(claimed[0])
    await store.retry(dataclasses.replace(claimed[1], attempts=1), 200)
    await store.defer([(claimed[2], 300)])
    assert [j.webhook_id for j in await store.claim(now=250, lease_until=20_000, limit=10)] == [
        claimed[1].webhook_id
    ]
    assert [j.webhook_id for j in await store.claim(now=300, lease_until=20_000, limit=10)] == [
        claimed[2].webhook_id
    ]
    await store.bury(claimed[1], "8 attempts failed", 400)
    await store.add(endpoint("ep-1"))
    assert await store.remove("ep-1")
    assert await store.pending() == 0
    assert await store.redis.zcard("afx:{wh}:owners") == 0  # nothing left scheduled


async def test_jobs_scheduled_by_an_earlier_version_are_adopted_at_start_and_claimed(
    store: WebhookStore,
) -> None:
    # As an earlier version (or one rolled back to) leaves them: in the schedule and the
    # endpoint's count only.
    await store.add(endpoint("ep-1"))
    legacy = job("ep-1", 1)
    await store.redis.hset("afx:{wh}:jobs", legacy.webhook_id, legacy.encode())
    await store.redis.zadd("afx:{wh}:due", {legacy.webhook_id: 100})
    await store.redis.zadd("afx:{wh}:q:ep-1", {legacy.webhook_id: 100})
    assert await store.claim(now=100, lease_until=10_000, limit=10) == []

    assert await store.adopt_unqueued() == 1
    assert await store.adopt_unqueued() == 1  # again (every start): changes nothing
    [claimed] = await store.claim(now=100, lease_until=10_000, limit=10)
    assert claimed == dataclasses.replace(legacy, owner="merchant:m-1")
    await store.done(claimed)
    assert await store.pending() == 0
    assert await store.redis.zcard("afx:{wh}:owners") == 0


async def test_a_stored_job_names_no_owner_so_an_earlier_version_reads_it(
    store: WebhookStore,
) -> None:
    """An earlier version built a job from every stored field: one it did not know (the
    owner) made it raise, and its sender stopped on the first claim."""
    await store.enqueue([(owned("ep-1", 1, "merchant:m-1"), 100)], now=100)
    stored = await store.redis.hget("afx:{wh}:jobs", "msg-ep-1-1")
    assert stored is not None
    assert set(json.loads(stored)) == {
        "webhook_id", "endpoint_id", "event_type", "event_id", "body", "enqueued_at",
        "attempts", "last_error",
    }  # fmt: skip
    [claimed] = await store.claim(now=100, lease_until=10_000, limit=1)
    assert claimed.owner == "merchant:m-1"  # told by the queue it was claimed from


async def test_a_job_an_earlier_version_leased_or_retried_in_due_alone_is_not_claimed_again(
    store: WebhookStore,
) -> None:
    """A sender of an earlier version moves a job in ``due`` only (its lease, its retry's
    backoff): the owner's queue still said due, and a sender of this version sent the
    job again while the other was sending it."""
    await store.add(endpoint("ep-1"))
    await store.enqueue([(owned("ep-1", 1, "merchant:m-1"), 100)], now=100)
    await store.redis.zadd("afx:{wh}:due", {"msg-ep-1-1": 50_000})  # leased elsewhere
    assert await store.claim(now=1_000, lease_until=10_000, limit=10) == []
    [claimed] = await store.claim(now=50_000, lease_until=90_000, limit=10)
    assert claimed.webhook_id == "msg-ep-1-1"


async def test_a_job_whose_endpoint_cannot_be_read_is_adopted_only_once_it_can(
    store: WebhookStore,
) -> None:
    legacy = job("ep-1", 1)
    await store.redis.hset("afx:{wh}:jobs", legacy.webhook_id, legacy.encode())
    await store.redis.zadd("afx:{wh}:due", {legacy.webhook_id: 100})
    await store.redis.hset(ENDPOINTS, "ep-1", b"not json")
    await store.adopt_unqueued()
    assert await store.redis.zcard("afx:{wh}:owners") == 0  # in no queue of its own
    await store.redis.hdel(ENDPOINTS, "ep-1")
    await store.add(endpoint("ep-1"))
    await store.adopt_unqueued()
    assert await store.redis.zrange("afx:{wh}:owners", 0, -1) == [b"merchant:m-1"]
