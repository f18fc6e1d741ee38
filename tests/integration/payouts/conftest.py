"""Helpers of the payouts integration tests live beside them (``ledger_stack``,
``access_app``); ``world`` is ``access_app``'s world, one per test module, on the plain
Redis emptied first."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis
from redis.asyncio import Redis

from afflux.cli.processes import Child

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))  # log_holes

from access_app import AccessWorld, build_world


@pytest.fixture(scope="module")
def plain_redis_url(plain_redis: tuple[Child, int]) -> str:
    _, port = plain_redis
    with redis.Redis(port=port) as sync:
        sync.flushall()
    return f"redis://127.0.0.1:{port}/0"


@pytest.fixture(scope="module")
async def world(plain_redis_url: str) -> AsyncIterator[AccessWorld]:
    client: Redis[bytes] = Redis.from_url(plain_redis_url)
    try:
        yield await build_world(client, plain_redis_url)
    finally:
        await client.aclose()


@pytest.fixture
async def empty_redis(plain_redis_url: str) -> AsyncIterator[Redis[bytes]]:
    """A client of the plain Redis, emptied first (for a test that fills it alone)."""
    client: Redis[bytes] = Redis.from_url(plain_redis_url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()  # type: ignore[attr-defined]
