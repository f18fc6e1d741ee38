"""``POST /v1/campaigns/{campaign_id}/whatif``: what draft terms would have paid each
creator over the recorded events, beside what the current terms pay (admin or the
campaign's merchant; anyone else gets the 404 of an unknown campaign). Nothing is
published or written (docs/campaigns.md, "What-if")."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from afflux.payouts.deps import CampaignReader, DirectoryDep, MetricsDep
from afflux.payouts.errors import ERROR_RESPONSES
from afflux.payouts.queries import unknown_campaign
from afflux.payouts.settings import PayoutsSettings
from afflux.payouts.whatif import check_draft, replay_draft, whose
from afflux.shared.core.terms import CampaignTerms
from afflux.shared.core.whatif.log import RangeProblem, day_range
from afflux.shared.io.http.bodies import NAMES_ONCE_AFTER_CSRF
from afflux.shared.io.http.principals import CsrfDep
from afflux.shared.io.http.problems import Problem
from afflux.shared.io.http.state import state_dep

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)
SettingsDep = Annotated[PayoutsSettings, Depends(state_dep("settings"))]


class WhatIfRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    terms: CampaignTerms = Field(description="the draft: a whole campaign's terms, as in a "
                                 "campaigns file (examples/campaigns.yaml)")  # fmt: skip
    from_: date | None = Field(None, alias="from", description="first day (UTC) replayed")
    to: date | None = Field(None, description="last day (UTC, included) replayed")


class CreatorChange(BaseModel):
    affiliate_id: str
    currency: str
    current_minor: int
    draft_minor: int
    delta_minor: int
    current_conversions: int
    draft_conversions: int
    gained: list[str] = Field(description="order ids the draft gives this creator (100 at most)")
    gained_total: int = Field(description="every order the draft gives this creator")
    lost: list[str] = Field(description="order ids the draft takes away (100 at most)")
    lost_total: int = Field(description="every order the draft takes away")


class LineChangeView(BaseModel):
    affiliate_id: str
    line_id: str
    kind: str
    order_id: str | None
    current_minor: int
    draft_minor: int
    reason: str


class WhatIfAnswer(BaseModel):
    campaign_id: str
    currency: str
    from_: int | None = Field(alias="from", description="UTC ms, included")
    to: int | None = Field(description="UTC ms, excluded")
    orders: int = Field(description="orders of the campaign in the range")
    empty: bool = Field(description="the draft pays every creator what the current terms do")
    current_total_minor: int
    draft_total_minor: int
    creators: list[CreatorChange] = Field(
        description="creators whose pay or orders change, the largest change first (500 at most)"
    )
    creators_total: int = Field(description="every creator whose pay or orders change")
    changes: list[LineChangeView] = Field(
        description="the largest line changes first (500 at most)"
    )
    changes_total: int


@router.post(
    "/campaigns/{campaign_id}/whatif",
    response_model=WhatIfAnswer,
    dependencies=[NAMES_ONCE_AFTER_CSRF],
    response_model_by_alias=True,
    responses={
        413: ERROR_RESPONSES[401] | {"description": "more events than AFFLUX_WHATIF_MAX_EVENTS"},
        429: ERROR_RESPONSES[401]
        | {
            "description": "another what-if is running, or the caller's last one ran as "
            "long ago as it took (Retry-After)"
        },
        503: ERROR_RESPONSES[401] | {"description": "past AFFLUX_WHATIF_TIME_LIMIT_S"},
    },
)
async def campaign_whatif(
    __: CsrfDep,  # a POST: with a session cookie, only from our pages (docs/portal.md)
    reader: CampaignReader,
    directory: DirectoryDep,
    campaign_id: str,
    body: WhatIfRequest,
    settings: SettingsDep,
    metrics: MetricsDep,
) -> dict[str, Any]:
    if campaign_id not in directory:  # only the admin gets here with one (a 500 before)
        raise unknown_campaign(campaign_id)
    if body.terms.campaign_id != campaign_id:
        raise Problem(422, "terms.campaign_id", f"the draft must be for {campaign_id!r}")
    versions = directory.versions(campaign_id)
    check_draft(body.terms, versions, "terms")
    try:
        window = day_range(body.from_, body.to)
    except RangeProblem as exc:
        raise Problem(422, exc.field, exc.reason) from None
    diff = await replay_draft(settings, metrics, versions, body.terms, window, whose(reader))
    return diff.as_dict()
