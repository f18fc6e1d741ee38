"""An order after its grace is decided once the worker has read its inputs up to a fetch
answered at the grace's end plus the arrival margin (AFFLUX_ARRIVAL_MARGIN_MS): records
stamped by their producer up to the margin before the broker took them still count."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from afflux.attribution.join import JoinPartition
from afflux.attribution.metrics import AttributionMetrics
from afflux.attribution.runtime import Runtime
from afflux.attribution.settings import AttributionSettings
from afflux.attribution.stage import ARRIVAL_MARGIN_MS, Owned, Transport
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import OrderPlaced
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.topics import CONVERSIONS, UNMATCHED

pytestmark = pytest.mark.unit

ARRIVED = 1_793_491_200_000
GRACE_MS = 1_000
DEADLINE = ARRIVED + GRACE_MS


def terms(campaign: str, at: int) -> TermsVersion:
    return TermsVersion(
        version=1,
        effective_from=0,
        published_at=0,
        terms=CampaignTerms.model_validate(
            {
                "campaign_id": campaign,
                "merchant_id": "merchant",
                "currency": "EUR",
                "grace_seconds": GRACE_MS // 1000,
                "plan": {"sale": {"rate": {"percent": "10"}}},
            }
        ),
    )


def decided_after_fetch_answered_at(seen_at_ms: int, margin_ms: int) -> bool:
    """One order waiting in partition 0, every input read up to a fetch answered at
    ``seen_at_ms``: is it decided by the next tick?"""
    sent: list[str] = []

    async def send(topic: str, key: bytes | None, value: bytes | None, p: int | None) -> Any:
        sent.append(topic)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def run() -> None:
        runtime = Runtime(
            transport=Transport(send, highwater=lambda topic, p: (0, seen_at_ms)),
            bootstrap="127.0.0.1:1",
            group="margin",
            directory=CampaignDirectory(),
            metrics=AttributionMetrics(),
            refund_wait_ms=0,
            order_retention_ms=86_400_000,
            arrival_margin_ms=margin_ms,
        )
        runtime.campaigns.terms = terms  # type: ignore[method-assign]
        state = JoinPartition()
        placed = OrderPlaced(
            event_id="order-ev-1",
            occurred_at=ARRIVED,
            order_id="order-1",
            campaign_id="c",
            merchant_id="merchant",
            currency="EUR",
            amount_minor=10_000,
            visitor_id="v",
        )
        state.order("v", placed, arrived=ARRIVED)
        runtime.join.owned[0] = Owned(state)
        await runtime.tick()

    asyncio.run(run())
    return UNMATCHED.name in sent or CONVERSIONS.name in sent


@pytest.mark.parametrize(
    ("margin_ms", "seen_at_ms", "decided"),
    [
        (100, DEADLINE + 100, True),
        (100, DEADLINE + 99, False),
        (0, DEADLINE, True),
        (0, DEADLINE - 1, False),
        (1_000, DEADLINE + 1_000, True),
        (1_000, DEADLINE + 999, False),
    ],
)
def test_an_order_is_decided_once_a_fetch_answered_its_grace_end_plus_the_margin(
    margin_ms: int, seen_at_ms: int, decided: bool
) -> None:
    assert decided_after_fetch_answered_at(seen_at_ms, margin_ms) is decided


def test_the_margin_defaults_to_100_ms_and_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert AttributionSettings().arrival_margin_ms == ARRIVAL_MARGIN_MS == 50
    monkeypatch.setenv("AFFLUX_ARRIVAL_MARGIN_MS", "250")
    assert AttributionSettings().arrival_margin_ms == 250
