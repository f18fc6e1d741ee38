"""Which Redis errors mean "retry the same writes" (away, busy, refusing writes for now)
and which refuse the writes themselves, also when a pipeline wraps the reply."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis
from redis.exceptions import ClusterError, OutOfMemoryError, ResponseError, SlotNotCoveredError
from redis.exceptions import ConnectionError as RedisConnectionError

from afflux.payouts.consumer import REDIS_DOWN
from afflux.shared.io.redis_client import (
    WritesRefusedForNow,
    client_broke,
    redis_away,
    refused_for_now,
)

pytestmark = pytest.mark.unit

BUSY = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
MISCONF = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist"
# Redis 6 reports a reply met inside a script as a plain error naming it after a "-".
IN_SCRIPT = "Error running script (call to f_8a2b9c): @user_script:10: -{} ..."


def _in_pipeline(reply: str) -> str:
    return f"Command # 1 (SMEMBERS afx:{{wh}}:owner:x) of pipeline caused error: ('{reply}',)"


@pytest.mark.parametrize(
    ("error", "away"),
    [
        (ResponseError(BUSY), True),
        (ResponseError(_in_pipeline(BUSY)), True),  # was taken for a refusal: dead-lettered
        (ResponseError(MISCONF), True),
        (ResponseError(_in_pipeline(MISCONF)), True),
        (OutOfMemoryError("OOM command not allowed"), True),
        (RedisConnectionError("Connection refused"), True),
        (ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"), False),
        (ResponseError(_in_pipeline("ERR Error running script")), False),
        (ResponseError("ERR BUSY is not the start of this reply"), False),
        # Redis 6 at the memory limit inside a script: the ledger dead-lettered its batch.
        (ResponseError(IN_SCRIPT.format("OOM command not allowed when used memory")), True),
        (ResponseError(IN_SCRIPT.format("READONLY You can't write against a replica.")), True),
        (ResponseError(IN_SCRIPT.format("MISCONF Errors writing to the AOF file")), True),
        (ResponseError(_in_pipeline(IN_SCRIPT.format("OOM command not allowed"))), True),
        (ResponseError(IN_SCRIPT.format("WRONGTYPE Operation against a key")), False),
        (ResponseError("ERR user script says: OOM is a word"), False),
    ],
    ids=lambda v: v if isinstance(v, bool) else str(v)[:40],
)
def test_redis_away_tells_a_passing_state_from_a_refusal(error: Exception, away: bool) -> None:
    assert redis_away(error) is away


@pytest.mark.parametrize(
    ("reply", "passing"),
    [
        (IN_SCRIPT.format("OOM command not allowed when used memory > 'maxmemory'."), True),
        (IN_SCRIPT.format("NOREPLICAS Not enough good replicas to write."), True),
        (IN_SCRIPT.format("WRONGTYPE Operation against a key"), False),
        ("WRONGTYPE Operation against a key holding the wrong kind of value", False),
    ],
)
def test_a_passing_reply_wrapped_in_a_scripts_error_is_read_as_passing(
    reply: str, passing: bool
) -> None:
    error = ResponseError(reply)
    assert isinstance(refused_for_now(error), WritesRefusedForNow) is passing
    assert str(refused_for_now(error)) == reply


def test_a_reply_of_its_own_class_is_kept() -> None:
    error = OutOfMemoryError("OOM command not allowed")
    assert refused_for_now(error) is error


@pytest.mark.parametrize(
    ("reply", "raised"),
    [
        ("ERR " + IN_SCRIPT.format("OOM command not allowed when used memory"), "OutOfMemoryError"),
        ("ERR " + IN_SCRIPT.format("READONLY You can't write against a replica."), "ReadOnlyError"),
        ("ERR " + IN_SCRIPT.format("MISCONF Errors writing to the AOF file"), "CannotPersistError"),
        ("ERR " + IN_SCRIPT.format("NOREPLICAS Not enough good replicas"), "WritesRefusedForNow"),
        ("ERR " + IN_SCRIPT.format("WRONGTYPE Operation against a key"), "ResponseError"),
        ("OOM command not allowed when used memory", "OutOfMemoryError"),
    ],
)
def test_the_parser_raises_a_reply_met_in_a_script_as_its_own_class(
    reply: str, raised: str
) -> None:
    """Redis 6 reports OOM inside a script as a plain ERR: every caller (orders' claims,
    payout records, webhooks) read it as writes refused for good."""
    from redis._parsers.base import BaseParser

    assert type(BaseParser.parse_error(reply)).__name__ == raised


def _raised_in(filename: str, error: BaseException) -> BaseException:
    """``error`` as raised by code of ``filename`` (its innermost frame there)."""
    try:
        exec(compile("raise error", filename, "exec"), {"error": error})  # noqa: S102
    except BaseException as raised:
        return raised
    raise AssertionError("not raised")


REDIS_PY = str(Path(redis.__file__).parent / "asyncio" / "connection.py")


@pytest.mark.parametrize(
    ("error", "away"),
    [
        # A cluster node killed under a command: redis-py's transport closed or gone.
        (
            _raised_in(
                REDIS_PY, RuntimeError("unable to perform operation on <TCPTransport closed=True>")
            ),
            True,
        ),
        (
            _raised_in(REDIS_PY, AttributeError("'NoneType' object has no attribute 'writelines'")),
            True,
        ),
        # A caller's own mistake met inside redis-py: no connection broke.
        (_raised_in(REDIS_PY, AttributeError("'list' object has no attribute 'items'")), False),
        (_raised_in(REDIS_PY, RuntimeError("dictionary changed size during iteration")), False),
        # The same classes raised by anything else are a failure of the caller's own.
        (_raised_in(__file__, RuntimeError("unable to perform operation on <x>")), False),
        (
            _raised_in(__file__, AttributeError("'NoneType' object has no attribute 'writelines'")),
            False,
        ),
        (RuntimeError("never raised"), False),
    ],
)
def test_a_connection_redis_py_broke_under_a_command_is_redis_away(
    error: BaseException, away: bool
) -> None:
    assert client_broke(error) is away
    assert redis_away(error) is away


@pytest.mark.parametrize(
    "error",
    [ClusterError("TTL exhausted."), SlotNotCoveredError("slot 42 is not covered")],
)
def test_a_cluster_moving_its_slots_is_redis_away_and_waits_in_the_ledger(
    error: Exception,
) -> None:
    """A slot migration made redis-py give up following MOVED and TRYAGAIN replies: the
    ledger took it for a bad batch and dead-lettered its items one by one."""
    assert redis_away(error)
    assert isinstance(error, REDIS_DOWN)


def test_a_closed_transport_met_by_redis_py_is_its_broken_connection() -> None:
    """The stdlib's transports raise it themselves: the frame that matters is redis-py's,
    the innermost outside asyncio."""
    transport = compile(
        "raise error", str(Path(asyncio.__file__).parent / "selector_events.py"), "exec"
    )
    client = compile("exec(transport, {'error': error})", REDIS_PY, "exec")
    closed = RuntimeError("unable to perform operation on <_SelectorSocketTransport closed>")
    with pytest.raises(RuntimeError) as raised:
        exec(client, {"transport": transport, "error": closed})  # noqa: S102
    assert client_broke(raised.value)
