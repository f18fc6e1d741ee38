"""Endpoints, scheduled deliveries and dead letters in Redis.

Every key carries the hash tag ``{wh}``, so each multi-key step (a Lua script) runs on
one Redis Cluster slot too. A delivery (``job``) is scheduled in ``due`` (a sorted set
by due time, ms) and counted in its endpoint's ``q:<endpoint>``; the sender claims due
jobs by moving their due time one lease ahead, so a sender killed mid-request leaves
them to be claimed again once the lease is over.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, cast

from redis.asyncio import Redis

from afflux.payouts.webhooks.policy import Endpoint, OwnerKind

log = logging.getLogger(__name__)

PREFIX = "afx:{wh}:"  # beside the ledger's afx:pay:, which a ledger rebuild clears
ENDPOINTS = PREFIX + "endpoints"
JOBS = PREFIX + "jobs"
DUE = PREFIX + "due"


def owner_key(kind: str, owner_id: str) -> str:
    return f"{PREFIX}owner:{kind}:{owner_id}"


def queue_key(endpoint_id: str) -> str:
    return f"{PREFIX}q:{endpoint_id}"


def dead_key(endpoint_id: str) -> str:
    return f"{PREFIX}dead:{endpoint_id}"


class TooManyEndpoints(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Job:
    """One event to deliver to one endpoint; ``attempts`` made so far."""

    webhook_id: str
    endpoint_id: str
    event_type: str
    event_id: str
    body: str
    enqueued_at: int
    attempts: int = 0
    last_error: str = ""

    def encode(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def decode(cls, raw: bytes | str) -> Job:
        return cls(**json.loads(raw))


# KEYS: endpoints, owner set; ARGV: id, endpoint json, max per owner
_ADD = """
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"""

# KEYS: jobs, due, queue, dead; ARGV: id, job json, due ms, max queue, dead entry, max dead
_ENQUEUE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[4]) then
  redis.call('LPUSH', KEYS[4], ARGV[5])
  redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[6]) - 1)
  return 2
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return 1
"""

# KEYS: due, jobs; ARGV: now ms, lease until ms, how many
_CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  local job = redis.call('HGET', KEYS[2], id)
  if job then
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    table.insert(out, job)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
"""

# KEYS: jobs, due, queue; ARGV: id
_DONE = """
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
"""

# KEYS: jobs, due; ARGV: id, job json, due ms
_RETRY = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
"""

# KEYS: jobs, due, queue, dead; ARGV: id, dead entry, max dead
_BURY = """
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('LPUSH', KEYS[4], ARGV[2])
redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[3]) - 1)
return 1
"""


def dead_entry(job: Job, reason: str, failed_at: int) -> str:
    entry = asdict(job) | {"reason": reason, "failed_at": failed_at}
    return json.dumps(entry, separators=(",", ":"))


class WebhookStore:
    def __init__(
        self,
        redis: Redis[bytes],
        *,
        max_endpoints_per_owner: int = 10,
        max_queue_per_endpoint: int = 10_000,
        max_dead_per_endpoint: int = 1_000,
    ) -> None:
        self.redis = redis
        self.max_endpoints_per_owner = max_endpoints_per_owner
        self.max_queue_per_endpoint = max_queue_per_endpoint
        self.max_dead_per_endpoint = max_dead_per_endpoint

    async def _eval(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        return await self.redis.eval(script, len(keys), *keys, *args)  # type: ignore[no-untyped-call]

    # Endpoints

    async def add(self, endpoint: Endpoint) -> None:
        encoded = json.dumps(asdict(endpoint), separators=(",", ":"))
        keys = [ENDPOINTS, owner_key(endpoint.owner_kind, endpoint.owner_id)]
        args = [endpoint.endpoint_id, encoded, self.max_endpoints_per_owner]
        if not await self._eval(_ADD, keys, args):
            raise TooManyEndpoints(
                f"{endpoint.owner_kind} {endpoint.owner_id} has "
                f"{self.max_endpoints_per_owner} endpoints already"
            )

    async def get(self, endpoint_id: str) -> Endpoint | None:
        raw = await self.redis.hget(ENDPOINTS, endpoint_id)
        return None if raw is None else _endpoint(raw)

    async def get_many(self, endpoint_ids: Iterable[str]) -> dict[str, Endpoint | None]:
        """The endpoints among ``endpoint_ids`` that exist, by id (one ``HMGET``); None
        for one whose stored record cannot be read (logged): the sender holds its
        deliveries back rather than stop every owner's, or drop them."""
        ids = sorted(set(endpoint_ids))
        if not ids:
            return {}
        found: dict[str, Endpoint | None] = {}
        for endpoint_id, raw in zip(ids, await self.redis.hmget(ENDPOINTS, ids), strict=True):
            if not raw:
                continue
            try:
                found[endpoint_id] = _endpoint(raw)
            except Exception as exc:  # any shape of damage: this endpoint's alone
                log.error(
                    "webhook endpoint %s: its stored record cannot be read: %r", endpoint_id, exc
                )
                found[endpoint_id] = None
        return found

    async def all(self) -> list[Endpoint]:
        raw = await self.redis.hgetall(ENDPOINTS)
        return sorted((_endpoint(v) for v in raw.values()), key=lambda e: e.created_at)

    async def remove(self, endpoint_id: str) -> bool:
        """Forget the endpoint, its scheduled deliveries and its dead letters."""
        endpoint = await self.get(endpoint_id)
        if endpoint is None:
            return False
        waiting = [m.decode() for m in await self.redis.zrange(queue_key(endpoint_id), 0, -1)]
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(ENDPOINTS, endpoint_id)
        pipe.srem(owner_key(endpoint.owner_kind, endpoint.owner_id), endpoint_id)
        if waiting:
            pipe.hdel(JOBS, *waiting)
            pipe.zrem(DUE, *waiting)
        pipe.delete(queue_key(endpoint_id), dead_key(endpoint_id))
        await pipe.execute()
        return True

    async def endpoints_of(
        self, owners: Iterable[tuple[OwnerKind, str]]
    ) -> dict[tuple[OwnerKind, str], list[Endpoint]]:
        wanted = list(dict.fromkeys(owners))
        if not wanted:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for kind, owner_id in wanted:
            pipe.smembers(owner_key(kind, owner_id))
        id_sets = cast("list[set[bytes]]", await pipe.execute())
        ids = sorted({i.decode() for members in id_sets for i in members})
        found: dict[str, Endpoint] = {}
        if ids:
            for raw in await self.redis.hmget(ENDPOINTS, ids):
                if raw is not None:
                    endpoint = _endpoint(raw)
                    found[endpoint.endpoint_id] = endpoint
        return {
            owner: [found[i.decode()] for i in sorted(members) if i.decode() in found]
            for owner, members in zip(wanted, id_sets, strict=True)
        }

    # Deliveries

    async def enqueue(self, jobs: Sequence[tuple[Job, int]], *, now: int) -> dict[str, int]:
        """Schedule each (job, due ms) unless it is scheduled already; a job whose
        endpoint's queue is full goes to the endpoint's dead letters. Counts by outcome."""
        counts = {"scheduled": 0, "already_scheduled": 0, "queue_full": 0}
        if not jobs:
            return counts
        pipe = self.redis.pipeline(transaction=False)
        for job, due in jobs:
            keys = [JOBS, DUE, queue_key(job.endpoint_id), dead_key(job.endpoint_id)]
            args = [
                job.webhook_id,
                job.encode(),
                due,
                self.max_queue_per_endpoint,
                dead_entry(job, "retry queue full", now),
                self.max_dead_per_endpoint,
            ]
            pipe.eval(_ENQUEUE, len(keys), *keys, *args)
        names = {0: "already_scheduled", 1: "scheduled", 2: "queue_full"}
        for result in await pipe.execute():
            counts[names[int(result)]] += 1
        return counts

    async def claim(self, *, now: int, lease_until: int, limit: int) -> list[Job]:
        raw = await self._eval(_CLAIM, [DUE, JOBS], [now, lease_until, limit])
        return [Job.decode(r) for r in raw]

    async def defer(self, due_by_id: dict[str, int]) -> None:
        """Move claimed deliveries' due times (no attempt counted); one gone meanwhile
        (done, removed) stays gone."""
        if due_by_id:
            await self.redis.zadd(DUE, due_by_id, xx=True)  # type: ignore[arg-type]

    async def done(self, job: Job) -> None:
        await self._eval(_DONE, [JOBS, DUE, queue_key(job.endpoint_id)], [job.webhook_id])

    async def retry(self, job: Job, due: int) -> None:
        await self._eval(_RETRY, [JOBS, DUE], [job.webhook_id, job.encode(), due])

    async def bury(self, job: Job, reason: str, now: int) -> None:
        keys = [JOBS, DUE, queue_key(job.endpoint_id), dead_key(job.endpoint_id)]
        args = [job.webhook_id, dead_entry(job, reason, now), self.max_dead_per_endpoint]
        await self._eval(_BURY, keys, args)

    async def dead_letters(self, endpoint_id: str, limit: int = 100) -> list[dict[str, Any]]:
        raw = await self.redis.lrange(dead_key(endpoint_id), 0, max(0, limit - 1))
        return [json.loads(r) for r in raw]

    async def pending(self, endpoint_id: str | None = None) -> int:
        if endpoint_id is None:
            return int(await self.redis.zcard(DUE))
        return int(await self.redis.zcard(queue_key(endpoint_id)))


def _endpoint(raw: bytes | str) -> Endpoint:
    data = json.loads(raw)
    data["event_types"] = tuple(data["event_types"])
    return Endpoint(**data)
