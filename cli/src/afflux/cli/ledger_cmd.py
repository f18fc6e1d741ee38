"""``afflux ledger rebuild``: rebuild the payouts ledger from the topics.

When the payouts service reports that the ledger diverged from the log
(``/healthz`` 503 ``diverged``, ``afflux_ledger_ready`` 0), this clears the
ledger's derived keys in Redis (payout records are kept) and the running
payouts consumers replay ``conversions``, ``reversals`` and ``clicks`` from
the start; a stopped service does so when it starts. See docs/payouts.md.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any, cast


def add_parser(sub: Any) -> None:
    ledger = sub.add_parser("ledger", help="payouts ledger administration", description=__doc__)
    ledger.add_argument("action", choices=["rebuild"], help="clear and replay from the topics")
    ledger.add_argument(
        "--redis-url", default=None, help="the ledger's Redis (default: AFFLUX_REDIS_URL)"
    )


def run(args: argparse.Namespace) -> int:
    from afflux.payouts.keys import PREFIX
    from afflux.payouts.rebuild import KEPT
    from afflux.shared.settings import CommonSettings

    url = args.redis_url or CommonSettings().redis_url
    deleted = asyncio.run(_clear(url))
    print(
        f"afflux ledger rebuild: deleted {deleted} keys under {PREFIX} "
        f"(kept: {', '.join(PREFIX + k for k in KEPT)}); the payouts consumers replay "
        "conversions, reversals and clicks from the start. Done when /healthz answers 200 "
        'and afflux_consumer_lag_messages{service="payouts"} is 0.'
    )
    return 0


async def _clear(url: str) -> int:
    from redis.asyncio import Redis

    from afflux.payouts.rebuild import clear_ledger
    from afflux.shared.io.redis_client import connect_ready

    # A cluster client (redis-cluster://) speaks the same commands.
    redis = cast("Redis[bytes]", await connect_ready(url))
    try:
        return await clear_ledger(redis)
    finally:
        await redis.aclose()  # type: ignore[attr-defined]
