"""How many tracking links a creator may make for itself in one campaign through the
portal, and when it may deactivate one.

Every link made stays in the clicks service (a deactivated one answers 404 but keeps
its record, so its past clicks stay explained): without a bound a creator key could
grow the link store without end. Deactivating gives no room back for that reason. A
brand or an operator makes more through ``POST /v1/links``, which has no such bound.

The count is the clicks service's list of the creator's links (the truth) plus the
portal's requests making one right now for the same creator (``claim``): each request
counts itself in before it reads the list and out after its link is made, so two
requests at once, on one replica or several, never both take the last room.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis

from afflux.payouts.keys import Keys

CLAIM_TTL_MS = 60_000  # a request that dies holding its claim takes room this long at most


def made_in(links: Iterable[Mapping[str, Any]], campaign_id: str) -> int:
    """The creator's links in ``campaign_id``, deactivated ones too."""
    return sum(1 for link in links if link["campaign_id"] == campaign_id)


def room_refusal(made: int, others_making: int, most: int) -> str | None:
    """Why one more link may not be made, or None when it may."""
    if made + others_making < most:
        return None
    if made >= most:
        return (
            f"you have made {made} links in this campaign, the most a creator may make "
            f"here ({most}; deactivated links count too): ask the brand for another"
        )
    return "another link of yours is being made in this campaign right now; try again"


def deactivation_refusal(
    links: Iterable[Mapping[str, Any]], code: str, named_in_terms: bool
) -> str | None:
    """Why the creator may not deactivate its link ``code``, or None when it may.

    A creator belongs to a campaign that does not name it only through an active link
    (``afflux.payouts.belonging``): deactivating the last one would take it out of the
    campaign for good, which is the brand's decision, not a click on a page."""
    listed = list(links)
    link = next((x for x in listed if x["code"] == code), None)
    if link is None:
        return f"code: no link {code!r} of yours"
    if not link["active"]:
        return f"code: link {code!r} is already deactivated"
    campaign = link["campaign_id"]
    still_active = [x for x in listed if x["campaign_id"] == campaign and x["active"]]
    if len(still_active) == 1 and not named_in_terms:
        return (
            f"code: {code!r} is your last active link in campaign {campaign!r}, and you "
            "belong to it only through a link: make another link there first"
        )
    return None


@asynccontextmanager
async def claim(redis: Redis[bytes], keys: Keys, affiliate_id: str) -> AsyncIterator[int]:
    """Count this request in among the creator's links being made; yields how many other
    requests are making one now."""
    key = keys.ledger(f"linkclaims:{affiliate_id}")
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.pexpire(key, CLAIM_TTL_MS)
        making, _ = await pipe.execute()
    try:
        yield int(making) - 1
    finally:
        await redis.decr(key)
