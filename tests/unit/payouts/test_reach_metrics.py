"""The reach a batch adds or takes back shows on /metrics per campaign and measure, never
per creator or content (bounded labels)."""

from __future__ import annotations

import pytest

from afflux.payouts.metrics import PayoutsMetrics
from afflux.payouts.store import Applied

pytestmark = pytest.mark.unit


def sample(metrics: PayoutsMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_added_and_taken_back_reach_are_counted_apart() -> None:
    metrics = PayoutsMetrics()
    grown = {"likes|ana": 300, "views|ana": 4_000, "likes|ben": 50, "commission|ana": 300}
    shrunk = {"likes|ana": -120, "views|ana": 0}
    for deltas in (grown, shrunk):
        metrics.applied(Applied({}, {("shop", "2026-11"): deltas}), [], 0)
    added, removed = "afflux_content_reach_added_total", "afflux_content_reach_removed_total"
    assert sample(metrics, added, campaign="shop", measure="likes") == 350
    assert sample(metrics, added, campaign="shop", measure="views") == 4_000
    assert sample(metrics, removed, campaign="shop", measure="likes") == 120
    assert sample(metrics, removed, campaign="shop", measure="views") is None
    # Only reach measures: other KPI counters are not reach.
    assert sample(metrics, added, campaign="shop", measure="commission") is None
    labels = {
        tuple(sorted(s.labels))
        for family in metrics.registry.collect()
        if family.name.startswith("afflux_content_reach")
        for s in family.samples
    }
    assert labels == {("campaign", "measure")}
