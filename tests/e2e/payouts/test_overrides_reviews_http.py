"""Agency overrides end to end over HTTP: orders and a refund through the signed merchant
API, the ledger's override postings read back from the agencies' ledgers and the
creator's statement; terms with an agency cycle refused with 422 naming the field."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest

from afflux.cli.demo_client import DemoClient
from afflux.cli.stack import Stack
from afflux.shared.campaign_file import load_campaign_file
from afflux.shared.core.money import Money
from afflux.shared.core.terms import CampaignTerms

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

T = TypeVar("T")
ADMIN_TOKEN = "overrides-reviews-admin-token"
TERMS_YAML = """
campaigns:
  - effective_from: 0
    terms:
      campaign_id: agency-shop
      merchant_id: merchant-agency
      currency: EUR
      coupons: {ANA: ana}
      grace_seconds: 1
      lock_days: 30
      plan:
        sale: {rate: {percent: "10"}}
      overrides:
        levels: 2
        agencies:
          ana: {agency_id: north, share_percent: "10"}
          north: {agency_id: group, share_percent: "5"}
"""
AFFILIATES = ("ana", "north", "group")
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def terms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CampaignTerms]:
    path = tmp_path_factory.mktemp("overrides-terms") / "campaigns.yaml"
    path.write_text(TERMS_YAML)
    return {e.terms.campaign_id: e.terms for e in load_campaign_file(path).campaigns}


@pytest.fixture(scope="module")
async def client(stack: Stack) -> AsyncIterator[DemoClient]:
    async with DemoClient(
        stack.url("clicks"), stack.url("orders"), stack.url("payouts"), ADMIN_TOKEN
    ) as demo:
        yield demo


async def until(check: Callable[[], Awaitable[T]], want: T, timeout_s: float = 60) -> None:
    """Poll until ``check`` answers ``want`` (the stack applies asynchronously)."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = await check()
        if got == want:
            return
        assert time.monotonic() < deadline, f"timed out: {got} instead of {want}"
        await asyncio.sleep(0.2)


async def postings_of(
    http: httpx.AsyncClient, payouts: str, affiliate: str
) -> list[dict[str, Any]]:
    answer = await http.get(f"{payouts}/v1/creators/{affiliate}/ledger", headers=ADMIN)
    return list(answer.json()["postings"]) if answer.status_code == 200 else []


def net(postings: list[dict[str, Any]]) -> int:
    return sum(int(p["amount_minor"]) for p in postings)


async def test_agencies_earn_their_share_of_what_the_creator_is_paid(
    stack: Stack, client: DemoClient, terms: dict[str, CampaignTerms]
) -> None:
    shop = terms["agency-shop"]
    payouts = stack.url("payouts")
    order_id = f"agency-1-{time.time_ns()}"
    await client.place_order(
        shop, order_id=order_id, kind="sale", amount=Money(10_000, "EUR"), coupon="ANA"
    )

    async def sums() -> dict[str, int]:
        return {a: net(await postings_of(client.http, payouts, a)) for a in AFFILIATES}

    # 10 % of 10000 to ana; north 10 % of ana's 1000 on top; group (level 2) 5 % of it.
    await until(sums, {"ana": 1000, "north": 100, "group": 50})
    north = await postings_of(client.http, payouts, "north")
    assert [p["kind"] for p in north] == ["override"]
    assert north[0]["rule"].startswith("override: 10% of ana's sale line (agency level 1)")

    # A quarter refunded before approval: every override follows ana's line (750).
    await client.refund(shop, order_id=order_id, refund_id=f"r-{order_id}", amount=2_500)
    await until(sums, {"ana": 750, "north": 75, "group": 38})
    assert [p["kind"] for p in await postings_of(client.http, payouts, "north")] == [
        "override",
        "override_reduction",
    ]

    statement = await client.http.get(f"{payouts}/v1/creators/ana/statement", headers=ADMIN)
    assert statement.status_code == 200
    assert statement.json()["overrides_on_commission"] == [
        {"campaign_id": "agency-shop", "agency_id": "group", "amount_minor": 38},
        {"campaign_id": "agency-shop", "agency_id": "north", "amount_minor": 75},
    ]
    # The creator is paid in full: the brand pays the overrides on top.
    assert net(await postings_of(client.http, payouts, "ana")) == 750


async def test_an_agency_cycle_is_refused_naming_the_field(
    stack: Stack, client: DemoClient, terms: dict[str, CampaignTerms]
) -> None:
    body = terms["agency-shop"].model_dump(mode="json")
    body["overrides"]["agencies"]["group"] = {"agency_id": "ana", "share_percent": "1"}
    answer = await client.http.put(
        f"{stack.url('orders')}/v1/campaigns/agency-shop", json={"terms": body}, headers=ADMIN
    )
    assert answer.status_code == 422, answer.text
    assert "overrides" in answer.text
    assert "ana -> north -> group -> ana" in answer.text
