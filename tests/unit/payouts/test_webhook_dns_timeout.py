"""A delivery whose endpoint name does not resolve in time is a failed attempt, retried,
within the request's timeout: the lookup once ran outside it and held a sender slot for
the resolver's own timeouts, past the delivery's lease."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from afflux.payouts.webhooks.delivery import Deliverer, DeliveryLimits
from afflux.payouts.webhooks.metrics import WebhookMetrics
from afflux.payouts.webhooks.policy import Endpoint
from afflux.payouts.webhooks.redis_store import Job

pytestmark = pytest.mark.unit


class Outcomes:
    """Where the deliverer files each attempt (the store's role; no Redis needed here)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def retry(self, job: Job, due: int) -> None:
        self.calls.append(("retry", job.last_error))

    async def bury(self, job: Job, reason: str, now: int) -> None:
        self.calls.append(("bury", reason))

    async def done(self, job: Job) -> None:
        self.calls.append(("done", ""))


def test_a_name_that_never_resolves_is_a_retried_attempt_within_the_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def never(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(60)

    async def scenario() -> tuple[list[tuple[str, str]], float]:
        monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", never)
        outcomes = Outcomes()
        deliverer = Deliverer(
            store=outcomes,  # type: ignore[arg-type]
            metrics=WebhookMetrics(CollectorRegistry()),
            limits=DeliveryLimits(timeout_s=0.3, allow_private=False),
            clock=lambda: 0,
            wake=asyncio.Event(),
        )
        endpoint = Endpoint("ep", "merchant", "m", "https://hooks.example/in", ("*",), "s" * 32, 0)
        job = Job("wh-1", "ep", "ConversionAttributed", "e-1", "{}", 0)
        started = time.monotonic()
        async with httpx.AsyncClient() as client:
            await deliverer._deliver(client, job, endpoint)
        return outcomes.calls, time.monotonic() - started

    calls, took = asyncio.run(scenario())
    assert calls == [("retry", "TimeoutException: the endpoint's name did not resolve within 0.3s")]
    assert took < 5
