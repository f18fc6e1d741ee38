"""Tracking links: stored in Redis, cached in the process, invalidated through a Redis stream.

Each link is one JSON string under ``<prefix>:link:<code>``. Every change
(create, deactivate) is first published to the compacted ``links`` topic
(afflux.clicks.link_log), the durable copy, then written to Redis and
appended to the stream ``<prefix>:links:changes``; each process follows that
stream (a blocking XREAD in a background task) and drops the changed codes
from its cache, so the redirect reads Redis only on a cache miss, and sees a
deactivation within about a second. If the follower loses Redis, it clears
the whole cache when it reconnects, since changes may have been missed.

Redis is a rebuildable view of the topic. The key ``<prefix>:links:complete``
is set once Redis holds every link on the topic; a Redis that lost its data
(restarted empty, flushed) lacks it. A lookup reads the key and the link in one
transaction, so "no such link" is only believed while the key is there;
otherwise the process restores the links from the topic first (and the
follower checks the key every second, so an idle process notices too).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any

from redis.asyncio import Redis

from afflux.clicks.destinations import CLICK_PARAM

log = logging.getLogger(__name__)

CODE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_CODE_LENGTH = 64
_STREAM_MAXLEN = 100_000
# A redirect that misses the cache while links are being restored waits this long, then 503.
RESTORE_WAIT_S = 5.0


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
    return Target(link, f"{url}{separator}{CLICK_PARAM}=", f"{hash_mark}{fragment}")


class LinkNotPublished(RuntimeError):
    """The broker did not acknowledge a link change: nothing was changed."""


Publish = Callable[[Link], Awaitable[None]]


async def _unpublished(link: Link) -> None:
    raise LinkNotPublished("links are not published until the service has started")


class LinkStore:
    """Links in Redis, every change first published through ``publish`` (the links topic)."""

    def __init__(self, redis: Redis[bytes], prefix: str, publish: Publish = _unpublished) -> None:
        self.redis = redis
        self.prefix = prefix
        self.publish = publish
        self.changes = f"{prefix}:links:changes"
        self.complete_key = f"{prefix}:links:complete"

    def _key(self, code: str) -> str:
        return f"{self.prefix}:link:{code}"

    def _of(self, affiliate_id: str) -> str:
        """The codes of one creator's links (an index, rebuilt with the links)."""
        return f"{self.prefix}:links:of:{affiliate_id}"

    async def of_creator(self, affiliate_id: str) -> list[Link]:
        """Every link of ``affiliate_id`` (deactivated ones too), by code."""
        codes = sorted(c.decode() for c in await self.redis.smembers(self._of(affiliate_id)))
        async with self.redis.pipeline(transaction=False) as pipe:
            for code in codes:
                pipe.get(self._key(code))
            raws: list[bytes | None] = await pipe.execute()
        return [Link(**json.loads(raw)) for raw in raws if raw is not None]

    async def get(self, code: str) -> Link | None:
        raw = await self.redis.get(self._key(code))
        if raw is None:
            return None
        return Link(**json.loads(raw))

    async def lookup(self, code: str) -> tuple[bool, Link | None]:
        """(Redis holds every link, the link) read atomically."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.exists(self.complete_key)
            pipe.get(self._key(code))
            complete, raw = await pipe.execute()
        return bool(complete), Link(**json.loads(raw)) if raw is not None else None

    async def is_complete(self) -> bool:
        return bool(await self.redis.exists(self.complete_key))

    async def create(self, link: Link) -> bool:
        """False when the code is taken; LinkNotPublished (and nothing kept) without the broker."""
        value = json.dumps(asdict(link))
        if not await self.redis.set(self._key(link.code), value, nx=True):
            return False
        try:
            await self.publish(link)
        except Exception as exc:
            await self.redis.delete(self._key(link.code))
            raise LinkNotPublished(f"the links topic did not take {link.code!r}: {exc!r}") from exc
        # Written again in case Redis lost the claim while the record was on its way.
        await self.redis.set(self._key(link.code), value)
        await self.redis.sadd(self._of(link.affiliate_id), link.code)
        await self._announce(link.code)
        return True

    async def deactivate(self, code: str) -> Link | None:
        link = await self.get(code)
        if link is None:
            return None
        if link.active:
            link = replace(link, active=False)
            try:
                await self.publish(link)
            except Exception as exc:
                raise LinkNotPublished(f"the links topic did not take {code!r}: {exc!r}") from exc
            await self.redis.set(self._key(code), json.dumps(asdict(link)))
            await self._announce(code)
        return link

    async def restore(self, links: Iterable[Link]) -> int:
        """Write the topic's links back (see afflux.clicks.link_log), then mark Redis complete."""
        restored = 0
        batch: list[Link] = []
        for link in [*links, None]:
            if link is not None:
                batch.append(link)
            if batch and (link is None or len(batch) >= 1_000):
                async with self.redis.pipeline(transaction=False) as pipe:
                    for item in batch:
                        value = json.dumps(asdict(item))
                        # Deactivation is final; an active link never overwrites what is there.
                        pipe.set(self._key(item.code), value, nx=item.active)
                    restored += sum(1 for done in await pipe.execute() if done)
                async with self.redis.pipeline(transaction=False) as pipe:
                    for item in batch:
                        pipe.sadd(self._of(item.affiliate_id), item.code)
                    await pipe.execute()
                batch = []
        await self.redis.set(self.complete_key, "1")
        return restored

    async def _announce(self, code: str) -> None:
        await self.redis.xadd(self.changes, {"code": code}, maxlen=_STREAM_MAXLEN, approximate=True)


class LinkCache:
    """code -> prepared Target (or None for an unknown code), bounded, in this process.

    ``check`` decides whether a stored link may still redirect (for example its
    destination is still on the campaign's allowed domains); a link it refuses is
    cached as unknown.
    """

    def __init__(
        self,
        store: LinkStore,
        max_entries: int,
        check: Callable[[Link], bool] | None = None,
        restore: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self.max_entries = max_entries
        self.check = check or (lambda _: True)
        self.restore = restore
        """Rebuilds Redis's links from the topic (and clears this cache); awaited on a miss
        while Redis is not complete."""
        self._entries: dict[str, Target | None] = {}

    def cached(self, code: str) -> tuple[bool, Target | None]:
        """(hit, target) without any I/O."""
        if code in self._entries:
            return True, self._entries[code]
        return False, None

    async def load(self, code: str) -> Target | None:
        complete, link = await self.store.lookup(code)
        if not complete and self.restore is not None:
            await asyncio.wait_for(self.restore(), RESTORE_WAIT_S)
            complete, link = await self.store.lookup(code)
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
                if self.restore is not None and not await self.store.is_complete():
                    await self.restore()
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
