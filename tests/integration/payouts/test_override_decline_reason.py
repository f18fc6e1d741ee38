"""A held conversion declined in review takes back the agency's override with the
decline's reason: the agency's ledger (its posting's rule, its line's rule and
explanation) and statement say why its balance fell, as the creator's do, through the
payouts API over the store on Redis and Redis Cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from ledger_app import DAY, HOUR, NOV_1, directory_of, first_version, payouts_http

from afflux.payouts.store import Batch, LedgerStore
from afflux.shared.core.commission import ConversionFact
from afflux.shared.core.journal.review_lines import ReviewFact
from afflux.shared.io.redis_client import connect_ready

pytestmark = pytest.mark.integration

TOKEN = "override-decline-admin-token"
CAMPAIGN, PERIOD = "p-decline", "2026-11"
REASON = "self-purchase pattern"
TERMS = first_version(
    {
        "campaign_id": CAMPAIGN,
        "merchant_id": "merchant-acme",
        "currency": "EUR",
        "lock_days": 0,
        "plan": {"sale": {"rate": {"percent": "10"}}},
        "overrides": {"agencies": {"ana": {"agency_id": "north", "share_percent": "10"}}},
        "review": {"hold_on": ["self_referral"]},
    }
)
SALE = ConversionFact(
    conversion_id="conv-ana-1",
    event_id="ev-ana-1",
    order_id="order-ana-1",
    affiliate_id="ana",
    kind="sale",
    action=None,
    amount_minor=10_000,
    currency="EUR",
    new_customer=False,
    occurred_at=NOV_1 + HOUR,
    terms_version=1,
    risk_signals=("self_referral",),
)
HELD = Batch(
    conversions=[(CAMPAIGN, PERIOD, SALE)],
    review_index={SALE.conversion_id: [CAMPAIGN, PERIOD, SALE.order_id, "ana", SALE.occurred_at]},
)
DECLINED = Batch(
    reviews=[
        (
            CAMPAIGN,
            PERIOD,
            ReviewFact(
                SALE.conversion_id,
                "review-1",
                "decline",
                REASON,
                "merchant:merchant-acme",
                NOV_1 + 2 * DAY,
            ),
        )
    ]
)


@pytest.fixture
async def http(ledger_redis_url: str, infra: Any) -> AsyncIterator[httpx.AsyncClient]:
    redis = await connect_ready(ledger_redis_url)
    store = LedgerStore(redis)  # type: ignore[arg-type]
    try:
        async with payouts_http(
            store, directory_of([TERMS]), infra.kafka_bootstrap, TOKEN, lambda: NOV_1 + 9 * DAY
        ) as client:
            for batch in (HELD, DECLINED):
                await store.apply(batch, lambda cid: (TERMS,), lambda cid: "EUR")
            yield client
    finally:
        await redis.aclose()  # type: ignore[union-attr]


async def test_the_agency_sees_the_decline_and_its_reason_when_its_override_is_reversed(
    http: httpx.AsyncClient,
) -> None:
    creator = (await http.get("/v1/creators/ana/ledger")).json()
    [decline] = [p for p in creator["postings"] if p["kind"] == "review_decline"]
    assert decline["amount_minor"] == -1000
    assert REASON in decline["rule"]

    answer = await http.get("/v1/creators/north/ledger")
    assert answer.status_code == 200, answer.text
    agency = answer.json()
    kinds = [(p["kind"], p["amount_minor"]) for p in agency["postings"]]
    assert kinds == [("override", 100), ("override_correction", -100)]
    reversal = agency["postings"][-1]
    assert reversal["rule"] == (
        "override reversed: ana's sale line declined in review by"
        f" merchant:merchant-acme (self_referral): {REASON}"
    )
    [line] = agency["lines"]
    assert line["amount_minor"] == 0
    assert REASON in line["rule"]
    assert REASON in line["explanation"]

    statement = await http.get("/v1/creators/north/statement", params={"period": PERIOD})
    assert statement.status_code == 200, statement.text
    assert REASON in statement.text
