"""The join's handler with its campaign view and content book, one partition, driven as
the worker drives it without Kafka: inputs, content records, timer ticks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from afflux.attribution.content_view import ContentBook
from afflux.attribution.handlers import Campaigns, JoinHandler
from afflux.attribution.join import JoinPartition
from afflux.attribution.metrics import AttributionMetrics
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import (
    CampaignTermsPublished,
    ContentPublished,
    ContentReleased,
    Envelope,
    OrderPlaced,
    SurveyAnswer,
)
from afflux.shared.io.campaign_view import CampaignDirectory


class Worker:
    """One partition of the join for the campaign of ``versions``."""

    def __init__(self, versions: Sequence[TermsVersion]) -> None:
        directory = CampaignDirectory()
        campaign = versions[0].terms.campaign_id
        directory.apply(
            CampaignTermsPublished(
                event_id="t", occurred_at=0, campaign_id=campaign, versions=tuple(versions)
            )
        )
        self.book = ContentBook()
        self.book.ready.set()
        self.handler = JoinHandler(
            Campaigns(directory), AttributionMetrics(), 400 * 86_400_000, content=self.book
        )
        self.state: JoinPartition = self.handler.new_state()
        self.out: list[Envelope] = []
        self.refused: list[str] = []
        self.read = 0  # content records read

    def send(self, topic: str, event: Any, ts: int) -> None:
        outputs, refused = self.handler.on_event(self.state, topic, event, ts)
        self.out += [e for _, _, e in outputs]
        if refused:
            self.refused.append(refused)

    def content(self, event: ContentPublished | ContentReleased, ts: int) -> None:
        """The next content record (one partition, one item per record) at broker time
        ``ts``, taken by the content book as the worker's reader hands it over."""
        position = (0, self.read, 0)
        if isinstance(event, ContentReleased):
            self.book.release(event, ts, position)
        else:
            self.book.apply(event, ts, position)
        self.read += 1

    def tick(self, safe_ms: int) -> None:
        self.out += [e for _, _, e in self.handler.due(self.state, safe_ms)]

    def signals(self, signal: str) -> dict[str, int]:
        """afflux_late_signals_total for ``signal``, by outcome."""
        out: dict[str, int] = {}
        for metric in self.handler.metrics.registry.collect():
            for sample in metric.samples:
                if sample.name == "afflux_late_signals_total" and sample.labels["signal"] == signal:
                    out[sample.labels["outcome"]] = int(sample.value)
        return out


MINUTE = 60_000
START = 1_793_491_200_000  # a stream's start
END = START + 60 * MINUTE  # and its end
ARRIVED = START + 4 * 60 * MINUTE  # broker time of the orders
GRACE_MS = 1_000


def stream_versions(campaign_id: str, **terms: Any) -> tuple[TermsVersion, ...]:
    """One version of a campaign ranking streams after cookies, 1 s grace, 10 % a sale."""
    return (
        TermsVersion(
            version=1,
            effective_from=0,
            published_at=0,
            terms=CampaignTerms.model_validate(
                {
                    "campaign_id": campaign_id,
                    "merchant_id": "m",
                    "currency": "EUR",
                    "grace_seconds": 1,
                    "precedence": ["click_id", "coupon", "cookie", "livestream"],
                    "plan": {"sale": {"rate": {"percent": "10"}}},
                    **terms,
                }
            ),
        ),
    )


def sale(campaign_id: str, oid: str, at: int, survey: SurveyAnswer | None = None) -> OrderPlaced:
    """A 100.00 EUR sale of its own visitor."""
    return OrderPlaced(
        event_id=f"ev-{oid}",
        occurred_at=at,
        order_id=oid,
        campaign_id=campaign_id,
        merchant_id="m",
        amount_minor=10_000,
        currency="EUR",
        visitor_id=f"v-{oid}",
        survey=survey,
    )
