"""The measuring half of ``afflux bench latency``: orders sent at a steady rate to a
running stack, each timed from its 202 to its conversion on the topic and to its
postings being readable from the payouts API.

Three kinds of order, all to visitors with a click already recorded:

* ``cookie``: the visitor only; its winner is the cookie's, decided after the grace;
* ``click_id``: names the visitor's click, where click ids outrank cookies: at once;
* ``coupon``: a creator's code, where codes outrank cookies: at once.

A conversion's time is its record's timestamp (stamped by the worker's producer); a
posting is readable at the first answer of ``GET .../orders/{id}/postings`` that lists
one, polled every ``POLL_S`` from the moment the conversion is read.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

import httpx
from aiokafka import AIOKafkaConsumer

from afflux.cli.demo_client import DemoClient
from afflux.shared.core.money import Money
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.events import ConversionAttributed
from afflux.shared.io.kafka import topic_partitions
from afflux.shared.topics import CONVERSIONS
from afflux.shared.wire import UndecodableRecord, decode_record

POLL_S = 0.02
KINDS = ("cookie", "cookie", "click_id", "coupon")  # half wait for the grace, half do not
AT_ONCE = frozenset({"click_id", "coupon"})


def now_ms() -> float:
    return time.time() * 1000


@dataclass
class Visitor:
    visitor_id: str
    click_id: str
    creator: str


@dataclass
class Timed:
    """One order: what should win it and when each step was seen (wall-clock ms)."""

    order_id: str
    kind: str
    expect: tuple[str, str]  # creator, rule
    polled: bool  # its postings are polled (a sample: polling costs the stack too)
    accepted_ms: float | None = None
    converted_ms: float | None = None
    got: tuple[str, str] | None = None
    readable_ms: float | None = None


@dataclass
class Run:
    """Every order sent, by id; the ones answered other than 202."""

    orders: dict[str, Timed] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    pollers: set[asyncio.Task[None]] = field(default_factory=set)


class Bench:
    def __init__(
        self, client: DemoClient, terms: CampaignTerms, bootstrap: str, admin_token: str
    ) -> None:
        self.client = client
        self.terms = terms
        self.bootstrap = bootstrap
        self.admin = {"Authorization": f"Bearer {admin_token}"}
        self.visitors: list[Visitor] = []
        self.run = Run()
        self.code, self.code_owner = next(iter(sorted(terms.coupons.items())))
        self.poll_http = httpx.AsyncClient(timeout=10.0, limits=httpx.Limits(max_connections=32))

    async def record_clicks(self, creators: list[str], visitors: int) -> None:
        """One click per visitor, on a link of one of ``creators``."""
        links = {c: await self.client.create_link(self.terms, c) for c in creators}
        rng = random.Random(2026)
        gate = asyncio.Semaphore(16)

        async def one(n: int) -> None:
            creator = creators[n % len(creators)]
            async with gate:
                visitor, click_id = await self.client.click(links[creator], None)
            self.visitors.append(Visitor(visitor, click_id, creator))

        await asyncio.gather(*(one(n) for n in range(visitors)))
        rng.shuffle(self.visitors)

    def new_order(self, n: int, tag: str, polled: bool, kind: str | None = None) -> Timed:
        kind = kind or KINDS[n % len(KINDS)]
        visitor = self.visitors[n % len(self.visitors)]
        expect = {
            "cookie": (visitor.creator, "cookie"),
            "click_id": (visitor.creator, "click_id"),
            "coupon": (self.code_owner, "coupon"),
        }[kind]
        timed = Timed(f"lat-{tag}-{n}", kind, expect, polled)
        self.run.orders[timed.order_id] = timed
        return timed

    async def send(self, timed: Timed, n: int) -> None:
        visitor = self.visitors[n % len(self.visitors)]
        try:
            await self.client.place_order(
                self.terms,
                order_id=timed.order_id,
                kind="sale",
                amount=Money(5_000 + n % 5_000, self.terms.currency),
                visitor_id=visitor.visitor_id,
                click_id=visitor.click_id if timed.kind == "click_id" else None,
                coupon=self.code if timed.kind == "coupon" else None,
            )
        except (RuntimeError, httpx.HTTPError) as exc:
            self.run.refused.append(f"{timed.order_id}: {exc}")
            return
        timed.accepted_ms = now_ms()

    async def capacity(self, seconds: float, concurrency: int) -> float:
        """Orders/s answered 202 with ``concurrency`` orders in flight and no pause."""
        deadline = time.monotonic() + seconds
        counter = iter(range(10**9))
        accepted = 0

        async def worker() -> None:
            nonlocal accepted
            while time.monotonic() < deadline:
                n = next(counter)
                timed = self.new_order(n, "probe", polled=False, kind="cookie")
                await self.send(timed, n)
                accepted += timed.accepted_ms is not None

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return accepted / (time.monotonic() - started)

    async def steady(self, rate: float, seconds: float, poll_every: int) -> None:
        """Orders at ``rate``/s for ``seconds`` on a fixed schedule (open loop: a slow
        answer does not delay the next order); every ``poll_every``-th group of the four
        kinds has its postings polled."""
        start = time.monotonic()
        tasks: set[asyncio.Task[None]] = set()
        n = 0
        while (due := start + n / rate) < start + seconds:
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            polled = (n // len(KINDS)) % poll_every == 0
            task = asyncio.create_task(self.send(self.new_order(n, "run", polled), n))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
        await asyncio.gather(*tasks)

    async def watch(self, ready: asyncio.Event, stop: asyncio.Event) -> None:
        """Read conversions from the topic's end until ``stop``; start polling the
        postings of a sampled order once its conversion is read."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=20,
        )
        await consumer.start()
        try:
            parts = await topic_partitions(consumer, CONVERSIONS.name)
            consumer.assign(parts)
            await consumer.seek_to_end(*parts)
            for tp in parts:
                await consumer.position(tp)
            ready.set()
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=50, max_records=10_000)
                for records in batches.values():
                    for record in records:
                        self._converted(record.value, record.timestamp)
        finally:
            await consumer.stop()

    def _converted(self, value: bytes | None, timestamp: int) -> None:
        try:
            events = decode_record(value)
        except UndecodableRecord:
            return
        for event in events:
            if not isinstance(event, ConversionAttributed):
                continue
            timed = self.run.orders.get(event.order_id)
            if timed is None or timed.converted_ms is not None:
                continue
            timed.converted_ms, timed.got = float(timestamp), (event.affiliate_id, event.reason)
            if timed.polled:
                task = asyncio.create_task(self._until_readable(timed, event.affiliate_id))
                self.run.pollers.add(task)
                task.add_done_callback(self.run.pollers.discard)

    async def _until_readable(self, timed: Timed, creator: str, timeout_s: float = 60) -> None:
        url = (
            f"{self.client.payouts_url}/v1/campaigns/{self.terms.campaign_id}"
            f"/orders/{timed.order_id}/postings"
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                answer = await self.poll_http.get(
                    url, params={"affiliate_id": creator}, headers=self.admin
                )
                if answer.status_code == 200 and answer.json()["postings"]:
                    timed.readable_ms = now_ms()
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(POLL_S)

    async def settled(self, tag: str, timeout_s: float) -> None:
        """Wait until every accepted order tagged ``tag`` has its conversion (and a sampled
        one its postings), or the time is up."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            waiting = [
                t
                for t in self.run.orders.values()
                if f"-{tag}-" in t.order_id
                and t.accepted_ms is not None
                and (t.converted_ms is None or (t.polled and t.readable_ms is None))
            ]
            if not waiting:
                return
            await asyncio.sleep(0.2)

    async def close(self) -> None:
        for task in list(self.run.pollers):
            task.cancel()
        await self.poll_http.aclose()
