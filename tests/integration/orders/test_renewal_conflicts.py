"""``POST /v1/renewals`` against ids already taken, on the real broker and Redis: a
renewal whose ``renewal_order_id`` is another order of the campaign, or whose number of
its first order was already reported under another renewal order id, is refused with a
409 naming the field and produces nothing. Before, the first was answered "200
duplicate" and silently dropped, and the second was produced and paid a second time
(past the terms' ``max_renewals`` when repeated)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def renewal(campaigns: Any, first: str, number: int, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_id": first,
        "renewal_number": number,
        "campaign_id": campaigns.shop.campaign_id,
        "occurred_at": int(time.time() * 1000),
        "amount_minor": 1999,
        "currency": "EUR",
    }
    body.update(changes)
    return body


def sale(campaigns: Any, order_id: str) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "campaign_id": campaigns.shop.campaign_id,
        "occurred_at": int(time.time() * 1000),
        "amount_minor": 5000,
        "currency": "EUR",
        "visitor_id": f"v-{order_id}",
    }


def problem(response: Any) -> tuple[int, str, str]:
    detail = response.json()["detail"][0]
    return response.status_code, detail["field"], detail["reason"]


async def test_a_renewal_reusing_another_orders_id_is_refused_not_dropped_as_a_duplicate(
    api: Any, campaigns: Any, topics: Any
) -> None:
    first, other = api.new_id("sub"), api.new_id("sale")
    assert (await api.post("/v1/orders", sale(campaigns, first))).status_code == 202
    assert (await api.post("/v1/orders", sale(campaigns, other))).status_code == 202
    before = await topics.settle()

    answer = await api.post("/v1/renewals", renewal(campaigns, first, 1, renewal_order_id=other))

    status, field, reason = problem(answer)
    assert (status, field) == (409, "renewal_order_id"), answer.text
    assert other in reason
    assert "not a renewal" in reason
    assert await topics.written_since(before) == {}


async def test_a_renewal_reusing_a_renewal_id_of_another_subscription_is_refused(
    api: Any, campaigns: Any, topics: Any
) -> None:
    one, two = api.new_id("sub"), api.new_id("sub")
    shared = api.new_id("renewal")
    taken = await api.post("/v1/renewals", renewal(campaigns, one, 1, renewal_order_id=shared))
    assert taken.status_code == 202, taken.text
    before = await topics.settle()

    answer = await api.post("/v1/renewals", renewal(campaigns, two, 1, renewal_order_id=shared))

    assert problem(answer)[:2] == (409, "renewal_order_id"), answer.text
    assert await topics.written_since(before) == {}


async def test_the_same_renewal_number_under_another_renewal_order_id_is_refused(
    api: Any, campaigns: Any, topics: Any
) -> None:
    first = api.new_id("sub")
    body = renewal(campaigns, first, 2, renewal_order_id=f"{first}-r2")
    accepted = await api.post("/v1/renewals", body)
    assert accepted.status_code == 202, accepted.text
    before = await topics.settle()

    again = await api.post("/v1/renewals", renewal(campaigns, first, 2, renewal_order_id="x-r2"))

    status, field, reason = problem(again)
    assert (status, field) == (409, "renewal_number"), again.text
    assert f"{first}-r2" in reason
    assert await topics.written_since(before) == {}
    # The same renewal sent again is still the idempotent duplicate, and the next number
    # of the same subscription is taken.
    retried = await api.post("/v1/renewals", body)
    assert (retried.status_code, retried.json()["status"]) == (200, "duplicate")
    third = await api.post("/v1/renewals", renewal(campaigns, first, 3))
    assert third.status_code == 202, third.text
    await topics.settle()
    events = [e for e in topics.since(before, "refunds") if e.get("order_id") == first]
    assert [(e["renewal_order_id"], e["renewal_number"]) for e in events] == [
        (f"{first}:renewal-3", 3)
    ]


async def test_two_renewals_of_one_number_sent_at_once_take_it_once(
    api: Any, campaigns: Any, topics: Any
) -> None:
    first = api.new_id("sub")
    before = await topics.settle()
    answers = await asyncio.gather(
        *(
            api.post("/v1/renewals", renewal(campaigns, first, 1, renewal_order_id=f"id-{i}"))
            for i in range(4)
        )
    )
    assert sorted(a.status_code for a in answers) == [202, 409, 409, 409]
    await topics.settle()
    events = topics.since(before, "refunds")
    assert len([e for e in events if e["order_id"] == first]) == 1


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        (0, "greater than or equal to 1"),  # counts from 1
        (-1, "greater than or equal to 1"),
        (100_001, "less than or equal to 100000"),  # past the bound
        (10**30, "less than or equal to 100000"),
        ("1", "integer"),  # a JSON integer only
        (1.0, "integer"),
        (True, "integer"),
    ],
)
async def test_a_renewal_number_out_of_range_is_refused_naming_it(
    api: Any, campaigns: Any, topics: Any, number: Any, reason: str
) -> None:
    before = await topics.settle()
    body = renewal(campaigns, f"sub-{uuid.uuid4().hex[:8]}", 1)
    body["renewal_number"] = number

    status, field, got = problem(await api.post("/v1/renewals", body))

    assert (status, field) == (422, "renewal_number")
    assert reason in got, got
    assert await topics.written_since(before) == {}


async def test_a_renewal_of_a_renewal_is_refused_naming_the_first_order(
    api: Any, campaigns: Any, topics: Any
) -> None:
    """Its limit would start again from the renewal it names: renewal 1 of the twelfth
    renewal paid past ``max_renewals`` and ``max_months``."""
    first = api.new_id("sub")
    taken = await api.post("/v1/renewals", renewal(campaigns, first, 12))
    assert taken.status_code == 202, taken.text
    before = await topics.settle()

    answer = await api.post("/v1/renewals", renewal(campaigns, f"{first}:renewal-12", 1))

    status, field, reason = problem(answer)
    assert (status, field) == (422, "order_id"), answer.text
    assert "is a renewal" in reason
    assert await topics.written_since(before) == {}
