"""``afflux campaigns apply FILE.yaml``: publish each campaign's terms as a new version.

A campaign whose terms and effective time equal its latest version is left
unchanged, so applying the same file twice publishes nothing the second time.
It holds the lock of each campaign of the file in the orders service's Redis, the one
``PUT /v1/campaigns/{id}`` takes, from reading the latest versions to writing the next:
an admin API publication of the same campaign waits for it, and it for them.
``python -m afflux.orders.campaigns_cli schema`` prints the JSON Schema of a
terms file (kept in docs/campaigns.schema.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path

from pydantic import ValidationError
from redis.asyncio import Redis

from afflux.orders.settings import OrdersSettings
from afflux.orders.terms_publisher import LockNotTaken, campaign_terms_lock
from afflux.shared.campaign_file import CampaignFile, InvalidCampaignFile, load_campaign_file
from afflux.shared.io.campaign_publish import TermsRefused, TermsTooLarge, publish_terms
from afflux.shared.io.clock_offset import no_earlier_than_redis
from afflux.shared.io.clock_source import system_clock
from afflux.shared.io.kafka import BrokerUnreachable, check_broker, create_topics
from afflux.shared.secret_policy import settings_error

NAME = "afflux campaigns"


async def apply(path: Path, settings: OrdersSettings) -> list[str]:
    """Publish the file's terms; one line per campaign saying what happened.
    ``LockNotTaken`` (nothing published) when a campaign's lock stays held by another
    publication or the orders service's Redis cannot be reached."""
    entries = [(e.terms, e.effective_from) for e in load_campaign_file(path).campaigns]
    await check_broker(settings.kafka_bootstrap)
    # Publishing terms needs the campaigns topic only: the partition counts of the others
    # are the topic job's and the worker's concern (this shell may not set them).
    await create_topics(
        settings.kafka_bootstrap,
        settings.topic_partitions,
        settings.input_retention_ms,
        check_partitions=False,
    )
    redis = Redis.from_url(settings.redis_url)
    try:
        async with AsyncExitStack() as locks:
            # Taken in one order, so two files naming the same campaigns never wait on
            # each other's locks.
            for campaign_id in sorted({terms.campaign_id for terms, _ in entries}):
                await locks.enter_async_context(
                    campaign_terms_lock(redis, settings.orders_redis_prefix, campaign_id)
                )
            # "Now" (a later version may not start before it) is never earlier than Redis's
            # time: this machine's clock, ten minutes slow, let a version start ten minutes
            # in the past, re-pricing orders already decided on every replay.
            now = await no_earlier_than_redis(redis, system_clock)
            # One record per version published, in the file's order.
            published = await publish_terms(settings.kafka_bootstrap, entries, now)
    finally:
        await redis.aclose()  # type: ignore[attr-defined]
    lines = []
    # One line per campaign, naming every version this publication added (a file with
    # two versions of a campaign printed the last one's number twice).
    for campaign_id in dict.fromkeys(terms.campaign_id for terms, _ in entries):
        added = [r.versions[-1].version for r in published if r.campaign_id == campaign_id]
        if not added:
            lines.append(f"{campaign_id}: unchanged")
            continue
        plural = "s" if len(added) > 1 else ""
        lines.append(f"{campaign_id}: published version{plural} {', '.join(str(n) for n in added)}")
    return lines


def schema_text() -> str:
    """The JSON Schema of a campaign terms file (and, under ``terms``, of the PUT body)."""
    schema = CampaignFile.model_json_schema()
    schema["title"] = "afflux campaign terms file"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog=NAME, description=__doc__)
    parser.add_argument("action", choices=["apply", "schema"])
    parser.add_argument("file", type=Path, nargs="?")
    args = parser.parse_args(list(argv))
    if args.action == "schema":
        sys.stdout.write(schema_text())
        return 0
    if args.file is None:
        parser.error("apply needs a FILE")
    try:
        settings = OrdersSettings()
    except ValidationError as exc:
        print(f"{NAME}: invalid settings: {settings_error(exc)}", file=sys.stderr)
        return 2
    try:
        lines = asyncio.run(apply(args.file, settings))
    except InvalidCampaignFile as exc:
        print(f"{NAME}: invalid terms file: {exc}", file=sys.stderr)
        return 2
    except BrokerUnreachable as exc:
        print(f"{NAME}: {exc}", file=sys.stderr)
        return 2
    except LockNotTaken as exc:
        print(f"{NAME}: nothing published: {exc}", file=sys.stderr)
        return 1
    except TermsRefused as exc:  # checked before anything is published
        print(f"{NAME}: nothing published: {exc.field}: {exc}", file=sys.stderr)
        return 2
    except TermsTooLarge as exc:  # the campaigns before it in the file were published
        print(f"{NAME}: not published: {exc}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
