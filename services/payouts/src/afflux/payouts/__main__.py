"""``python -m afflux.payouts``: the payouts service on settings.host:payouts_port."""

from __future__ import annotations

import asyncio
import logging
import sys

from pydantic import ValidationError
from redis.asyncio import Redis

from afflux.payouts.app import create_app
from afflux.payouts.server import serve
from afflux.payouts.settings import PayoutsSettings
from afflux.shared.kafka import BrokerUnreachable, check_broker

NAME = "afflux payouts"


async def _check_redis(url: str) -> None:
    client = Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
    try:
        await client.ping()
    finally:
        await client.aclose()  # type: ignore[attr-defined]


def reachable(settings: PayoutsSettings) -> str | None:
    """None when the broker and Redis answer, else one line saying which and where."""
    try:
        asyncio.run(check_broker(settings.kafka_bootstrap))
    except BrokerUnreachable as exc:
        return f"{NAME}: {exc}"
    try:
        asyncio.run(_check_redis(settings.redis_url))
    except Exception as exc:
        return f"{NAME}: cannot reach Redis at {settings.redis_url}: {exc}"
    return None


def main() -> int:
    try:
        settings = PayoutsSettings()
    except ValidationError as exc:
        print(f"{NAME}: invalid settings: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, logging.root.level))
    app = create_app(settings)
    problem = reachable(settings)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    return 0 if serve(app, settings.host, settings.payouts_port) else 1


if __name__ == "__main__":
    sys.exit(main())
