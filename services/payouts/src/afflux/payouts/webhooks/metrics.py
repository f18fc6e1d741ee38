"""Prometheus metrics of the webhook sender; labels are bounded (outcomes, event types),
never endpoint ids or URLs."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

OUTCOMES = ("delivered", "retry_scheduled", "dead_lettered", "refused", "queue_full")
UNREADABLE_STEPS = ("routing", "delivery")


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter(
            "afflux_webhook_deliveries_total",
            "Webhook delivery attempts by outcome: delivered (2xx), retry_scheduled (failed, "
            "tried again later), dead_lettered (last attempt failed), refused (address or body "
            "not allowed), queue_full (the endpoint's retry queue was full)",
            ["outcome"],
            registry=registry,
        )
        for outcome in OUTCOMES:
            self.deliveries.labels(outcome)
        self.seconds = Histogram(
            "afflux_webhook_delivery_seconds",
            "Time of one webhook request, from connecting to the end of the (bounded) answer",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.queue_depth = Gauge(
            "afflux_webhook_retry_queue_depth",
            "Webhook deliveries scheduled and not yet delivered or dead-lettered (all endpoints)",
            registry=registry,
        )
        self.events = Counter(
            "afflux_webhook_events_total",
            "Events read by the webhook sender that matched at least one endpoint, by type",
            ["event_type"],
            registry=registry,
        )
        self.unreadable_endpoints = Counter(
            "afflux_webhook_unreadable_endpoints_total",
            "Webhook endpoint records read that could not be decoded (a field of a newer "
            "version, damage; each logged with its endpoint id) and skipped, that endpoint "
            "alone, by step: routing (an event's delivery to it not made: replay it once the "
            "record reads), delivery (its scheduled deliveries held back)",
            ["step"],
            registry=registry,
        )
        for step in UNREADABLE_STEPS:
            self.unreadable_endpoints.labels(step)
        self.dead_letters = Counter(
            "afflux_webhook_dead_letters_total",
            "Records or items the webhook sender could not read or turn into deliveries, "
            "dead-lettered (unsent: the broker refused the letter; logged), by topic",
            ["topic", "sent"],
            registry=registry,
        )
