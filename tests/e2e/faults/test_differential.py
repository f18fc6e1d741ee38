"""Differential fault tests: the same seeded workload clean and under each fault.

Every request is retried until acknowledged; afterwards each creator's balances by
state and net per order must equal the clean run's to the cent, and every
acknowledged click, order, refund and confirmation must be on its topic exactly
once (topics read to a Fetch's high watermark). The clean run happens once per
session. Faults start at progress points (after N acknowledged requests); each test
prints its measured recovery figures (docs/reliability.md quotes them).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from afflux.cli.brokers import BrokerKind
from afflux.cli.chaos import run_chaos
from afflux.cli.differential import (
    ADMIN_TOKEN,
    DifferentialStack,
    RunResult,
    Workload,
    compare,
    read_inputs,
    report,
    settled,
)
from afflux.cli.differential_faults import (
    crash_broker,
    crash_redis,
    kill_clicks_during_stall,
    kill_service,
    stall_broker,
)
from afflux.cli.ledger_compare import ledger_differences
from afflux.cli.storage import BrokerStorage
from afflux.cli.topic_to_end import read_to_end
from afflux.cli.workload import Progress
from afflux.shared.io.http import tls as oneshot
from afflux.shared.topics import CAMPAIGNS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WORKLOAD = Workload(seed=11, visitors=40, creators=12)
GRACE_S = 2  # the workload's campaigns (afflux/cli/differential_campaigns.yaml)
MID_RUN = 40  # acknowledged requests before a fault: links (24) and the first visitors


@pytest.fixture(scope="session")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    ds = DifferentialStack(tmp_path_factory.mktemp("differential-clean")).start()
    try:
        result = ds.run(WORKLOAD)
    finally:
        ds.stop()
    print("\n" + report("clean", result, ds.ack_times))
    assert result.topic_differences == []
    assert sum(len(c.orders) for c in result.snapshot.values()) >= 20
    return result


Fresh = Callable[..., DifferentialStack]


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Fresh]:
    started: list[DifferentialStack] = []

    def start(
        storage: BrokerStorage = "memory", broker: BrokerKind | None = None
    ) -> DifferentialStack:
        ds = DifferentialStack(tmp_path / f"stack-{len(started)}", storage, broker).start()
        started.append(ds)
        return ds

    yield start
    for ds in started:
        ds.stop()


def assert_as_clean(name: str, clean: RunResult, ds: DifferentialStack, faulty: RunResult) -> None:
    print("\n" + report(name, faulty, ds.ack_times))
    comparison = compare(clean, faulty)
    for line in comparison.corrections:
        print(f"  correction: {line}")
    assert comparison.differences == [], "\n".join(comparison.differences)
    # A run ends only when every request was acknowledged: each error it met was retried.
    assert faulty.requests == clean.requests


def test_a_broker_stall_of_twice_the_grace_under_load_pays_as_the_clean_run(
    clean_run: RunResult, fresh: Fresh
) -> None:
    ds = fresh("memory")
    faulty = ds.run(WORKLOAD, lambda p: p.at(MID_RUN, lambda: stall_broker(ds, 2 * GRACE_S)))
    assert_as_clean("broker SIGSTOP", clean_run, ds, faulty)


def test_the_clicks_service_killed_under_load_loses_no_acknowledged_click(
    clean_run: RunResult, fresh: Fresh
) -> None:
    ds = fresh("memory")
    faulty = ds.run(WORKLOAD, lambda p: p.at(MID_RUN, lambda: kill_service(ds, "clicks")))
    assert_as_clean("clicks kill -9", clean_run, ds, faulty)
    assert faulty.errors, "no request met the dead clicks service"


def test_the_clicks_service_killed_during_a_broker_stall_loses_no_acknowledged_click(
    clean_run: RunResult, fresh: Fresh
) -> None:
    ds = fresh("memory")

    def arrange(progress: Progress) -> None:
        progress.at(MID_RUN, lambda: kill_clicks_during_stall(ds, progress, 4 * GRACE_S))

    faulty = ds.run(WORKLOAD, arrange)
    assert_as_clean("clicks kill -9 in a broker stall", clean_run, ds, faulty)
    assert faulty.errors, "no request met the dead clicks service or the stalled broker"


@pytest.mark.parametrize("offset_min", [-4, 4], ids=["merchant-4min-slow", "merchant-4min-fast"])
def test_a_merchant_clock_four_minutes_off_pays_as_the_clean_run(
    clean_run: RunResult, fresh: Fresh, offset_min: int
) -> None:
    ds = fresh("memory")
    skewed = Workload(
        seed=WORKLOAD.seed,
        visitors=WORKLOAD.visitors,
        creators=WORKLOAD.creators,
        merchant_clock_offset_ms=offset_min * 60_000,
    )
    faulty = ds.run(skewed)
    assert_as_clean(f"merchant clock {offset_min:+d} min", clean_run, ds, faulty)


def test_redis_killed_under_its_afflux_up_configuration_keeps_the_ledger(
    clean_run: RunResult, fresh: Fresh
) -> None:
    ds = fresh("memory")
    faulty = ds.run(WORKLOAD, lambda p: p.at(MID_RUN, lambda: crash_redis(ds)))
    assert_as_clean("redis kill -9", clean_run, ds, faulty)


def test_the_broker_killed_on_durable_storage_loses_nothing_acknowledged(
    clean_run: RunResult, fresh: Fresh
) -> None:
    ds = fresh("durable")
    faulty = ds.run(WORKLOAD, lambda p: p.at(MID_RUN, lambda: crash_broker(ds)))
    assert_as_clean("broker kill -9 (durable)", clean_run, ds, faulty)


def test_the_broker_killed_on_memory_storage_stops_the_ledger_until_it_is_rebuilt(
    fresh: Fresh,
) -> None:
    # The log is gone: the ledger must notice instead of consuming on from offsets that
    # point past the new log; after the documented recovery (``afflux attribution
    # rebuild`` with the worker stopped, ``afflux ledger rebuild``) the ledger follows
    # the new log again and equals its oracle to the cent. Only Tansu on memory storage
    # loses its log with its process: on any broker run, this one is Tansu (Apache Kafka
    # restarts on its log on disk, as the durable test above shows on it).
    ds = fresh("memory", "tansu")
    ds.run(WORKLOAD)
    crashed_at = time.monotonic()
    crash_broker(ds)
    payouts = ds.stack.url("payouts")
    health = until(lambda: _health(payouts), lambda h: h.get("status") == "diverged", 120)
    detected_s = time.monotonic() - crashed_at
    assert "afflux ledger rebuild" in str(health.get("recovery")), health
    rebuilt_at = time.monotonic()
    ds.stack.services.pop("attribution").stop()
    _afflux(ds, "attribution", "rebuild")
    ds.stack.start_service("attribution")
    _afflux(ds, "ledger", "rebuild")
    until(lambda: _health(payouts), lambda h: h.get("status") == "ok", 120)
    healthy_s = time.monotonic() - rebuilt_at
    after = ds.run(Workload(seed=WORKLOAD.seed + 1, visitors=12, creators=WORKLOAD.creators))
    differences = _ledger_against_oracle(ds)
    print(
        f"\nbroker kill -9 (memory): divergence reported {detected_s:.1f}s after the crash;"
        f" ledger healthy {healthy_s:.1f}s after the rebuild commands;"
        f" {after.requests} requests after it"
    )
    assert differences == [], "\n".join(differences)
    assert after.topic_differences == []


def _afflux(ds: DifferentialStack, *command: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "afflux.cli", *command],
        env={**os.environ, **ds.stack.service_env()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_three_random_kills_pay_as_the_clean_run(clean_run: RunResult, tmp_path: Path) -> None:
    # The seeded chaos loop of ``afflux verify --chaos`` (twenty kills there), with three.
    chaos = run_chaos(tmp_path, seed=5, kills=3, workload=WORKLOAD, clean=clean_run)
    print("\n" + ", ".join(f"{name} after {point}" for point, name in chaos.kills))
    print(report("chaos (3 kills)", chaos.chaotic, chaos.ack_times))
    assert chaos.comparison.differences == [], "\n".join(chaos.comparison.differences)
    assert len(chaos.chaotic.faults) == 3


def _health(url: str) -> dict[str, object]:
    try:
        answer = oneshot.get(f"{url}/healthz", timeout=2)
        body: dict[str, object] = answer.json()
        return body
    except (httpx.HTTPError, ValueError):
        return {}


def until(
    read: Callable[[], dict[str, object]], done: Callable[[dict[str, object]], bool], limit_s: float
) -> dict[str, object]:
    deadline = time.monotonic() + limit_s
    value = read()
    while not done(value):
        assert time.monotonic() < deadline, f"not reached in {limit_s:.0f}s: {value}"
        time.sleep(0.5)
        value = read()
    return value


def _ledger_against_oracle(ds: DifferentialStack) -> list[str]:
    async def differences() -> list[str]:
        await settled(ds.stack.url("payouts"), min_wait_s=GRACE_S + 1, stack=ds.stack)
        bootstrap = ds.stack.kafka_bootstrap
        inputs = [e for events in (await read_inputs(bootstrap)).values() for e in events]
        inputs += await read_to_end(bootstrap, CAMPAIGNS.name)
        found, _ = await ledger_differences(inputs, ds.stack.url("payouts"), ADMIN_TOKEN)
        return found

    return asyncio.run(differences())
