"""A seeded workload whose clean outcome does not depend on timing, driven over HTTP with
every request retried until it is acknowledged.

The plan is a pure function of the seed: which visitor clicks which creators' links,
who buys what (order ids from the seed alone), which sales are refunded and which
leads confirmed. The runner plays it against a stack: a visitor's clicks one after
another, each answered 302 before the next; the order only after its last click was
acknowledged (so it follows its clicks, whatever the clocks); refunds and lead
confirmations only once their order's conversion is in the ledger. A request answered
5xx or cut off is sent again, with the same order or refund id; a click sent again
after a lost 302 is a new click, and the order names the one acknowledged.
"""

from __future__ import annotations

import asyncio
import functools
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
from aiokafka.errors import KafkaError

from afflux.cli.demo_client import (
    BROWSER_USER_AGENT,
    dev_merchant_secret,
    stack_client_limits,
)
from afflux.cli.topic_to_end import TopicUnreadable, read_to_end
from afflux.cli.traffic import creator_ids
from afflux.clicks.visitor_cookie import visitor_id_of
from afflux.orders.signing import sign_call
from afflux.shared.events import ConversionAttributed
from afflux.shared.io.clock_source import system_clock
from afflux.shared.topics import CONVERSIONS

WORKLOAD_CAMPAIGNS = Path(__file__).with_name("differential_campaigns.yaml")
SHOP, LEADS = "diff-shop", "diff-leads"
MERCHANT = "merchant-diff"
CURRENCY = "EUR"
COUPONS = {"DIFF01": "creator-01", "DIFF05": "creator-05"}
T = TypeVar("T")


@dataclass(frozen=True)
class PlannedOrder:
    order_id: str
    campaign_id: str
    kind: str  # sale | lead
    amount_minor: int
    new_customer: bool
    coupon: str | None
    winner: str  # the creator whose conversion the clean run books
    refund_minor: int = 0  # a refund after the conversion, when > 0
    confirm: bool = False  # a lead confirmation after the conversion


@dataclass(frozen=True)
class PlannedVisit:
    number: int
    campaign_id: str
    touches: tuple[str, ...]  # creators whose links the visitor clicks, in order
    order: PlannedOrder | None


def plan(seed: int, visitors: int, creators: int = 12) -> list[PlannedVisit]:
    """The whole workload, from the seed alone."""
    rng = random.Random(seed)
    names = creator_ids(creators)
    visits = []
    for n in range(visitors):
        campaign = SHOP if rng.random() < 0.7 else LEADS
        touches = tuple(rng.sample(names, 1 + (rng.random() < 0.3)))
        order: PlannedOrder | None = None
        if rng.random() < 0.75:
            coupon = (
                rng.choice(sorted(COUPONS)) if campaign == SHOP and rng.random() < 0.1 else None
            )
            sale = campaign == SHOP
            amount = rng.randrange(500, 20_000) if sale else 0
            refund = 0
            if sale and rng.random() < 0.25:
                refund = amount if rng.random() < 0.5 else amount // 3
            order = PlannedOrder(
                order_id=f"d{seed}-{n}",
                campaign_id=campaign,
                kind="sale" if sale else "lead",
                amount_minor=amount,
                new_customer=rng.random() < 0.35,
                coupon=coupon,
                # precedence click_id, coupon, cookie: the named (last) click wins
                winner=touches[-1],
                refund_minor=refund,
                confirm=not sale and rng.random() < 0.7,
            )
        visits.append(PlannedVisit(n, campaign, touches, order))
    return visits


class NotAcknowledged(RuntimeError):
    """A request was refused for good (4xx) or not acknowledged before the deadline."""


@dataclass
class Acknowledged:
    """What the stack acknowledged; the ids the topics must hold exactly once."""

    clicks: list[str] = field(default_factory=list)
    orders: list[tuple[str, str]] = field(default_factory=list)  # (campaign, order)
    refunds: list[str] = field(default_factory=list)
    confirmations: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class RequestError:
    at: float  # monotonic
    what: str
    error: str


class Progress:
    """Counts acknowledged requests and runs actions when the count reaches a point:
    faults are timed by progress, never by sleeps. Actions run on threads of their own,
    so the workload goes on while they do."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.acks = 0
        self.ack_times: list[float] = []
        self.errors: list[RequestError] = []
        self._points: list[tuple[int, Callable[[], None]]] = []
        self.threads: list[threading.Thread] = []
        self.failures: list[BaseException] = []

    def at(self, acks: int, action: Callable[[], None]) -> None:
        with self._lock:
            self._points.append((acks, action))

    def acknowledged(self) -> None:
        with self._lock:
            self.acks += 1
            self.ack_times.append(time.monotonic())
            due = [a for n, a in self._points if n <= self.acks]
            self._points = [(n, a) for n, a in self._points if n > self.acks]
        for action in due:
            thread = threading.Thread(target=self._run, args=(action,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def wait_for(self, acks: int, timeout_s: float) -> bool:
        """Block until ``acks`` requests were acknowledged; False after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while self.acks < acks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def failed(self, what: str, error: str) -> None:
        with self._lock:
            self.errors.append(RequestError(time.monotonic(), what, error))

    def _run(self, action: Callable[[], None]) -> None:
        try:
            action()
        except BaseException as exc:  # reported by join(); a fault that fails fails the run
            self.failures.append(exc)

    def join(self, timeout_s: float = 300.0) -> None:
        for thread in list(self.threads):
            thread.join(timeout_s)
        if self.failures:
            raise RuntimeError(f"a fault action failed: {self.failures[0]!r}") from self.failures[0]

    def pending_points(self) -> int:
        with self._lock:
            return len(self._points)


class Retryable(Exception):
    """Not acknowledged, but worth sending again (5xx)."""


@dataclass
class Endpoints:
    clicks: str
    orders: str
    payouts: str
    admin_token: str
    bootstrap: str


class WorkloadRunner:
    def __init__(
        self,
        endpoints: Endpoints,
        progress: Progress,
        *,
        merchant_clock_offset_ms: int = 0,
        concurrency: int = 4,
        request_deadline_s: float = 180.0,
    ) -> None:
        self.endpoints = endpoints
        self.progress = progress
        self.offset_ms = merchant_clock_offset_ms
        self.concurrency = concurrency
        self.deadline_s = request_deadline_s
        self.acked = Acknowledged()
        self.links: dict[tuple[str, str], str] = {}
        self.http = httpx.AsyncClient(timeout=10.0, limits=stack_client_limits(50))

    async def close(self) -> None:
        await self.http.aclose()

    async def until_acknowledged(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        deadline = time.monotonic() + self.deadline_s
        pause = 0.1
        while True:
            try:
                result = await attempt()
            except (httpx.TransportError, Retryable) as exc:
                self.progress.failed(what, f"{type(exc).__name__}: {exc}")
                if time.monotonic() >= deadline:
                    raise NotAcknowledged(f"{what}: not acknowledged in time ({exc})") from exc
                await asyncio.sleep(pause)
                pause = min(1.0, pause * 2)
                continue
            self.progress.acknowledged()
            return result

    async def create_links(self, creators: list[str]) -> None:
        for campaign in (SHOP, LEADS):
            for creator in creators:
                self.links[(campaign, creator)] = await self.until_acknowledged(
                    f"link {campaign}/{creator}", functools.partial(self._link, campaign, creator)
                )

    async def _link(self, campaign: str, creator: str) -> str:
        domain = "shop.example.com" if campaign == SHOP else "quotes.example.com"
        answer = await self.http.post(
            f"{self.endpoints.clicks}/v1/links",
            headers={"Authorization": f"Bearer {self.endpoints.admin_token}"},
            json={
                "affiliate_id": creator,
                "campaign_id": campaign,
                "destination_url": f"https://{domain}/landing",
            },
        )
        _raise_for(answer, f"link {campaign}/{creator}")
        return str(answer.json()["code"])

    async def play(self, visits: list[PlannedVisit]) -> None:
        """Every visit (``concurrency`` at a time), then the refunds and confirmations."""
        gate = asyncio.Semaphore(self.concurrency)

        async def one(visit: PlannedVisit) -> None:
            async with gate:
                await self._visit(visit)

        await asyncio.gather(*(one(v) for v in visits))
        follow_ups = [
            v.order for v in visits if v.order and (v.order.refund_minor or v.order.confirm)
        ]
        await self.wait_for_conversions(follow_ups)

        async def after(order: PlannedOrder) -> None:
            async with gate:
                await self._follow_up(order)

        await asyncio.gather(*(after(o) for o in follow_ups))

    async def _visit(self, visit: PlannedVisit) -> None:
        n = visit.number  # a /64 of its own: click quality counts IPv6 clients by their /64
        address = f"2001:db8:{(n >> 16) & 0xFFFF:x}:{n & 0xFFFF:x}::1"
        visitor: str | None = None
        click_id = ""
        for creator in visit.touches:
            code = self.links[(visit.campaign_id, creator)]
            visitor, click_id = await self.until_acknowledged(
                f"click {visit.number}", functools.partial(self._click, code, visitor, address)
            )
            self.acked.clicks.append(click_id)
        order = visit.order
        if order is None:
            return
        body: dict[str, Any] = {
            "order_id": order.order_id,
            "campaign_id": order.campaign_id,
            "kind": order.kind,
            "amount_minor": order.amount_minor,
            "currency": CURRENCY,
            "new_customer": order.new_customer,
            "occurred_at": system_clock() + self.offset_ms,
            "click_id": click_id,
            # the id in the visitor's sealed cookie, as the merchant's page reads it
            "visitor_id": visitor_id_of(visitor) if visitor else visitor,
        }
        if order.coupon:
            body["coupon_code"] = order.coupon
        await self.until_acknowledged(
            f"order {order.order_id}", lambda: self._signed("/v1/orders", body)
        )
        self.acked.orders.append((order.campaign_id, order.order_id))

    async def _click(self, code: str, visitor: str | None, address: str) -> tuple[str, str]:
        headers = {
            "User-Agent": BROWSER_USER_AGENT,
            "Cookie": f"afx_vid={visitor}" if visitor else "",
            "X-Forwarded-For": address,
        }
        answer = await self.http.get(f"{self.endpoints.clicks}/c/{code}", headers=headers)
        if answer.status_code != 302:
            _raise_for(answer, f"click on {code}")
            raise NotAcknowledged(f"click on {code} answered {answer.status_code}")
        click_id = parse_qs(urlsplit(answer.headers["location"]).query)["afx_click"][0]
        return answer.cookies.get("afx_vid") or visitor or "", click_id

    async def _signed(self, path: str, body: dict[str, Any]) -> None:
        raw = httpx.Request("POST", "http://x", json=body).content
        now_s = (system_clock() + self.offset_ms) // 1000
        answer = await self.http.post(
            f"{self.endpoints.orders}{path}",
            content=raw,
            headers={
                "Content-Type": "application/json",
                "X-Afflux-Merchant": MERCHANT,
                "X-Afflux-Signature": sign_call(
                    "POST", path, raw, dev_merchant_secret(MERCHANT), now_s
                ),
            },
        )
        _raise_for(answer, path)

    async def wait_for_conversions(self, orders: list[PlannedOrder]) -> None:
        """Until each order has a conversion on its topic: a refund or a confirmation sent
        before would race the grace timer, and the outcome with it."""
        waiting = {(o.campaign_id, o.order_id) for o in orders}
        deadline = time.monotonic() + self.deadline_s
        while waiting:
            try:
                events = await read_to_end(self.endpoints.bootstrap, CONVERSIONS.name)
            except (TopicUnreadable, KafkaError):
                events = []
            waiting -= {
                (e.campaign_id, e.order_id) for e in events if isinstance(e, ConversionAttributed)
            }
            if not waiting:
                return
            if time.monotonic() >= deadline:
                raise NotAcknowledged(f"orders never converted: {sorted(waiting)[:5]}")
            await asyncio.sleep(0.5)

    async def _follow_up(self, order: PlannedOrder) -> None:
        now = system_clock() + self.offset_ms
        if order.refund_minor:
            refund_id = f"r-{order.order_id}"
            body: dict[str, Any] = {
                "refund_id": refund_id,
                "order_id": order.order_id,
                "campaign_id": order.campaign_id,
                "occurred_at": now,
                "amount_minor": order.refund_minor,
                "currency": CURRENCY,
            }
            await self.until_acknowledged(
                f"refund {refund_id}", lambda: self._signed("/v1/refunds", body)
            )
            self.acked.refunds.append(refund_id)
        if order.confirm:
            confirm = {"campaign_id": order.campaign_id, "occurred_at": now}
            await self.until_acknowledged(
                f"confirm {order.order_id}",
                lambda: self._signed(f"/v1/leads/{order.order_id}/confirm", confirm),
            )
            self.acked.confirmations.append((order.campaign_id, order.order_id))


def _raise_for(answer: httpx.Response, what: str) -> None:
    if answer.status_code >= 500:
        raise Retryable(f"{what} answered {answer.status_code}")
    if answer.status_code >= 400:
        raise NotAcknowledged(f"{what} answered {answer.status_code}: {answer.text[:200]}")


async def run_workload(
    endpoints: Endpoints,
    visits: list[PlannedVisit],
    progress: Progress,
    *,
    creators: list[str],
    merchant_clock_offset_ms: int = 0,
) -> Acknowledged:
    runner = WorkloadRunner(endpoints, progress, merchant_clock_offset_ms=merchant_clock_offset_ms)
    try:
        await runner.create_links(creators)
        await runner.play(visits)
    finally:
        await runner.close()
    return runner.acked
