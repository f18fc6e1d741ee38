"""``POST /v1/campaigns/{id}/whatif`` by the admin for a campaign nobody configured, with a
draft naming it: the campaign's 404, as every other campaign route answers, never the 500
the directory's lookup raised past the access check (which lets the admin through to
learn that a campaign is unknown). And every other refusal of a bad request (another
merchant or currency, a range past 400 days or backwards, invalid terms down to the
field, an override chain past 100 %) is a 422 naming the field, decided before anything
is read. The payouts app in process, nothing started (the broker away): the route
refuses before it reads a topic."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from afflux.payouts.app import create_app
from afflux.payouts.settings import PayoutsSettings
from afflux.shared.core.terms import CampaignTerms, TermsVersion
from afflux.shared.events import CampaignTermsPublished

pytestmark = pytest.mark.unit

ADMIN = "admin-token-for-the-whatif-unknown-tests-0123456789"
KNOWN = CampaignTerms.model_validate(
    {"campaign_id": "known", "merchant_id": "m", "currency": "EUR"}
)


@dataclass(frozen=True)
class Case:
    name: str
    path_campaign: str
    draft_campaign: str
    status: int
    field: str


CASES = [
    # Unknown, the draft naming it: the unknown campaign's 404 (was a 500).
    Case("unknown, draft naming it", "nope", "nope", 404, "campaign_id"),
    # Unknown, the draft naming another: still the 404 first.
    Case("unknown, draft naming another", "nope", "known", 404, "campaign_id"),
    # Known, the draft naming another: the draft's 422.
    Case("known, draft naming another", "known", "nope", 422, "terms.campaign_id"),
]


def ask(case: Case) -> httpx.Response:
    app = create_app(PayoutsSettings(admin_token=ADMIN))
    app.state.directory.apply(
        CampaignTermsPublished(
            event_id="t",
            occurred_at=0,
            campaign_id="known",
            versions=(TermsVersion(version=1, effective_from=0, published_at=0, terms=KNOWN),),
        )
    )
    body: dict[str, Any] = {
        "terms": {"campaign_id": case.draft_campaign, "merchant_id": "m", "currency": "EUR"}
    }

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://payouts") as http:
            return await http.post(
                f"/v1/campaigns/{case.path_campaign}/whatif",
                json=body,
                headers={"authorization": f"Bearer {ADMIN}"},
            )

    return asyncio.run(post())


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_admins_whatif_of_an_unknown_campaign_is_its_404(case: Case) -> None:
    answer = ask(case)
    assert answer.status_code == case.status, answer.text
    assert answer.json()["detail"][0]["field"] == case.field
    if case.status == 404:
        assert answer.json()["detail"][0]["reason"] == f"unknown campaign {case.path_campaign!r}"


@dataclass(frozen=True)
class Refused:
    name: str
    body: dict[str, Any]
    field: str
    reason: str


DRAFT = {"campaign_id": "known", "merchant_id": "m", "currency": "EUR"}
REFUSED = [
    # A draft moving the campaign to another merchant or currency.
    Refused("another merchant", {"terms": {**DRAFT, "merchant_id": "x"}}, "terms.merchant_id", "m"),
    Refused("another currency", {"terms": {**DRAFT, "currency": "USD"}}, "terms.currency", "EUR"),
    # The range: one day past 400, and backwards.
    Refused(
        "401 days",
        {"terms": DRAFT, "from": "2025-01-01", "to": "2026-02-05"},
        "to",
        "at most 400 days",
    ),
    Refused(
        "backwards", {"terms": DRAFT, "from": "2026-11-02", "to": "2026-11-01"}, "to", "before"
    ),
    # Not a date.
    Refused("a month 13", {"terms": DRAFT, "from": "2026-13-01"}, "from", "date"),
    # Invalid terms, named down to the field.
    Refused(
        "a negative rate",
        {"terms": {**DRAFT, "plan": {"sale": {"rate": {"percent": "-1"}}}}},
        "terms.plan.sale.rate.percent",
        "greater than or equal to 0",
    ),
    Refused(
        "an override chain past 100 %",
        {
            "terms": {
                **DRAFT,
                "overrides": {
                    "levels": 2,
                    "agencies": {
                        "ana": {"agency_id": "north", "share_percent": "70"},
                        "north": {"agency_id": "group", "share_percent": "40"},
                    },
                },
            }
        },
        "terms.overrides",
        "sum to 110%",
    ),
    # A field the request does not have.
    Refused("an unknown field", {"terms": DRAFT, "dry_run": True}, "dry_run", "unknown field"),
]


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c.name)
def test_a_bad_whatif_request_is_a_422_naming_the_field_before_anything_is_read(
    case: Refused,
) -> None:
    app = create_app(PayoutsSettings(admin_token=ADMIN, kafka_bootstrap="127.0.0.1:1"))
    app.state.directory.apply(
        CampaignTermsPublished(
            event_id="t",
            occurred_at=0,
            campaign_id="known",
            versions=(TermsVersion(version=1, effective_from=0, published_at=0, terms=KNOWN),),
        )
    )

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://payouts") as http:
            return await http.post(
                "/v1/campaigns/known/whatif",
                json=case.body,
                headers={"authorization": f"Bearer {ADMIN}"},
            )

    answer = asyncio.run(post())  # the broker is away: a refusal never reaches it
    assert answer.status_code == 422, answer.text
    details = answer.json()["detail"]
    assert any(d["field"] == case.field and case.reason in d["reason"] for d in details), details
