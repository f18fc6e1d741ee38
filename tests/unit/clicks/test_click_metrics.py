"""The redirect's own metrics are plain counts exposed as prometheus_client would expose them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from afflux.clicks.metrics import REDIRECT_BUCKETS, ClicksMetrics


def _samples(registry: CollectorRegistry, prefix: str) -> set[str]:
    lines = generate_latest(registry).decode().splitlines()
    return {line for line in lines if line.startswith(prefix) and "_created" not in line}


def test_redirect_latency_is_exposed_like_a_prometheus_histogram() -> None:
    values = [0.00005, 0.0001, 0.0001000001, 0.0003, 0.004, 0.01, 0.3, 0.5, 0.7, 2.0]
    metrics = ClicksMetrics()
    reference = CollectorRegistry()
    histogram = Histogram(
        "afflux_redirect_seconds", "x", buckets=REDIRECT_BUCKETS, registry=reference
    )
    for value in values:
        metrics.observe(value)
        histogram.observe(value)

    ours = _samples(metrics.registry, "afflux_redirect_seconds")
    assert ours == _samples(reference, "afflux_redirect_seconds")
    assert 'afflux_redirect_seconds_bucket{le="0.0001"} 2.0' in ours
    assert 'afflux_redirect_seconds_bucket{le="+Inf"} 10.0' in ours


def test_clicks_are_counted_per_campaign_and_outcome_like_a_prometheus_counter() -> None:
    metrics = ClicksMetrics()
    reference = CollectorRegistry()
    counter = Counter("afflux_clicks", "x", ["campaign", "outcome"], registry=reference)
    for campaign, outcome in [("c1", "redirected")] * 3 + [("none", "not_found"), ("c2", "bot")]:
        metrics.click(campaign, outcome)
        counter.labels(campaign, outcome).inc()

    ours = _samples(metrics.registry, "afflux_clicks_total")
    assert ours == _samples(reference, "afflux_clicks_total")
    assert 'afflux_clicks_total{campaign="c1",outcome="redirected"} 3.0' in ours
