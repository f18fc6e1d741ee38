"""Prometheus metrics of the clicks service, on a registry of its own per app."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from afflux.shared.core.click_flags import CLICK_FLAGS

# Up to the 5 s a redirect may wait on Redis (its timeout): with 0.5 s the last bound, a
# Redis that hung put a quarter of the redirects in +Inf and the p99 read 0.5 s.
REDIRECT_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 2.5, 5, 10
)  # fmt: skip
OUTCOMES = ("redirected", "bot", "duplicate", "not_found", "unrecorded", "prefetch")
NO_CAMPAIGN = "none"
PREFETCH = "prefetch"  # a fetch ahead of a visit, declined: no click (``quality.fetched_ahead``)


class ClicksMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # The two metrics every redirect updates are plain counts in this process, turned
        # into samples when scraped: a prometheus_client child costs a lock and a few
        # calls per update, several times what these increments cost (docs/clicks.md).
        self._click_counts: dict[tuple[str, str], int] = {}
        self.registry.register(ClickCounts(self._click_counts))
        self.redirect = RedirectLatency(REDIRECT_BUCKETS)
        self.registry.register(self.redirect)
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
        self.links_unreadable = Counter(
            "afflux_clicks_links_unreadable",
            "Link values that could not be read, by source: topic (a links record a restore "
            "skipped and dead-lettered) or redis (a stored link, dropped and restored from the "
            "topic), and reason (afflux.clicks.links.reason_label)",
            ["source", "reason"],
            registry=self.registry,
        )
        self.dlq = Counter(
            "afflux_dlq",
            "Records sent to the dead-letter topic, by source topic and reason",
            ["topic", "reason"],
            registry=self.registry,
        )
        # Its own name, beside the ledger's and the order-outcome index's: the alert
        # AffluxDeadLettersUnsent names each service's counter.
        self.dead_letters_unsent = Counter(
            "afflux_clicks_dead_letters_unsent",
            "Dead letters of skipped links records that the broker or producer refused "
            "(logged, never sent; the restore went on all the same), by source topic",
            ["topic"],
            registry=self.registry,
        )
        self._flag_counts: dict[tuple[str, ...], int] = {}
        self.registry.register(FlaggedClicks(self._flag_counts))
        self.observe = self.redirect.observe

    def flagged(self, reasons: tuple[str, ...]) -> None:
        # One dict increment per flagged click; the counter is summed when scraped.
        counts = self._flag_counts
        counts[reasons] = counts.get(reasons, 0) + 1

    def click(self, campaign: str, outcome: str) -> None:
        # The label sets are bounded: campaigns are few and outcomes fixed.
        counts = self._click_counts
        key = (campaign, outcome)
        counts[key] = counts.get(key, 0) + 1

    def track_wal(
        self, size: Callable[[], int], segments: Callable[[], int], unsent: Callable[[], int]
    ) -> None:
        self.wal_bytes.set_function(size)
        self.wal_segments.set_function(segments)
        self.wal_unsent.set_function(unsent)


class FlaggedClicks(Collector):
    """``afflux_clicks_flagged_total{reason}`` from the per-combination counts."""

    def __init__(self, counts: dict[tuple[str, ...], int]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "afflux_clicks_flagged",
            "Flagged clicks by reason (a click may carry several reasons)",
            labels=["reason"],
        )
        totals = dict.fromkeys(CLICK_FLAGS, 0)
        for reasons, n in list(self.counts.items()):
            for reason in reasons:
                totals[reason] = totals.get(reason, 0) + n
        for reason, n in totals.items():
            family.add_metric([reason], n)
        yield family


class ClickCounts(Collector):
    """``afflux_clicks_total{campaign, outcome}`` from the per-label-set counts."""

    def __init__(self, counts: dict[tuple[str, str], int]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "afflux_clicks",
            "Tracking-link requests by outcome (redirected, not_found, or the first quality flag)",
            labels=["campaign", "outcome"],
        )
        for (campaign, outcome), n in list(self.counts.items()):
            family.add_metric([campaign, outcome], n)
        yield family


class RedirectLatency(Collector):
    """``afflux_redirect_seconds``: a histogram kept as one count per bucket (a value
    counts in the first bucket whose bound it does not exceed, as Prometheus's ``le``)
    and made cumulative when scraped."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one: above every bound
        self.sum = 0.0
        self._labels = (*(repr(float(bound)) for bound in self.bounds), "+Inf")

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds

    def collect(self) -> Iterator[HistogramMetricFamily]:
        counts, total = list(self.counts), self.sum
        buckets: list[tuple[str, float]] = []
        running = 0
        for label, n in zip(self._labels, counts, strict=True):
            running += n
            buckets.append((label, running))
        yield HistogramMetricFamily(
            "afflux_redirect_seconds",
            "Time spent answering GET/HEAD /c/{code} inside the service",
            buckets=buckets,
            sum_value=total,
        )
