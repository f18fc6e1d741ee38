"""``POST /v1/campaigns/{id}/whatif`` by the admin for a campaign nobody configured, with a
draft naming it: the campaign's 404, as every other campaign route answers, never the 500
the directory's lookup raised past the access check (which lets the admin through to
learn that a campaign is unknown). The payouts app in process, nothing started: the
route refuses before it reads a topic."""

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
