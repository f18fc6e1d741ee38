"""What one poll of the ledger consumer brings, placed in campaign-periods, and what
applying it answers: the postings written, or the periods refused."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from afflux.payouts.tallies import ClickItem
from afflux.shared.core.commission import ConversionFact, RefundFact
from afflux.shared.core.engagement import ContentEvent
from afflux.shared.core.journal.records import Posting
from afflux.shared.core.journal.review_lines import ReviewFact

Period = tuple[str, str]  # campaign, period


@dataclass
class Batch:
    """What one poll of the consumer brings, decoded and placed in campaign-periods."""

    conversions: list[tuple[str, str, ConversionFact]] = field(default_factory=list)  # cid, period
    refunds: list[tuple[str, str, RefundFact]] = field(default_factory=list)  # cid, period, fact
    confirmations: list[tuple[str, str, str]] = field(default_factory=list)  # cid, order, event
    clicks: list[ClickItem] = field(default_factory=list)
    content: list[tuple[str, str, ContentEvent]] = field(default_factory=list)  # cid, period
    content_routes: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # key -> route
    # key -> [campaign, period, creator, awaiting its release]: written over the first one
    # (``{ledger}:content``), by a release of a content awaiting it and by a takeover
    awaiting: set[str] = field(default_factory=set)  # new routes whose content awaits release
    content_reroutes: dict[str, list[object]] = field(default_factory=dict)
    confirm_required: set[str] = field(default_factory=set)  # campaigns that confirm leads
    reviews: list[tuple[str, str, ReviewFact]] = field(default_factory=list)  # cid, period
    # conversion id -> [campaign, period, order, creator, order time]: the review index
    review_index: dict[str, list[object]] = field(default_factory=dict)
    # payout records read back from the payouts topic (``payout_records.from_event``)
    payouts: list[dict[str, Any]] = field(default_factory=list)
    offsets: dict[str, int] = field(default_factory=dict)  # "topic|partition" -> next offset
    last: dict[str, str] = field(default_factory=dict)  # "topic|partition" -> fingerprint

    def merge(self, other: Batch) -> None:
        self.conversions += other.conversions
        self.payouts += other.payouts
        self.refunds += other.refunds
        self.confirmations += other.confirmations
        self.clicks += other.clicks
        self.content += other.content
        self.content_routes.update(other.content_routes)
        self.awaiting |= other.awaiting
        self.content_reroutes.update(other.content_reroutes)
        self.confirm_required |= other.confirm_required
        self.reviews += other.reviews
        for conversion, entry in other.review_index.items():  # the first copy names it
            self.review_index.setdefault(conversion, entry)

    def periods(self) -> set[Period] | None:
        """The campaign-periods the batch's items are placed in; None when one is only
        found when applied (a lead confirmation goes to its conversion's period)."""
        if self.confirmations:
            return None
        found = {(cid, period) for cid, period, _ in self.conversions}
        found |= {(cid, period) for cid, period, _ in self.refunds}
        found |= {(click.campaign_id, click.period) for click in self.clicks}
        found |= {(cid, period) for cid, period, _ in self.content}
        found |= {(cid, period) for cid, period, _ in self.reviews}
        return found

    def empty(self) -> bool:
        return not (
            self.conversions
            or self.refunds
            or self.confirmations
            or self.clicks
            or self.content
            or self.reviews
            or self.offsets
        )


class LedgerReset(Exception):
    """The ledger was cleared (or is being cleared) under the consumer: start over."""


class PeriodsRefused(Exception):
    """Deciding some campaign-periods of a batch raised before anything of theirs was
    written; every other period of the batch was written (its running sums and the
    batch's offsets were not). Only the refused periods' items need applying one by
    one: the rest of the batch, applied again, finds its facts known."""

    def __init__(self, refused: Mapping[Period, Exception], written: Applied) -> None:
        first = next(iter(refused.values()))
        super().__init__(f"{len(refused)} period(s) refused, first: {first!r}")
        self.refused = dict(refused)
        self.written = written


@dataclass(frozen=True)
class Applied:
    """What a batch posted, per campaign-period, and how it moved the KPI counters
    (afflux.shared.core.journal.kpis), for metrics."""

    postings: dict[Period, tuple[Posting, ...]]
    kpis: dict[Period, Mapping[str, int]] = field(default_factory=dict)
