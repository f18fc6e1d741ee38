"""``POST /v1/orders/{order_id}/survey``: a merchant gives an order's post-purchase survey
answer after the order; it travels on ``orders`` with the order's own key (so it reaches the
partition holding the order's state), once, and the order's outcome shows it."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from afflux.orders.signing import MERCHANT_HEADER, SIGNATURE_HEADER, sign_request

pytestmark = pytest.mark.integration


def hours_ago(hours: float) -> int:
    return int(time.time() * 1000) - int(hours * 3_600_000)


def field_of(answer: httpx.Response) -> str:
    """The field an error names (the API's one error shape)."""
    return str(answer.json()["detail"][0]["field"])


async def place(api: Any, campaign: str, order_id: str, visitor: str, **extra: Any) -> None:
    body = {
        "order_id": order_id,
        "campaign_id": campaign,
        "occurred_at": hours_ago(1),
        "amount_minor": 2_500,
        "currency": "EUR",
        "visitor_id": visitor,
        **extra,
    }
    answer = await api.post("/v1/orders", body)
    assert answer.status_code == 202, answer.text


async def test_a_later_answer_goes_out_once_keyed_as_its_order_and_shows_in_the_outcome(
    api: Any, client: httpx.AsyncClient, campaigns: Any, topics: Any
) -> None:
    before = await topics.settle()
    campaign, order_id, visitor = campaigns.shop.campaign_id, api.new_id("o"), api.new_id("v")
    await place(api, campaign, order_id, visitor)
    answer = {"campaign_id": campaign, "handle": "@DeeStyle"}

    first = await api.post(f"/v1/orders/{order_id}/survey", answer)
    again = await api.post(f"/v1/orders/{order_id}/survey", answer)
    other = await api.post(f"/v1/orders/{order_id}/survey", {**answer, "handle": "someone"})

    assert first.status_code == 202, first.text
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert other.status_code == 409
    assert field_of(other) == "order_id"
    await topics.settle()
    produced = [
        ((key or b"").decode(), json.loads(value or b"null"))
        for key, value in topics.records.get("orders", [])[before.get("orders", 0) :]
    ]
    mine = [(k, e["type"]) for k, e in produced if e.get("order_id") == order_id]
    assert mine == [(visitor, "OrderPlaced"), (visitor, "SurveyAnswered")]

    target = f"/v1/orders/{order_id}"
    for _ in range(300):  # the outcome index reads the topic on its own
        headers = {
            MERCHANT_HEADER: "merchant-a",
            SIGNATURE_HEADER: sign_request("GET", target, "a-secret-new", int(time.time())),
        }
        read = await client.get(target, headers=headers)
        outcome = read.json()["outcomes"] if read.status_code == 200 else []
        if outcome and outcome[0]["survey"]:
            break
        await asyncio.sleep(0.1)
    assert outcome[0]["survey"] == {"affiliate_id": None, "handle": "@DeeStyle", "given": "later"}


async def test_an_answer_given_with_the_order_travels_on_the_order(
    api: Any, campaigns: Any, topics: Any
) -> None:
    before = await topics.settle()
    campaign, order_id = campaigns.shop.campaign_id, api.new_id("o")
    await place(api, campaign, order_id, api.new_id("v"), survey={"affiliate_id": "dee"})
    await topics.settle()
    [placed] = [
        json.loads(value or b"null")
        for _, value in topics.records.get("orders", [])[before.get("orders", 0) :]
        if json.loads(value or b"null").get("order_id") == order_id
    ]
    assert placed["survey"] == {"affiliate_id": "dee", "handle": None}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "affiliate_id"),  # names nobody
        ({"handle": "x" * 101}, "handle"),  # longer than a handle
        # names nobody, yet as the order's first answer it would stand for good
        ({"handle": "@"}, "handle"),
        ({"handle": " @@ "}, "handle"),
        ({"handle": "dee\nstyle"}, "handle"),  # a control character
        ({"handle": "dee\u200bstyle"}, "handle"),  # a zero-width space: looks like deestyle
        ({"affiliate_id": "dee\u200b"}, "affiliate_id"),  # looks like dee, names nobody
        ({"affiliate_id": ""}, "affiliate_id"),
        ({"affiliate_id": "dee", "mood": "happy"}, "mood"),  # unknown field
    ],
)
async def test_a_bad_answer_is_refused_naming_the_field(
    api: Any, campaigns: Any, body: dict[str, Any], field: str
) -> None:
    campaign, order_id = campaigns.shop.campaign_id, api.new_id("o")
    await place(api, campaign, order_id, api.new_id("v"))

    answer = await api.post(f"/v1/orders/{order_id}/survey", {"campaign_id": campaign, **body})

    assert answer.status_code == 422, answer.text
    assert field_of(answer).startswith(field)


async def test_an_answer_for_an_unknown_order_is_404(api: Any, campaigns: Any) -> None:
    body = {"campaign_id": campaigns.shop.campaign_id, "affiliate_id": "dee"}
    answer = await api.post(f"/v1/orders/{api.new_id('nope')}/survey", body)
    assert answer.status_code == 404
    assert field_of(answer) == "order_id"


async def test_another_merchants_campaign_is_refused_as_an_unknown_one(
    api: Any, campaigns: Any
) -> None:
    body = {"campaign_id": campaigns.other.campaign_id, "affiliate_id": "dee"}
    answer = await api.post(f"/v1/orders/{api.new_id('o')}/survey", body)
    assert answer.status_code == 422
    assert answer.json()["detail"] == [{"field": "campaign_id", "reason": "unknown campaign"}]


async def test_an_order_whose_survey_handle_names_nobody_is_refused(
    api: Any, campaigns: Any
) -> None:
    body = {
        "order_id": api.new_id("o"),
        "campaign_id": campaigns.shop.campaign_id,
        "occurred_at": hours_ago(1),
        "amount_minor": 2_500,
        "currency": "EUR",
        "visitor_id": api.new_id("v"),
        "survey": {"handle": " @ "},
    }
    answer = await api.post("/v1/orders", body)
    assert answer.status_code == 422, answer.text
    assert field_of(answer).startswith("survey")


@pytest.mark.parametrize(
    "renewal_order_id",
    [None, "custom"],  # the default '<first>:renewal-1', and an id of the merchant's own
)
async def test_an_answer_for_a_renewal_order_id_is_refused_naming_order_id(
    api: Any, campaigns: Any, topics: Any, renewal_order_id: str | None
) -> None:
    """A renewal's id is claimed like an order's, but is no order: its answer was 202 and
    produced keyed by the first order's id, where attribution holds no such order."""
    campaign, first = campaigns.shop.campaign_id, api.new_id("sub")
    await place(api, campaign, first, api.new_id("v"))
    renewal = {
        "order_id": first,
        "renewal_number": 1,
        "campaign_id": campaign,
        "occurred_at": hours_ago(0.5),
        "amount_minor": 1_999,
        "currency": "EUR",
    }
    if renewal_order_id is not None:
        renewal["renewal_order_id"] = api.new_id(renewal_order_id)
    renewed = await api.post("/v1/renewals", renewal)
    assert renewed.status_code == 202, renewed.text
    renewal_id = renewed.json()["renewal_order_id"]
    before = await topics.settle()

    answer = await api.post(
        f"/v1/orders/{renewal_id}/survey", {"campaign_id": campaign, "affiliate_id": "dee"}
    )

    assert answer.status_code == 409, answer.text
    assert answer.json()["detail"] == [
        {
            "field": "order_id",
            "reason": f"{renewal_id} was accepted as a renewal of order {first}, not as an"
            " order: a survey answer names an order",
        }
    ]
    assert await topics.written_since(before) == {}
    # The first order itself still takes its answer.
    taken = await api.post(
        f"/v1/orders/{first}/survey", {"campaign_id": campaign, "affiliate_id": "dee"}
    )
    assert taken.status_code == 202, taken.text


GHOSTS = [
    pytest.param("dee ", id="trailing space"),
    pytest.param(" dee", id="leading space"),
    pytest.param("dee\u00a0", id="no-break space"),
    pytest.param("d\u2003ee", id="em space inside"),
    pytest.param("d\u0435e", id="Cyrillic e, a lookalike"),
    pytest.param("..", id="only dots"),
]


@pytest.mark.parametrize("affiliate_id", GHOSTS)
async def test_an_answer_naming_an_id_no_creator_has_is_refused_on_both_paths(
    api: Any, campaigns: Any, topics: Any, affiliate_id: str
) -> None:
    """The first answer stands for good: "dee " would pay a creator nobody is, and the
    right answer naming dee would then be a 409."""
    campaign = campaigns.shop.campaign_id
    before = await topics.settle()
    reason = (
        f"names no creator: {affiliate_id!r} is no id a creator's links have (letters,"
        " digits and _ . : @ - only, not only dots) and the campaign's terms do not name it"
    )
    with_order = {
        "order_id": api.new_id("o"),
        "campaign_id": campaign,
        "occurred_at": hours_ago(1),
        "amount_minor": 2_500,
        "currency": "EUR",
        "visitor_id": api.new_id("v"),
        "survey": {"affiliate_id": affiliate_id},
    }
    order_id = api.new_id("o")
    await place(api, campaign, order_id, api.new_id("v"))
    placed = await topics.settle()

    refused = await api.post("/v1/orders", with_order)
    later = await api.post(
        f"/v1/orders/{order_id}/survey", {"campaign_id": campaign, "affiliate_id": affiliate_id}
    )

    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"] == [{"field": "survey.affiliate_id", "reason": reason}]
    assert later.status_code == 422, later.text
    assert later.json()["detail"] == [{"field": "affiliate_id", "reason": reason}]
    assert placed != before
    assert await topics.written_since(placed) == {}
    right = await api.post(
        f"/v1/orders/{order_id}/survey", {"campaign_id": campaign, "affiliate_id": "dee"}
    )
    assert right.status_code == 202, right.text
