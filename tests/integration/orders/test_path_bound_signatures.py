"""A lead confirmation and a survey answer name their order in the path, not the body: their
signature covers the request line, so one signed call cannot be replayed on another order
of the campaign (its body alone names only the campaign)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from afflux.orders.signing import MERCHANT_HEADER, SIGNATURE_HEADER, sign, sign_call

pytestmark = pytest.mark.integration


def hours_ago(hours: float) -> int:
    return int(time.time() * 1000) - int(hours * 3_600_000)


async def place(api: Any, campaign: str, kind: str = "sale", order_id: str | None = None) -> str:
    order_id = order_id or api.new_id("o")
    body = {
        "order_id": order_id,
        "campaign_id": campaign,
        "kind": kind,
        "occurred_at": hours_ago(1),
        "amount_minor": 2_500,
        "currency": "EUR",
        "visitor_id": api.new_id("v"),
    }
    answer = await api.post("/v1/orders", body)
    assert answer.status_code == 202, answer.text
    return order_id


def headers(signature: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        MERCHANT_HEADER: "merchant-a",
        SIGNATURE_HEADER: signature,
    }


def refusal(answer: httpx.Response) -> tuple[int, str, str]:
    [item] = answer.json()["detail"]
    return answer.status_code, item["field"], item["reason"]


@pytest.mark.parametrize(
    ("kind", "path", "fields"),
    [
        pytest.param("lead", "/v1/leads/{}/confirm", {}, id="lead confirmation"),
        pytest.param("sale", "/v1/orders/{}/survey", {"affiliate_id": "dee"}, id="survey"),
    ],
)
async def test_a_signed_call_replayed_on_another_orders_path_is_refused_and_emits_nothing(
    kind: str, path: str, fields: dict[str, str], api: Any, campaigns: Any, topics: Any
) -> None:
    campaign = campaigns.leads.campaign_id if kind == "lead" else campaigns.shop.campaign_id
    signed_for, other = await place(api, campaign, kind), await place(api, campaign, kind)
    body = api.raw({"campaign_id": campaign, **fields})
    signature = sign_call("POST", path.format(signed_for), body, "a-secret-new", int(time.time()))

    meant = await api.http.post(path.format(signed_for), content=body, headers=headers(signature))
    before = await topics.settle()
    replayed = await api.http.post(path.format(other), content=body, headers=headers(signature))

    assert meant.status_code == 202, meant.text
    assert refusal(replayed) == (
        401,
        SIGNATURE_HEADER,
        "signature does not match the request line and the body under a current secret"
        " of the merchant X-Afflux-Merchant names",
    )
    assert await topics.written_since(before) == {}


async def test_a_body_only_signature_of_a_lead_confirmation_is_refused_saying_what_to_sign(
    api: Any, campaigns: Any, topics: Any
) -> None:
    campaign = campaigns.leads.campaign_id
    lead = await place(api, campaign, "lead")
    body = api.raw({"campaign_id": campaign})
    before = await topics.settle()

    answer = await api.http.post(
        f"/v1/leads/{lead}/confirm",
        content=body,
        headers=headers(sign(body, "a-secret-new", int(time.time()))),
    )

    assert refusal(answer) == (
        401,
        SIGNATURE_HEADER,
        f'signed over the body alone: this route signs "<t>.POST /v1/leads/{lead}/confirm\\n'
        '<raw body>" (docs/orders.md#authentication)',
    )
    assert await topics.written_since(before) == {}


async def test_an_order_is_still_signed_over_its_body_alone(api: Any, campaigns: Any) -> None:
    """The body of ``POST /v1/orders`` names its order: integrations keep signing it as
    before."""
    order_id = api.new_id("o")
    body = api.raw(
        {
            "order_id": order_id,
            "campaign_id": campaigns.shop.campaign_id,
            "occurred_at": hours_ago(1),
            "amount_minor": 2_500,
            "currency": "EUR",
            "visitor_id": api.new_id("v"),
        }
    )

    answer = await api.http.post(
        "/v1/orders", content=body, headers=headers(sign(body, "a-secret-new", int(time.time())))
    )

    assert answer.status_code == 202, answer.text


@pytest.mark.parametrize("encoded", [False, True], ids=["slash as sent", "slash encoded"])
@pytest.mark.parametrize(
    ("kind", "path", "fields"),
    [
        pytest.param("lead", "/v1/leads/{}/confirm", {}, id="lead confirmation"),
        pytest.param("sale", "/v1/orders/{}/survey", {"affiliate_id": "dee"}, id="survey"),
    ],
)
async def test_an_order_id_holding_a_slash_can_be_confirmed_and_surveyed(
    kind: str,
    path: str,
    fields: dict[str, str],
    encoded: bool,
    api: Any,
    campaigns: Any,
    topics: Any,
) -> None:
    campaign = campaigns.leads.campaign_id if kind == "lead" else campaigns.shop.campaign_id
    order_id = await place(api, campaign, kind, f"2026/11/{api.new_id(kind)}")
    target = path.format(order_id.replace("/", "%2F") if encoded else order_id)
    body = api.raw({"campaign_id": campaign, **fields})
    before = await topics.settle()

    answer = await api.http.post(
        target,
        content=body,
        headers=headers(sign_call("POST", target, body, "a-secret-new", int(time.time()))),
    )

    assert answer.status_code == 202, answer.text
    await topics.settle()
    emitted = [
        e
        for topic in ("orders", "refunds")
        for e in topics.since(before, topic)
        if e.get("order_id") == order_id
    ]
    assert len(emitted) == 1, emitted
