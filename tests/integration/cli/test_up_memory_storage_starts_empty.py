"""``afflux up --storage memory`` starts from an empty broker log, so its Redis starts
empty too. Kept from the run before (its AOF under the data directory), the ledger's
stored offsets named records the new log did not hold: the payouts service reported
itself diverged and the run's first order was never credited. On durable storage both
are kept, together."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis import Redis

from afflux.cli.processes import free_port
from afflux.cli.settings import CliSettings
from afflux.cli.storage import BrokerStorage
from afflux.cli.up import build_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def settings() -> CliSettings:
    return CliSettings(
        clicks_port=free_port(),
        orders_port=free_port(),
        payouts_port=free_port(),
        attribution_port=free_port(),
        kafka_bootstrap="",
        redis_url="",
    )


def run_once(work_dir: Path, storage: BrokerStorage, write: bool) -> bytes | None:
    """Start the infrastructure ``afflux up`` starts, read (and then write) a key, stop."""
    stack = build_stack(settings(), work_dir, {}, storage=storage)
    try:
        stack.start_infra()
        with Redis.from_url(stack.redis_url) as redis:
            found = redis.get("afx:earlier-run")
            if write:
                redis.set("afx:earlier-run", b"offsets of a log that is gone")
                redis.execute_command("BGREWRITEAOF")
        return found
    finally:
        stack.stop()


@pytest.mark.parametrize(("storage", "kept"), [("memory", False), ("durable", True)])
def test_redis_outlives_a_restart_only_with_the_log_it_describes(
    tmp_path: Path, storage: BrokerStorage, kept: bool
) -> None:
    work_dir = tmp_path / "up"
    assert run_once(work_dir, storage, write=True) is None

    found = run_once(work_dir, storage, write=False)

    assert (found is not None) is kept
