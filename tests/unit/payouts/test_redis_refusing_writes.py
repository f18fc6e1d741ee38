"""Redis refusing writes for now (out of memory, a read-only replica after a failover)
is waited out by the ledger and the webhook intake, like Redis out of reach: the ledger
used to take it for a bad batch, dead-letter every item one by one and then stop."""

from __future__ import annotations

import pytest
from redis.exceptions import (
    ClusterDownError,
    MasterDownError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError

from afflux.payouts.consumer import REDIS_DOWN
from afflux.shared.io.redis_client import BusyScriptError, CannotPersistError, redis_away

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("failure", "waited_out"),
    [
        (RedisConnectionError("refused"), True),
        (ReadOnlyError("You can't write against a read only replica."), True),
        (ClusterDownError("The cluster is down"), True),
        (MasterDownError("link with MASTER is down"), True),
        (TryAgainError("multiple keys request during rehashing"), True),
        # a script past lua-time-limit; a full disk: each dead-lettered the batch's items
        (BusyScriptError("Redis is busy running a script."), True),
        (CannotPersistError("Redis is configured to save RDB snapshots, but it's ..."), True),
        (ResponseError("ERR Error running script"), False),  # about the batch itself
        (ValueError("bad fact"), False),
    ],
)
def test_redis_refusing_writes_for_now_is_waited_out_not_dead_lettered(
    failure: Exception, waited_out: bool
) -> None:
    assert isinstance(failure, REDIS_DOWN) is waited_out
    assert redis_away(failure) is waited_out  # the webhook sender's test
