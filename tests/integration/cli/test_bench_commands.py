"""Every ``afflux bench`` runs small on the run's broker and passes its own checks.

The benchmarks are commands, not tests (docs/testing.md): no figure is asserted here.
What is held is that each one starts on the broker the run chose (``--broker``, from
``AFFLUX_TEST_BROKER``), ends with its JSON line, and exits 0, which each bench does only
when its own correctness check passed (every click and order on its topic, the worker's
outputs equal to the oracle's, a soak without errors). CI runs this a second time on
Apache Kafka (``kafka_conformance``), where the attribution bench also times its relay
with Kafka transactions; Tansu, which has none, refuses that option.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from afflux.cli import orphans
from afflux.cli.brokers import BrokerKind

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
Result = dict[str, Any]


@dataclass(frozen=True)
class Case:
    bench: str
    args: tuple[str, ...]
    starts_a_broker: bool
    holds: Callable[[Result], bool]
    label: str = ""  # the test id, when one bench runs in more than one way

    @property
    def id(self) -> str:
        return self.label or self.bench


CASES = [
    # every 302 answered is an event on the clicks topic; none refused while the broker is down;
    # both baselines measured in the same run
    Case(
        "clicks",
        ("--seconds", "2", "--connections", "8", "--storage", "memory"),
        True,
        lambda r: (
            r["events_produced"] >= r["answered_302"] > 0
            and r["broker_down_non_302"] == 0
            and r["baseline"] > 0
            and r["raw_baseline"] > 0
            and r["raw_ratio"] > 0
            and r["server"] == "uvicorn"
        ),
    ),
    # the same under granian, the server the redirect process was compared with
    Case(
        "clicks",
        ("--seconds", "2", "--connections", "8", "--storage", "memory", "--server", "granian"),
        True,
        lambda r: (
            r["events_produced"] >= r["answered_302"] > 0
            and r["broker_down_non_302"] == 0
            and r["raw_baseline"] > 0
            and r["server"] == "granian"
        ),
        label="clicks-granian",
    ),
    # every 202 answered is an event on the orders topic, none answered otherwise
    Case(
        "orders",
        ("--seconds", "2", "--connections", "8", "--storage", "memory"),
        True,
        lambda r: r["produced"] >= r["accepted"] > 0 and not r["non_202"] and r["baseline"] > 0,
    ),
    # the worker's outputs equal the batch oracle's
    Case(
        "attribution",
        ("--visitors", "2000", "--storage", "memory"),
        True,
        lambda r: r["oracle_match"] is True and r["events"] > 0,
    ),
    # the whole stack through HTTP, probed then run at half its capacity, without an error
    Case(
        "soak",
        (
            "--minutes",
            "0.1",
            "--probe-seconds",
            "3",
            "--storage",
            "memory",
            "--campaigns",
            str(REPO / "examples" / "campaigns.yaml"),
        ),
        True,
        lambda r: r["errors"] == 0 and r["baseline"] > 0 and r["value"] > 0,
    ),
    # the whole stack through HTTP at half its order capacity: every order won by the
    # creator and rule it should, every sampled posting readable, every order that names a
    # known click or carries a code decided at once (the worker's own count)
    Case(
        "latency",
        (
            "--seconds",
            "4",
            "--probe-seconds",
            "2",
            "--visitors",
            "40",
            "--storage",
            "memory",
            "--campaigns",
            str(REPO / "examples" / "campaigns.yaml"),
        ),
        True,
        lambda r: (
            r["unit"] == "ms"
            and r["baseline"] == 5000
            and r["value"] > 0
            and r["unconverted"] == 0
            and not r["wrong_winner"]
            and r["polled"] > 0
            and r["at_once_counted"] >= r["at_once_sent"] > 0
            and r["at_once"]["to_conversion_ms"]["p50"]
            < r["after_grace"]["to_conversion_ms"]["p50"]
        ),
    ),
    # Redis only: every fact stored once, every partition's offset at its end
    Case("ledger", ("--events", "2000", "--creators", "50"), False, lambda r: r["value"] > 0),
    # one and two attribution workers, one and two ledger consumers: the same outputs, each
    # equal to its oracle
    Case(
        "scale",
        ("--visitors", "1500", "--events", "3000", "--creators", "50", "--storage", "memory"),
        True,
        lambda r: (
            r["check"] == "ok"
            and r["attribution_oracle_equal"] is True
            and r["attribution_outputs_equal"] is True
            and r["ledger_outputs_equal"] is True
            and r["value"] > 0
            and r["baseline"] > 0
        ),
    ),
    # the stages' code in memory
    Case(
        "state",
        (
            "--visitors",
            "2000",
        ),
        False,
        lambda r: r["join_keys"] > 0,
    ),
    # what-if from the topics beside a plain read: unchanged terms give an empty diff equal
    # to the oracle's commission, doubled tier rates change it
    Case(
        "whatif",
        ("--visitors", "2000", "--runs", "1", "--storage", "memory"),
        True,
        lambda r: (
            r["passed"] is True
            and all(r["checks"].values())
            and r["whatif_events_per_s"] > 0
            and r["plain_read_events_per_s"] > 0
        ),
    ),
]


# On Apache Kafka (the conformance step) only the benches whose figures depend on the
# broker run again: the ledger and state start none, and the soak's whole-stack path is
# the clicks and orders benches' plus the stages', which the step already covers.
ON_KAFKA_TOO = {"clicks", "orders", "attribution"}


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            case,
            id=case.id,
            marks=[pytest.mark.kafka_conformance] if case.id in ON_KAFKA_TOO else [],
        )
        for case in CASES
    ],
)
def test_each_bench_runs_on_the_chosen_broker_and_passes_its_own_checks(
    case: Case, broker_kind: BrokerKind, tmp_path: Path
) -> None:
    argv = [sys.executable, "-m", "afflux.cli", "bench", case.bench, "--broker", broker_kind]
    try:
        done = subprocess.run(
            [*argv, *case.args, "--json"],
            cwd=tmp_path,  # the soak keeps its stack under ./.afflux
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
    finally:
        # A command killed at the timeout leaves its servers running (each in a session
        # of its own) until the next command: stopped here, not left to load the run.
        orphans.reap()
    output = f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    assert done.returncode == 0, output
    result: Result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["bench"] == case.bench
    assert case.holds(result), output
    if case.starts_a_broker:
        assert result["broker"] == broker_kind, output
    elif broker_kind != "tansu":
        assert f"--broker {broker_kind} changes nothing" in done.stderr


@pytest.mark.kafka_conformance
def test_the_transactional_relay_runs_on_kafka_and_is_refused_on_tansu(
    broker_kind: BrokerKind, tmp_path: Path
) -> None:
    argv = [sys.executable, "-m", "afflux.cli", "bench", "attribution", "--broker", broker_kind]
    small = ("--visitors", "500", "--storage", "memory", "--transactional-relay", "--json")
    done = subprocess.run(
        [*argv, *small], cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False
    )
    output = f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    if broker_kind == "tansu":
        assert done.returncode == 2, output
        assert "--transactional-relay needs --broker kafka" in done.stderr
        return
    assert done.returncode == 0, output
    result: Result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["oracle_match"] is True
    assert result["transactional_relay_per_poll"] > 0
    assert result["transactional_relay_per_record"] > 0
