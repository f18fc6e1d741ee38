"""Clearing the ledger so that its consumers replay the topics from the start.

Everything under the ledger's prefix is derived from the ``conversions``,
``reversals``, ``clicks``, ``content`` and ``reviews`` topics and can be rebuilt from them
(the review decisions with the rest), except each
creator's payout records (``{a:<affiliate>}:payouts`` and ``:paid``): they record
money that was paid, and the next payout run pays only the difference to them (the
``payouts`` topic holds every one announced, and the replay writes back any that is
missing, but not one recorded and never announced); and the content API's claims
(``CONTENT_CLAIMS``).

The steps, safe with the payouts service running, on one Redis or a cluster:

1. ``rebuilding`` is set, then ``generation`` and ``positions`` deleted. Every
   consumer checks the generation before each batch, halts, and from then on
   consumes nothing.
2. After ``grace_s`` (a batch that passed its check just before step 1 has
   finished writing by then: a batch takes well under a second), every other
   derived key is deleted (``SCAN`` on every master, ``UNLINK``).
3. The topics' end offsets when the rebuild began are kept as ``replay-until`` (no
   compaction pass judges a period before the replay reaches them), then
   ``rebuilding`` is deleted: each consumer starts a new generation and, with no
   stored offsets left, reads every partition from its beginning.

An interrupted rebuild leaves ``rebuilding`` set (the service reports it on
``/healthz``); running it again finishes it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import cast

from redis.asyncio import Redis

from afflux.payouts.keys import PREFIX, Keys

KEPT = ("{a:*}:payouts", "{a:*}:paid")  # money paid: not derived from the topics
# What the content API accepted and sent (each content's owner, whether it awaits its
# release, its live stream's times as the creator published them): claims like the
# orders service's, written by the route and not by the replay. Deleted, a creator whose
# stream was live during a rebuild could not publish its end ("not published by its
# creator's key"), and its orders went unattributed.
CONTENT_CLAIMS = (
    "content_live",
    "content_owner",
    "content_unreleased",
    "content_sent",
    "content_counts",
)
_CHUNK = 500


def _kept(key: bytes, prefix: bytes) -> bool:
    rest = key[len(prefix) :]
    if rest.startswith(b"{ledger}:"):
        return rest[len(b"{ledger}:") :].decode(errors="replace") in CONTENT_CLAIMS
    return rest.startswith(b"{a:") and rest.endswith((b"}:payouts", b"}:paid"))


GRACE_S = 5.0


async def clear_ledger(
    redis: Redis[bytes],
    prefix: str = PREFIX,
    *,
    grace_s: float = GRACE_S,
    replay_until: Mapping[str, int] | None = None,
) -> int:
    """Clear the derived ledger under ``prefix``; returns how many keys were deleted.
    ``replay_until``: the end offsets of the ledger's topics (``"topic|partition"``) when
    the rebuild began, kept as ``replay-until``: no compaction pass judges a period until
    the replay has reached them (``compaction.ledger_behind``)."""
    keys = Keys(prefix)
    flag = keys.ledger("rebuilding")
    await redis.set(flag, str(int(time.time() * 1000)))
    count = int(await redis.delete(keys.ledger("generation")))
    count += int(await redis.delete(keys.ledger("positions")))
    await asyncio.sleep(grace_s)
    raw_prefix = prefix.encode()
    chunk: list[bytes] = []
    async for key in redis.scan_iter(match=_glob_escape(prefix) + "*", count=1000):
        if key == flag.encode() or _kept(key, raw_prefix):
            continue
        chunk.append(key)
        if len(chunk) >= _CHUNK:
            count += await _unlink(redis, chunk)
            chunk = []
    if chunk:
        count += await _unlink(redis, chunk)
    if replay_until:
        ends = cast("Mapping[str | bytes, int]", replay_until)
        await redis.hset(keys.ledger("replay-until"), mapping=ends)
    await redis.delete(flag)
    return count


async def _unlink(redis: Redis[bytes], keys: list[bytes]) -> int:
    # One key per command: on a cluster the keys live in many slots. Through
    # execute_command: a cluster pipeline's ``unlink`` is a coroutine of the client (it
    # splits keys by slot), never queued, so nothing would be deleted.
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.execute_command("UNLINK", key)
        return sum(int(n) for n in await pipe.execute())


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
