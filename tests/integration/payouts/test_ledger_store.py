"""The ledger store against a real Redis: offsets move with every batch, even an empty one."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from redis.asyncio import Redis

from afflux.payouts.store import Batch, LedgerStore

pytestmark = pytest.mark.integration


def _no_terms(campaign_id: str) -> Any:
    raise AssertionError(f"no campaign should be looked up, got {campaign_id}")


def test_a_batch_of_dead_letters_only_still_stores_its_offsets(infra: Any) -> None:
    async def run() -> dict[str, int]:
        redis: Redis[bytes] = Redis.from_url(infra.redis_url, db=3)
        store = LedgerStore(redis, prefix=f"afx:test:{uuid.uuid4().hex[:8]}:")
        try:
            await store.apply(Batch(offsets={"conversions|0": 7}), _no_terms, _no_terms)
            await store.apply(Batch(offsets={"conversions|0": 5}), _no_terms, _no_terms)
            return await store.offsets()
        finally:
            await redis.aclose()  # type: ignore[attr-defined]

    # An older offset (a re-delivered poll) never moves the stored one back.
    assert asyncio.run(run()) == {"conversions|0": 7}
