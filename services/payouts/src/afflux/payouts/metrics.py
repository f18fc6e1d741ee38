"""Prometheus metrics of the payouts service (labels bounded: campaigns, kinds, scopes)."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from afflux.payouts.redis_memory import RedisMemoryCollector
from afflux.payouts.store import Applied

# KPI counters of a content's reach (afflux.shared.core.journal.kpis.reach_contribution).
REACH_MEASURES = frozenset(
    ("views", "impressions", "likes", "comments", "shares", "saves", "followers")
)


class PayoutsMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.commission = Counter(
            "afflux_commission_minor_total",
            "Commission posted, in minor units: the postings that add, by posting kind "
            "(accrual, click_pay, tier_adjustment, cap_release, ...); reductions show in "
            "the ledger",
            ["campaign", "currency", "kind"],
            registry=self.registry,
        )
        self.cap_cuts = Counter(
            "afflux_cap_cuts_total",
            "Cap cut postings: an accrual cut by a creator cap or a campaign budget",
            ["campaign", "scope"],
            registry=self.registry,
        )
        self.ledger_lag = Histogram(
            "afflux_ledger_lag_seconds",
            "Event time of a ledger input to its application in Redis",
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
            registry=self.registry,
        )
        self.dlq = Counter(
            "afflux_dlq_total",
            "Records sent to the dead-letter topic",
            ["topic", "reason"],
            registry=self.registry,
        )
        self.dlq_unsent = Counter(
            "afflux_dlq_unsent_total",
            "Dead letters the broker or producer refused (logged, never sent; the record "
            "is passed all the same)",
            ["topic"],
            registry=self.registry,
        )
        self.offset_holes = Counter(
            "afflux_ledger_offset_holes_total",
            "Offsets found missing from an input log and read past (a broker left a hole)",
            registry=self.registry,
        )
        self.write_failures = Counter(
            "afflux_ledger_write_failures_total",
            "Ledger batches Redis refused or did not answer (each retried from the offsets"
            " Redis holds): out of memory, a key of another type, Redis away",
            registry=self.registry,
        )
        self.applied_batches = Counter(
            "afflux_ledger_batches_total", "Batches applied to the ledger", registry=self.registry
        )
        self.whatif = Counter(
            "afflux_whatif_replays_total",
            "What-if replays by outcome: done, busy (another was running), too_large (past "
            "AFFLUX_WHATIF_MAX_EVENTS), timeout (past AFFLUX_WHATIF_TIME_LIMIT_S), unavailable",
            ["outcome"],
            registry=self.registry,
        )
        self.whatif_seconds = Histogram(
            "afflux_whatif_seconds",
            "Time a what-if replay took, reading the topics included",
            buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
            registry=self.registry,
        )
        self.payouts = Counter(
            "afflux_payouts_total",
            "Payout run results",
            ["outcome"],
            registry=self.registry,
        )
        self.ready = Gauge(
            "afflux_ledger_ready",
            "1 while the ledger consumer runs and holds exactly what the log holds; 0 while "
            "starting, while the ledger is rebuilt, or when a partition diverged",
            registry=self.registry,
        )
        self.diverged = Gauge(
            "afflux_ledger_diverged_partitions",
            "Partitions not consumed because the log no longer holds what the ledger applied "
            "(stored offset beyond the log end, or another record at the last applied offset)",
            registry=self.registry,
        )
        self.reach_added = Counter(
            "afflux_content_reach_added_total",
            "What newer content snapshots added to creators' reach, by measure (views, "
            "impressions, likes, comments, shares, saves, followers): each content counts "
            "at its latest snapshot",
            ["campaign", "measure"],
            registry=self.registry,
        )
        self.reach_removed = Counter(
            "afflux_content_reach_removed_total",
            "What newer but smaller content snapshots took back (likes a platform removed): "
            "the net reach over a range is added minus removed",
            ["campaign", "measure"],
            registry=self.registry,
        )
        self.redis_memory = RedisMemoryCollector(self.registry)

    def applied(self, applied: Applied, event_times: Sequence[int], now_ms: int) -> None:
        self.applied_batches.inc()
        for at in event_times:
            self.ledger_lag.observe(max(0.0, (now_ms - at) / 1000))
        for (campaign, _), postings in applied.postings.items():
            for posting in postings:
                if posting.amount_minor > 0:
                    self.commission.labels(campaign, posting.currency, posting.kind).inc(
                        posting.amount_minor
                    )
                if posting.kind == "cap_cut":
                    scope = posting.component.partition(":")[2]
                    self.cap_cuts.labels(campaign, scope).inc()
        for (campaign, _), deltas in applied.kpis.items():
            for name, delta in deltas.items():
                measure = name.partition("|")[0]
                if delta and measure in REACH_MEASURES:
                    counter = self.reach_added if delta > 0 else self.reach_removed
                    counter.labels(campaign, measure).inc(abs(delta))

    def dead_letter(self, topic: str, reason: str) -> None:
        kind = (
            "undecodable"
            if reason.startswith(("not JSON", "invalid event", "record"))
            else "rejected"
        )
        self.dlq.labels(topic, kind).inc()
