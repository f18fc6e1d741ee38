"""A service checks its Redis before it serves, on a plain Redis and on a Redis Cluster:
the check passes when the url answers and names the failure when it does not."""

from __future__ import annotations

import re

import pytest

from afflux.cli.processes import free_port
from afflux.shared.io.serving import check_redis

pytestmark = pytest.mark.integration


async def test_the_start_check_passes_on_a_redis_that_answers(ledger_redis_url: str) -> None:
    await check_redis(ledger_redis_url)


@pytest.mark.parametrize("scheme", ["redis", "redis-cluster"])
async def test_the_start_check_fails_on_a_redis_that_does_not_answer(scheme: str) -> None:
    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(Exception, match=re.escape(address)):
        await check_redis(f"{scheme}://{address}")
