"""What the payouts routes depend on, as ``Annotated`` aliases read from the app's state.

``create_app`` puts each value on ``app.state`` (the store and the producer once its
lifespan has connected: until then a route needing them answers 503); a route names
the ones it touches in its signature. Every dependency is ``async def fn(request)``
so it runs on the event loop (no thread-pool hop).
"""

from __future__ import annotations

from typing import Annotated

from aiokafka import AIOKafkaProducer
from fastapi import Depends, Request

from afflux.payouts.metrics import PayoutsMetrics
from afflux.payouts.store import LedgerStore
from afflux.shared.campaign_view import CampaignDirectory
from afflux.shared.core.clock import Clock
from afflux.shared.http.admin import AdminDep
from afflux.shared.http.problems import Problem

__all__ = [
    "AdminDep",
    "ClockDep",
    "DirectoryDep",
    "MetricsDep",
    "ProducerDep",
    "StoreDep",
]


async def store_of(request: Request) -> LedgerStore:
    """The ledger store, or 503 until the lifespan has connected to Redis."""
    store: LedgerStore | None = getattr(request.app.state, "store", None)
    if store is None:
        raise Problem(503, None, "starting")
    return store


async def producer_of(request: Request) -> AIOKafkaProducer:
    """The started producer, or 503 until the lifespan has started it."""
    producer: AIOKafkaProducer | None = getattr(request.app.state, "producer", None)
    if producer is None:
        raise Problem(503, None, "starting")
    return producer


async def directory_of(request: Request) -> CampaignDirectory:
    directory: CampaignDirectory = request.app.state.directory
    return directory


async def clock_of(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def metrics_of(request: Request) -> PayoutsMetrics:
    metrics: PayoutsMetrics = request.app.state.metrics
    return metrics


StoreDep = Annotated[LedgerStore, Depends(store_of)]
ProducerDep = Annotated[AIOKafkaProducer, Depends(producer_of)]
DirectoryDep = Annotated[CampaignDirectory, Depends(directory_of)]
ClockDep = Annotated[Clock, Depends(clock_of)]
MetricsDep = Annotated[PayoutsMetrics, Depends(metrics_of)]
