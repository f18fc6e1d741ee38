"""``afflux ledger rebuild`` and ``afflux ledger compact``.

``rebuild``: when the payouts service reports that the ledger diverged from the
log (``/healthz`` 503 ``diverged``, ``afflux_ledger_ready`` 0), this clears the
ledger's derived keys in Redis (payout records are kept) and the running
payouts consumers replay ``conversions``, ``reversals`` and ``clicks`` from
the start; a stopped service does so when it starts.

``compact [--dry-run] [--campaign ID] [--grace-days N]``: every closed, fully
paid campaign-period's postings become one statement snapshot and its per-event
keys go; prints each period compacted (or why not) and its bytes before and
after (``MEMORY USAGE``). The campaigns' terms are read from the campaigns
topic. See docs/payouts.md, "Compaction".
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any, cast


def add_parser(sub: Any) -> None:
    ledger = sub.add_parser("ledger", help="payouts ledger administration", description=__doc__)
    ledger.add_argument(
        "action",
        choices=["rebuild", "compact"],
        help="rebuild: clear and replay from the topics; compact: snapshot closed, paid periods",
    )
    ledger.add_argument(
        "--dry-run", action="store_true", help="compact: judge and measure, write nothing"
    )
    ledger.add_argument("--campaign", default=None, help="compact: only this campaign's periods")
    ledger.add_argument(
        "--grace-days",
        type=int,
        default=None,
        help="compact: days after end + window + lock before a period is closed "
        "(default: AFFLUX_LEDGER_COMPACT_GRACE_DAYS, 400)",
    )
    ledger.add_argument(
        "--kafka-bootstrap",
        default=None,
        help="the broker: compact reads the campaigns topic there, rebuild the ledger's "
        "topics' end offsets (default: AFFLUX_KAFKA_BOOTSTRAP)",
    )
    ledger.add_argument(
        "--redis-url", default=None, help="the ledger's Redis (default: AFFLUX_REDIS_URL)"
    )


def run(args: argparse.Namespace) -> int:
    if args.action == "compact":
        return _compact(args)
    from afflux.payouts.keys import PREFIX
    from afflux.payouts.rebuild import KEPT
    from afflux.shared.settings import CommonSettings

    settings = CommonSettings()
    url = args.redis_url or settings.redis_url
    refused = _redis_url_problem(url)
    if refused:
        print(f"afflux ledger rebuild: --redis-url: {refused}", file=sys.stderr)
        return 2
    deleted = asyncio.run(_clear(url, args.kafka_bootstrap or settings.kafka_bootstrap))
    print(
        f"afflux ledger rebuild: deleted {deleted} keys under {PREFIX} "
        f"(kept: {', '.join(PREFIX + k for k in KEPT)}); the payouts consumers replay "
        "conversions, reversals, clicks, content, reviews and payouts from the start. Done when "
        '/healthz answers 200 and afflux_consumer_lag_messages{service="payouts"} is 0.'
    )
    return 0


def _redis_url_problem(url: str) -> str:
    """Why ``url`` names no Redis ('' when it does): the client raised a traceback."""
    from afflux.shared.io.redis_client import connect

    try:
        client = connect(url)
    except ValueError as exc:
        return str(exc)
    del client  # never connected: parsing the URL is all this asked
    return ""


async def _clear(url: str, bootstrap: str) -> int:
    from redis.asyncio import Redis

    from afflux.payouts.consumer import TOPICS as LEDGER_TOPICS
    from afflux.payouts.rebuild import clear_ledger
    from afflux.shared.io.kafka import check_broker, topics_end_offsets
    from afflux.shared.io.redis_client import connect_ready

    await check_broker(bootstrap)  # one line naming it, not a traceback
    # What the replay must reach before a compaction pass may judge a period again.
    ends = await topics_end_offsets(bootstrap, LEDGER_TOPICS)
    # A cluster client (redis-cluster://) speaks the same commands.
    redis = cast("Redis[bytes]", await connect_ready(url))
    try:
        return await clear_ledger(redis, replay_until=ends)
    finally:
        await redis.aclose()  # type: ignore[attr-defined]


def _compact(args: argparse.Namespace) -> int:
    from afflux.payouts.settings import PayoutsSettings

    settings = PayoutsSettings()
    url = args.redis_url or settings.redis_url
    bootstrap = args.kafka_bootstrap or settings.kafka_bootstrap
    grace = settings.ledger_compact_grace_days if args.grace_days is None else args.grace_days
    if grace < 0:
        print("afflux ledger compact: --grace-days must be 0 or more", file=sys.stderr)
        return 2
    refused = _redis_url_problem(url)
    if refused:
        print(f"afflux ledger compact: --redis-url: {refused}", file=sys.stderr)
        return 2
    outcomes = asyncio.run(_compact_all(url, bootstrap, grace, args.campaign, args.dry_run))
    done = before = after = 0
    for o in outcomes:
        if o.compacted or o.reason.startswith("would compact"):
            done += 1
            before += o.bytes_before
            after += o.bytes_after
            print(
                f"{o.campaign_id} {o.period}: {o.reason}, {o.creators} creators, "
                f"{o.postings} postings, {o.bytes_before} -> {o.bytes_after} bytes"
            )
        else:
            print(f"{o.campaign_id} {o.period}: kept ({o.reason})")
    verb = "would compact" if args.dry_run else "compacted"
    print(
        f"afflux ledger compact: {verb} {done} of {len(outcomes)} campaign-periods, "
        f"{before} -> {after} bytes"
    )
    return 0


async def _compact_all(
    url: str, bootstrap: str, grace_days: int, campaign: str | None, dry_run: bool
) -> list[Any]:
    import contextlib
    import time

    from redis.asyncio import Redis

    from afflux.payouts.compaction import compact_pass
    from afflux.payouts.store import LedgerStore
    from afflux.shared.core.clock import MS_PER_DAY
    from afflux.shared.io.campaign_view import CampaignDirectory, follow_campaigns
    from afflux.shared.io.kafka import check_broker
    from afflux.shared.io.redis_client import connect_ready

    await check_broker(bootstrap)  # one line at once, not a bare timeout a minute later
    directory = CampaignDirectory()
    follower = asyncio.create_task(follow_campaigns(directory, bootstrap))
    redis = cast("Redis[bytes]", await connect_ready(url))
    try:
        await asyncio.wait_for(directory.ready.wait(), timeout=60)
        return await compact_pass(
            LedgerStore(redis),
            directory.versions,
            int(time.time() * 1000),
            campaign=campaign,
            grace_ms=grace_days * MS_PER_DAY,
            dry_run=dry_run,
        )
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await follower
        await redis.aclose()  # type: ignore[attr-defined]
