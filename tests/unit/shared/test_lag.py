"""Lag per topic from high watermarks and next offsets."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry

from afflux.shared.io.lag import ConsumerLag, lag_per_topic

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


@dataclass(frozen=True)
class Case:
    highs: dict[TP, int | None]
    nexts: dict[TP, int | None]
    want: dict[str, int]


A0, A1, B0 = TP("a", 0), TP("a", 1), TP("b", 0)

CASES = {
    # partitions of one topic add up
    "summed per topic": Case({A0: 10, A1: 5, B0: 3}, {A0: 4, A1: 5, B0: 0}, {"a": 6, "b": 3}),
    # no Fetch response yet: no high watermark, so nothing is claimed for that partition
    "unknown high watermark skipped": Case({A0: None, A1: 8}, {A0: 0, A1: 2}, {"a": 6}),
    "topic with no fetched partition absent": Case({B0: None}, {B0: 0}, {}),
    # fetched but nothing processed yet: everything below the watermark is behind
    "nothing processed": Case({A0: 12}, {A0: None}, {"a": 12}),
    # a position past a stale watermark is never negative lag
    "caught up past the watermark": Case({A0: 5}, {A0: 7}, {"a": 0}),
    "empty partition": Case({A0: 0}, {A0: 0}, {"a": 0}),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_lag_per_topic(case: Case) -> None:
    assert lag_per_topic(case.highs, case.highs.get, case.nexts.get) == case.want


def test_gauge_follows_assignment() -> None:
    registry = CollectorRegistry()
    lag = ConsumerLag("payouts", registry)
    lag.publish({"conversions": 4, "reversals": 0})
    lag.publish({"conversions": 1})

    def value(topic: str) -> float | None:
        labels = {"service": "payouts", "topic": topic}
        return registry.get_sample_value("afflux_consumer_lag_messages", labels)

    assert value("conversions") == 1
    assert value("reversals") is None  # no longer assigned here: the series is gone
