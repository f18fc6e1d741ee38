"""Endpoints, scheduled deliveries and dead letters in Redis.

Every key carries the hash tag ``{wh}``, so each multi-key step (a Lua script) runs on
one Redis Cluster slot too. A delivery (``job``) is scheduled in ``due`` (a sorted set
by due time, ms), in its owner's queue ``oq:<owner>`` (the same, one owner's) and
counted in its endpoint's ``q:<endpoint>``; ``owners`` holds each owner with a delivery
scheduled, scored by its earliest due time. The sender claims due jobs owner by owner
(oldest owner first, at most what each owner has room for, none of an owner at its
share), by moving their due time one lease ahead, so a sender killed mid-request leaves
them to be claimed again once the lease is over.

Why per owner: claimed from ``due`` alone, oldest first, a deep backlog of one owner
whose slow endpoints held its share came back at every claim, and another owner's new
delivery waited behind all of it (6,000 deliveries: 20-80 s).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, cast

from redis.asyncio import Redis

from afflux.payouts.webhooks.metrics import WebhookMetrics
from afflux.payouts.webhooks.policy import Endpoint, OwnerKind

log = logging.getLogger(__name__)

PREFIX = "afx:{wh}:"  # beside the ledger's afx:pay:, which a ledger rebuild clears
ENDPOINTS = PREFIX + "endpoints"
JOBS = PREFIX + "jobs"
DUE = PREFIX + "due"
OWNERS = PREFIX + "owners"


def owner_key(kind: str, owner_id: str) -> str:
    return f"{PREFIX}owner:{kind}:{owner_id}"


def owner_queue_key(owner: str) -> str:
    return f"{PREFIX}oq:{owner}"


def owner_token(kind: str, owner_id: str) -> str:
    """How an owner names its queue: ``merchant:acme``, ``affiliate:creator-42``."""
    return f"{kind}:{owner_id}"


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
    # The owner queue it waits in (``owner_token`` of its endpoint's owner): known to the
    # process that schedules or claims it, never stored in the job itself, so a sender of
    # an earlier version (a rolling deploy, a rollback) still reads every job.
    owner: str = ""

    @property
    def queue_owner(self) -> str:
        """The queue it waits in: its owner's, or its endpoint's when the owner is unknown
        (an endpoint whose record cannot be read)."""
        return self.owner or endpoint_queue(self.endpoint_id)

    def stored(self) -> dict[str, Any]:
        fields = asdict(self)
        del fields["owner"]
        return fields

    def encode(self) -> str:
        return json.dumps(self.stored(), separators=(",", ":"))

    @classmethod
    def decode(cls, raw: bytes | str, owner: str = "") -> Job:
        fields = json.loads(raw)
        fields.pop("owner", None)
        return cls(**fields, owner=owner)


def endpoint_queue(endpoint_id: str) -> str:
    return f"endpoint:{endpoint_id}"


# KEYS: endpoints, owner set; ARGV: id, endpoint json, max per owner
_ADD = """
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"""

# Every step that moves a job in ``due`` moves it in its owner's queue too, then sets the
# owner's score in ``owners`` to that queue's earliest due time (or drops the owner).
_REFRESH = """
local function refresh(owners, queue, owner)
  local first = redis.call('ZRANGE', queue, 0, 0, 'WITHSCORES')
  if first[2] then
    redis.call('ZADD', owners, first[2], owner)
  else
    redis.call('ZREM', owners, owner)
  end
end
"""

# KEYS: jobs, due, queue, dead, owner queue, owners
# ARGV: id, job json, due ms, max queue, dead entry, max dead, owner
_ENQUEUE = (
    _REFRESH
    + """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[4]) then
  redis.call('LPUSH', KEYS[4], ARGV[5])
  redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[6]) - 1)
  return 2
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[3], ARGV[1])
refresh(KEYS[6], KEYS[5], ARGV[7])
return 1
"""
)

# KEYS: due, jobs, owners, then one queue per owner
# ARGV: now ms, lease until ms, how many, then per owner: its name, how many of its.
# Each claimed job as its owner, then the job.
_CLAIM = (
    _REFRESH
    + """
local left = tonumber(ARGV[3])
local out = {}
for i = 4, #KEYS do
  if left <= 0 then break end
  local owner = ARGV[2 * i - 4]
  local take = math.min(left, tonumber(ARGV[2 * i - 3]))
  local ids = redis.call('ZRANGEBYSCORE', KEYS[i], '-inf', ARGV[1], 'LIMIT', 0, take)
  for _, id in ipairs(ids) do
    local job = redis.call('HGET', KEYS[2], id)
    local due = redis.call('ZSCORE', KEYS[1], id)
    if not job or not due then
      redis.call('ZREM', KEYS[1], id)
      redis.call('ZREM', KEYS[i], id)
    elseif tonumber(due) > tonumber(ARGV[1]) then
      -- moved in due alone (leased or retried by a sender of an earlier version): due
      -- is the schedule, the owner's queue follows it
      redis.call('ZADD', KEYS[i], due, id)
    else
      redis.call('ZADD', KEYS[1], ARGV[2], id)
      redis.call('ZADD', KEYS[i], ARGV[2], id)
      table.insert(out, owner)
      table.insert(out, job)
      left = left - 1
    end
  end
  refresh(KEYS[3], KEYS[i], owner)
end
return out
"""
)

# KEYS: jobs, due, queue, owner queue, owners; ARGV: id, owner
_DONE = (
    _REFRESH
    + """
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
refresh(KEYS[5], KEYS[4], ARGV[2])
return 1
"""
)

# KEYS: jobs, due, owner queue, owners; ARGV: id, job json or "" (kept), due ms, owner
_RETRY = (
    _REFRESH
    + """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
refresh(KEYS[4], KEYS[3], ARGV[4])
return 1
"""
)

# KEYS: jobs, due, queue, dead, owner queue, owners; ARGV: id, dead entry, max dead, owner
_BURY = (
    _REFRESH
    + """
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('LPUSH', KEYS[4], ARGV[2])
redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[3]) - 1)
refresh(KEYS[6], KEYS[5], ARGV[4])
return 1
"""
)

# KEYS: jobs, due, owner queue, owners; ARGV: owner, then ids
_FORGET = (
    _REFRESH
    + """
for i = 2, #ARGV do
  redis.call('HDEL', KEYS[1], ARGV[i])
  redis.call('ZREM', KEYS[2], ARGV[i])
  redis.call('ZREM', KEYS[3], ARGV[i])
end
refresh(KEYS[4], KEYS[3], ARGV[1])
return 1
"""
)

# KEYS: due, owner queue, owners; ARGV: owner, then id, due ms pairs (jobs in ``due``
# only, scheduled by an earlier version: see ``adopt_unqueued``)
_ADOPT = (
    _REFRESH
    + """
for i = 2, #ARGV, 2 do
  local due = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if due then redis.call('ZADD', KEYS[2], 'NX', due, ARGV[i]) end
end
refresh(KEYS[3], KEYS[2], ARGV[1])
return 1
"""
)


def _every_key(job: Job) -> list[str]:
    """What scheduling or burying a job touches: jobs, due, its endpoint's count and dead
    letters, its owner's queue, the owners."""
    return [
        JOBS,
        DUE,
        queue_key(job.endpoint_id),
        dead_key(job.endpoint_id),
        owner_queue_key(job.queue_owner),
        OWNERS,
    ]


def dead_entry(job: Job, reason: str, failed_at: int) -> str:
    entry = job.stored() | {"reason": reason, "failed_at": failed_at}
    return json.dumps(entry, separators=(",", ":"))


class WebhookStore:
    def __init__(
        self,
        redis: Redis[bytes],
        *,
        max_endpoints_per_owner: int = 10,
        max_queue_per_endpoint: int = 10_000,
        max_dead_per_endpoint: int = 1_000,
        metrics: WebhookMetrics | None = None,
    ) -> None:
        self.redis = redis
        self.metrics = metrics  # counts the endpoint records skipped as unreadable
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
        """The endpoint, None when there is none; ``UnreadableEndpoint`` when its stored
        record cannot be read (the admin API says so rather than answer 500)."""
        raw = await self.redis.hget(ENDPOINTS, endpoint_id)
        if raw is None:
            return None
        endpoint = self._readable(endpoint_id, raw, None)
        if endpoint is None:
            raise UnreadableEndpoint(endpoint_id)
        return endpoint

    async def get_many(self, endpoint_ids: Iterable[str]) -> dict[str, Endpoint | None]:
        """The endpoints among ``endpoint_ids`` that exist, by id (one ``HMGET``); None
        for one whose stored record cannot be read (logged): the sender holds its
        deliveries back rather than stop every owner's, or drop them."""
        ids = sorted(set(endpoint_ids))
        if not ids:
            return {}
        found: dict[str, Endpoint | None] = {}
        for endpoint_id, raw in zip(ids, await self.redis.hmget(ENDPOINTS, ids), strict=True):
            if raw:
                found[endpoint_id] = self._readable(endpoint_id, raw, "delivery")
        return found

    async def all(self) -> dict[str, Endpoint | None]:
        """Every endpoint by id; None for one whose stored record cannot be read (logged),
        as ``get_many``: the admin API lists it as unreadable, never answers 500 for it."""
        raw = await self.redis.hgetall(ENDPOINTS)
        return {
            key.decode(): self._readable(key.decode(), value, None) for key, value in raw.items()
        }

    def _readable(self, endpoint_id: str, raw: bytes, step: str | None) -> Endpoint | None:
        """The stored endpoint, or None (logged; counted under ``step``) when its record
        cannot be read: a field of a newer version (a rolling deploy, a rollback), damage.
        That endpoint's alone: read unguarded, one such record sent every event of its
        owners to the dead-letter topic, their other endpoints' deliveries with it."""
        try:
            return _endpoint(raw)
        except Exception as exc:  # any shape of damage
            log.error("webhook endpoint %s: its stored record cannot be read: %r", endpoint_id, exc)
            if step is not None and self.metrics is not None:
                self.metrics.unreadable_endpoints.labels(step).inc()
            return None

    async def remove(self, endpoint_id: str) -> bool:
        """Forget the endpoint, its scheduled deliveries and its dead letters; one whose
        record cannot be read too (its owner read from what of the record still reads)."""
        raw = await self.redis.hget(ENDPOINTS, endpoint_id)
        if raw is None:
            return False
        owner = _owner_of(raw)
        waiting = [m.decode() for m in await self.redis.zrange(queue_key(endpoint_id), 0, -1)]
        # Whose a record too damaged to name its owner was cannot be told: it leaves every
        # owner's set (rare, an admin's removal), or it counted against its owner's limit
        # for good.
        sets = (
            [owner_key(*owner)]
            if owner is not None
            else [k async for k in self.redis.scan_iter(match=f"{PREFIX}owner:*", count=1000)]
        )
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(ENDPOINTS, endpoint_id)
        for owner_set in sets:
            pipe.srem(owner_set, endpoint_id)
        if waiting:  # in its owner's queue, or its own (adopted while unreadable)
            queues = [endpoint_queue(endpoint_id)]
            if owner is not None:
                queues.insert(0, owner_token(*owner))
            for owner_queue in queues:
                keys = [JOBS, DUE, owner_queue_key(owner_queue), OWNERS]
                pipe.eval(_FORGET, len(keys), *keys, owner_queue, *waiting)
        pipe.delete(queue_key(endpoint_id), dead_key(endpoint_id))
        removed = await pipe.execute()
        # The HDEL's count, not the read above: of removals at once, one removed it.
        return bool(removed[0])

    async def _jobs(self, webhook_ids: Sequence[str]) -> list[bytes | None]:
        if not webhook_ids:
            return []
        return await self.redis.hmget(JOBS, list(webhook_ids))

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
            for endpoint_id, raw in zip(ids, await self.redis.hmget(ENDPOINTS, ids), strict=True):
                endpoint = None if raw is None else self._readable(endpoint_id, raw, "routing")
                if endpoint is not None:  # an unreadable one is skipped, its owner's others not
                    found[endpoint_id] = endpoint
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
            owner = job.queue_owner
            keys = _every_key(job)
            args = [
                job.webhook_id,
                job.encode(),
                due,
                self.max_queue_per_endpoint,
                dead_entry(job, "retry queue full", now),
                self.max_dead_per_endpoint,
                owner,
            ]
            pipe.eval(_ENQUEUE, len(keys), *keys, *args)
        names = {0: "already_scheduled", 1: "scheduled", 2: "queue_full"}
        for result in await pipe.execute():
            counts[names[int(result)]] += 1
        return counts

    async def claim(
        self,
        *,
        now: int,
        lease_until: int,
        limit: int,
        share: int | None = None,
        room: Mapping[str, int] | None = None,
    ) -> list[Job]:
        """Up to ``limit`` due jobs, owner by owner from the one waiting longest: at most
        ``room[owner]`` of an owner named there (none at 0), ``share`` of any other."""
        room = room or {}
        each = limit if share is None else share
        waiting = await self.redis.zrangebyscore(
            OWNERS, "-inf", now, start=0, num=limit + len(room)
        )
        chosen = [(o.decode(), room.get(o.decode(), each)) for o in waiting]
        chosen = [(owner, take) for owner, take in chosen if take > 0]
        if not chosen:
            return []
        keys = [DUE, JOBS, OWNERS, *(owner_queue_key(owner) for owner, _ in chosen)]
        args: list[Any] = [now, lease_until, limit]
        for owner, take in chosen:
            args += [owner, take]
        raw = await self._eval(_CLAIM, keys, args)
        pairs = zip(raw[::2], raw[1::2], strict=True)
        return [Job.decode(job, owner.decode()) for owner, job in pairs]

    async def due_owners(self, now: int, at_most: int) -> list[str]:
        """The owners with a delivery due at ``now`` (``owner_token``s), at most
        ``at_most`` of them, the one waiting longest first."""
        found = await self.redis.zrangebyscore(OWNERS, "-inf", now, start=0, num=at_most)
        return [owner.decode() for owner in found]

    async def defer(self, due: Sequence[tuple[Job, int]]) -> None:
        """Move claimed deliveries' due times (no attempt counted); one gone meanwhile
        (done, removed) stays gone."""
        if not due:
            return
        pipe = self.redis.pipeline(transaction=False)
        for job, at in due:
            owner = job.queue_owner
            keys = [JOBS, DUE, owner_queue_key(owner), OWNERS]
            pipe.eval(_RETRY, len(keys), *keys, job.webhook_id, "", at, owner)
        await pipe.execute()

    async def done(self, job: Job) -> None:
        owner = job.queue_owner
        keys = [JOBS, DUE, queue_key(job.endpoint_id), owner_queue_key(owner), OWNERS]
        await self._eval(_DONE, keys, [job.webhook_id, owner])

    async def retry(self, job: Job, due: int) -> None:
        owner = job.queue_owner
        keys = [JOBS, DUE, owner_queue_key(owner), OWNERS]
        await self._eval(_RETRY, keys, [job.webhook_id, job.encode(), due, owner])

    async def bury(self, job: Job, reason: str, now: int) -> None:
        owner = job.queue_owner
        keys = _every_key(job)
        args = [job.webhook_id, dead_entry(job, reason, now), self.max_dead_per_endpoint, owner]
        await self._eval(_BURY, keys, args)

    async def adopt_unqueued(self, chunk: int = 500) -> int:
        """Put every job scheduled in ``due`` into its owner's queue (those there already
        stay as they are); how many were looked at. A sender of an earlier version
        schedules in ``due`` only (before an upgrade, or during a rollback), and the claim
        reads the owners' queues: a sender runs this at start, before it claims. ``ZSCAN``
        returns every member present from start to end, however the set changes meanwhile
        (claims move scores, removals delete members)."""
        seen = 0
        cursor = 0
        while True:
            cursor, found = await self.redis.zscan(DUE, cursor, count=chunk)
            if found:
                await self._adopt([(member.decode(), int(due)) for member, due in found])
                seen += len(found)
            if cursor == 0:
                return seen

    async def _adopt(self, scheduled: list[tuple[str, int]]) -> None:
        ids = [webhook_id for webhook_id, _ in scheduled]
        endpoint_of: dict[str, str] = {}
        for webhook_id, raw in zip(ids, await self._jobs(ids), strict=True):
            if raw is not None:
                with contextlib.suppress(Exception):  # an unreadable job: claimed and dropped
                    endpoint_of[webhook_id] = str(json.loads(raw)["endpoint_id"])
        endpoints = await self.get_many(endpoint_of.values())
        by_owner: dict[str, list[Any]] = {}
        for webhook_id, due in scheduled:
            endpoint = endpoints.get(endpoint_of.get(webhook_id, ""))
            if endpoint is None:
                # Removed (its deliveries go with it) or its record unreadable: adopted
                # at a later start, into its owner's queue, never one of its own (which
                # would hold it twice once the record reads again).
                continue
            owner = owner_token(endpoint.owner_kind, endpoint.owner_id)
            by_owner.setdefault(owner, []).extend([webhook_id, due])
        pipe = self.redis.pipeline(transaction=False)
        for owner, pairs in by_owner.items():
            keys = [DUE, owner_queue_key(owner), OWNERS]
            pipe.eval(_ADOPT, len(keys), *keys, owner, *pairs)
        await pipe.execute()

    async def dead_letters(self, endpoint_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The newest ``limit`` dead letters; one that does not read (damage) as
        ``{"unreadable": true}`` in its place, not a 500 for the whole list."""
        raw = await self.redis.lrange(dead_key(endpoint_id), 0, max(0, limit - 1))
        out: list[dict[str, Any]] = []
        for entry in raw:
            try:
                letter = json.loads(entry)
            except ValueError:
                letter = None
            out.append(letter if isinstance(letter, dict) else {"unreadable": True})
        return out

    async def pending(self, endpoint_id: str | None = None) -> int:
        if endpoint_id is None:
            return int(await self.redis.zcard(DUE))
        return int(await self.redis.zcard(queue_key(endpoint_id)))


class UnreadableEndpoint(Exception):
    """The endpoint's stored record cannot be read by this version (a field of a newer
    one, damage): logged when read."""


def _owner_of(raw: bytes) -> tuple[OwnerKind, str] | None:
    """The owner a stored record names, read as leniently as it can be (None when even
    that fails): what removing an unreadable endpoint needs."""
    try:
        data = json.loads(raw)
        kind, owner = data["owner_kind"], data["owner_id"]
    except Exception:  # any shape of damage
        return None
    if kind not in ("merchant", "affiliate") or not isinstance(owner, str):
        return None
    return kind, owner


def _endpoint(raw: bytes | str) -> Endpoint:
    data = json.loads(raw)
    data["event_types"] = tuple(data["event_types"])
    return Endpoint(**data)
