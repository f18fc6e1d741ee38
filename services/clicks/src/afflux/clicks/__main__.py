"""``python -m afflux.clicks``: the clicks service on settings.host:clicks_port."""

from __future__ import annotations

import asyncio
import logging
import sys

from pydantic import ValidationError
from redis.asyncio import Redis

from afflux.clicks.app import create_app, spool_dir
from afflux.clicks.server import serve
from afflux.clicks.settings import ClicksSettings
from afflux.clicks.spool import Spool, SpoolBusy
from afflux.shared.kafka import BrokerUnreachable, check_broker

NAME = "afflux clicks"


async def _check_redis(url: str) -> None:
    client = Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
    try:
        await client.ping()
    finally:
        await client.aclose()  # type: ignore[attr-defined]


def reachable(settings: ClicksSettings) -> str | None:
    """None when the broker and Redis answer, else one line saying which and where."""
    try:
        asyncio.run(check_broker(settings.kafka_bootstrap))
    except BrokerUnreachable as exc:
        return f"{NAME}: {exc}"
    try:
        asyncio.run(_check_redis(settings.redis_url))
    except Exception as exc:
        return f"{NAME}: cannot reach Redis at {settings.redis_url}: {exc}"
    try:
        Spool(spool_dir(settings)).close()
    except (SpoolBusy, OSError) as exc:
        return f"{NAME}: cannot use the click spool: {exc}"
    return None


def main() -> int:
    try:
        settings = ClicksSettings()
    except ValidationError as exc:
        print(f"{NAME}: invalid settings: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # The shipper reports the broker's state itself (one warning when it starts spooling,
    # one line when the spool is drained); aiokafka would log every reconnect attempt.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    problem = reachable(settings)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    return 0 if serve(create_app(settings), settings.host, settings.clicks_port) else 1


if __name__ == "__main__":
    sys.exit(main())
