"""Payout runs: ``POST /v1/payouts/run`` (admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from afflux.payouts import params
from afflux.payouts.deps import (
    AdminDep,
    ClockDep,
    DirectoryDep,
    MetricsDep,
    ProducerDep,
    StoreDep,
)
from afflux.payouts.errors import ERROR_RESPONSES
from afflux.payouts.models import PayoutRunAnswer
from afflux.payouts.run import run_payouts

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


class RunRequest(BaseModel):
    period: str | None = Field(None, description="YYYY-MM or YYYY-Www; default: the current one")
    as_of: str | int | None = Field(None, description="approval cut-off; default: now")


@router.post("/payouts/run", response_model=PayoutRunAnswer)
async def payouts_run(
    _: AdminDep,
    store: StoreDep,
    directory: DirectoryDep,
    producer: ProducerDep,
    metrics: MetricsDep,
    clock: ClockDep,
    body: RunRequest | None = None,
) -> dict[str, Any]:
    wanted = body or RunRequest()
    at = params.as_of(None if wanted.as_of is None else str(wanted.as_of), clock())
    period = params.period(wanted.period)
    results = await run_payouts(
        store, directory, producer, as_of=at, period=period, metrics=metrics
    )
    return {"as_of": at, "period": period, "results": results}
