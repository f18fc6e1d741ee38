"""The redirect hot path, ``GET``/``HEAD /c/{code}``, answered as raw ASGI before the app.

It answers from the in-process link cache (Redis only on a miss), builds the
``ClickRecorded`` event as a plain dict (the wire contract, checked by the unit
tests against ``afflux.shared.events.ClickRecorded``) and hands it to the
shipper, which never makes the redirect wait on the broker (only on the click log's
group fsync). The clicks app (afflux.clicks.app.ClicksApp) sends these requests here
before FastAPI's middleware and routing; everything else goes on to FastAPI.
"""

from __future__ import annotations

import html
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote_from_bytes

from afflux.clicks.links import MAX_CODE_LENGTH, Link, LinkCache, Target
from afflux.clicks.metrics import NO_CAMPAIGN, PREFETCH, ClicksMetrics
from afflux.clicks.privacy import IpHasher
from afflux.clicks.quality import (
    BotDetector,
    ClickQuality,
    UserAgentInfo,
    fetched_ahead,
    top_level_navigation,
)
from afflux.clicks.shipper import ClickShipper
from afflux.clicks.visitor_cookie import VisitorSeal
from afflux.shared.core.click_flags import BOT
from afflux.shared.core.clock import Clock
from afflux.shared.core.ids import CLICK_ID_SEPARATOR, derived_id
from afflux.shared.core.proxies import joined_lines
from afflux.shared.io.http.client_address import ProxyTrust

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

COOKIE = "afx_vid"
COOKIE_MAX_AGE_S = 365 * 24 * 3600
PREFIX = "/c/"
_CODE = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_CODE_LENGTH}}}")
_MAX_UA = 512
_MAX_REFERRER = 1024
_MAX_PARAM = 256
_MAX_UTM = 10
_SUB_IDS = frozenset(f"sub{n}" for n in range(1, 6))
_QUERY_SAFE = "=&;%+/:,@!$'()*~"  # a query's own syntax kept; anything else percent-encoded

_NO_STORE = (b"cache-control", b"no-store")
_LENGTH_0 = (b"content-length", b"0")
_HTML = (b"content-type", b"text/html; charset=utf-8")


class RandomHex:
    """Random hex digits for click and visitor ids, from ``os.urandom`` read ``size`` bytes
    at a time: a system call per few hundred clicks instead of one per id (and per new
    visitor), the same kernel randomness ``secrets.token_hex`` gives. Each process builds
    its own (in the app's lifespan, after any fork) and uses it from its event loop only.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._pool = b""
        self._at = 0

    def hex(self, nbytes: int) -> str:
        at = self._at
        end = at + nbytes
        if end > len(self._pool):
            self._pool = os.urandom(max(self._size, nbytes))
            at, end = 0, nbytes
        self._at = end
        return self._pool[at:end].hex()


@dataclass
class ClickContext:
    """Everything the redirect needs, built once by the app."""

    cache: LinkCache
    shipper: ClickShipper
    metrics: ClicksMetrics
    bots: BotDetector
    quality: ClickQuality
    ip_hasher: IpHasher
    proxies: ProxyTrust
    clock: Clock
    seal: VisitorSeal
    random: RandomHex = field(default_factory=RandomHex)


def is_redirect(scope: Scope) -> bool:
    """Whether a request is the redirect's: ``GET``/``HEAD /c/...``."""
    return (
        scope["type"] == "http"
        and scope["path"].startswith(PREFIX)
        and scope["method"] in ("GET", "HEAD")
    )


# The headers ``fetched_ahead`` reads, in its arguments' order.
_PURPOSE_HEADERS = (b"sec-purpose", b"purpose", b"x-purpose", b"x-moz")


async def redirect(ctx: ClickContext, scope: Scope, send: Send) -> None:
    started = time.perf_counter()
    code: str = scope["path"][len(PREFIX) :]
    head = scope["method"] == "HEAD"
    target: Target | None = None
    if _CODE.fullmatch(code):
        hit, target = ctx.cache.cached(code)
        if not hit:
            try:
                target = await ctx.cache.load(code)
            except Exception as exc:
                log.warning("cannot load link %r: %r", code, exc)
                # Counted: a visitor sent no redirect is what an operator must see.
                ctx.metrics.click(NO_CAMPAIGN, "unavailable")
                await _unavailable(send)
                ctx.metrics.observe(time.perf_counter() - started)
                return
    if target is None:
        ctx.metrics.click(NO_CAMPAIGN, "not_found")
        await _not_found(send, code, head)
        ctx.metrics.observe(time.perf_counter() - started)
        return

    user_agent = referrer = cookie = forwarded_proto = None
    forwarded_for: list[str] = []  # every line, in order: HTTP joins them into one list
    fetch_mode = fetch_dest = None
    purposes: dict[bytes, str] = {}  # what says the fetch is ahead of a visit
    for name, value in scope["headers"]:
        if name == b"user-agent":
            user_agent = value.decode("latin-1")[:_MAX_UA]
        elif name == b"cookie":
            cookie = value.decode("latin-1")
        elif name == b"referer":
            referrer = value.decode("latin-1")[:_MAX_REFERRER]
        elif name == b"x-forwarded-for":
            forwarded_for.append(value.decode("latin-1"))
        elif name == b"x-forwarded-proto":
            forwarded_proto = value.decode("latin-1")
        elif name == b"sec-fetch-mode":
            fetch_mode = value.decode("latin-1")
        elif name == b"sec-fetch-dest":
            fetch_dest = value.decode("latin-1")
        elif name in _PURPOSE_HEADERS:
            purposes[name] = value.decode("latin-1")
    if not head and purposes and fetched_ahead(*map(purposes.get, _PURPOSE_HEADERS)):
        # No click and no cookie: the browser drops a prefetch answered with an error
        # and fetches the link again when (if) the person clicks (``fetched_ahead``).
        ctx.metrics.click(target.link.campaign_id, PREFETCH)
        await _declined(send, code, scope["query_string"])
        ctx.metrics.observe(time.perf_counter() - started)
        return
    client = scope.get("client")
    peer = client[0] if client else ""
    sealed = cookie_value(cookie) if cookie else None
    # Only a cookie this service sealed names a visitor: the id alone is in every click
    # id, so anyone who saw a shopper's landing URL could otherwise click as the shopper.
    visitor = ctx.seal.visitor_of(sealed) if sealed else None
    new_visitor = visitor is None
    if visitor is None:
        visitor = f"v_{ctx.random.hex(16)}"  # afflux.shared.core.ids.new_visitor_id's form
    link = target.link
    now = ctx.clock()
    agent = ctx.bots.classify(user_agent or "")
    navigation = top_level_navigation(fetch_mode, fetch_dest)
    click_id = f"{visitor}{CLICK_ID_SEPARATOR}{ctx.random.hex(8)}"  # as ids.new_click_id
    ip_hash = ctx.ip_hasher.hash(ctx.proxies.client_ip(peer, joined_lines(forwarded_for)))
    flags = ctx.quality.flags(
        bot=head or agent.is_bot,
        navigation=navigation,
        visitor=visitor,
        creator=link.affiliate_id,
        campaign_id=link.campaign_id,
        ip_hash=ip_hash,
        agent=agent,
        now_ms=now,
    )
    event = click_event(click_id, link, visitor, now, ip_hash, agent, referrer)
    if scope["query_string"]:
        event["sub_ids"], event["utm"] = tracking_params(scope["query_string"])
    if flags:
        set_flags(event, flags)
    # The 302 is the click's acknowledgement: answer only once the click is on disk. When
    # the click log is full the visitor still reaches the destination, without a click id.
    recorded = await ctx.shipper.submit(visitor, event)
    location = f"{target.head}{click_id}{target.tail}" if recorded else target.destination
    headers = [
        (b"location", location.encode("latin-1")),
        _NO_STORE,
        _LENGTH_0,
    ]
    # An embedded request (an image, an iframe) is not the visitor's choice: no cookie.
    if new_visitor and navigation:
        secure = scope.get("scheme") == "https" or (
            forwarded_proto is not None
            and forwarded_proto.strip().lower() == "https"
            and ctx.proxies.trusted(peer)
        )
        headers.append((b"set-cookie", _cookie(ctx.seal.cookie_value(visitor), secure)))
    await send({"type": "http.response.start", "status": 302, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
    outcome = flags[0] if flags else "redirected"
    if flags:
        ctx.metrics.flagged(flags)
    if not recorded:
        outcome = "unrecorded"
    ctx.metrics.click(link.campaign_id, outcome)
    ctx.metrics.observe(time.perf_counter() - started)


def click_event(
    click_id: str,
    link: Link,
    visitor: str,
    now: int,
    ip_hash: str,
    agent: UserAgentInfo,
    referrer: str | None,
) -> dict[str, Any]:
    """A ``ClickRecorded`` as the dict the wire carries (no model validation per click).

    The event id is derived from the click id, so a re-sent click is recognisable.
    The raw user agent is not kept: only its family, major version and bot verdict.
    """
    return {
        "event_id": derived_id("click", click_id),
        "type": "ClickRecorded",
        "schema_version": 1,
        "occurred_at": now,
        "click_id": click_id,
        "link_code": link.code,
        "affiliate_id": link.affiliate_id,
        "campaign_id": link.campaign_id,
        "visitor_id": visitor,
        "ip_hash": ip_hash,
        "user_agent": "",
        "ua_family": agent.family,
        "ua_version": agent.version,
        "referrer": referrer,
        "sub_ids": {},
        "utm": {},
        "is_bot": False,
        "is_duplicate": False,
        "flags": [],
    }


def set_flags(event: dict[str, Any], flags: tuple[str, ...]) -> None:
    """Mark a click flagged; ``is_duplicate`` stands for every reason but bot (compatibility)."""
    event["flags"] = list(flags)
    event["is_bot"] = flags[0] == BOT
    event["is_duplicate"] = len(flags) > 1 or flags[0] != BOT


def _cookie(value: str, secure: bool) -> bytes:
    flags = "; Secure" if secure else ""
    return (
        f"{COOKIE}={value}; Max-Age={COOKIE_MAX_AGE_S}; Path=/; HttpOnly; SameSite=Lax{flags}"
    ).encode()


def cookie_value(cookie: str) -> str | None:
    """The afx_vid cookie's value in a Cookie header, when present."""
    start = cookie.find(f"{COOKIE}=")
    while start > 0 and cookie[start - 1] not in " ;":
        start = cookie.find(f"{COOKIE}=", start + 1)
    if start < 0:
        return None
    return cookie[start + len(COOKIE) + 1 :].split(";", 1)[0].strip().strip('"')


def tracking_params(query: bytes) -> tuple[dict[str, str], dict[str, str]]:
    """sub1..sub5 and utm_* from the request's query (other parameters are ignored)."""
    sub_ids: dict[str, str] = {}
    utm: dict[str, str] = {}
    if not query:
        return sub_ids, utm
    try:
        pairs = parse_qsl(query.decode("utf-8", "replace"), max_num_fields=100)
    except ValueError:
        return sub_ids, utm
    for name, value in pairs:
        if name in _SUB_IDS:
            sub_ids[name] = value[:_MAX_PARAM]
        elif name.startswith("utm_") and len(name) <= 40 and len(utm) < _MAX_UTM:
            utm[name] = value[:_MAX_PARAM]
    return sub_ids, utm


def not_found_page(code: str) -> bytes:
    shown = html.escape(code[: MAX_CODE_LENGTH * 2], quote=True)
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>Link not found</title>'
        "</head><body><h1>Link not found</h1>"
        f"<p>The tracking link <code>{shown}</code> does not exist or is no longer active.</p>"
        "</body></html>"
    ).encode()


async def _not_found(send: Send, code: str, head: bool) -> None:
    body = not_found_page(code)
    headers = [_HTML, _NO_STORE, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 404, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def _declined(send: Send, code: str, query: bytes) -> None:
    body = declined_page(code, query)
    headers = [_HTML, _NO_STORE, (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def declined_page(code: str, query: bytes) -> bytes:
    """The page a declined prefetch gets: should an in-app browser keep it and show it
    when the person taps (rather than dropping it, as browsers drop an error), it sends
    them on to the same link at once, which is then their click."""
    again = PREFIX + code + ("?" + quote_from_bytes(query, safe=_QUERY_SAFE) if query else "")
    href = html.escape(again, quote=True)
    return (
        f'<!doctype html><meta http-equiv="refresh" content="0;url={href}">'
        f'<title>Opening the link</title><p><a href="{href}">Open the link</a></p>'
    ).encode()


async def _unavailable(send: Send) -> None:
    body = b"<!doctype html><title>Unavailable</title><p>Please try again in a moment.</p>"
    headers = [_HTML, _NO_STORE, (b"retry-after", b"1"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})
