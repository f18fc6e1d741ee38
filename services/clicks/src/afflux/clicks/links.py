"""Tracking links: stored in Redis, cached in the process, invalidated through a Redis stream.

Each link is one JSON string under ``<prefix>:link:<code>``. Every change
(create, deactivate) is also appended to the stream ``<prefix>:links:changes``;
each process follows that stream (a blocking XREAD in a background task) and
drops the changed codes from its cache, so the redirect reads Redis only on a
cache miss, and sees a deactivation within about a second. If the follower
loses Redis, it clears the whole cache when it reconnects, since changes may
have been missed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from redis.asyncio import Redis

log = logging.getLogger(__name__)

CODE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_CODE_LENGTH = 64
_STREAM_MAXLEN = 100_000


@dataclass(frozen=True, slots=True)
class Link:
    code: str
    affiliate_id: str
    campaign_id: str
    destination_url: str
    active: bool
    created_at: int

    def public(self, public_url: str) -> dict[str, Any]:
        return {**asdict(self), "url": tracking_url(public_url, self.code)}


def tracking_url(public_url: str, code: str) -> str:
    return f"{public_url}/c/{code}"


def new_code() -> str:
    """Eight URL-safe characters: 48 random bits."""
    return secrets.token_urlsafe(6)


@dataclass(frozen=True, slots=True)
class Target:
    """A link prepared for the redirect: the Location is ``head + click_id + tail``."""

    link: Link
    head: str
    tail: str


def prepare(link: Link) -> Target:
    """Split the destination so that ``afx_click`` is added to its query, before any fragment."""
    url, hash_mark, fragment = link.destination_url.partition("#")
    separator = "&" if "?" in url else "?"
    if url.endswith(("?", "&")):
        separator = ""
    return Target(link, f"{url}{separator}afx_click=", f"{hash_mark}{fragment}")


class LinkStore:
    """Links in Redis."""

    def __init__(self, redis: Redis[bytes], prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self.changes = f"{prefix}:links:changes"

    def _key(self, code: str) -> str:
        return f"{self.prefix}:link:{code}"

    async def get(self, code: str) -> Link | None:
        raw = await self.redis.get(self._key(code))
        if raw is None:
            return None
        return Link(**json.loads(raw))

    async def create(self, link: Link) -> bool:
        """False when the code is taken."""
        created = await self.redis.set(self._key(link.code), json.dumps(asdict(link)), nx=True)
        if created:
            await self._announce(link.code)
        return bool(created)

    async def deactivate(self, code: str) -> Link | None:
        link = await self.get(code)
        if link is None:
            return None
        if link.active:
            link = Link(**{**asdict(link), "active": False})
            await self.redis.set(self._key(code), json.dumps(asdict(link)))
            await self._announce(code)
        return link

    async def _announce(self, code: str) -> None:
        await self.redis.xadd(self.changes, {"code": code}, maxlen=_STREAM_MAXLEN, approximate=True)


class LinkCache:
    """code -> prepared Target (or None for an unknown code), bounded, in this process.

    ``check`` decides whether a stored link may still redirect (for example its
    destination is still on the campaign's allowed domains); a link it refuses is
    cached as unknown.
    """

    def __init__(
        self, store: LinkStore, max_entries: int, check: Callable[[Link], bool] | None = None
    ) -> None:
        self.store = store
        self.max_entries = max_entries
        self.check = check or (lambda _: True)
        self._entries: dict[str, Target | None] = {}

    def cached(self, code: str) -> tuple[bool, Target | None]:
        """(hit, target) without any I/O."""
        if code in self._entries:
            return True, self._entries[code]
        return False, None

    async def load(self, code: str) -> Target | None:
        link = await self.store.get(code)
        target = prepare(link) if link is not None and link.active and self.check(link) else None
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[code] = target
        return target

    def forget(self, code: str) -> None:
        self._entries.pop(code, None)

    def clear(self) -> None:
        self._entries.clear()

    async def follow_changes(self, block_ms: int = 1_000) -> None:
        """Drop changed codes from the cache until cancelled (see the module docstring)."""
        redis, stream = self.store.redis, self.store.changes
        last = "$"
        healthy = True
        while True:
            try:
                if last == "$":
                    newest = await redis.xrevrange(stream, count=1)
                    last = newest[0][0].decode() if newest else "0-0"
                    self.clear()  # anything may have changed before we started following
                replies = await redis.xread({stream: last}, block=block_ms, count=1000)
                if not healthy:
                    healthy = True
                for _, entries in replies or ():
                    for entry_id, fields in entries:
                        last = entry_id.decode()
                        code = fields.get(b"code", b"").decode()
                        self.forget(code)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if healthy:
                    log.warning("link change stream unavailable (%s); retrying", exc)
                healthy = False
                last = "$"
                await asyncio.sleep(1.0)
