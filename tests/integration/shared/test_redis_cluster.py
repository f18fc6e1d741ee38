"""A local Redis Cluster of three masters, and the compare-and-set step the journal
ledger writes with, on a plain Redis and on the cluster alike."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError

from afflux.cli.embedded import CLUSTER_SLOTS, RedisClusterNodes, start_redis_cluster
from afflux.shared.io.redis_client import (
    MAX_COMMAND_ARGS,
    AnyRedis,
    CrossSlotError,
    compare_and_set,
    connect_ready,
)

pytestmark = pytest.mark.integration

TAG = "{camp|2026-11}"
VERSION = f"afx:pay:L:{TAG}:version"
JAN_2030 = 1_893_456_000_000  # 2030-01-01T00:00:00Z, an expiry years away


@pytest.fixture
async def client(ledger_redis_url: str) -> AsyncIterator[AnyRedis]:
    client = await connect_ready(ledger_redis_url)
    try:
        yield client
    finally:
        await client.aclose()  # type: ignore[union-attr]


def _masters_and_slots(cluster: RedisClusterNodes) -> dict[int, int]:
    """Each master's port and how many slots it serves, as the first node sees it."""
    with redis.Redis(host=cluster.host, port=cluster.ports[0]) as node:
        ranges = node.execute_command("CLUSTER", "SLOTS")
    served: dict[int, int] = {}
    for first, last, master, *replicas in ranges:
        assert replicas == []
        served[master[1]] = served.get(master[1], 0) + last - first + 1
    return served


def test_the_cluster_formed_by_redis_cli_has_three_masters_holding_every_slot(
    redis_cluster: RedisClusterNodes,
) -> None:
    served = _masters_and_slots(redis_cluster)
    assert sorted(served) == sorted(redis_cluster.ports)
    assert sum(served.values()) == CLUSTER_SLOTS
    assert redis_cluster.url == "redis-cluster://" + ",".join(
        f"127.0.0.1:{port}" for port in redis_cluster.ports
    )


def test_the_cluster_formed_over_commands_has_three_masters_holding_every_slot(
    tmp_path: Path,
) -> None:
    cluster = start_redis_cluster(tmp_path / "data", tmp_path / "logs", use_redis_cli=False)
    try:
        served = _masters_and_slots(cluster)
        assert sorted(served) == sorted(cluster.ports)
        assert sum(served.values()) == CLUSTER_SLOTS
    finally:
        cluster.stop()
    assert not any(node.alive() for node in cluster.nodes)


async def test_twenty_first_commands_at_once_all_succeed_on_a_ready_cluster_client(
    redis_cluster: RedisClusterNodes,
) -> None:
    client = await connect_ready(redis_cluster.url)
    try:
        keys = [f"afx:test:{n}" for n in range(20)]  # spread over all three masters
        answers = await asyncio.gather(
            *(client.execute_command("GET", key) for key in keys), return_exceptions=True
        )
    finally:
        await client.aclose()  # type: ignore[union-attr]
    assert answers == [None] * 20


async def test_a_step_writes_every_command_and_the_new_version(client: AnyRedis) -> None:
    key = f"afx:pay:L:{TAG}"
    await client.execute_command("HSET", f"{key}:h", "gone", 1)
    await client.execute_command("ZADD", f"{key}:z", 1, "gone")

    done = await compare_and_set(
        client,
        VERSION,
        None,
        b"v1",
        [
            ("HSET", f"{key}:h", "anna", b"600", "ben", b"0"),
            ("HDEL", f"{key}:h", "gone"),
            ("HINCRBY", f"{key}:h", "anna", 40),
            ("SADD", f"{key}:s", "conv-1", "conv-2"),
            ("ZADD", f"{key}:z", 5, "conv-1"),
            ("ZREM", f"{key}:z", "gone"),
            ("SET", f"{key}:total", 640),
            ("PEXPIREAT", f"{key}:total", JAN_2030),
            ("RPUSH", f"{key}:log", b"posting-1", b"posting-2"),
        ],
    )

    assert done
    assert await client.execute_command("GET", VERSION) == b"v1"
    assert await client.execute_command("HGETALL", f"{key}:h") == {b"anna": b"640", b"ben": b"0"}
    assert await client.execute_command("SMEMBERS", f"{key}:s") == {b"conv-1", b"conv-2"}
    assert await client.execute_command("ZRANGE", f"{key}:z", 0, -1) == [b"conv-1"]
    assert await client.execute_command("GET", f"{key}:total") == b"640"
    assert await client.execute_command("PTTL", f"{key}:total") > 0
    assert await client.execute_command("LRANGE", f"{key}:log", 0, -1) == [
        b"posting-1",
        b"posting-2",
    ]


@dataclass(frozen=True)
class Case:
    stored: bytes | None
    expected: bytes | None
    applies: bool


CASES = {
    # the first step of a journal: nothing stored, nothing expected
    "missing, expected missing": Case(None, None, True),
    "same version": Case(b"7", b"7", True),
    # another writer got there first
    "newer version stored": Case(b"8", b"7", False),
    # a version was written since this writer read "missing"
    "stored, expected missing": Case(b"1", None, False),
    # the journal was cleared since this writer read it
    "missing, expected a version": Case(None, b"7", False),
    # an empty version is a version, not "missing"
    "empty stored, expected missing": Case(b"", None, False),
    "empty stored, expected empty": Case(b"", b"", True),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_a_step_applies_only_on_the_version_it_read(client: AnyRedis, case: Case) -> None:
    if case.stored is not None:
        await client.execute_command("SET", VERSION, case.stored)
    postings = f"afx:pay:L:{TAG}:postings"

    done = await compare_and_set(client, VERSION, case.expected, b"new", [("SADD", postings, "p")])

    assert done is case.applies
    after = b"new" if case.applies else case.stored
    assert await client.execute_command("GET", VERSION) == after
    assert await client.execute_command("SCARD", postings) == (1 if case.applies else 0)


async def test_concurrent_read_then_write_steps_lose_no_update(client: AnyRedis) -> None:
    """Each writer reads the version, computes and retries on a conflict: 20 writers
    each adding 1 end at 20, the count a lost update would fall short of."""
    count = f"afx:pay:L:{TAG}:count"

    async def add_one() -> int:
        conflicts = 0
        while True:
            seen = await client.execute_command("GET", VERSION)
            total = int(await client.execute_command("GET", count) or 0)
            await asyncio.sleep(0)  # let the other writers read the same version
            new = str(total + 1).encode()
            if await compare_and_set(client, VERSION, seen, new, [("SET", count, total + 1)]):
                return conflicts
            conflicts += 1

    conflicts = await asyncio.gather(*(add_one() for _ in range(20)))

    assert await client.execute_command("GET", count) == b"20"
    assert sum(conflicts) > 0  # the writers did collide, and the version caught it


async def test_a_step_runs_where_its_script_is_not_loaded(
    client: AnyRedis, ledger_redis_url: str
) -> None:
    await compare_and_set(client, VERSION, None, b"1", [])
    for port in _ports(ledger_redis_url):
        with redis.Redis(host="127.0.0.1", port=port) as node:
            node.script_flush()

    assert await compare_and_set(client, VERSION, b"1", b"2", [])
    assert await client.execute_command("GET", VERSION) == b"2"


async def test_a_step_over_two_slots_is_refused_before_anything_is_written(
    client: AnyRedis,
) -> None:
    elsewhere = "afx:pay:L:{other|2026-11}:balances"
    assert key_slot(elsewhere.encode()) != key_slot(VERSION.encode())

    with pytest.raises(CrossSlotError, match=r"one cluster slot.*\{other\|2026-11\}"):
        await compare_and_set(client, VERSION, None, b"1", [("HSET", elsewhere, "anna", 1)])

    assert await client.execute_command("EXISTS", VERSION) == 0
    assert await client.execute_command("EXISTS", elsewhere) == 0


async def test_a_read_command_is_refused_as_a_step(client: AnyRedis) -> None:
    with pytest.raises(ValueError, match="cannot run 'GET'"):
        await compare_and_set(client, VERSION, None, b"1", [("GET", f"afx:pay:L:{TAG}:x")])
    assert await client.execute_command("EXISTS", VERSION) == 0


@pytest.mark.parametrize(
    ("arguments", "accepted"),
    [
        (MAX_COMMAND_ARGS, True),  # the most one command may carry (Lua unpacks 8000 at most)
        (MAX_COMMAND_ARGS + 1, False),
    ],
)
async def test_a_command_carries_at_most_max_command_args_arguments(
    client: AnyRedis, arguments: int, accepted: bool
) -> None:
    members = [f"conv-{n}" for n in range(arguments)]
    step = compare_and_set(client, VERSION, None, b"1", [("SADD", f"afx:pay:L:{TAG}:s", *members)])
    if accepted:
        assert await step
        assert await client.execute_command("SCARD", f"afx:pay:L:{TAG}:s") == arguments
    else:
        with pytest.raises(
            ValueError, match=f"has {arguments} arguments, at most {MAX_COMMAND_ARGS}"
        ):
            await step
        assert await client.execute_command("EXISTS", VERSION) == 0


def _tag_in(slots: range) -> str:
    """A hash tag whose keys live in ``slots``."""
    return next(
        f"{{camp-{n}|2026-11}}"
        for n in range(100_000)
        if key_slot(f"camp-{n}|2026-11".encode()) in slots
    )


async def test_a_killed_master_fails_its_own_slots_while_the_others_serve(tmp_path: Path) -> None:
    # Formed over commands, the quicker way; this cluster is killed, never shared.
    cluster = start_redis_cluster(tmp_path / "data", tmp_path / "logs", use_redis_cli=False)
    client = await connect_ready(cluster.url)
    try:
        with redis.Redis(host=cluster.host, port=cluster.ports[0]) as node:
            rows = node.execute_command("CLUSTER", "SLOTS")
        ranges = {row[2][1]: range(row[0], row[1] + 1) for row in rows}
        tags = {port: _tag_in(ranges[port]) for port in cluster.ports}
        for tag in tags.values():
            assert await compare_and_set(client, f"v:{tag}", None, b"1", [])
        victim, *survivors = cluster.ports

        cluster.node_at(victim).kill()

        with pytest.raises(RedisConnectionError):
            await compare_and_set(client, f"v:{tags[victim]}", b"1", b"2", [])
        for port in survivors:
            assert await compare_and_set(client, f"v:{tags[port]}", b"1", b"2", [])

        # Still so once the survivors have marked the master failed.
        _await_marked_failed(cluster, victim)
        with pytest.raises(RedisConnectionError):
            await compare_and_set(client, f"v:{tags[victim]}", b"1", b"2", [])
        for port in survivors:
            assert await compare_and_set(client, f"v:{tags[port]}", b"2", b"3", [])
    finally:
        await client.aclose()  # type: ignore[union-attr]
        cluster.stop()


def _await_marked_failed(cluster: RedisClusterNodes, port: int) -> None:
    """Until a surviving master's CLUSTER NODES flags ``port`` fail (not just fail?)."""
    survivor = next(p for p in cluster.ports if p != port)
    deadline = time.monotonic() + 60
    with redis.Redis(host=cluster.host, port=survivor) as node:
        while time.monotonic() < deadline:
            lines = node.execute_command("CLUSTER", "NODES").decode().splitlines()
            flags = next(line.split()[2] for line in lines if f":{port}@" in line)
            if "fail" in flags.split(","):
                return
            time.sleep(0.05)
    raise AssertionError(f"no master marked {port} failed: {lines}")


def _ports(url: str) -> list[int]:
    hosts = url.split("://", 1)[1].split("/", 1)[0]
    return [int(address.rsplit(":", 1)[1]) for address in hosts.split(",")]
