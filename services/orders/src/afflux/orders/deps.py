"""What the orders routes depend on, as ``Annotated`` aliases read from the app's state.

``create_app`` puts each value on ``app.state`` (the ingestor once its lifespan has
connected); a route names the ones it touches in its signature. Every dependency is
``async def fn(request)`` so it runs on the event loop (no thread-pool hop) and
serves the direct merchant routes too (afflux.shared.io.http.direct).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from afflux.orders.errors import Rejected
from afflux.orders.ingest import Ingestor
from afflux.orders.metrics import OrdersMetrics
from afflux.orders.settings import OrdersSettings
from afflux.orders.terms_publisher import TermsPublisher
from afflux.shared.core.clock import Clock
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.http.admin import AdminDep
from afflux.shared.io.http.state import state_dep

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


IngestDep = Annotated[Ingestor, Depends(ready_ingestor)]
SettingsDep = Annotated[OrdersSettings, Depends(state_dep("settings"))]
ClockDep = Annotated[Clock, Depends(state_dep("clock"))]
MetricsDep = Annotated[OrdersMetrics, Depends(state_dep("metrics"))]
DirectoryDep = Annotated[CampaignDirectory, Depends(state_dep("directory"))]
TermsPublisherDep = Annotated[TermsPublisher, Depends(state_dep("terms_publisher"))]
