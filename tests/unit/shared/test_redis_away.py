"""Which Redis errors mean "retry the same writes" (away, busy, refusing writes for now)
and which refuse the writes themselves, also when a pipeline wraps the reply."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ResponseError

from afflux.shared.io.redis_client import WritesRefusedForNow, redis_away, refused_for_now

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
