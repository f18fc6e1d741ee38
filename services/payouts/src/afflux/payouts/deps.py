"""What the payouts routes depend on, as ``Annotated`` aliases read from the app's state.

``create_app`` puts each value on ``app.state`` (the store and the producer once its
lifespan has connected: until then a route needing them answers 503); a route names
the ones it touches in its signature (afflux.shared.io.http.state).
"""

from __future__ import annotations

from typing import Annotated

from aiokafka import AIOKafkaProducer
from fastapi import Depends

from afflux.payouts.metrics import PayoutsMetrics
from afflux.payouts.store import LedgerStore
from afflux.shared.core.clock import Clock
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.http.admin import AdminDep
from afflux.shared.io.http.state import started_dep, state_dep

__all__ = [
    "AdminDep",
    "ClockDep",
    "DirectoryDep",
    "MetricsDep",
    "ProducerDep",
    "StoreDep",
]


StoreDep = Annotated[LedgerStore, Depends(started_dep("store"))]
ProducerDep = Annotated[AIOKafkaProducer, Depends(started_dep("producer"))]
DirectoryDep = Annotated[CampaignDirectory, Depends(state_dep("directory"))]
ClockDep = Annotated[Clock, Depends(state_dep("clock"))]
MetricsDep = Annotated[PayoutsMetrics, Depends(state_dep("metrics"))]
