"""Prometheus metrics of the clicks service, on a registry of its own per app."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from afflux.shared.core.click_flags import CLICK_FLAGS

OUTCOMES = ("redirected", "bot", "duplicate", "not_found", "unrecorded")
NO_CAMPAIGN = "none"


class ClicksMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.clicks = Counter(
            "afflux_clicks",
            "Tracking-link requests by outcome (redirected, not_found, or the first quality flag)",
            ["campaign", "outcome"],
            registry=self.registry,
        )
        self.redirect = Histogram(
            "afflux_redirect_seconds",
            "Time spent answering GET/HEAD /c/{code} inside the service",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
            registry=self.registry,
        )
        self.wal_bytes = Gauge(
            "afflux_clicks_wal_bytes",
            "Bytes of the click write-ahead log on disk",
            registry=self.registry,
        )
        self.wal_max_bytes = Gauge(
            "afflux_clicks_wal_max_bytes",
            "Size limit of the click write-ahead log; at the limit clicks are not recorded",
            registry=self.registry,
        )
        self.wal_segments = Gauge(
            "afflux_clicks_wal_segments",
            "Segment files of the click write-ahead log",
            registry=self.registry,
        )
        self.wal_unsent = Gauge(
            "afflux_clicks_wal_unsent_records",
            "Click events on disk that the broker has not acknowledged yet",
            registry=self.registry,
        )
        self.wal_fsync = Histogram(
            "afflux_clicks_wal_fsync_seconds",
            "Time to write and fsync one group of clicks to the write-ahead log",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
            registry=self.registry,
        )
        self.sent = Counter(
            "afflux_click_events_sent",
            "Click events acknowledged by the broker",
            registry=self.registry,
        )
        self.flags = Counter(
            "afflux_clicks_flagged",
            "Flagged clicks by reason (a click may carry several reasons)",
            ["reason"],
            registry=self.registry,
        )
        self._flag_children = {reason: self.flags.labels(reason) for reason in CLICK_FLAGS}
        self._children: dict[tuple[str, str], Any] = {}
        self.observe = self.redirect.observe

    def flagged(self, reasons: tuple[str, ...]) -> None:
        for reason in reasons:
            self._flag_children[reason].inc()

    def click(self, campaign: str, outcome: str) -> None:
        # labels() costs a lock and a tuple build per call; the label sets are bounded
        # (campaigns are few and outcomes fixed).
        child = self._children.get((campaign, outcome))
        if child is None:
            child = self._children[(campaign, outcome)] = self.clicks.labels(campaign, outcome)
        child.inc()

    def track_wal(
        self, size: Callable[[], int], segments: Callable[[], int], unsent: Callable[[], int]
    ) -> None:
        self.wal_bytes.set_function(size)
        self.wal_segments.set_function(segments)
        self.wal_unsent.set_function(unsent)
