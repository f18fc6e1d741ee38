"""What the worker fault tests share: the scenario cut into slices,
and waiting on the worker's progress (never on a guessed sleep)."""

from __future__ import annotations

import asyncio
import itertools
import time
import urllib.request

import harness as h
import pytest

from afflux.oracle import Scenario

# Refunds wait long enough for their order's outcome even across a restart.
SLOW_REFUNDS = {"AFFLUX_REFUND_WAIT_SECONDS": "20"}
# Both stores on the embedded broker; on Apache Kafka (``kafka_conformance``) the memory
# store, whose changelog writes go out as record batches: the disk store's writes are
# plain sends, which every other conformance test makes, and its runs double the Kafka
# step's time for no broker behaviour of their own.
STATE_STORES = (pytest.param("memory", marks=pytest.mark.kafka_conformance), "disk")


def worker_env(store: str) -> dict[str, str]:
    return {**SLOW_REFUNDS, "AFFLUX_STATE_STORE": store}


def chunks(scenario: Scenario, n: int) -> list[list[object]]:
    """``n`` slices in order, never cutting through one visitor's block of events.

    The oracle counts every click of a visitor; the worker rightly ignores clicks
    that reach the broker after an order's grace, so a pause between slices must
    not fall between an order and its own clicks.
    """
    events = scenario.events
    size = -(-len(events) // n)
    cuts = [0]
    for nominal in range(size, len(events), size):
        cut = max(nominal, cuts[-1])
        while (
            cut < len(events)
            and _visitor(events[cut]) is not None
            and _visitor(events[cut]) == _visitor(events[cut - 1])
        ):
            cut += 1
        cuts.append(cut)
    cuts.append(len(events))
    return [list(events[a:b]) for a, b in itertools.pairwise(cuts) if b > a]


def _visitor(event: object) -> str | None:
    return getattr(event, "visitor_id", None)


def output_count(bootstrap: str) -> int:
    topics = asyncio.run(h.read_topics(bootstrap, h.OUTPUTS))
    return sum(len(v) for v in topics.values())


def wait_for_outputs(bootstrap: str, at_least: int, timeout_s: float = 60) -> int:
    """Until the worker has written ``at_least`` outputs: a fault lands mid-stream by
    progress, not after a guessed sleep."""
    deadline = time.monotonic() + timeout_s
    while (count := output_count(bootstrap)) < at_least:
        assert time.monotonic() < deadline, f"{count} outputs within {timeout_s:.0f}s"
        time.sleep(0.2)
    return count


def events_processed(port: int) -> float:
    """The worker's ``afflux_attribution_events_total``, summed over its labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
        text = resp.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("afflux_attribution_events_total")
    )
