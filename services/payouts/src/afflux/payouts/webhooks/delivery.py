"""The sender's delivery loop: claim due deliveries, sign, POST, then mark each
delivered, scheduled again (exponential backoff, full jitter) or dead-lettered.

A claim moves the delivery's due time a lease ahead (longer than a request may take),
so a sender killed mid-request leaves it to be claimed again: at least once, with the
same ``webhook-id``. Redirects are not followed; the answer is read up to
``max_response_bytes``; the whole request has a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import httpx

from afflux.payouts.webhooks import policy, signing
from afflux.payouts.webhooks.metrics import WebhookMetrics
from afflux.payouts.webhooks.redis_store import Job, WebhookStore, owner_token
from afflux.shared.io.background import stop_if_cancelled
from afflux.shared.io.redis_client import redis_away

log = logging.getLogger(__name__)
IDLE_POLL_S = 0.5  # how often due retries are looked for when nothing wakes the loop
# A claimed delivery is claimed again after twice the request timeout and this margin: a
# request cannot outlast its timeout, so only a sender that died mid-request leaves it.
LEASE_MARGIN_S = 5.0
# One owner (a merchant or a creator, all its endpoints together) has at most a quarter of
# the requests in flight: slow endpoints (each request near the timeout) with a backlog
# otherwise took every slot, and every other owner's deliveries waited at their pace. A
# share per endpoint was not enough: an owner may have 10 endpoints, and four slow ones
# took all 16 slots. And a fixed quarter was not enough either: four slow owners took all
# 16, and each slot a timeout freed went back to their backlogs (claimed oldest first), so
# a fifth owner waited for all of them. So the share is an equal part of the slots among
# the owners with work (``policy.fair_share``): when another owner's delivery is due, the
# slow ones are over their share, and the first slot a timeout frees is its. The claim
# takes no more of an owner than its room and none of an owner at its share
# (WebhookStore.claim, owner queues); what another sender process started meanwhile can
# still leave one over: due again a millisecond later.
OWNER_SHARE = 4
# Threads for owners with no lookup running (a lookup keeps its thread until the resolver
# gives up, up to about 30 s): as many owners' name servers may be dead at once before
# another owner's first lookup waits.
FIRST_LOOKUP_THREADS = 256
DEFER_MS = 1
# A delivery whose endpoint's stored record cannot be read waits this long before it is
# claimed again (logged each time), instead of stopping the sender or being dropped.
UNREADABLE_DEFER_MS = 60_000
LOOKUPS_BUSY_DEFER_MS = 1_000  # a delivery whose owner's lookups are all still running


@dataclass(frozen=True, slots=True)
class DeliveryLimits:
    max_attempts: int = 8
    retry_base_s: float = 30.0
    retry_cap_s: float = 3600.0
    timeout_s: float = 10.0
    max_body_bytes: int = 65_536
    max_response_bytes: int = 4_096
    concurrency: int = 16
    allow_private: bool = False


class Refused(Exception):
    """Not sent, and never will be: a refused address, a body too large."""


class LookupFailed(Exception):
    """The endpoint's name did not resolve (no answer, SERVFAIL, no such name): nothing is
    known of its address yet, so it is a failed attempt, tried again like a refused
    connection. It was ``Refused``, and a resolver restarting or one SERVFAIL
    dead-lettered every delivery that met it at its first attempt."""


class LookupsBusy(Exception):
    """The owner's share of DNS lookups is still running: not tried, due again later."""


Resolver = Callable[[str, int], Awaitable[list[Any]]]  # host, port -> getaddrinfo's list


async def check_destination(
    url: str, *, allow_private: bool, resolve: Resolver | None = None
) -> None:
    """Refuse a URL whose host resolves to an address ``policy.address_refused`` names;
    ``LookupFailed`` when the name does not resolve.

    Checked when an endpoint is registered and again before every request (the name
    may resolve elsewhere by then); see docs/webhooks.md for what this does not cover.
    The name looked up is the ASCII one the client connects to (``policy.check_url``).
    ``resolve``: how the name is looked up (the loop's ``getaddrinfo`` by default).
    """
    try:
        host, port = policy.check_url(url)
    except policy.RefusedUrl as exc:
        raise Refused(str(exc)) from exc
    if allow_private:
        return
    try:
        if resolve is None:
            loop = asyncio.get_running_loop()
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        else:
            infos = await resolve(host, port)
    except ValueError as exc:  # a name IDNA cannot encode (a label too long): never will
        raise Refused(f"{host} cannot be looked up: {exc}") from exc
    except OSError as exc:  # gaierror: for now, maybe (EAI_AGAIN, SERVFAIL, NXDOMAIN)
        raise LookupFailed(f"{host} did not resolve: {exc}") from exc
    for info in infos:
        reason = policy.address_refused(str(info[4][0]), allow_private=False)
        if reason is not None:
            raise Refused(f"{host}: {reason}")


class Deliverer:
    def __init__(
        self,
        *,
        store: WebhookStore,
        metrics: WebhookMetrics,
        limits: DeliveryLimits,
        clock: Callable[[], int],
        wake: asyncio.Event,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.limits = limits
        self.clock = clock
        self.wake = wake
        self.draw = draw
        self.in_flight: set[asyncio.Task[None]] = set()
        self.per_owner = max(1, limits.concurrency // OWNER_SHARE)  # the most one owner has
        self.share = self.per_owner  # what one owner may have now (set at each claim)
        self.busy: Counter[policy.Owner] = Counter()  # owner -> requests in flight
        # The endpoints' DNS lookups run in threads of their own (a lookup the attempt gave
        # up on keeps its thread until the resolver gives up too), at most ``per_owner``
        # at once per owner: one owner's dead name server never takes every thread. A
        # thread is not freed by a timeout, so an equal part would come too late: owners
        # with lookups running share ``concurrency`` threads, and ``FIRST_LOOKUP_THREADS``
        # more serve owners with none (four owners of one dead DNS provider held all 16,
        # and every lookup of a fifth owner waited behind theirs until its attempt failed;
        # with a quarter more, twenty did). Threads are started only when needed.
        self.dns_shared = limits.concurrency
        self.dns_threads = self.dns_shared + FIRST_LOOKUP_THREADS
        self.dns = ThreadPoolExecutor(self.dns_threads, thread_name_prefix="webhook-dns")
        self.lookups: Counter[policy.Owner] = Counter()  # owner -> lookups still running

    async def run(self) -> None:
        lease_ms = int((2 * self.limits.timeout_s + LEASE_MARGIN_S) * 1000)
        async with httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(self.limits.timeout_s),
            limits=httpx.Limits(max_connections=self.limits.concurrency),
            trust_env=False,  # no proxy from the environment unless configured so
        ) as client:
            adopted = False
            try:
                while True:
                    stop_if_cancelled()
                    free = self.limits.concurrency - len(self.in_flight)
                    started = 0
                    if free > 0:
                        try:
                            if not adopted:  # jobs an earlier version scheduled
                                await self.store.adopt_unqueued()
                                adopted = True
                            jobs = await self._claim(free, lease_ms)
                            started = await self._start(client, jobs, free)
                        except Exception as exc:
                            if not redis_away(exc):
                                raise
                            stop_if_cancelled()
                            log.warning("webhooks: Redis unavailable (%s)", exc)
                    if not started:
                        self.wake.clear()
                        # asyncio.timeout, not wait_for: wait_for on 3.11 can swallow a
                        # cancellation that lands as its timeout fires, and never stop.
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(IDLE_POLL_S):
                                await self.wake.wait()
            finally:
                for task in list(self.in_flight):
                    task.cancel()
                self.dns.shutdown(wait=False, cancel_futures=True)

    async def _claim(self, free: int, lease_ms: int) -> list[Job]:
        now = self.clock()
        busy = {owner_token(*owner): n for owner, n in self.busy.items()}
        # Past ``concurrency`` owners with work the share is 1 whoever they are: no more
        # of the due ones need be read to know it.
        due = await self.store.due_owners(now, self.limits.concurrency + len(busy))
        self.share = policy.fair_share(
            self.limits.concurrency, len(busy.keys() | set(due)), most=self.per_owner
        )
        room = {owner: self.share - n for owner, n in busy.items()}
        jobs = await self.store.claim(
            now=now, lease_until=now + lease_ms, limit=free, share=self.share, room=room
        )
        self.metrics.queue_depth.set(await self.store.pending())
        return jobs

    async def _start(self, client: httpx.AsyncClient, jobs: list[Job], free: int) -> int:
        """Start up to ``free`` of the claimed jobs, at most ``share`` in flight per
        owner (``policy.admissions``); the others are due again: now (past the free
        slots), or a moment later (their owner has its share), behind the other owners'
        due deliveries. A job whose endpoint was removed goes with it."""
        found = await self.store.get_many(job.endpoint_id for job in jobs)
        endpoints = {eid: endpoint for eid, endpoint in found.items() if endpoint is not None}
        now = self.clock()
        later: list[tuple[Job, int]] = []
        for job in jobs:
            if job.endpoint_id not in found:
                await self.store.done(job)
            elif job.endpoint_id not in endpoints:  # its record unreadable: held back
                later.append((job, now + UNREADABLE_DEFER_MS))
        live = [job for job in jobs if job.endpoint_id in endpoints]
        owners = [endpoints[job.endpoint_id].owner for job in live]
        admitted = policy.admissions(owners, self.busy, share=self.share, free=free)
        started = 0
        for job, owner, admission in zip(live, owners, admitted, strict=True):
            if admission != "start":
                later.append((job, now + DEFER_MS if admission == "owner_at_share" else now))
                continue
            started += 1
            self.busy[owner] += 1
            task = asyncio.create_task(self._deliver(client, job, endpoints[job.endpoint_id]))
            self.in_flight.add(task)
            task.add_done_callback(functools.partial(self._finished, owner))
        await self.store.defer(later)
        return started

    def _finished(self, owner: policy.Owner, task: asyncio.Task[None]) -> None:
        self.in_flight.discard(task)
        self.busy[owner] -= 1
        if self.busy[owner] <= 0:
            del self.busy[owner]
        self.wake.set()  # a slot is free
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook delivery failed unexpectedly", exc_info=task.exception())

    async def _deliver(
        self, client: httpx.AsyncClient, job: Job, endpoint: policy.Endpoint
    ) -> None:
        attempt = replace(job, attempts=job.attempts + 1)
        try:
            if len(job.body.encode()) > self.limits.max_body_bytes:
                raise Refused(f"body larger than {self.limits.max_body_bytes} bytes")
            await self._checked(endpoint.url, endpoint.owner)
            body = policy.body_to_send(endpoint.owner_kind, job.body, self.limits.max_body_bytes)
            status, answer = await self._post(client, endpoint.url, endpoint.secret, job, body)
        except Refused as exc:
            self.metrics.deliveries.labels("refused").inc()
            # The dead letter's last error says why too (it read "" for a refusal).
            reason = f"refused: {exc}"
            await self.store.bury(replace(attempt, last_error=reason[:500]), reason, self.clock())
            return
        except LookupsBusy:
            # Not an attempt: the owner's other lookups (one dead name server) must not
            # spend the attempts of its healthy endpoints. Due again a moment later.
            await self.store.defer([(job, self.clock() + LOOKUPS_BUSY_DEFER_MS)])
            return
        except Exception as exc:  # any failure to get an answer is one failed attempt
            error = f"{type(exc).__name__}: {exc}"[:500]
        else:
            if policy.delivered(status):
                self.metrics.deliveries.labels("delivered").inc()
                await self.store.done(job)
                return
            error = f"HTTP {status}: {answer}"[:500]
        attempt = replace(attempt, last_error=error)
        if attempt.attempts >= self.limits.max_attempts:
            self.metrics.deliveries.labels("dead_lettered").inc()
            await self.store.bury(attempt, f"{attempt.attempts} attempts failed", self.clock())
            return
        delay = policy.retry_delay_s(
            attempt.attempts,
            base_s=self.limits.retry_base_s,
            cap_s=self.limits.retry_cap_s,
            draw=self.draw(),
        )
        self.metrics.deliveries.labels("retry_scheduled").inc()
        await self.store.retry(attempt, self.clock() + int(delay * 1000))

    async def _checked(self, url: str, owner: policy.Owner) -> None:
        """``check_destination`` within the request's timeout: a name whose DNS never
        answers held a sender slot for the resolver's own timeouts (seconds per attempt
        and server), past the lease, so another process could claim the delivery too.
        A lookup that times out is a failed attempt, retried like any other."""
        try:
            async with asyncio.timeout(self.limits.timeout_s):
                await check_destination(
                    url,
                    allow_private=self.limits.allow_private,
                    resolve=functools.partial(self._resolve, owner),
                )
        except TimeoutError as exc:
            raise httpx.TimeoutException(
                f"the endpoint's name did not resolve within {self.limits.timeout_s}s"
            ) from exc

    async def _resolve(self, owner: policy.Owner, host: str, port: int) -> list[Any]:
        running, total = self.lookups[owner], self.lookups.total()
        if running >= self.per_owner or total >= (self.dns_shared if running else self.dns_threads):
            # An owner with none running finds a thread unless FIRST_LOOKUP_THREADS owners
            # each have one stuck; then it is due again rather than queued behind them.
            raise LookupsBusy(owner)
        loop = asyncio.get_running_loop()
        lookup = self.dns.submit(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
        self.lookups[owner] += 1

        # Counted until the thread ends, not until this attempt stops waiting for it.
        def ended(_: object) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nothing left
                loop.call_soon_threadsafe(self._lookup_ended, owner)

        lookup.add_done_callback(ended)
        return await asyncio.wrap_future(lookup)

    def _lookup_ended(self, owner: policy.Owner) -> None:
        self.lookups[owner] -= 1
        if self.lookups[owner] <= 0:
            del self.lookups[owner]

    async def _post(
        self, client: httpx.AsyncClient, url: str, secret: str, job: Job, text: str
    ) -> tuple[int, str]:
        body = text.encode()
        headers = signing.signed_headers(secret, job.webhook_id, self.clock() // 1000, body)
        headers["user-agent"] = "afflux-webhooks/1"
        # The answer is read as sent, never inflated: a few KB of gzip inflate to megabytes
        # at each read, and only its first bytes are kept (for the dead letter's error).
        headers["accept-encoding"] = "identity"
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.limits.timeout_s):
                async with client.stream("POST", url, content=body, headers=headers) as answer:
                    read = bytearray()
                    async for chunk in answer.aiter_raw():
                        read += chunk[: self.limits.max_response_bytes - len(read)]
                        if len(read) >= self.limits.max_response_bytes:
                            break
                    return answer.status_code, read.decode(errors="replace")
        except TimeoutError as exc:
            raise httpx.TimeoutException(f"no answer within {self.limits.timeout_s}s") from exc
        finally:
            self.metrics.seconds.observe(time.perf_counter() - started)
