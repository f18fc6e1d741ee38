"""What the orders routes depend on, as ``Annotated`` aliases read from the app's state.

``create_app`` puts each value on ``app.state`` (the ingestor once its lifespan has
connected); a route names the ones it touches in its signature. Every dependency is
``async def fn(request)`` so it runs on the event loop (no thread-pool hop) and
serves the direct merchant routes too (afflux.shared.http.direct).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from afflux.orders.errors import Rejected
from afflux.orders.ingest import Ingestor
from afflux.orders.metrics import OrdersMetrics
from afflux.orders.settings import OrdersSettings
from afflux.orders.terms_publisher import TermsPublisher
from afflux.shared.campaign_view import CampaignDirectory
from afflux.shared.core.clock import Clock
from afflux.shared.http.admin import AdminDep

__all__ = [
    "AdminDep",
    "ClockDep",
    "DirectoryDep",
    "IngestDep",
    "MetricsDep",
    "SettingsDep",
    "TermsPublisherDep",
]


async def ready_ingestor(request: Request) -> Ingestor:
    """The ingestor, or 503 until it is connected and the campaign terms are loaded."""
    ingestor: Ingestor | None = getattr(request.app.state, "ingestor", None)
    if ingestor is None or not ingestor.directory.ready.is_set():
        raise Rejected(503, None, "starting: campaign terms not loaded yet")
    return ingestor


async def settings_of(request: Request) -> OrdersSettings:
    settings: OrdersSettings = request.app.state.settings
    return settings


async def clock_of(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def metrics_of(request: Request) -> OrdersMetrics:
    metrics: OrdersMetrics = request.app.state.metrics
    return metrics


async def directory_of(request: Request) -> CampaignDirectory:
    directory: CampaignDirectory = request.app.state.directory
    return directory


async def terms_publisher_of(request: Request) -> TermsPublisher:
    publisher: TermsPublisher = request.app.state.terms_publisher
    return publisher


IngestDep = Annotated[Ingestor, Depends(ready_ingestor)]
SettingsDep = Annotated[OrdersSettings, Depends(settings_of)]
ClockDep = Annotated[Clock, Depends(clock_of)]
MetricsDep = Annotated[OrdersMetrics, Depends(metrics_of)]
DirectoryDep = Annotated[CampaignDirectory, Depends(directory_of)]
TermsPublisherDep = Annotated[TermsPublisher, Depends(terms_publisher_of)]
