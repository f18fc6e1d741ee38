"""Clearing the ledger so that its consumers replay the topics from the start.

Everything under the ledger's prefix is derived from the ``conversions``,
``reversals`` and ``clicks`` topics and can be rebuilt from them, except the
payout records (``payouts``): they record money that was paid, which the topics
do not hold, and the next payout run pays only the difference to them.

The steps, safe with the payouts service running:

1. One ``MULTI/EXEC`` sets ``rebuilding`` and deletes ``generation``, ``offsets``
   and ``last``. A batch being applied watches those keys, so it fails and its
   consumer finds the flag; from then on every consumer consumes nothing.
2. Every other derived key is deleted (``SCAN``, ``UNLINK`` in chunks).
3. ``rebuilding`` is deleted: each consumer starts a new generation and, with no
   stored offsets left, reads every partition from its beginning.

An interrupted rebuild leaves ``rebuilding`` set (the service reports it on
``/healthz``); running it again finishes it.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis

PREFIX = "afx:pay:"
KEPT = ("payouts",)  # money paid: not derived from the topics
_CHUNK = 500


async def clear_ledger(redis: Redis[bytes], prefix: str = PREFIX) -> int:
    """Clear the derived ledger under ``prefix``; returns how many keys were deleted."""
    flag = prefix + "rebuilding"
    kept = {(prefix + name).encode() for name in KEPT} | {flag.encode()}
    first = (prefix + "generation", prefix + "offsets", prefix + "last")
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(flag, str(int(time.time() * 1000)))
        pipe.delete(*first)
        _, deleted = await pipe.execute()
    count = int(deleted)
    chunk: list[bytes] = []
    async for key in redis.scan_iter(match=_glob_escape(prefix) + "*", count=1000):
        if key in kept:
            continue
        chunk.append(key)
        if len(chunk) >= _CHUNK:
            count += int(await redis.unlink(*chunk))
            chunk = []
    if chunk:
        count += int(await redis.unlink(*chunk))
    await redis.delete(flag)
    return count


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
