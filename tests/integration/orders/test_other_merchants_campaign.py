"""Another merchant's campaign answers exactly as a campaign that does not exist, on every
merchant route and whatever else the request gets wrong: the same status, field and reason,
so a merchant cannot tell another merchant's campaign ids from made-up ones. Nothing is
emitted either way."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from afflux.orders.signing import sign_query

from .conftest import SECRETS, Api

pytestmark = pytest.mark.integration

UNKNOWN = f"no-such-campaign-{uuid.uuid4().hex[:8]}"
YEAR_2000_MS = 946_684_800_000  # far beyond any backfill limit


def now_ms() -> int:
    return int(time.time() * 1000)


def sale(campaign: str, **changes: Any) -> dict[str, Any]:
    return {
        "order_id": "o-probe",
        "campaign_id": campaign,
        "occurred_at": now_ms(),
        "kind": "sale",
        "amount_minor": 2500,
        "currency": "EUR",
        "visitor_id": "v-probe",
        **changes,
    }


def refund(campaign: str, **changes: Any) -> dict[str, Any]:
    return {
        "refund_id": "r-probe",
        "order_id": "o-probe",
        "campaign_id": campaign,
        "occurred_at": now_ms(),
        "amount_minor": 100,
        "currency": "EUR",
        **changes,
    }


def renewal(campaign: str, **changes: Any) -> dict[str, Any]:
    return {
        "order_id": "o-probe",
        "renewal_number": 1,
        "campaign_id": campaign,
        "occurred_at": now_ms(),
        "amount_minor": 999,
        "currency": "EUR",
        **changes,
    }


@dataclass(frozen=True)
class Route:
    name: str
    send: Callable[[Api, str], Any]  # (api, campaign id) -> awaitable response


def post(path: str, body: Callable[[str], dict[str, Any]]) -> Callable[[Api, str], Any]:
    return lambda api, campaign: api.post(path, body(campaign))


def postback(**changes: str) -> Callable[[Api, str], Any]:
    def send(api: Api, campaign: str) -> Any:
        params = {
            "merchant": "merchant-a",
            "campaign_id": campaign,
            "order_id": "o-probe",
            "amount_minor": "2500",
            "currency": "EUR",
            "visitor_id": "v-probe",
            **changes,
        }
        query = sign_query(list(params.items()), SECRETS["merchant-a"][-1], int(time.time()))
        return api.http.get(f"/v1/postback?{query}")

    return send


ROUTES = [
    Route("order", post("/v1/orders", sale)),
    # Each of these failed on the campaign's own terms first (its backfill limit, its
    # currency), which told the merchant the campaign exists.
    Route(
        "order older than the backfill limit",
        post("/v1/orders", lambda c: sale(c, occurred_at=YEAR_2000_MS)),
    ),
    Route("order in another currency", post("/v1/orders", lambda c: sale(c, currency="JPY"))),
    Route("batch", post("/v1/orders:batch", lambda c: {"orders": [sale(c)]})),
    Route(
        "batch older than the backfill limit",
        post("/v1/orders:batch", lambda c: {"orders": [sale(c, occurred_at=YEAR_2000_MS)]}),
    ),
    Route("refund", post("/v1/refunds", refund)),
    Route(
        "refund older than the backfill limit",
        post("/v1/refunds", lambda c: refund(c, occurred_at=YEAR_2000_MS)),
    ),
    Route("renewal", post("/v1/renewals", renewal)),
    Route(
        "renewal older than the backfill limit",
        post("/v1/renewals", lambda c: renewal(c, occurred_at=YEAR_2000_MS)),
    ),
    Route("lead confirmation", post("/v1/leads/o-probe/confirm", lambda c: {"campaign_id": c})),
    Route(
        "survey answer",
        post("/v1/orders/o-probe/survey", lambda c: {"campaign_id": c, "affiliate_id": "dee"}),
    ),
    Route("postback", postback()),
    Route("postback older than the backfill limit", postback(occurred_at=str(YEAR_2000_MS))),
]


def answer(response: httpx.Response) -> tuple[int, Any]:
    return response.status_code, response.json()


@pytest.mark.parametrize("route", ROUTES, ids=[r.name for r in ROUTES])
async def test_another_merchants_campaign_answers_as_an_unknown_campaign(
    route: Route, api: Api, campaigns: Any, topics: Any
) -> None:
    before = await topics.settle()

    unknown = answer(await route.send(api, UNKNOWN))
    others = answer(await route.send(api, campaigns.other.campaign_id))

    assert others == unknown
    assert unknown[0] in (200, 422), unknown  # a batch answers 200 with each order's result
    assert "campaign_id', 'reason': 'unknown campaign'" in str(unknown[1])
    after = await topics.settle()
    # Nothing written for them. Dead letters of other tests' records (read late by a
    # consumer of the shared broker on a loaded machine) may come meanwhile: only a
    # letter naming these campaigns would be theirs.
    dlq = "afflux.dlq"
    assert {t: n for t, n in after.items() if t != dlq} == {
        t: n for t, n in before.items() if t != dlq
    }
    named = (UNKNOWN, campaigns.other.campaign_id)
    assert [e for e in topics.since(before, dlq) if any(c in str(e) for c in named)] == []
