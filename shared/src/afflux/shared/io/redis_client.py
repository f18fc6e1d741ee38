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

import asyncio
import hashlib
import os
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import unquote, urlsplit

import orjson
import redis as redis_package
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot
from redis.exceptions import (  # type: ignore[attr-defined]  # OutOfMemoryError: not in the stubs
    ClusterDownError,
    ClusterError,
    MasterDownError,
    NoPermissionError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)

CLUSTER_SCHEME = "redis-cluster"
# One server's connections per client: twice the HTTP connections a service process takes
# (``AFFLUX_HTTP_MAX_CONNECTIONS``, 1000), so that no request the server took is refused for
# want of one (redis-py's default of 100 refused the 101st concurrent command).
POOL_CONNECTIONS = 2_000


# Error replies that say the server cannot take writes now, not that these writes are
# wrong: out of memory, a replica, a cluster failing over, a missing permission, a busy
# script. The same writes succeed once it has recovered (or an operator has fixed it).
class BusyScriptError(ResponseError):
    """``BUSY``: a script has run past ``lua-time-limit``; every other command is refused
    until it ends (or is killed)."""


class CannotPersistError(ResponseError):
    """``MISCONF``: Redis cannot write its snapshot (a full disk) and refuses writes until
    it can."""


def _name_passing_replies() -> None:
    """Have redis-py raise these two replies as their own classes, as it does ``OOM`` or
    ``READONLY``: as plain ``ResponseError``s they read as writes refused for what they
    are, and the ledger dead-lettered every item of a batch that met a busy script or a
    full disk, one by one, then committed past them."""
    try:
        from redis._parsers.base import BaseParser
    except ImportError:  # another layout: ``redis_away`` still reads the reply's text
        return
    BaseParser.EXCEPTION_CLASSES.setdefault("BUSY", BusyScriptError)
    BaseParser.EXCEPTION_CLASSES.setdefault("MISCONF", CannotPersistError)
    parse = BaseParser.parse_error.__func__  # type: ignore[attr-defined]
    if getattr(parse, "reads_scripts", False):
        return

    def parse_error(cls: type[Any], response: str) -> ResponseError:
        # Redis before 7 writes a reply met inside a script into a plain ERR ("Error
        # running script ...: -OOM command not allowed ..."): raised as that reply's own
        # class, so every caller tells Redis refusing for now from refused writes.
        error: ResponseError = parse(cls, response)
        if type(error) is ResponseError and (inner := _WRAPPED_PASSING.search(response)):
            named = cls.EXCEPTION_CLASSES.get(inner.group(1))
            if isinstance(named, type) and issubclass(named, ResponseError):
                return named(str(error))
            return WritesRefusedForNow(str(error))
        return error

    parse_error.reads_scripts = True  # type: ignore[attr-defined]
    BaseParser.parse_error = classmethod(parse_error)  # type: ignore[method-assign,assignment]


class WritesRefusedForNow(ResponseError):
    """One of the replies below met inside a script, which Redis before 7 reports as a
    plain ``ERR Error running script ...: -OOM command not allowed ...``: read as a
    refusal of the writes themselves, the ledger dead-lettered a whole batch at the
    memory limit and skipped past it."""


class KeyOfAnotherType(ResponseError):
    """A key a step writes holds another type than afflux gives it (something else wrote
    it there). ``compare_and_set`` checks every key before its first write, so nothing of
    the step was written; it succeeds once the key is removed. Retried, never skipped: a
    step that failed on it half-way used to leave its facts marked applied with their
    postings unwritten."""


PASSING_REPLIES: tuple[type[ResponseError], ...] = (
    OutOfMemoryError,
    ReadOnlyError,
    TryAgainError,
    ClusterDownError,
    MasterDownError,
    NoPermissionError,
    BusyScriptError,
    CannotPersistError,
    WritesRefusedForNow,
    KeyOfAnotherType,
)
# The codes of PASSING_REPLIES (and LOADING), as Redis 6 writes them inside a script's
# error ("...: @user_script:10: -OOM command not allowed ...").
_WRAPPED_PASSING = re.compile(
    r"Error running script.*?: -?(OOM|READONLY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|NOPERM|BUSY"
    r"|MISCONF|LOADING|NOREPLICAS)\b"
)


_name_passing_replies()


def refused_for_now(exc: ResponseError) -> ResponseError:
    """``exc``, or a ``WritesRefusedForNow`` when it is a passing reply wrapped in a
    script's error by Redis before 7 (the parser raises those as their own class since
    ``_name_passing_replies``; this stays for a pipeline's wrapped reply and another
    parser layout)."""
    if type(exc) is ResponseError and _WRAPPED_PASSING.search(str(exc)):
        return WritesRefusedForNow(str(exc))
    return exc


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
        return single_server(url)
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


def single_server(url: str) -> Redis[bytes]:
    """A client of the one Redis server at ``url`` with ``POOL_CONNECTIONS`` connections.

    redis-py's default pool fails the 101st concurrent command with MaxConnectionsError,
    so a burst of requests that each need Redis (a new link clicked by 200 visitors at
    once) was answered 503 "Redis unavailable" with Redis healthy. A pool larger than a
    process can ask at once never refuses, and costs nothing until used (redis-py's pool
    that waits for a free connection instead takes a shared condition on every command)."""
    pool: ConnectionPool[Any] = ConnectionPool.from_url(url, max_connections=POOL_CONNECTIONS)
    client: Redis[bytes] = Redis(connection_pool=pool)
    client.auto_close_connection_pool = True  # aclose() closes the pool too, as from_url's
    return client


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


# KEYS[1] the version key, KEYS[2..] every key written (each once).
# ARGV: "1" and the expected version, or "0" and "" for "missing"; the new version;
# then one JSON array of writes, each [command, index of its key in KEYS, [args...]];
# then one JSON array of [index of a key in KEYS, the type its writes need], checked
# before the first write (Redis does not undo a script's writes when one fails).
# One JSON argument instead of one argument per value: the client encodes a batch's
# thousands of values in one C call, not one Python call each. HINCRBY takes any
# number of field/increment pairs.
_COMPARE_AND_SET = b"""
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then
  return 0
end
for _, want in ipairs(cjson.decode(ARGV[5])) do
  local held = redis.call('TYPE', KEYS[want[1]])['ok']
  if held ~= 'none' and held ~= want[2] then
    return redis.error_reply('WRONGTYPE key ' .. KEYS[want[1]] .. ' holds a ' .. held ..
      ', not a ' .. want[2] .. ': nothing of this step was written')
  end
end
for _, write in ipairs(cjson.decode(ARGV[4])) do
  local name, key, args = write[1], KEYS[write[2]], write[3]
  if name == 'HINCRBY' then
    for i = 1, #args, 2 do redis.call('HINCRBY', key, args[i], args[i + 1]) end
  else
    redis.call(name, key, unpack(args))
  end
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

    Values are sent as text (bytes must be UTF-8). Raises ``CrossSlotError`` (on a
    plain Redis too) when the keys span cluster slots, and ``ValueError`` for a command
    outside ``WRITE_COMMANDS`` or with more than ``MAX_COMMAND_ARGS`` arguments, before
    sending. A command the server refuses (a key holding another type) raises
    ``KeyOfAnotherType`` (every key's type is checked before the first write, so nothing
    was written), and a reply that says Redis cannot write now ``WritesRefusedForNow`` or
    the reply's own class (``PASSING_REPLIES``)."""
    keys: list[str | bytes] = [version_key]
    index: dict[str | bytes, int] = {}
    writes: list[tuple[str, int, tuple[Arg, ...]]] = []
    types: dict[int, str] = {}  # key index -> the type its first write needs
    # A step sends thousands of commands: each is looked at once, its arguments not copied.
    for write in commands:
        name, key = write[0], write[1]
        command = name if name in WRITE_COMMANDS else name.upper()
        if command not in WRITE_COMMANDS:
            raise ValueError(f"compare_and_set cannot run {name!r}: only {sorted(WRITE_COMMANDS)}")
        if len(write) - 2 > MAX_COMMAND_ARGS:
            raise ValueError(
                f"{command} {key!r} has {len(write) - 2} arguments, at most {MAX_COMMAND_ARGS}"
            )
        position = index.get(key)
        if position is None:
            keys.append(key)
            position = index[key] = len(keys)  # Lua counts from 1
            needed = _TYPE_OF.get(command)
            if needed is not None:  # a key deleted first may hold anything
                types[position] = needed
        writes.append((command, position, write[2:]))
    _require_one_slot(keys)
    args: list[Arg] = [b"0", b""] if expected is None else [b"1", expected]
    # Numbers go as JSON numbers (Redis turns a Lua number into its integer text); bytes
    # as text, converted only when met.
    args += [new, orjson.dumps(writes, default=_text), orjson.dumps(list(types.items()))]
    try:
        try:
            done = await client.execute_command(
                "EVALSHA", _COMPARE_AND_SET_SHA, len(keys), *keys, *args
            )
        except NoScriptError:  # first use on this node, or after a restart: EVAL caches it
            done = await client.execute_command("EVAL", _COMPARE_AND_SET, len(keys), *keys, *args)
    except ResponseError as exc:
        if type(exc) is ResponseError and str(exc).startswith("WRONGTYPE key "):
            raise KeyOfAnotherType(str(exc)) from None
        raise refused_for_now(exc) from None
    return bool(done)


# The type a key must hold (or none) for each write command; DEL and PEXPIREAT take any.
_TYPE_OF = {
    "HDEL": "hash",
    "HINCRBY": "hash",
    "HSET": "hash",
    "INCRBY": "string",
    "SET": "string",
    "RPUSH": "list",
    "SADD": "set",
    "SREM": "set",
    "ZADD": "zset",
    "ZINCRBY": "zset",
    "ZREM": "zset",
}


# KEYS: sets of one slot; ARGV[i]: a JSON array of members to look up in KEYS[i].
# Answers one string per set, "1" or "0" per member: one bulk reply instead of an
# array of integers the client parses one by one, and one JSON argument instead of
# one argument per member it packs one by one.
_MEMBERS_OF = b"""
local answers = {}
for k = 1, #KEYS do
  local members = cjson.decode(ARGV[k])
  local found = {}
  for start = 1, #members, 4000 do
    local chunk = {}
    for i = start, math.min(start + 3999, #members) do chunk[#chunk + 1] = members[i] end
    for _, seen in ipairs(redis.call('SMISMEMBER', KEYS[k], unpack(chunk))) do
      found[#found + 1] = seen == 1 and '1' or '0'
    end
  end
  answers[k] = table.concat(found)
end
return answers
"""
_MEMBERS_OF_SHA = hashlib.sha1(_MEMBERS_OF).hexdigest()  # noqa: S324 (Redis's script id)


async def members_of(
    client: AnyRedis, lookups: Sequence[tuple[str, Sequence[str]]]
) -> list[set[str]]:
    """For each ``(set key, members)``, the members the set holds, in one round trip.

    The keys must hash to one cluster slot (``CrossSlotError`` otherwise)."""
    wanted = [(key, members) for key, members in lookups if members]
    if not wanted:
        return [set() for _ in lookups]
    keys = [key for key, _ in wanted]
    _require_one_slot(keys)
    args = [orjson.dumps(list(members)) for _, members in wanted]
    try:
        found = await client.execute_command("EVALSHA", _MEMBERS_OF_SHA, len(keys), *keys, *args)
    except NoScriptError:
        found = await client.execute_command("EVAL", _MEMBERS_OF, len(keys), *keys, *args)
    answers = iter(found)
    out: list[set[str]] = []
    for _, members in lookups:
        if not members:
            out.append(set())
            continue
        flags = next(answers)
        out.append({m for m, flag in zip(members, flags, strict=True) if flag == 49})  # b"1"
    return out


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode()
    raise TypeError(f"compare_and_set takes str, bytes, int and float, not {value!r}")


def _require_one_slot(keys: Sequence[str | bytes]) -> None:
    if len({_slot(key) for key in keys}) > 1:
        named = ", ".join(f"{key!r} (slot {_slot(key)})" for key in keys)
        raise CrossSlotError(
            f"one atomic step must touch keys of one cluster slot, got {named}: "
            "give every key the same hash tag, e.g. afx:pay:L:{campaign|period}"
        )


@lru_cache(maxsize=65_536)  # a step's thousands of keys come back batch after batch
def _slot(key: str | bytes) -> int:
    return key_slot(key.encode() if isinstance(key, str) else key)


# redis-py's own package: where a connection it is using or replacing broke under it.
_REDIS_PACKAGE = str(Path(redis_package.__file__).parent) + os.sep
_ASYNCIO_PACKAGE = str(Path(asyncio.__file__).parent) + os.sep


# A cluster moving or missing slots under a command: redis-py gave up following MOVED, ASK
# and TRYAGAIN replies ("TTL exhausted") or found no node for a slot. A slot migration
# (``redis-cli --cluster reshard``) while the ledger wrote dead-lettered its items.
CLUSTER_IN_FLUX: tuple[type[Exception], ...] = (ClusterError, SlotNotCoveredError)


def client_broke(exc: BaseException) -> bool:
    """True for an error redis-py raised from its own state rather than a reply: a cluster
    node killed under a command left its transport closed or gone (``RuntimeError:
    unable to perform operation on <TCPTransport closed=True>``, ``AttributeError:
    'NoneType' object has no attribute 'writelines'``). Not Redis refusing anything: a
    connection to make again, as for a ``ConnectionError``. Taken for a failure of the
    caller's own, it stopped every payouts process while one master was down."""
    # Only the two ways a dead transport shows: an AttributeError of a caller's own mistake
    # met inside redis-py ("'list' object has no attribute 'items'") is no connection.
    if isinstance(exc, RuntimeError):
        if "unable to perform operation on" not in str(exc):
            return False
    elif not isinstance(exc, AttributeError) or not str(exc).startswith("'NoneType' object"):
        return False
    deepest = ""  # the innermost frame outside asyncio (whose transports raise the first)
    frame = exc.__traceback__
    while frame is not None:
        filename = frame.tb_frame.f_code.co_filename
        if not filename.startswith(_ASYNCIO_PACKAGE):
            deepest = filename
        frame = frame.tb_next
    return deepest.startswith(_REDIS_PACKAGE)


def redis_away(exc: BaseException) -> bool:
    """True when ``exc`` says Redis is unreachable, slow or cannot take writes for now
    (retry the same writes); False when the writes themselves were refused (an error reply
    about the data or the script: retrying them would fail forever)."""
    if isinstance(exc, ResponseError):
        # BUSY: a script runs long; MISCONF: it cannot persist (a full disk), so it
        # refuses writes until it can: both pass. A pipeline wraps the reply: "Command # 1
        # (SMEMBERS ...) of pipeline caused error: ('BUSY Redis is busy ...',)".
        reply = str(exc).rpartition("of pipeline caused error: (")[2].lstrip("'\"")
        return (
            isinstance(exc, PASSING_REPLIES)
            or reply.startswith(("BUSY", "MISCONF"))
            or _WRAPPED_PASSING.search(reply) is not None
        )
    return isinstance(exc, RedisError | SlotNotCoveredError | OSError | asyncio.TimeoutError) or (
        client_broke(exc)
    )
