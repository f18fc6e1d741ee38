"""An endpoint's DNS lookup counts within the request's timeout, and one owner's names
that never resolve hold at most its share of lookups: the lookup once ran outside the
timeout and held a sender slot for the resolver's own timeouts, past the delivery's
lease, and lookups the attempts gave up on could take every thread."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from afflux.payouts.webhooks.delivery import Deliverer, DeliveryLimits
from afflux.payouts.webhooks.metrics import WebhookMetrics
from afflux.payouts.webhooks.policy import Endpoint
from afflux.payouts.webhooks.redis_store import Job

pytestmark = pytest.mark.unit

HANGING = "hangs.example"  # its name server never answers


class Outcomes:
    """Where the deliverer files each attempt (the store's role; no Redis needed here)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def retry(self, job: Job, due: int) -> None:
        self.calls.append(("retry", job.last_error))

    async def bury(self, job: Job, reason: str, now: int) -> None:
        self.calls.append(("bury", reason))

    async def done(self, job: Job) -> None:
        self.calls.append(("done", ""))

    async def defer(self, due: Sequence[tuple[Job, int]]) -> None:
        self.calls += [("defer", job.webhook_id) for job, _ in due]


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """getaddrinfo that blocks for ``HANGING`` until the test ends, and answers a public
    address for other names; yields the names looked up."""
    release, asked = threading.Event(), []

    def lookup(host: str, port: int, *args: Any) -> list[Any]:
        asked.append(host)
        if host == HANGING:
            release.wait(30)
            raise socket.gaierror("timed out")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))]

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    yield asked
    release.set()


def deliverer(outcomes: Outcomes) -> Deliverer:
    return Deliverer(
        store=outcomes,  # type: ignore[arg-type]
        metrics=WebhookMetrics(CollectorRegistry()),
        limits=DeliveryLimits(timeout_s=0.3, allow_private=False, concurrency=16),
        clock=lambda: 0,
        wake=asyncio.Event(),
    )


def endpoint(owner: str, host: str) -> Endpoint:
    return Endpoint(f"ep-{owner}", "merchant", owner, f"https://{host}/in", ("*",), "s" * 32, 0)


def answering(sender: Deliverer) -> Deliverer:
    """``sender`` whose requests, once their names resolved, are answered 200."""

    async def answered(*args: Any) -> tuple[int, str]:
        return 200, ""

    sender._post = answered  # type: ignore[method-assign]
    return sender


def job(n: int, owner: str) -> Job:
    return Job(f"wh-{n}", f"ep-{owner}", "ConversionAttributed", f"e-{n}", "{}", 0)


def test_a_name_that_never_resolves_is_a_retried_attempt_within_the_timeout(
    resolver: list[str],
) -> None:
    async def scenario() -> tuple[list[tuple[str, str]], float]:
        outcomes = Outcomes()
        started = time.monotonic()
        async with httpx.AsyncClient() as client:
            await deliverer(outcomes)._deliver(client, job(1, "m"), endpoint("m", HANGING))
        return outcomes.calls, time.monotonic() - started

    calls, took = asyncio.run(scenario())
    assert calls == [("retry", "TimeoutException: the endpoint's name did not resolve within 0.3s")]
    assert took < 5


def test_one_owners_hanging_lookups_stop_at_its_share_without_spending_attempts(
    resolver: list[str],
) -> None:
    async def scenario() -> tuple[list[tuple[str, str]], int]:
        outcomes = Outcomes()
        sender = deliverer(outcomes)
        async with httpx.AsyncClient() as client:
            for n in range(6):  # more attempts than the owner's share (16 // 4 = 4)
                await sender._deliver(client, job(n, "slow"), endpoint("slow", HANGING))

            # Another owner's name is still looked up, and its delivery made (answered
            # here, not sent: the check is what is under test).
            async def answered(*args: Any) -> tuple[int, str]:
                return 200, ""

            sender._post = answered  # type: ignore[method-assign]
            await sender._deliver(client, job(9, "fast"), endpoint("fast", "fast.example"))
        return outcomes.calls, sender.lookups[("merchant", "slow")]

    calls, still_running = asyncio.run(scenario())
    assert resolver.count(HANGING) == 4  # the two attempts past the share started none
    assert still_running == 4
    # Past the share, no attempt is spent (the owner's healthy endpoints would lose
    # theirs to a dead name server): due again a moment later.
    assert calls[4:6] == [("defer", "wh-4"), ("defer", "wh-5")]
    assert "fast.example" in resolver
    assert calls[-1] == ("done", "")


def test_owners_whose_name_servers_never_answer_leave_a_thread_for_another_owner(
    resolver: list[str],
) -> None:
    """Four owners whose name server is down (one DNS provider for all four), each at its
    share of lookups, held every thread of the pool: a fifth owner's lookups waited behind
    theirs, and each of its attempts failed on the timeout."""

    async def scenario() -> tuple[list[tuple[str, str]], int]:
        outcomes = Outcomes()
        sender = answering(deliverer(outcomes))
        async with httpx.AsyncClient() as client:
            await asyncio.gather(
                *(
                    sender._deliver(
                        client, job(10 * k + n, f"dead-{k}"), endpoint(f"dead-{k}", HANGING)
                    )
                    for k in range(4)
                    for n in range(4)
                )
            )
            before = len(outcomes.calls)
            for n in range(3):
                await sender._deliver(
                    client, job(100 + n, "fast"), endpoint("fast", "fast.example")
                )
        return outcomes.calls[before:], sum(sender.lookups.values())

    calls, still_running = asyncio.run(scenario())
    assert calls == [("done", "")] * 3
    assert still_running == 16  # the four owners' lookups still hold their threads


def test_many_owners_with_one_stuck_lookup_each_leave_a_thread_for_another_owner(
    resolver: list[str],
) -> None:
    """A quarter more threads for owners with none running held only twenty such owners:
    the twenty-first owner's lookup waited in the pool's queue and its attempt failed."""

    async def scenario() -> list[tuple[str, str]]:
        outcomes = Outcomes()
        sender = answering(deliverer(outcomes))
        async with httpx.AsyncClient() as client:
            for k in range(24):  # one by one: a stuck lookup each, its attempt given up
                await sender._deliver(client, job(k, f"dead-{k}"), endpoint(f"dead-{k}", HANGING))
            before = len(outcomes.calls)
            await sender._deliver(client, job(100, "fast"), endpoint("fast", "fast.example"))
        return outcomes.calls[before:]

    assert asyncio.run(scenario()) == [("done", "")]
