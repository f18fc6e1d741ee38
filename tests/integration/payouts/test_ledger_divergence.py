"""The ledger never silently diverges from the log it was built from.

A memory broker killed with -9 and restarted is a new, empty log under the same
name: the ledger's stored offsets point past its end, or, once it has grown
again, at records the ledger never applied. Each such partition is paused (no
record of it applied), /healthz fails naming it, ``afflux_ledger_ready`` is 0
and the error is logged; the other partitions go on. ``afflux ledger rebuild``
then brings the ledger back to what the oracle makes of the new log. The
ledger also commits its offsets to its consumer group, for observers.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import ledger_stack
import pytest
from ledger_stack import (
    GROUP,
    LedgerStack,
    committed_offsets,
    metric,
    produce,
    running_payouts,
    until,
)
from redis import Redis

from afflux.cli.ledger_compare import actual_lines, line_differences, lines_of
from afflux.cli.scenario_checks import read_topic
from afflux.shared.io.http import tls as oneshot

pytestmark = [pytest.mark.integration, pytest.mark.kafka_conformance]

CAMPAIGN = "diverge-shop"
FIRST_LIFE = [(f"a-{n}", 0) for n in range(30)] + [(f"b-{n}", 1) for n in range(30)]
# After the restart: partition 0 shorter than before, partition 1 longer, partition 2 new.
SECOND_LIFE = (
    [(f"c-{n}", 0) for n in range(5)]
    + [(f"d-{n}", 1) for n in range(40)]
    + [(f"e-{n}", 2) for n in range(3)]
)

ADMIN_TOKEN = "ledger-divergence-admin-token"


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LedgerStack]:
    work: Path = tmp_path_factory.mktemp("ledger-divergence")
    with running_payouts(work, CAMPAIGN, {"AFFLUX_ADMIN_TOKEN": ADMIN_TOKEN}) as stack:
        yield stack


def redis_of(ledger: LedgerStack) -> Redis[bytes]:
    return Redis.from_url(ledger.redis_url)


def stored_offsets(ledger: LedgerStack) -> dict[str, int]:
    return ledger_stack.stored_offsets(ledger.redis_url)


def applied_orders(ledger: LedgerStack) -> set[str]:
    return ledger_stack.applied_orders(ledger.redis_url, CAMPAIGN)


@pytest.fixture(scope="module")
def caught_up(ledger: LedgerStack) -> dict[str, int]:
    asyncio.run(produce(ledger.bootstrap, CAMPAIGN, FIRST_LIFE))
    want = {"conversions|0": 30, "conversions|1": 30}
    until(lambda: stored_offsets(ledger) == want, 60, f"the ledger stores {want}")
    return want


@dataclass(frozen=True)
class Diverged:
    health_status: int
    health: dict[str, Any]
    metrics: str
    offsets: dict[str, int]
    orders: set[str]
    log: str


@pytest.fixture(scope="module")
def diverged(ledger: LedgerStack, caught_up: dict[str, int]) -> Diverged:
    ledger.restart_broker()
    asyncio.run(produce(ledger.bootstrap, CAMPAIGN, SECOND_LIFE))

    def reported() -> bool:
        try:
            answer = oneshot.get(f"{ledger.url}/healthz", timeout=2)
        except httpx.HTTPError:
            return False
        return len(answer.json().get("diverged", [])) == 2 and {"e-0", "e-1", "e-2"} <= (
            applied_orders(ledger)
        )

    until(reported, 60, "two diverged partitions reported, the third one consumed")
    health = oneshot.get(f"{ledger.url}/healthz", timeout=2)
    return Diverged(
        health.status_code,
        health.json(),
        oneshot.get(f"{ledger.url}/metrics", timeout=2).text,
        stored_offsets(ledger),
        applied_orders(ledger),
        ledger.log_text(),
    )


def test_the_group_sees_the_offsets_the_ledger_stored(
    ledger: LedgerStack, caught_up: dict[str, int]
) -> None:
    def committed() -> dict[str, int]:
        return asyncio.run(committed_offsets(ledger.bootstrap, GROUP, "conversions"))

    until(lambda: committed() == stored_offsets(ledger), 20, "the group's commit")
    assert committed() == caught_up


def _diverged(d: Diverged) -> dict[int, dict[str, Any]]:
    return {x["partition"]: x for x in d.health["diverged"] if x["topic"] == "conversions"}


def test_a_log_restarted_shorter_than_the_stored_offset_is_paused_not_skipped(
    diverged: Diverged,
) -> None:
    shorter = _diverged(diverged)[0]
    assert (shorter["stored_offset"], shorter["log_end"]) == (30, 5)
    assert "beyond the end of the log" in shorter["reason"]
    assert diverged.health_status == 503
    assert diverged.health["status"] == "diverged"
    assert "afflux ledger rebuild" in diverged.health["recovery"]
    assert metric(diverged.metrics, "afflux_ledger_ready") == 0
    assert metric(diverged.metrics, "afflux_ledger_diverged_partitions") == 2
    assert "ledger diverged from conversions[0]: stored offset 30, log end 5" in diverged.log
    # nothing of the new log's partition 0 applied, its stored offset untouched
    assert not {o for o in diverged.orders if o.startswith("c-")}
    assert diverged.offsets["conversions|0"] == 30


def test_a_new_log_grown_past_the_stored_offset_fails_the_fingerprint(
    diverged: Diverged,
) -> None:
    grown = _diverged(diverged)[1]
    assert (grown["stored_offset"], grown["log_end"]) == (30, 40)
    assert "is not the one the ledger applied" in grown["reason"]
    assert "ledger diverged from conversions[1]: stored offset 30, log end 40" in diverged.log
    assert not {o for o in diverged.orders if o.startswith("d-")}
    assert diverged.offsets["conversions|1"] == 30


def test_partitions_that_did_not_diverge_are_consumed_on(diverged: Diverged) -> None:
    assert {o for o in diverged.orders if o.startswith("e-")} == {"e-0", "e-1", "e-2"}
    assert diverged.offsets["conversions|2"] == 3


def test_rebuild_makes_the_ledger_equal_the_oracle_of_the_log_again(
    ledger: LedgerStack, diverged: Diverged
) -> None:
    paid = json.dumps({"affiliate_id": "creator-1", "amount_minor": 1})
    with redis_of(ledger) as redis:
        redis.hset("afx:pay:{a:creator-1}:payouts", "x|2026-11", paid)
    rebuild = subprocess.run(
        [sys.executable, "-m", "afflux.cli", "ledger", "rebuild"],
        env={
            "AFFLUX_REDIS_URL": ledger.redis_url,
            "AFFLUX_KAFKA_BOOTSTRAP": ledger.bootstrap,
            "PATH": "",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert rebuild.returncode == 0, rebuild.stdout + rebuild.stderr
    want = {"conversions|0": 5, "conversions|1": 40, "conversions|2": 3}
    with redis_of(ledger) as redis:  # what compaction waits for the replay to reach
        ends = redis.hgetall("afx:pay:{ledger}:replay-until")
        replay_until = {k.decode(): int(v) for k, v in ends.items() if int(v)}
        assert {k: v for k, v in replay_until.items() if k.startswith("conv")} == want
    until(lambda: stored_offsets(ledger) == want, 60, f"the ledger replays to {want}")
    until(ledger.healthy, 30, "/healthz 200 after the rebuild")

    async def differences() -> list[str]:
        events = await read_topic(ledger.bootstrap, "campaigns")
        outputs = await read_topic(ledger.bootstrap, "conversions")
        expected = lines_of(events, outputs)
        return line_differences(
            expected, await actual_lines(ledger.url, sorted(expected), ADMIN_TOKEN)
        )

    assert asyncio.run(differences()) == []
    assert applied_orders(ledger) == {order for order, _ in SECOND_LIFE}
    metrics = oneshot.get(f"{ledger.url}/metrics", timeout=2).text
    assert metric(metrics, "afflux_ledger_ready") == 1
    with redis_of(ledger) as redis:
        assert redis.hget("afx:pay:{a:creator-1}:payouts", "x|2026-11") == paid.encode()


def test_an_interrupted_rebuild_stops_consuming_until_it_is_run_again(
    ledger: LedgerStack, diverged: Diverged
) -> None:
    until(ledger.healthy, 60, "/healthz 200 before the interruption")
    with redis_of(ledger) as redis:
        # What a rebuild leaves when it dies after its first step.
        redis.set("afx:pay:{ledger}:rebuilding", "1")
        redis.delete("afx:pay:{ledger}:generation", "afx:pay:{ledger}:positions")

    def rebuilding() -> bool:
        answer = oneshot.get(f"{ledger.url}/healthz", timeout=2)
        return answer.status_code == 503 and answer.json()["status"] == "rebuilding"

    until(rebuilding, 30, "/healthz 503 rebuilding")
    asyncio.run(produce(ledger.bootstrap, CAMPAIGN, [("f-0", 3)]))
    metrics = oneshot.get(f"{ledger.url}/metrics", timeout=2).text
    assert metric(metrics, "afflux_ledger_ready") == 0
    # A running consumer applies a record within a poll (200 ms); watch ten times that.
    watch_until = time.monotonic() + 2
    while time.monotonic() < watch_until:
        assert "f-0" not in applied_orders(ledger)
        time.sleep(0.1)
    rebuild = subprocess.run(
        [
            sys.executable,
            "-m",
            "afflux.cli",
            "ledger",
            "rebuild",
            "--redis-url",
            ledger.redis_url,
            "--kafka-bootstrap",
            ledger.bootstrap,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert rebuild.returncode == 0, rebuild.stdout + rebuild.stderr
    until(lambda: "f-0" in applied_orders(ledger), 60, "the record sent meanwhile applied")
    until(ledger.healthy, 30, "/healthz 200 after the rebuild")
    assert applied_orders(ledger) == {order for order, _ in SECOND_LIFE} | {"f-0"}
