"""Conversions the ledger refused, by order: what ``GET /v1/orders/{order_id}`` tells.

A conversion the ledger cannot take (a creator's sum past the largest amount, a period
compacted or expired, a conflicting copy, no terms, another currency...) goes to the
dead-letter topic, and the order's outcome read ``attributed`` with no posting, as if
it were paid. So each refusal is also noted under its order: one hash per campaign and
order (``{co:<campaign>|<order>}:refused``, a slot of its own), a field per refused
event id holding the event's conversion, creator, reason and exception class, at most
``MAX_PER_ORDER`` of them (a stream of forged copies cannot grow it without end), the
key expiring after the ledger's retention. Only conversions of campaigns the service
knows are noted (an unknown campaign's order has no outcome to read): forged conversions
of made-up campaigns would each have left a key. The dead letter stays the record of it:
this note is what the order's postings answer adds (``refusals``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import orjson
from redis.asyncio import Redis

from afflux.payouts.keys import Keys
from afflux.shared.events import ConversionAttributed

MAX_PER_ORDER = 20
REASON_CHARS = 500

# KEYS[1]: the order's hash; ARGV: field, value, bound, expiry (ms, absolute).
_NOTE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1
   or redis.call('HLEN', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return 1
"""


@dataclass(frozen=True, slots=True)
class RefusedConversion:
    event_id: str
    conversion_id: str
    affiliate_id: str
    reason: str
    error_class: str
    refused_at: int


def refused(
    event: ConversionAttributed, reason: str, error_class: str, now: int
) -> RefusedConversion:
    return RefusedConversion(
        event.event_id,
        event.conversion_id,
        event.affiliate_id,
        reason[:REASON_CHARS],
        error_class,
        now,
    )


async def note(
    redis: Redis[bytes],
    keys: Keys,
    event: ConversionAttributed,
    refusal: RefusedConversion,
    expires_at: int,
) -> None:
    """Note ``refusal`` under its order; the same event refused again replaces its note."""
    await redis.register_script(_NOTE)(
        keys=[keys.refused_conversions(event.campaign_id, event.order_id)],
        args=[refusal.event_id, orjson.dumps(asdict(refusal)), MAX_PER_ORDER, expires_at],
    )


async def of_order(
    redis: Redis[bytes], keys: Keys, campaign_id: str, order_id: str
) -> list[RefusedConversion]:
    """The order's refused conversions, oldest refusal first."""
    raw = await redis.hgetall(keys.refused_conversions(campaign_id, order_id))
    found = [RefusedConversion(**orjson.loads(value)) for value in raw.values()]
    return sorted(found, key=lambda r: (r.refused_at, r.event_id))
