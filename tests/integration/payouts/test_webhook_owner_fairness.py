"""Slow owners leave a slot for another owner's delivery, however many they are.

Each owner had a fixed quarter of the 16 request slots, and due deliveries are claimed
owner by owner, the one waiting longest first: four owners whose endpoints accept and
never answer, each with a backlog, held all 16 slots, and each slot a timeout freed went
back to their backlogs, older than any new delivery. Another owner's delivery waited for
every delivery of theirs scheduled before it (40 each: five rounds of timeouts). Timed by
progress: the slow owners' requests accepted when the other owner's delivery arrives.
Real Redis, store and sender; the endpoints listen on loopback (development rules).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from afflux.payouts.webhooks.delivery import Deliverer, DeliveryLimits
from afflux.payouts.webhooks.metrics import WebhookMetrics
from afflux.payouts.webhooks.policy import Endpoint
from afflux.payouts.webhooks.redis_store import Job, WebhookStore, owner_token
from afflux.shared.io.clock_source import system_clock

pytestmark = pytest.mark.integration

SLOTS = 16
TIMEOUT_S = 2.0
BACKLOG = 40  # per slow owner


class Silent:
    """A listener that accepts every connection and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/in"

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def silent() -> Iterator[Silent]:
    listener = Silent()
    yield listener
    listener.close()


@pytest.fixture
def fast(silent: Silent) -> Iterator[tuple[str, dict[str, int]]]:
    """A receiver answering 204 at once; yields its URL and, per webhook id arrived, how
    many connections the silent listener had accepted by then."""
    arrived: dict[str, int] = {}

    class Answer(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            arrived[self.headers["webhook-id"]] = len(silent.held)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/in", arrived
    server.shutdown()
    server.server_close()


def job(endpoint: Endpoint, n: int, now: int) -> Job:
    body = json.dumps({"type": "conversion.attributed", "timestamp": "t", "data": {}})
    owner = owner_token(endpoint.owner_kind, endpoint.owner_id)
    webhook_id = f"wh-{endpoint.owner_id}-{n}"
    return Job(
        webhook_id, endpoint.endpoint_id, "conversion.attributed", f"ev-{n}", body, now, owner=owner
    )


@pytest.mark.parametrize("slow_owners", [4, 8])
async def test_another_owners_delivery_goes_within_one_timeout_of_the_slow_owners(
    empty_redis: Redis[bytes],
    silent: Silent,
    fast: tuple[str, dict[str, int]],
    slow_owners: int,
) -> None:
    fast_url, arrived = fast
    store = WebhookStore(empty_redis)

    def endpoint(owner: str, url: str) -> Endpoint:
        return Endpoint(
            f"ep-{owner}", "merchant", owner, url, ("conversion.attributed",), "s" * 32, 0
        )

    slow = [endpoint(f"slow-{k}", silent.url) for k in range(slow_owners)]
    other = endpoint("other", fast_url)
    for each in [*slow, other]:
        await store.add(each)
    now = system_clock()
    await store.enqueue([(job(e, n, now), now) for e in slow for n in range(BACKLOG)], now=now)
    limits = DeliveryLimits(
        timeout_s=TIMEOUT_S, concurrency=SLOTS, allow_private=True, retry_base_s=30, retry_cap_s=60
    )
    sender = Deliverer(
        store=store,
        metrics=WebhookMetrics(CollectorRegistry()),
        limits=limits,
        clock=system_clock,
        wake=asyncio.Event(),
    )
    task = asyncio.create_task(sender.run())
    loop = asyncio.get_running_loop()
    try:
        deadline = loop.time() + 30
        while len(silent.held) < SLOTS:  # the slow owners hold every slot
            assert loop.time() < deadline, f"{len(silent.held)} slow requests started"
            await asyncio.sleep(0.02)
        assert len(silent.held) == SLOTS

        now = system_clock()
        await store.enqueue([(job(other, 0, now), now)], now=now)
        sender.wake.set()
        started = loop.time()
        deadline = started + 60
        # Progress, not time: it must arrive before the slow owners' second round of
        # requests is under way (before the fix: after every one of their 40 each).
        while "wh-other-0" not in arrived and len(silent.held) <= 2 * SLOTS:
            assert loop.time() < deadline, "the other owner's delivery never arrived"
            await asyncio.sleep(0.02)
        waited = loop.time() - started
        assert "wh-other-0" in arrived, (
            f"{len(silent.held)} slow requests started and the other owner's delivery not "
            f"sent ({waited:.1f} s)"
        )
        assert arrived["wh-other-0"] <= 2 * SLOTS, f"after {arrived['wh-other-0']} slow requests"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
