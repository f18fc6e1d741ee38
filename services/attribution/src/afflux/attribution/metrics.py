"""Prometheus metrics of the attribution worker, on a registry of its own."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

SERVICE = "attribution"


# Through the hour every few minutes: between 300 and 3600 the p90 was interpolated, a
# 12-minute lag read as 37 (AffluxAttributionLagHigh, at 15 minutes).
_WITHIN_THE_HOUR_S = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600)
LAG_BUCKETS_S: tuple[float, ...] = (*_WITHIN_THE_HOUR_S, 86_400, 604_800, 2_592_000)


class AttributionMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.conversions = Counter(
            "afflux_conversions_total",
            "Orders attributed to a creator, by campaign and reason (click_id, coupon, cookie)",
            ["campaign", "reason"],
            registry=r,
        )
        self.unattributed = Counter(
            "afflux_unattributed_orders_total",
            "Orders no creator earned, by campaign and reason",
            ["campaign", "reason"],
            registry=r,
        )
        self.lag = Histogram(
            "afflux_attribution_lag_seconds",
            "Order event time to its outcome being emitted",
            buckets=LAG_BUCKETS_S,
            registry=r,
        )
        self.late_clicks = Counter(
            "afflux_late_clicks_total",
            "Clicks that arrived after an order they were eligible for was decided, per such"
            " order, by what re-deciding it did (unchanged, reattributed, attributed)",
            ["outcome"],
            registry=r,
        )
        self.late_signals = Counter(
            "afflux_late_signals_total",
            "Creators' content (a live stream, its end, a handle) or survey answers that came"
            " after an order they concern was decided, per such order, by what re-deciding it"
            " did (unchanged, reattributed, attributed)",
            ["signal", "outcome"],
            registry=r,
        )
        self.decisions = Counter(
            "afflux_attribution_decisions_total",
            "Orders decided, by when: at_once (their winner was settled on arrival) or"
            " after_grace (after waiting the campaign's grace for late clicks)",
            ["when"],
            registry=r,
        )
        self.dlq = Counter(
            "afflux_dlq_total",
            "Records sent to the dead-letter topic, by source topic and reason",
            ["topic", "reason"],
            registry=r,
        )
        self.visitor_clicks_dropped = Counter(
            "afflux_attribution_visitor_clicks_dropped_total",
            "Clicks the join gave up because their visitor id held more than"
            " AFFLUX_ATTRIBUTION_CLICKS_PER_VISITOR (a script replaying one cookie):"
            " flagged ones first, then the oldest",
            registry=r,
        )
        self.state_keys = Gauge(
            "afflux_attribution_state_keys",
            "Keys held in the worker's state, by stage",
            ["stage"],
            registry=r,
        )
        self.consumer_lag = Gauge(
            "afflux_consumer_lag_messages",
            "Records not yet processed (fetch high watermark minus processed offset)",
            ["service", "topic"],
            registry=r,
        )
        self.reversals = Counter(
            "afflux_reversals_total", "Refunds turned into reversals", ["campaign"], registry=r
        )
        self.refunds_unmatched = Counter(
            "afflux_refunds_unmatched_total",
            "Refunds with no conversion to reverse, by reason",
            ["campaign", "reason"],
            registry=r,
        )
        self.events = Counter(
            "afflux_attribution_events_total", "Input events processed", ["topic"], registry=r
        )
        self.refetched = Counter(
            "afflux_attribution_refetched_records_total",
            "Input records the consumer skipped and the worker read back itself",
            registry=r,
        )
        self.ready = Gauge(
            "afflux_attribution_ready",
            "1 while the worker processes every partition it was given, else 0 (starting,"
            " recovering, or a partition stopped because its state no longer matches its input)",
            registry=r,
        )
        self.diverged = Gauge(
            "afflux_attribution_diverged_partitions",
            "Partitions stopped because their state no longer matches their input log"
            " (a recreated topic, an offset beyond the log end), by stage",
            ["stage"],
            registry=r,
        )
        self.failed = Gauge(
            "afflux_attribution_failed_partitions",
            "Partitions stopped by a failed batch, waiting to be retried from their"
            " changelog, by stage",
            ["stage"],
            registry=r,
        )
        self.batch_failures = Counter(
            "afflux_attribution_batch_failures_total",
            "Batches (records, a read-back, a tick) that raised and stopped their"
            " partitions until a retry, by stage",
            ["stage"],
            registry=r,
        )
        self._children: dict[tuple[Any, ...], Any] = {}

    def child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found
