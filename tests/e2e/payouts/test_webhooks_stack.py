"""Webhooks on the whole stack as ``afflux up`` runs it: an endpoint registered with
``afflux webhooks add`` hears of every order the merchant places (conversion.attributed)
and of each refund (conversion.reversed), signed, as the reference Standard Webhooks
verifier checks; ``list``, ``dead-letters`` and ``remove`` answer through the admin API."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from afflux.cli.demo_client import DemoClient
from afflux.cli.stack import Stack
from afflux.shared.campaign_file import load_campaign_file
from afflux.shared.core.money import Money
from afflux.shared.core.terms import CampaignTerms

sys.path.insert(0, str(Path(__file__).parents[2] / "integration" / "payouts"))
from webhook_receiver import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ADMIN_TOKEN = "webhooks-stack-admin-token"
CAMPAIGN = "hook-shop"
MERCHANT = "merchant-hook"
CREATORS = ("hook-c1", "hook-c2")
TERMS_YAML = f"""
campaigns:
  - effective_from: 0
    terms:
      campaign_id: {CAMPAIGN}
      merchant_id: {MERCHANT}
      currency: EUR
      allowed_domains: [shop.example.com]
      coupons: {{HOOKC1: hook-c1, HOOKC2: hook-c2}}
      grace_seconds: 1
      plan:
        sale: {{rate: {{percent: "10"}}}}
"""


@pytest.fixture(scope="module")
def terms(tmp_path_factory: pytest.TempPathFactory) -> CampaignTerms:
    path = tmp_path_factory.mktemp("webhook-terms") / "campaigns.yaml"
    path.write_text(TERMS_YAML)
    return load_campaign_file(path).campaigns[0].terms


@pytest.fixture(scope="module")
async def client(stack: Stack) -> AsyncIterator[DemoClient]:
    async with DemoClient(
        stack.url("clicks"), stack.url("orders"), stack.url("payouts"), ADMIN_TOKEN
    ) as demo:
        yield demo


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    try:
        yield started
    finally:
        started.stop()


def afflux_webhooks(stack: Stack, *args: str) -> str:
    env = {
        **os.environ,
        "AFFLUX_ADMIN_TOKEN": ADMIN_TOKEN,
        "AFFLUX_PAYOUTS_URL": stack.url("payouts"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "afflux.cli", "webhooks", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def until(check: object, timeout_s: float, what: str) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout_s:.0f}s: {what}"
        await asyncio.sleep(0.1)


async def test_a_merchants_endpoint_hears_of_its_orders_and_refunds(
    stack: Stack, client: DemoClient, terms: CampaignTerms, receiver: Receiver
) -> None:
    out = afflux_webhooks(stack, "add", "--merchant", MERCHANT, receiver.base_url + "/shop")
    created = json.loads(out[: out.rindex("}") + 1])
    assert created["secret"].startswith("whsec_")
    receiver.secrets["/shop"] = created["secret"]

    orders = [f"hook-o{n}" for n in range(6)]
    for n, order in enumerate(orders):
        await client.place_order(
            terms,
            order_id=order,
            kind="sale",
            amount=Money(2_000 + n, "EUR"),
            coupon=CREATORS[n % 2].upper().replace("-", ""),
        )
    await until(
        lambda: {a.data["order_id"] for a in receiver.received("/shop")} == set(orders),
        90,
        "a conversion.attributed per order",
    )
    await client.refund(terms, order_id=orders[0], refund_id="hook-rf0", amount=500)
    await until(
        lambda: "conversion.reversed" in receiver.events("/shop"), 90, "the refund's reversal"
    )
    assert receiver.unverified == []
    by_creator = {a.data["order_id"]: a.data["affiliate_id"] for a in receiver.received("/shop")}
    assert by_creator["hook-o1"] == "hook-c2"

    listed = json.loads(afflux_webhooks(stack, "list", "--merchant", MERCHANT))["endpoints"]
    assert [e["endpoint_id"] for e in listed] == [created["endpoint_id"]]
    assert "secret" not in listed[0]
    dead = json.loads(afflux_webhooks(stack, "dead-letters", created["endpoint_id"]))
    assert dead == {"dead_letters": []}
    afflux_webhooks(stack, "remove", created["endpoint_id"])
    assert json.loads(afflux_webhooks(stack, "list"))["endpoints"] == []
