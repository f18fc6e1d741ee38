"""Publishing campaign terms from the admin API, one publication of a campaign at a time
across every orders instance sharing the Redis."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from afflux.orders.errors import Rejected
from afflux.shared.campaign_file import CampaignEntry
from afflux.shared.events import CampaignTermsPublished
from afflux.shared.io.campaign_publish import (
    TermsRefused,
    TermsTooLarge,
    publish_terms,
    republish_history,
)

log = logging.getLogger(__name__)

# A publication reads the campaigns topic and writes one record: well under this. A lock
# left by an instance that died mid-publication frees itself after it.
LOCK_TTL_MS = 60_000
# How long a publication waits for another one of the same campaign before a 503.
LOCK_WAIT_S = 20.0
LOCK_POLL_S = 0.05
# Deletes the lock only when it is still the holder's (a lock that expired and was
# taken by another publication is left to it).
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class TermsPublisher:
    """Publishes an entry as its campaign's next version when it differs from the latest.

    Each publication reads every version before it writes the next: two at once could
    both take the same version number, and the later record, holding the whole history,
    would drop the other's version. So one at a time in this process (``lock``) and, with
    ``redis`` (``use_redis``: the orders service's own), one at a time per campaign
    across the instances sharing it: a lock key per campaign, taken with ``SET NX PX``
    and released only by its holder.
    """

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.lock = asyncio.Lock()
        self.redis: Any = None
        self.prefix = ""

    def use_redis(self, redis: Any, prefix: str) -> None:
        self.redis, self.prefix = redis, prefix

    async def publish(self, entry: CampaignEntry) -> list[CampaignTermsPublished]:
        """What was published (empty when the terms equal the latest); 413 when the
        campaign's history would no longer fit one record; 422 ``terms.currency`` for terms
        in another currency than the campaign's, 422 ``terms.merchant_id`` for terms of
        another merchant than the campaign's, 422 ``effective_from`` for a later
        version that would start before now (``backdated_version``); 503 when the broker
        cannot be reached, or another publication of the campaign held it for
        ``LOCK_WAIT_S``."""
        async with self.lock, self._campaign_lock(entry.terms.campaign_id):
            try:
                return await publish_terms(self.bootstrap, [(entry.terms, entry.effective_from)])
            except TermsTooLarge as exc:
                raise Rejected(413, "body", str(exc)) from None
            except TermsRefused as exc:  # a field of the terms, or the entry's own time
                field = exc.field if exc.field == "effective_from" else f"terms.{exc.field}"
                raise Rejected(422, field, str(exc)) from None
            except Exception as exc:
                raise Rejected(503, None, f"broker unavailable: {type(exc).__name__}") from None

    async def restore(self, campaign_id: str) -> None:
        """Write the campaign's history again after a tombstone keyed by it (refused by
        every reader, but compaction would delete the history before it): under the same
        locks as a publication, so no version published meanwhile is left out. Logged,
        never raised: the next start, reading the tombstone again, tries again."""
        try:
            async with self.lock, self._campaign_lock(campaign_id):
                record = await republish_history(self.bootstrap, campaign_id)
        except Exception as exc:
            log.error("campaign %r not restored after a tombstone: %r", campaign_id, exc)
            return
        if record is not None:
            log.warning(
                "campaign %r: a tombstone on the campaigns topic; its %d versions were"
                " published again so that compaction keeps them",
                campaign_id,
                len(record.versions),
            )

    @asynccontextmanager
    async def _campaign_lock(self, campaign_id: str) -> AsyncIterator[None]:
        if self.redis is None:
            yield
            return
        try:
            async with campaign_terms_lock(self.redis, self.prefix, campaign_id):
                yield
        except LockNotTaken as exc:
            raise Rejected(503, None, str(exc)) from None


class LockNotTaken(Exception):
    """Another publication held the campaign's lock for ``LOCK_WAIT_S``, or Redis could
    not be asked: nothing was published."""


@asynccontextmanager
async def campaign_terms_lock(redis: Any, prefix: str, campaign_id: str) -> AsyncIterator[None]:
    """Holds ``<prefix>:terms-lock:<campaign_id>`` (``SET NX PX``, released only by its
    holder) while the body runs: the lock every publisher of a campaign's terms takes,
    the admin API and ``afflux campaigns apply`` alike. ``LockNotTaken`` when it stays
    held for ``LOCK_WAIT_S`` or Redis cannot be reached."""
    key = f"{prefix}:terms-lock:{campaign_id}"
    token = secrets.token_hex(16)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LOCK_WAIT_S
    try:
        while not await redis.set(key, token, nx=True, px=LOCK_TTL_MS):
            if loop.time() >= deadline:
                raise LockNotTaken("another publication of this campaign is under way")
            await asyncio.sleep(LOCK_POLL_S)
    except LockNotTaken:
        raise
    except Exception as exc:
        raise LockNotTaken(f"redis unavailable: {type(exc).__name__}") from None
    try:
        yield
    finally:
        with suppress(Exception):  # not released: it expires after LOCK_TTL_MS
            await redis.eval(_RELEASE, 1, key, token)
