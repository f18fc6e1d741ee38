"""HTTP client the demo (and end-to-end checks) use to talk to a running stack."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from afflux.clicks.visitor_cookie import visitor_id_of
from afflux.shared.core.money import Money
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.io.clock_source import system_clock

BOT_USER_AGENT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
BROWSER_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36"
)


def dev_merchant_secret(merchant_id: str) -> str:
    """The development secret the orders service accepts when none is configured."""
    return f"dev-secret-{merchant_id}"


def stack_client_limits(max_connections: int) -> httpx.Limits:
    """Connection limits for a client of the stack's own servers.

    A connection idle for as long as the server's keep-alive (5 s by default, the same as
    httpx's own expiry) is closed by the server just as the client may send on it again:
    the request fails with a ReadError though the server was well (it ended a demo). Idle
    connections are dropped here before the shortest keep-alive a server may be set to
    (``AFFLUX_HTTP_KEEP_ALIVE_SECONDS`` is at least 1)."""
    return httpx.Limits(max_connections=max_connections, keepalive_expiry=0.5)


# What a click is sent again after: no answer can have been read (see ``_click_once``).
_NO_ANSWER_READ = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadError,
    httpx.RemoteProtocolError,
)

# Visitor address numbers (``DemoClient._address``), shared by every client of the process.
_ADDRESS_NUMBERS = itertools.count()


@dataclass(frozen=True)
class CreatorRow:
    affiliate_id: str
    currency: str
    clicks: int
    conversions: int
    revenue_minor: int
    commission_minor: int
    epc_minor: int


class DemoClient:
    def __init__(
        self,
        clicks_url: str,
        orders_url: str,
        payouts_url: str,
        admin_token: str,
        *,
        retry_for_s: float = 8.0,
        merchant_clock_offset_ms: int = 0,
    ) -> None:
        """``merchant_clock_offset_ms``: how far the merchant's clock is off ours (negative:
        slow); it moves the signature timestamps and the event times the merchant sends."""
        self.clicks_url = clicks_url
        self.orders_url = orders_url
        self.payouts_url = payouts_url
        self.admin = {"Authorization": f"Bearer {admin_token}"}
        self.retry_for_s = retry_for_s
        self.merchant_clock_offset_ms = merchant_clock_offset_ms
        self.http = httpx.AsyncClient(timeout=30.0, limits=stack_client_limits(100))
        # Every simulated visitor comes from an address of its own (X-Forwarded-For, which
        # the stack trusts from loopback): the clicks service flags many clicks from one
        # address and browser as no person's (ip_duplicate, rate).
        self._addresses: dict[str, str] = {}

    def _address(self, visitor_id: str | None) -> str:
        known = self._addresses.get(visitor_id) if visitor_id else None
        if known is not None:
            return known
        # One numbering for every client of the process: a second client on the same stack
        # (a fault test's next load, another case of a test) must not send its visitors
        # from the first one's addresses, which click quality would take for the same
        # people clicking the same creators' links again within the hour.
        n = next(_ADDRESS_NUMBERS)
        # Documentation range, a /64 of its own per visitor: click quality counts an IPv6
        # client by its /64, so addresses of one /64 would be one client.
        return f"2001:db8:{(n >> 16) & 0xFFFF:x}:{n & 0xFFFF:x}::1"

    def merchant_now(self) -> int:
        """The time by the merchant's clock, in UTC milliseconds."""
        return system_clock() + self.merchant_clock_offset_ms

    async def __aenter__(self) -> DemoClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.http.aclose()

    async def create_link(self, terms: CampaignTerms, affiliate_id: str) -> str:
        domain = terms.allowed_domains[0] if terms.allowed_domains else "example.com"
        body = {
            "affiliate_id": affiliate_id,
            "campaign_id": terms.campaign_id,
            "destination_url": f"https://{domain}/landing?ref=afflux",
        }
        # A 503 while the broker comes back (a link is answered once the broker has it)
        # is retried as the orders calls are: it ended a fault test's load before it began.
        response = await self._retrying(
            lambda: self.http.post(f"{self.clicks_url}/v1/links", headers=self.admin, json=body)
        )
        response.raise_for_status()
        return str(response.json()["code"])

    async def click(
        self, code: str, visitor_id: str | None, *, bot: bool = False
    ) -> tuple[str, str]:
        """Follow a tracking link once; return (the visitor's cookie, click_id) from the
        redirect: the cookie (its visitor id and the seal, ``afflux.clicks.visitor_cookie``)
        is what a browser sends on its next click, and what ``place_order`` takes."""
        # Always send a Cookie header, empty for a new visitor: otherwise the client's
        # cookie jar would hand the last visitor's afx_vid to the next one.
        address = self._address(visitor_id)
        headers = {
            "User-Agent": BOT_USER_AGENT if bot else BROWSER_USER_AGENT,
            "Cookie": f"afx_vid={visitor_id}" if visitor_id else "",
            "X-Forwarded-For": address,
        }
        response = await self._click_once(f"{self.clicks_url}/c/{code}", headers)
        if response.status_code != 302:
            raise RuntimeError(f"redirect for {code} answered {response.status_code}")
        query = parse_qs(urlsplit(response.headers["location"]).query)
        click_id = query["afx_click"][0]
        visitor = response.cookies.get("afx_vid") or visitor_id or ""
        self._addresses.setdefault(visitor, address)
        return visitor, click_id

    async def _click_once(self, url: str, headers: dict[str, str]) -> httpx.Response:
        """The redirect, sent again (``_retrying``) when no answer came: no connection, a
        503 (answered before recording), or a connection reset before any answer was read
        (seen on a loaded two-core machine, the server well); a read that timed out is
        not. After a reset the click may be on the topic: the visitor then clicked twice,
        as a person does whose page did not load; the checks count what the topic holds,
        and every redirect answered still has its one click event."""
        return await self._retrying(
            lambda: self.http.get(url, headers=headers), retry_on=_NO_ANSWER_READ
        )

    async def _signed(
        self, method: str, path: str, merchant_id: str, body: dict[str, Any]
    ) -> httpx.Response:
        from afflux.orders.signing import sign_call

        raw = json.dumps(body, separators=(",", ":")).encode()
        secret = dev_merchant_secret(merchant_id)

        # Signed anew for each attempt: the signature's time is how far the merchant's
        # clock is off ours, and sent with the first one, a retry placed its order as much
        # later as it came.
        def send() -> Awaitable[httpx.Response]:
            signature = sign_call(method, path, raw, secret, self.merchant_now() // 1000)
            headers = {
                "Content-Type": "application/json",
                "X-Afflux-Merchant": merchant_id,
                "X-Afflux-Signature": signature,
            }
            return self.http.request(
                method, f"{self.orders_url}{path}", content=raw, headers=headers
            )

        return await self._retrying(send)

    async def _retrying(
        self,
        send: Callable[[], Awaitable[httpx.Response]],
        retry_on: tuple[type[Exception], ...] = (httpx.TransportError,),
    ) -> httpx.Response:
        """``send()`` again while it answers 503, "not now" (broker unreachable, terms still
        loading), or raises one of ``retry_on`` (by default any transport error: cannot
        connect), for up to ``retry_for_s``; then its last answer."""
        deadline = time.monotonic() + self.retry_for_s
        pause = 0.25
        while True:
            try:
                response = await send()
                if response.status_code != 503 or time.monotonic() >= deadline:
                    return response
            except retry_on:
                if time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(2.0, pause * 2)

    async def place_order(
        self,
        terms: CampaignTerms,
        *,
        order_id: str,
        kind: str,
        amount: Money,
        action: str | None = None,
        visitor_id: str | None = None,
        click_id: str | None = None,
        coupon: str | None = None,
        new_customer: bool = False,
        occurred_at: int | None = None,
        items: Sequence[dict[str, Any]] = (),
        non_commissionable_minor: int = 0,
        survey: dict[str, str] | None = None,
    ) -> httpx.Response:
        """``survey``: the buyer's survey answer given with the order (``affiliate_id``
        or ``handle``)."""
        body = self._order_body(
            terms, order_id, kind, amount, action, visitor_id, click_id, coupon, new_customer
        )
        body["occurred_at"] = occurred_at if occurred_at is not None else self.merchant_now()
        if items:
            body["items"] = list(items)
        if survey:
            body["survey"] = survey
        if non_commissionable_minor:
            body["non_commissionable_minor"] = non_commissionable_minor
            body["non_commissionable_reason"] = "shipping"
        response = await self._signed("POST", "/v1/orders", terms.merchant_id, body)
        if response.status_code not in (200, 202):
            raise RuntimeError(f"order {order_id} answered {response.status_code}: {response.text}")
        return response

    async def backfill_order(
        self,
        terms: CampaignTerms,
        *,
        order_id: str,
        occurred_at: int,
        kind: str,
        amount: Money,
        visitor_id: str | None = None,
        click_id: str | None = None,
        coupon: str | None = None,
    ) -> None:
        """An order sent by an operator through the admin backfill: kept at ``occurred_at``."""
        body = self._order_body(
            terms, order_id, kind, amount, None, visitor_id, click_id, coupon, False
        )
        body["occurred_at"] = occurred_at
        # Sent twice it is one order (``duplicate``): retried as the signed calls are.
        response = await self._retrying(
            lambda: self.http.post(
                f"{self.orders_url}/v1/admin/backfill/orders",
                headers=self.admin,
                json={"orders": [body]},
            )
        )
        response.raise_for_status()
        [result] = response.json()["results"]
        if result["status"] not in ("accepted", "duplicate"):
            raise RuntimeError(f"backfill of {order_id}: {result}")

    @staticmethod
    def _order_body(
        terms: CampaignTerms,
        order_id: str,
        kind: str,
        amount: Money,
        action: str | None,
        visitor_id: str | None,
        click_id: str | None,
        coupon: str | None,
        new_customer: bool,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "order_id": order_id,
            "campaign_id": terms.campaign_id,
            "kind": kind,
            "amount_minor": amount.amount_minor,
            "currency": amount.currency,
            "new_customer": new_customer,
        }
        for name, value in (
            ("action", action),
            # what ``click`` hands back is the visitor's sealed cookie; the merchant's page
            # sends the id in it, as it reads it from the click id
            ("visitor_id", visitor_id_of(visitor_id) if visitor_id else None),
            ("click_id", click_id),
            ("coupon_code", coupon),
        ):
            if value:
                body[name] = value
        return body

    async def confirm_lead(self, terms: CampaignTerms, order_id: str) -> None:
        body = {"campaign_id": terms.campaign_id, "occurred_at": self.merchant_now()}
        response = await self._signed(
            "POST", f"/v1/leads/{order_id}/confirm", terms.merchant_id, body
        )
        if response.status_code not in (200, 202):
            raise RuntimeError(
                f"confirm {order_id} answered {response.status_code}: {response.text}"
            )

    async def refund(
        self,
        terms: CampaignTerms,
        *,
        order_id: str,
        refund_id: str,
        amount: int,
        items: Sequence[dict[str, Any]] = (),
    ) -> None:
        body: dict[str, Any] = {
            "refund_id": refund_id,
            "order_id": order_id,
            "campaign_id": terms.campaign_id,
            "occurred_at": self.merchant_now(),
            "amount_minor": amount,
            "currency": terms.currency,
        }
        if items:
            body["items"] = list(items)
        response = await self._signed("POST", "/v1/refunds", terms.merchant_id, body)
        if response.status_code not in (200, 202):
            raise RuntimeError(
                f"refund {refund_id} answered {response.status_code}: {response.text}"
            )

    async def renew(
        self, terms: CampaignTerms, *, first_order_id: str, number: int, amount: int
    ) -> None:
        """The ``number``-th renewal of the subscription first bought in ``first_order_id``."""
        body = {
            "order_id": first_order_id,
            "renewal_number": number,
            "campaign_id": terms.campaign_id,
            "occurred_at": self.merchant_now(),
            "amount_minor": amount,
            "currency": terms.currency,
        }
        response = await self._signed("POST", "/v1/renewals", terms.merchant_id, body)
        if response.status_code not in (200, 202):
            raise RuntimeError(
                f"renewal {number} of {first_order_id} answered {response.status_code}:"
                f" {response.text}"
            )

    async def answer_survey(
        self, terms: CampaignTerms, order_id: str, answer: dict[str, str]
    ) -> None:
        """``POST /v1/orders/{order_id}/survey``: a survey answer given after the order."""
        body = {"campaign_id": terms.campaign_id, **answer}
        response = await self._signed(
            "POST", f"/v1/orders/{order_id}/survey", terms.merchant_id, body
        )
        if response.status_code not in (200, 202):
            raise RuntimeError(
                f"survey of {order_id} answered {response.status_code}: {response.text}"
            )

    async def _admin_post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        """POST to the payouts service as admin; 503 ("not now") and no connection (the
        service restarting) are retried for up to ``retry_for_s``: the routes derive event
        ids from the request, so a request sent twice is one event."""
        deadline = time.monotonic() + self.retry_for_s
        pause = 0.25
        while True:
            try:
                response = await self.http.post(
                    f"{self.payouts_url}{path}", json=body, headers=self.admin
                )
                if response.status_code != 503 or time.monotonic() >= deadline:
                    return response
            except httpx.TransportError:
                if time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(2.0, pause * 2)

    async def publish_content(self, content: dict[str, Any]) -> None:
        """``POST /v1/content``: a creator's publication (a live stream's end: again)."""
        response = await self._admin_post("/v1/content", content)
        if response.status_code != 202:
            raise RuntimeError(
                f"content {content.get('content_id')} answered {response.status_code}:"
                f" {response.text}"
            )

    async def post_stats(self, platform: str, content_id: str, stats: dict[str, int]) -> None:
        """``POST /v1/content/{platform}/{content_id}/stats``: a cumulative snapshot."""
        response = await self._admin_post(f"/v1/content/{platform}/{content_id}/stats", stats)
        if response.status_code != 202:
            raise RuntimeError(
                f"stats of {platform}:{content_id} answered {response.status_code}: {response.text}"
            )

    async def release_content(self, platform: str, content_id: str, note: str) -> None:
        """``POST /v1/content/{platform}/{content_id}/release``: pay a held content."""
        response = await self._admin_post(
            f"/v1/content/{platform}/{content_id}/release", {"note": note}
        )
        if response.status_code != 202:
            raise RuntimeError(
                f"release of {platform}:{content_id} answered {response.status_code}:"
                f" {response.text}"
            )

    async def campaign_kpis(self, campaign_id: str) -> dict[str, Any]:
        response = await self._retrying(
            lambda: self.http.get(
                f"{self.payouts_url}/v1/kpis/campaigns/{campaign_id}", headers=self.admin
            )
        )
        response.raise_for_status()
        found: dict[str, Any] = response.json()
        return found

    async def campaign_contents(self, campaign_id: str) -> list[dict[str, Any]]:
        response = await self._retrying(
            lambda: self.http.get(
                f"{self.payouts_url}/v1/kpis/campaigns/{campaign_id}/contents",
                headers=self.admin,
            )
        )
        response.raise_for_status()
        rows: list[dict[str, Any]] = response.json()["contents"]
        return rows

    async def creator_rows(self) -> list[CreatorRow]:
        response = await self._retrying(
            lambda: self.http.get(f"{self.payouts_url}/v1/kpis/creators", headers=self.admin)
        )
        response.raise_for_status()
        return [
            CreatorRow(
                affiliate_id=item["affiliate_id"],
                currency=item["currency"],
                clicks=int(item["clicks"]),
                conversions=int(item["conversions"]),
                revenue_minor=int(item["revenue_minor"]),
                commission_minor=int(item["commission_minor"]),
                epc_minor=int(item["epc_minor"]),
            )
            for item in response.json()["creators"]
        ]

    async def settled_rows(
        self, min_wait_s: float, quiet_s: float = 3.0, limit_s: float = 60.0
    ) -> list[CreatorRow]:
        """Poll until the totals stop changing for ``quiet_s`` (after ``min_wait_s``)."""
        await asyncio.sleep(min_wait_s)
        deadline = time.monotonic() + limit_s
        rows = await self.creator_rows()
        stable_since = time.monotonic()
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            fresh = await self.creator_rows()
            if fresh != rows:
                rows, stable_since = fresh, time.monotonic()
            elif time.monotonic() - stable_since >= quiet_s:
                break
        return rows
