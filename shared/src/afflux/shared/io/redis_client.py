"""Redis clients from a URL, plain or cluster, and one atomic step over keys of one slot.

``redis://host:port/db`` (or ``rediss://``) is one Redis server;
``redis-cluster://host:port[,host:port...]`` is a Redis Cluster reached through those
startup nodes (the client learns the rest of the cluster from them).

``compare_and_set`` is the optimistic write of a journal: read a version, write only
if it is still the one read. It is one Lua script on the server, so it runs the same
on a plain Redis and on a cluster, in one round trip; on a cluster every key it
touches must hash to one slot (give them all one hash tag, ``afx:pay:L:{camp|2026-11}``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeAlias
from urllib.parse import unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot
from redis.exceptions import NoScriptError

CLUSTER_SCHEME = "redis-cluster"

Arg: TypeAlias = str | bytes | int | float
# (command, key, *args), e.g. ("HSET", "afx:pay:L:{c|2026-11}", "field", b"value")
WriteCommand: TypeAlias = tuple[str, str | bytes, *tuple[Arg, ...]]
AnyRedis: TypeAlias = "Redis[bytes] | RedisCluster[bytes]"

# The writes a step may carry. Each is checked here, before the script runs: Redis
# does not undo a script's earlier writes when a later command fails.
WRITE_COMMANDS = frozenset(
    {
        "DEL",
        "HDEL",
        "HINCRBY",
        "HSET",
        "INCRBY",
        "PEXPIREAT",
        "RPUSH",
        "SADD",
        "SET",
        "SREM",
        "ZADD",
        "ZINCRBY",
        "ZREM",
    }
)
# unpack() in Redis's Lua stops at 8000 values; one command's arguments stay below.
MAX_COMMAND_ARGS = 7_000


class CrossSlotError(ValueError):
    """The keys of one atomic step hash to more than one cluster slot."""


def connect(url: str) -> AnyRedis:
    """A client for ``url``; the caller closes it (``aclose()``)."""
    parts = urlsplit(url)
    if parts.scheme != CLUSTER_SCHEME:
        client: Redis[bytes] = Redis.from_url(url)
        return client
    if parts.path not in ("", "/", "/0"):
        raise ValueError(f"{url!r}: a Redis Cluster has only database 0, not {parts.path!r}")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    nodes = [_cluster_node(url, address) for address in hosts.split(",") if address]
    if not nodes:
        raise ValueError(f"{url!r}: name at least one startup node, host:port")
    return RedisCluster(
        startup_nodes=nodes,
        username=unquote(username) or None,
        password=unquote(password) or None,
    )


async def connect_ready(url: str) -> AnyRedis:
    """``connect``, and for a cluster its slot map read before the first command.

    Commands issued at once on a cluster client that has not read its slot map yet
    race its first topology refresh in redis-py 8.1: some fail with an
    AttributeError (a connection closed while it connects), not a connection error."""
    client = connect(url)
    if isinstance(client, RedisCluster):
        try:
            await client.initialize()
        except BaseException:
            await client.aclose()  # type: ignore[attr-defined]
            raise
    return client


def _cluster_node(url: str, address: str) -> ClusterNode:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{url!r}: startup node {address!r} is not host:port")
    return ClusterNode(host, int(port))


# KEYS[1] the version key, KEYS[2..] the key of each write in order.
# ARGV: "1" and the expected version, or "0" and "" for "missing"; the new version;
# then per write its command name, its argument count and its arguments.
_COMPARE_AND_SET = b"""
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then
  return 0
end
local at = 4
for k = 2, #KEYS do
  local count = tonumber(ARGV[at + 1])
  redis.call(ARGV[at], KEYS[k], unpack(ARGV, at + 2, at + 1 + count))
  at = at + 2 + count
end
redis.call('SET', KEYS[1], ARGV[3])
return 1
"""
_COMPARE_AND_SET_SHA = hashlib.sha1(_COMPARE_AND_SET).hexdigest()  # noqa: S324 (Redis's script id)


async def compare_and_set(
    client: AnyRedis,
    version_key: str,
    expected: bytes | None,
    new: bytes,
    commands: Sequence[WriteCommand],
) -> bool:
    """If ``version_key`` holds ``expected`` (None: it does not exist), run ``commands``
    and set it to ``new``, all at once, and answer True; else write nothing, False.

    Raises ``CrossSlotError`` (on a plain Redis too) when the keys span cluster slots,
    and ``ValueError`` for a command outside ``WRITE_COMMANDS`` or with more than
    ``MAX_COMMAND_ARGS`` arguments, before sending. A command the server refuses (a
    key holding another type) raises ``ResponseError`` and leaves the commands before
    it written: Redis does not roll a script back, so keep each key to one type."""
    keys: list[str | bytes] = [version_key]
    args: list[Arg] = [b"0", b""] if expected is None else [b"1", expected]
    args.append(new)
    for name, key, *rest in commands:
        command = name.upper()
        if command not in WRITE_COMMANDS:
            raise ValueError(f"compare_and_set cannot run {name!r}: only {sorted(WRITE_COMMANDS)}")
        if len(rest) > MAX_COMMAND_ARGS:
            raise ValueError(
                f"{command} {key!r} has {len(rest)} arguments, at most {MAX_COMMAND_ARGS}"
            )
        keys.append(key)
        args += (command, len(rest), *rest)
    _require_one_slot(keys)
    try:
        done = await client.execute_command(
            "EVALSHA", _COMPARE_AND_SET_SHA, len(keys), *keys, *args
        )
    except NoScriptError:  # first use on this node, or after a restart: EVAL caches it there
        done = await client.execute_command("EVAL", _COMPARE_AND_SET, len(keys), *keys, *args)
    return bool(done)


def _require_one_slot(keys: Sequence[str | bytes]) -> None:
    if len({_slot(key) for key in keys}) > 1:
        named = ", ".join(f"{key!r} (slot {_slot(key)})" for key in keys)
        raise CrossSlotError(
            f"one atomic step must touch keys of one cluster slot, got {named}: "
            "give every key the same hash tag, e.g. afx:pay:L:{campaign|period}"
        )


def _slot(key: str | bytes) -> int:
    return key_slot(key.encode() if isinstance(key, str) else key)
