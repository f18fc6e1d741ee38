"""A review decision's claim on a real Redis: released only by the request that made it,
and by none once a copy of it (the same decision again) is being sent as well."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis
from redis.asyncio import Redis

from afflux.cli.processes import Child
from afflux.payouts.review_claims import Claim, claim_decision, release_decision
from afflux.payouts.reviews import Entry
from afflux.payouts.store import LedgerStore

pytestmark = pytest.mark.integration

FOUND = Entry("conv-1", "camp", "2026-12", "o-1", "ana", 0, None, kept_ms=60_000)
FIRST = Claim("approve", "checked", "admin", "token-first")
COPY = Claim("approve", "checked", "admin", "token-copy")  # a double-submitted form
DECLINE = Claim("decline", "fraud", "merchant:m", "token-decline")


@pytest.fixture
async def store(plain_redis: tuple[Child, int]) -> AsyncIterator[LedgerStore]:
    _, port = plain_redis
    with redis.Redis(port=port) as sync:
        sync.flushall()
    client: Redis[bytes] = Redis.from_url(f"redis://127.0.0.1:{port}/0")
    try:
        yield LedgerStore(client)
    finally:
        await client.aclose()


async def test_a_failed_send_releases_its_own_claim(store: LedgerStore) -> None:
    assert await claim_decision(store, FOUND, FIRST) == FIRST
    await release_decision(store, FOUND.conversion_id, FIRST)  # never handed over

    assert await claim_decision(store, FOUND, DECLINE) == DECLINE


async def test_a_copy_being_sent_keeps_the_claim_when_the_first_send_fails(
    store: LedgerStore,
) -> None:
    """The first request's send fails after its copy matched the claim and was sent: the
    release freed the claim, and a decline then got a 202 the ledger ignored (the copy's
    approval stands)."""
    assert await claim_decision(store, FOUND, FIRST) == FIRST
    assert (await claim_decision(store, FOUND, COPY)).answers(COPY)  # the copy is sent

    await release_decision(store, FOUND.conversion_id, FIRST)

    assert (await claim_decision(store, FOUND, DECLINE)).decision == "approve"
    assert (await claim_decision(store, FOUND, FIRST)).answers(FIRST)  # a retry still goes


async def test_another_request_never_releases_a_claim(store: LedgerStore) -> None:
    assert await claim_decision(store, FOUND, FIRST) == FIRST
    await release_decision(store, FOUND.conversion_id, DECLINE)

    assert (await claim_decision(store, FOUND, DECLINE)).decision == "approve"
