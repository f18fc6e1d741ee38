"""Redis as ``afflux up`` configures it: what it acknowledged outlives a kill -9.

The stack is built by ``afflux.cli.up.build_stack``, the function ``afflux up``
itself uses, so Redis runs with exactly its configuration (AOF, fsync every
second, under the data directory). The broker keeps memory storage here: this
test is about Redis, and the services stay up while only Redis crashes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from redis import Redis

from afflux.cli.demo_client import DemoClient
from afflux.cli.processes import free_port
from afflux.cli.settings import CliSettings
from afflux.cli.stack import Stack
from afflux.cli.up import build_stack
from afflux.shared.core.money import Money
from afflux.shared.core.terms import CampaignTerms

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TOKEN = "redis-durability-token"
TERMS = {
    "campaign_id": "aof-shop",
    "merchant_id": "merchant-aof",
    "currency": "EUR",
    "allowed_domains": ["shop.example.com"],
    "grace_seconds": 1,
    "plan": {"sale": {"rate": {"percent": "10"}}},
}
# appendfsync everysec: a write reaches the AOF file before Redis answers it, and
# the file is fsynced about once a second (up to two when the disk stalls).
FSYNC_WINDOW_S = 1.0


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    settings = CliSettings(
        clicks_port=free_port(),
        orders_port=free_port(),
        payouts_port=free_port(),
        attribution_port=free_port(),
        kafka_bootstrap="",
        redis_url="",
    )
    running = build_stack(
        settings, tmp_path / "up", {"AFFLUX_ADMIN_TOKEN": TOKEN}, storage="memory"
    )
    try:
        running.start_infra()
        terms_file = tmp_path / "campaigns.yaml"
        terms_file.write_text(
            yaml.safe_dump({"campaigns": [{"effective_from": 0, "terms": TERMS}]})
        )
        running.apply_campaigns(terms_file)
        running.start_service("clicks")
        running.start_service("orders")
        yield running
    finally:
        running.stop()


def redis_of(stack: Stack) -> Redis[bytes]:
    return Redis.from_url(stack.redis_url)


def wait_until_written_and_fsync_window_passed(stack: Stack, written_at: float) -> None:
    """Wait until everything Redis has acknowledged is in its AOF file and one fsync
    interval has passed since the last write we rely on.

    A kill -9 of the process loses only what is not yet in the file; the fsync
    window matters for a crash of the machine, which this test cannot cause, but
    it waits for it anyway so that the test also holds for that reading.
    """
    with redis_of(stack) as redis:
        persistence = redis.info("persistence")
        directory = str(redis.config_get("dir")["dir"])
    acknowledged_size = int(persistence["aof_current_size"])
    aof = Path(directory) / "appendonly.aof"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if (
            aof.exists()
            and aof.stat().st_size >= acknowledged_size
            and time.monotonic() >= written_at + FSYNC_WINDOW_S
        ):
            return
        time.sleep(0.05)
    raise AssertionError(f"the AOF {aof} never reached {acknowledged_size} bytes")


async def create_link_and_order(
    stack: Stack, terms: CampaignTerms, occurred_at: int
) -> tuple[str, str]:
    """A link, a click through it, and an order from that visitor; (code, visitor id)."""
    async with DemoClient(
        stack.url("clicks"), stack.url("orders"), "http://127.0.0.1:9", TOKEN
    ) as client:
        code = await client.create_link(terms, "creator-aof")
        visitor_id, _ = await client.click(code, None)
        first = await client.place_order(
            terms, order_id="o-aof-1", kind="sale", amount=Money(5_000, "EUR"),
            visitor_id=visitor_id, occurred_at=occurred_at,
        )  # fmt: skip
        assert first.status_code == 202, first.text
        # The claim becomes "done" just after the 202; a re-send answering "duplicate"
        # shows it has reached Redis.
        again = await client.place_order(
            terms, order_id="o-aof-1", kind="sale", amount=Money(5_000, "EUR"),
            visitor_id=visitor_id, occurred_at=occurred_at,
        )  # fmt: skip
        assert (again.status_code, again.json()["status"]) == (200, "duplicate")
        return code, visitor_id


async def resend_order(
    stack: Stack, terms: CampaignTerms, visitor_id: str, occurred_at: int
) -> tuple[int, str]:
    async with DemoClient(
        stack.url("clicks"), stack.url("orders"), "http://127.0.0.1:9", TOKEN
    ) as client:
        response = await client.place_order(
            terms, order_id="o-aof-1", kind="sale", amount=Money(5_000, "EUR"),
            visitor_id=visitor_id, occurred_at=occurred_at,
        )  # fmt: skip
        return response.status_code, str(response.json()["status"])


async def redirects(stack: Stack, terms: CampaignTerms, code: str) -> bool:
    async with DemoClient(
        stack.url("clicks"), stack.url("orders"), "http://127.0.0.1:9", TOKEN
    ) as client:
        _, click_id = await client.click(code, None)
        return bool(click_id)


def test_up_runs_redis_with_an_aof_fsynced_every_second(stack: Stack) -> None:
    with redis_of(stack) as redis:
        assert redis.config_get("appendonly") == {"appendonly": "yes"}
        assert redis.config_get("appendfsync") == {"appendfsync": "everysec"}
        assert str(redis.config_get("dir")["dir"]).startswith(str(stack.options.work_dir))


def test_links_and_order_claims_survive_a_redis_kill_9(stack: Stack) -> None:
    terms = CampaignTerms.model_validate(TERMS)
    occurred_at = int(time.time() * 1000)
    code, visitor_id = asyncio.run(create_link_and_order(stack, terms, occurred_at))
    written_at = time.monotonic()
    wait_until_written_and_fsync_window_passed(stack, written_at)
    with redis_of(stack) as redis:
        keys_before = set(redis.scan_iter(count=1000))
    killed = next(child for child in stack.infra if child.name == "redis").pid

    stack.crash_redis()

    assert next(child for child in stack.infra if child.name == "redis").pid != killed
    with redis_of(stack) as redis:
        assert keys_before <= set(redis.scan_iter(count=1000))
    # The merchant re-sends an order accepted before the crash: still a duplicate.
    assert asyncio.run(resend_order(stack, terms, visitor_id, occurred_at)) == (200, "duplicate")
    # A fresh clicks process (nothing cached) still finds the link.
    stack.kill_service("clicks")
    stack.start_service("clicks")
    assert asyncio.run(redirects(stack, terms, code))
