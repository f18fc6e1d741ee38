"""Which Redis errors mean "retry the same writes" (away, busy, refusing writes for now)
and which refuse the writes themselves, also when a pipeline wraps the reply."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ResponseError

from afflux.shared.io.redis_client import redis_away

pytestmark = pytest.mark.unit

BUSY = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
MISCONF = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist"


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
    ],
    ids=lambda v: v if isinstance(v, bool) else str(v)[:40],
)
def test_redis_away_tells_a_passing_state_from_a_refusal(error: Exception, away: bool) -> None:
    assert redis_away(error) is away
