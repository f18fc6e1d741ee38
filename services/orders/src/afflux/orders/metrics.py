"""Prometheus metrics of the orders service, on a registry of its own per app."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

UNKNOWN = "unknown"


class OrdersMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.orders = Counter(
            "afflux_orders_total",
            "Orders, leads and actions received, by outcome "
            "(accepted, duplicate, rejected, unavailable, confirmed)",
            ["campaign", "kind", "outcome"],
            registry=self.registry,
        )
        self.refunds = Counter(
            "afflux_refunds_total",
            "Refunds received, by outcome (accepted, duplicate, rejected, unavailable)",
            ["campaign", "outcome"],
            registry=self.registry,
        )
        self.broker_up = Gauge(
            "afflux_broker_up",
            "1 while the broker answers the orders service (its sends acknowledged, or a"
            " metadata request answered within 0.8 s), read every 15 s; 0 when it does not",
            registry=self.registry,
        )
        self.ingest = Histogram(
            "afflux_ingest_seconds",
            "Time from receiving a merchant request to answering it",
            ["endpoint"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=self.registry,
        )
        # The name every service's dead letters share (the alert AffluxDeadLetters); the
        # reason label is the refusing exception's class, a bounded set (a reason's text
        # names the record's own values).
        self.dlq = Counter(
            "afflux_dlq",
            "Records sent to the dead-letter topic, by source topic and reason",
            ["topic", "reason"],
            registry=self.registry,
        )
        # Its own name, beside the order-outcome index's: the alert AffluxDeadLettersUnsent
        # names each counter, and the label is the source topic alone (bounded).
        self.campaign_dead_letters_unsent = Counter(
            "afflux_orders_campaign_dead_letters_unsent_total",
            "Dead letters of skipped campaigns records that the broker or producer refused "
            "(logged, never sent; the campaign follower went on all the same), by source topic",
            ["topic"],
            registry=self.registry,
        )
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        # labels() costs a lock and a tuple build per call; the label sets are bounded.
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def order(self, campaign: str, kind: str, outcome: str) -> None:
        self._child(self.orders, campaign, kind, outcome).inc()

    def refund(self, campaign: str, outcome: str) -> None:
        self._child(self.refunds, campaign, outcome).inc()

    def took(self, endpoint: str, seconds: float) -> None:
        self._child(self.ingest, endpoint).observe(seconds)
