"""API keys, sessions and failed logins in Redis (plain and Cluster): a key works until it
is rotated or revoked, and so do the sessions it began; only hashes are stored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from afflux.shared.core import access
from afflux.shared.core.access import ADMIN, Principal
from afflux.shared.io.http.principals import MAX_SESSIONS_PER_CREDENTIAL as MAX
from afflux.shared.io.http.principals import AccessStore
from afflux.shared.io.redis_client import connect_ready

pytestmark = pytest.mark.integration
NOW = 1_794_700_800_000
TTL_S = 3600


@pytest.fixture
async def store(ledger_redis_url: str) -> AsyncIterator[AccessStore]:
    client = await connect_ready(ledger_redis_url)
    try:
        yield AccessStore(client)  # type: ignore[arg-type]  # a RedisCluster speaks the same
    finally:
        await client.aclose()  # type: ignore[union-attr]


async def _every_value(redis: Redis[bytes]) -> bytes:
    """Every key name and value Redis holds, as one blob."""
    blob = b""
    async for name in redis.scan_iter(match="afx:*"):
        blob += name
        kind = await redis.type(name)
        if kind == b"hash":
            for k, v in (await redis.hgetall(name)).items():  # type: ignore[misc]
                blob += k + v
        elif kind == b"string":
            blob += await redis.get(name) or b""
    return blob


async def test_an_issued_key_names_its_subject_and_only_its_hash_is_stored(
    store: AccessStore,
) -> None:
    record, key = await store.issue("creator", "ana", NOW)
    assert key.startswith("afx_ck_")
    assert access.role_of_key(key) == "creator"
    assert await store.principal_of_key(key) == Principal("creator", "ana", record.key_id)
    stored = await _every_value(store.redis)
    assert key.encode() not in stored
    assert access.key_hash(key).encode() in stored
    assert (await store.listed(subject="ana"))[0].public() == {
        "key_id": record.key_id,
        "role": "creator",
        "subject": "ana",
        "created_at": NOW,
        "rotated_at": None,
        "revoked_at": None,
    }


async def test_a_key_of_another_role_with_the_same_random_part_is_not_accepted(
    store: AccessStore,
) -> None:
    _, key = await store.issue("merchant", "shop", NOW)
    as_creator = "afx_ck_" + key.removeprefix("afx_mk_")
    assert await store.principal_of_key(as_creator) is None
    assert await store.principal_of_key(key) == Principal(
        "merchant", "shop", (await store.listed())[0].key_id
    )


async def test_rotation_ends_the_old_key_and_its_sessions_at_once(store: AccessStore) -> None:
    record, old = await store.issue("merchant", "shop", NOW)
    session_id, _ = await store.begin_session(
        Principal("merchant", "shop", record.key_id), old, TTL_S
    )
    rotated = await store.rotate(record.key_id, NOW + 1)
    assert rotated is not None
    new_record, new = rotated
    assert await store.principal_of_key(old) is None
    assert await store.session(session_id, None) is None
    assert await store.principal_of_key(new) == Principal("merchant", "shop", record.key_id)
    assert (new_record.key_id, new_record.rotated_at, new_record.created_at) == (
        record.key_id,
        NOW + 1,
        NOW,
    )


async def test_revocation_ends_the_key_and_its_sessions_and_keeps_the_record(
    store: AccessStore,
) -> None:
    record, key = await store.issue("creator", "ana", NOW)
    session_id, _ = await store.begin_session(
        Principal("creator", "ana", record.key_id), key, TTL_S
    )
    assert (await store.session(session_id, None)) is not None
    revoked = await store.revoke(record.key_id, NOW + 5)
    assert revoked is not None
    assert revoked.revoked_at == NOW + 5
    assert await store.principal_of_key(key) is None
    assert await store.session(session_id, None) is None
    assert await store.rotate(record.key_id, NOW + 6) is None  # a revoked key stays revoked
    [listed] = await store.listed()
    assert listed.revoked_at == NOW + 5
    assert await store.revoke("key_unknown", NOW) is None


async def test_a_session_expires_with_its_ttl_and_ends_at_logout(store: AccessStore) -> None:
    session_id, csrf = await store.begin_session(ADMIN, "the-admin-token", TTL_S)
    session = await store.session(session_id, "the-admin-token")
    assert session is not None
    assert session.principal == ADMIN
    assert session.csrf == csrf
    ttl = await store.redis.ttl(f"afx:{{access}}:session:{access.key_hash(session_id)}")
    assert 0 < ttl <= TTL_S
    # An admin session ends when the admin token changes.
    assert await store.session(session_id, "a-new-admin-token") is None
    await store.end_session(session_id)
    assert await store.session(session_id, "the-admin-token") is None


async def test_one_credential_keeps_its_newest_sessions_only(store: AccessStore) -> None:
    """Logging in never fails, so one key opened sessions without end (2,000 in 12 s
    over HTTP, 440 bytes of Redis each for the session's 8 h): its oldest beyond the
    bound now end, and nobody else's."""
    record, key = await store.issue("creator", "ana", NOW)
    other_record, other_key = await store.issue("creator", "bob", NOW)
    ana = Principal("creator", "ana", record.key_id)
    bob = Principal("creator", "bob", other_record.key_id)
    bobs, _ = await store.begin_session(bob, other_key, TTL_S)
    extra = 5
    ids = [(await store.begin_session(ana, key, TTL_S))[0] for _ in range(MAX + extra)]
    live = [await store.session(i, None) is not None for i in ids]
    assert live == [False] * extra + [True] * MAX
    assert await store.session(bobs, None) is not None
    # Logging out frees its place: the next login ends nobody.
    await store.end_session(ids[-1])
    newest, _ = await store.begin_session(ana, key, TTL_S)
    assert [await store.session(i, None) is not None for i in ids[extra:-1]] == [True] * (MAX - 1)
    assert await store.session(newest, None) is not None


async def test_failed_logins_are_counted_per_address_within_the_window(
    store: AccessStore,
) -> None:
    for _ in range(3):
        await store.claim_attempt("192.0.2.1", 60)
    failures, left_s = await store.failures("192.0.2.1")
    assert failures == 3
    assert 0 < left_s <= 60
    assert (await store.failures("192.0.2.2"))[0] == 0


async def test_attempts_at_once_each_see_the_others_and_a_forgiven_one_is_taken_back(
    store: AccessStore,
) -> None:
    before = await asyncio.gather(*(store.claim_attempt("192.0.2.3", 60) for _ in range(40)))
    assert sorted(b for b, _ in before) == list(range(40))  # never two alike
    for _ in range(40):
        await store.forgive_attempt("192.0.2.3")
    await store.forgive_attempt("192.0.2.3")  # one more than claimed: stays at zero
    assert (await store.failures("192.0.2.3"))[0] == 0
    await store.forgive_attempt("192.0.2.4")  # no window: nothing is made
    assert not await store.redis.exists(store._failures("192.0.2.4"))


@pytest.mark.parametrize("revoke_first", [True, False])
async def test_a_revocation_racing_a_rotation_leaves_no_secret_of_the_key_working(
    store: AccessStore, revoke_first: bool
) -> None:
    for round_ in range(20):
        record, old = await store.issue("creator", "ana", NOW)
        revoking = store.revoke(record.key_id, NOW + 10 + round_)
        rotating = store.rotate(record.key_id, NOW + 11 + round_)
        if revoke_first:
            revoked, rotated = await asyncio.gather(revoking, rotating)
        else:
            rotated, revoked = await asyncio.gather(rotating, revoking)
        assert revoked is not None
        assert revoked.revoked_at == NOW + 10 + round_
        stored = await store.get(record.key_id)
        assert stored is not None
        assert stored.revoked_at == NOW + 10 + round_
        assert await store.principal_of_key(old) is None
        if rotated is not None:  # the rotation came first: its key is revoked with it
            assert await store.principal_of_key(rotated[1]) is None
            assert stored.rotated_at == NOW + 11 + round_


async def test_concurrent_rotations_leave_exactly_one_key_working(
    store: AccessStore,
) -> None:
    record, old = await store.issue("merchant", "shop", NOW)
    answers = await asyncio.gather(*(store.rotate(record.key_id, NOW + n) for n in range(1, 6)))
    keys = [answer[1] for answer in answers if answer is not None]
    assert len(keys) == 5
    working = [key for key in [old, *keys] if await store.principal_of_key(key) is not None]
    assert len(working) == 1
    stored = await store.get(record.key_id)
    assert stored is not None
    assert stored.key_hash == access.key_hash(working[0])
