"""The demo client signs every attempt when it retries a 503: the orders service places
an order on our clock by the signature's time, so a retry sent with its first signature
placed its order as much later as it came (and `afflux verify` counted the difference)."""

from __future__ import annotations

import httpx
import pytest

from afflux.cli.demo_client import DemoClient
from afflux.shared.core.money import Money
from afflux.shared.core.terms import CampaignTerms

pytestmark = pytest.mark.unit

TERMS = CampaignTerms.model_validate(
    {
        "campaign_id": "shop",
        "merchant_id": "merchant-a",
        "currency": "EUR",
        "plan": {"sale": {"rate": {"percent": "10"}}},
    }
)


async def test_a_retried_order_is_signed_again_when_it_is_sent() -> None:
    signed: list[str] = []

    def orders_service(request: httpx.Request) -> httpx.Response:
        signed.append(request.headers["X-Afflux-Signature"].split(",")[0])
        return httpx.Response(503 if len(signed) == 1 else 202, json={})

    clock = iter(range(1_796_000_000_000, 1_796_000_100_000, 3_000))  # 3 s per read
    client = DemoClient("http://clicks", "http://orders", "http://payouts", "token")
    client.merchant_now = lambda: next(clock)  # type: ignore[method-assign]
    client.http = httpx.AsyncClient(transport=httpx.MockTransport(orders_service))
    async with client:
        answer = await client.place_order(
            TERMS, order_id="o-1", kind="sale", amount=Money(1_000, "EUR"), visitor_id="v-1"
        )

    assert answer.status_code == 202
    assert len(signed) == 2
    assert signed[0] != signed[1]  # t=... of each attempt's own time
