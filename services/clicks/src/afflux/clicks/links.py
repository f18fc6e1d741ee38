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

A stored link that cannot be read (not JSON, nested too deep, too large, not a
link: ``decode_link``) counts as lost from Redis: its value is dropped (only if
unchanged) together with the completeness key, so it is restored from the topic
like any lost link. The redirect then answers what the topic holds: 302 for a
good record, 404 when the topic has none (or only a bad one). The admin API
believes "no such link" (and a creator's list) only while the key is there
too: otherwise it answers 503 (``LinksRestoring``, "try again") rather than a 404
or a 500.
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

from afflux.clicks.destinations import CLICK_PARAM, location_safe
from afflux.shared.wire import UndecodableRecord, parse_value

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


_FIELD_TYPES: dict[str, type] = {
    "code": str,
    "affiliate_id": str,
    "campaign_id": str,
    "destination_url": str,
    "active": bool,
    "created_at": int,
}


def decode_link(value: bytes | None) -> Link:
    """The link in a stored value or a ``links`` record, or UndecodableRecord naming why.

    The value is bounded before it is parsed (``afflux.shared.wire.parse_value``: at most
    1 MiB, 32 levels deep, 256-digit numbers), so a deep or huge value is refused
    cheaply; then it must be a link: a JSON object with every field of ``Link`` of its
    type (a boolean is not an integer) and a code ``CODE_PATTERN`` accepts. Fields it
    does not know are ignored, so a link written by a newer version still reads.
    Whatever else fails on the value becomes UndecodableRecord too.
    """
    if value is None:
        raise UndecodableRecord("empty record value (tombstone)", "Tombstone")
    doc = parse_value(value)
    if not isinstance(doc, dict):
        raise UndecodableRecord(f"a link is a JSON object, not {type(doc).__name__}", "NotALink")
    missing = [name for name in _FIELD_TYPES if name not in doc]
    if missing:
        raise UndecodableRecord(f"not a link: missing {', '.join(missing)}", "NotALink")
    fields: dict[str, Any] = {}
    for name, kind in _FIELD_TYPES.items():
        field_value = doc[name]
        if not isinstance(field_value, kind) or (kind is int and isinstance(field_value, bool)):
            raise UndecodableRecord(
                f"not a link: {name} must be {kind.__name__}, not {type(field_value).__name__}",
                "NotALink",
            )
        fields[name] = field_value
    if not CODE_PATTERN.fullmatch(fields["code"]):
        raise UndecodableRecord(f"not a link: malformed code {fields['code'][:80]!r}", "NotALink")
    try:
        return Link(**fields)
    except Exception as exc:  # nothing is known to fail here; a bad value is skipped anyway
        raise UndecodableRecord(f"not a link: {exc!r}"[:500], type(exc).__name__) from exc


# The ``reason`` label of a link value refused by ``decode_link``: a bounded set.
_REASON_LABELS = {
    "RecordTooLarge": "too_large",
    "NestedTooDeep": "too_deep",
    "NumberTooLong": "number_too_long",
    "JSONDecodeError": "not_json",
    "UnicodeDecodeError": "not_json",
    "Tombstone": "tombstone",
    "NotALink": "not_a_link",
}


def reason_label(error_class: str) -> str:
    """The metric label of a refused link value's exception class; ``other`` when unknown."""
    return _REASON_LABELS.get(error_class, "other")


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
    destination: str  # the Location without a click id


def prepare(link: Link) -> Target:
    """Split the destination so that ``afx_click`` is added to its query, before any fragment."""
    destination = location_safe(link.destination_url)
    url, hash_mark, fragment = destination.partition("#")
    separator = "&" if "?" in url else "?"
    if url.endswith(("?", "&")):
        separator = ""
    return Target(link, f"{url}{separator}{CLICK_PARAM}=", f"{hash_mark}{fragment}", destination)


class LinkNotPublished(RuntimeError):
    """The broker did not acknowledge a link change: Redis was not changed, though the
    broker may still store it (a request it took and did not answer in time)."""


class LinksRestoring(RuntimeError):
    """Redis may lack the link asked for (it lost links, or the link's value could not be
    read and was dropped): it is being restored from the topic; ask again."""


Publish = Callable[[Link], Awaitable[None]]


async def _unpublished(link: Link) -> None:
    raise LinkNotPublished("links are not published until the service has started")


def _uncounted(reason: str) -> None:
    pass


# Drops a stored link's value only if it still holds the bytes that could not be read (a
# restore or a create may have written it again since), and with it the completeness key.
_DROP_UNREADABLE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('DEL', KEYS[1], KEYS[2])
    return 1
end
return 0
"""


class LinkStore:
    """Links in Redis, every change first published through ``publish`` (the links topic).

    ``on_unreadable`` hears of every stored value that could not be read (with its
    ``reason_label``), which is then dropped (see the module docstring).
    """

    def __init__(
        self,
        redis: Redis[bytes],
        prefix: str,
        publish: Publish = _unpublished,
        on_unreadable: Callable[[str], None] = _uncounted,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.publish = publish
        self.on_unreadable = on_unreadable
        self.changes = f"{prefix}:links:changes"
        self.complete_key = f"{prefix}:links:complete"
        self._drop_unreadable = redis.register_script(_DROP_UNREADABLE)
        self.drops = 0
        """Unreadable values this process dropped: a restore whose read of the topic began
        before a drop may lack that link, and must not mark Redis complete."""

    def _key(self, code: str) -> str:
        return f"{self.prefix}:link:{code}"

    def _of(self, affiliate_id: str) -> str:
        """The codes of one creator's links (an index, rebuilt with the links)."""
        return f"{self.prefix}:links:of:{affiliate_id}"

    async def of_creator(self, affiliate_id: str) -> list[Link]:
        """Every link of ``affiliate_id`` (deactivated ones too), by code; LinksRestoring
        while Redis may lack some (not complete, or one of them was unreadable)."""
        codes = sorted(c.decode() for c in await self.redis.smembers(self._of(affiliate_id)))
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.exists(self.complete_key)
            for code in codes:
                pipe.get(self._key(code))
            complete, *raws = await pipe.execute()
        links = []
        for code, raw in zip(codes, raws, strict=True):
            link = await self._read(code, raw) if raw is not None else None
            if link is not None:
                links.append(link)
            elif raw is not None:
                complete = False  # dropped: restored from the topic
        if not complete:
            raise LinksRestoring(f"the links of {affiliate_id!r} are being restored")
        return links

    async def get(self, code: str) -> Link | None:
        """The link, None when there is none; LinksRestoring while Redis may lack it (not
        complete, or its value was unreadable)."""
        complete, link = await self.lookup(code)
        if link is None and not complete:
            raise LinksRestoring(f"the link {code!r} is being restored")
        return link

    async def lookup(self, code: str) -> tuple[bool, Link | None]:
        """(Redis holds every link, the link); an unreadable link is dropped and answered
        as (False, None): restore, then look again. The completeness key is read first (a
        restore sets it after every link), so a link missing while it is set is gone. Not
        in MULTI: at its memory limit Redis refuses MULTI, reads and all, and every link
        not in a process's cache answered 503."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.exists(self.complete_key)
            pipe.get(self._key(code))
            complete, raw = await pipe.execute()
        if raw is None:
            return bool(complete), None
        link = await self._read(code, raw)
        return (bool(complete), link) if link is not None else (False, None)

    async def _read(self, code: str, raw: bytes) -> Link | None:
        """The link stored as ``raw``; None when it cannot be read, after dropping it (and
        the completeness key, so the links are restored from the topic)."""
        try:
            return decode_link(raw)
        except UndecodableRecord as exc:
            log.error(
                "stored link %r is unreadable (%s: %s): dropped, to be restored from the topic",
                code,
                exc.error_class,
                exc,
            )
            self.on_unreadable(reason_label(exc.error_class))
            self.drops += 1
            await self._drop_unreadable(keys=[self._key(code), self.complete_key], args=[raw])
            return None

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

    async def restore(self, links: Iterable[Link], drops_before: int | None = None) -> int:
        """Write the topic's links back (see afflux.clicks.link_log), then mark Redis
        complete, unless a value was dropped since ``drops`` was ``drops_before`` (when
        the links were read): then the caller reads the topic again."""
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
        if drops_before is None or drops_before == self.drops:
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
        self._loading: dict[str, asyncio.Task[Target | None]] = {}

    def cached(self, code: str) -> tuple[bool, Target | None]:
        """(hit, target) without any I/O."""
        if code in self._entries:
            return True, self._entries[code]
        return False, None

    async def load(self, code: str) -> Target | None:
        """The code's target read from Redis and cached. Concurrent misses of one code
        share one read: a new link posted to a large audience is clicked by hundreds of
        visitors before the first read returns, and each would otherwise take a Redis
        connection. A request cancelled while it waits does not cancel the others' read."""
        loading = self._loading.get(code)
        if loading is None:
            loading = asyncio.create_task(self._read(code))
            self._loading[code] = loading
            loading.add_done_callback(lambda done: self._loaded(code, done))
        return await asyncio.shield(loading)

    def _loaded(self, code: str, done: asyncio.Task[Target | None]) -> None:
        if self._loading.get(code) is done:
            del self._loading[code]
        if not done.cancelled():
            done.exception()  # retrieved here too, in case every waiter was cancelled

    async def _read(self, code: str) -> Target | None:
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
