"""``GET /v1/orders/{order_id}``: what became of an order, for its merchant or an admin.

A merchant signs the request line instead of a body: ``X-Afflux-Signature`` over
``"<t>.GET <path>[?<query>]"`` (the path and query exactly as sent), with
``X-Afflux-Merchant``; an admin sends ``Authorization: Bearer <admin token>``. A
merchant sees only its own campaigns: an order of another merchant's campaign and an
order that does not exist answer the same 404.
"""

from __future__ import annotations

from typing import Annotated, Any, NamedTuple
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel, Field

from afflux.orders import signing
from afflux.orders.deps import DirectoryDep, IngestDep, SettingsDep
from afflux.orders.errors import Rejected
from afflux.orders.ingest import Ingestor
from afflux.orders.outcome import (
    Status,
    commission_refused_reason,
    order_outcome,
    outcome_json,
)
from afflux.orders.outcome_index import OutcomeIndex
from afflux.orders.routes.signed import one_header, request_line
from afflux.orders.settings import OrdersSettings
from afflux.shared.events import UnattributedReason
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.http.admin import check_admin_token
from afflux.shared.io.http.apidocs import problem
from afflux.shared.io.http.principals import refuse_credential_params
from afflux.shared.io.http.tls import tls_context

router = APIRouter()
LEDGER_TIMEOUT_S = 3.0


class CampaignOutcome(BaseModel):
    campaign_id: str
    order_id: str
    status: Status = Field(
        description="attributed, unattributed (see unattributed_reason), refused (the "
        "attribution refused every copy of it: see refused_reason), pending (received, no "
        "answer yet) or not_received (only refunds or a confirmation name it)"
    )
    order: dict[str, Any] | None = Field(description="the order as received (OrderPlaced)")
    decision: dict[str, Any] | None = Field(
        description="the live conversion: winner (affiliate_id), rule (reason, model), "
        "window_ms, click_id, clicked_at, lag_ms, assists, terms_version; live_stream_id "
        "for rule livestream, survey_affiliate_id when a survey answer named a creator"
    )
    rule: str | None = Field(
        None,
        description="the live conversion's rule: click_id, coupon, cookie, livestream or survey",
    )
    unattributed_reason: UnattributedReason | None = Field(
        description="why no creator earned it (docs/orders.md, Order outcome: each reason, "
        "the renewals' included)"
    )
    replaced: list[dict[str, Any]] = Field(description="answers a later correction replaced")
    refunds: list[dict[str, Any]]
    refunded_minor: int = Field(
        description="what the refunds took off the order, never more than its amount: "
        "attributed, the live conversion's refund reversals (what the ledger reduced and "
        "clawed back); otherwise the refunds asked, capped at the order's amount"
    )
    unmatched_refunds: list[dict[str, Any]]
    reversals: list[dict[str, Any]]
    lead_confirmation: dict[str, Any] | None
    survey: dict[str, Any] | None = Field(
        None,
        description="the survey answer attribution uses (affiliate_id, handle) and whether it "
        "was given with_order or later; null without one",
    )
    review: dict[str, Any] | None = Field(
        None,
        description="the review's decision on the live conversion, held for review: decision "
        "(approve or decline), reason, decided_by, decided_at (ms); a decline pays its "
        "creator nothing (a review_decline posting takes the line back); null without one",
    )
    refused_reason: str | None = Field(
        None, description="status refused: the attribution's dead-letter reason (key_mismatch...)"
    )
    refusals: list[dict[str, Any]] = Field(
        [],
        description="the attribution's dead letters of copies of this order (event_id, "
        "reason, error_class, refused_at): a refused order, or a refused conflicting copy "
        "beside the one taken",
    )
    truncated: bool = Field(description="more events named this order than the index keeps")
    postings: list[dict[str, Any]] | None = Field(
        description="the creators' journal postings for this order; null when the ledger "
        "was not asked or did not answer (postings_error says why)"
    )
    lines: list[dict[str, Any]] | None = Field(
        None,
        description="the postings grouped by line, each with its explanation in the "
        "campaign's currency (explanation: what earned it, each refund, clawback or cap "
        "cut, and what it pays when); null when postings is",
    )
    postings_error: str | None = None
    ledger_refusals: list[dict[str, Any]] = Field(
        [],
        description="conversions of this order the ledger refused and dead-lettered (event_id, "
        "conversion_id, affiliate_id, reason, error_class, refused_at): nothing of them is "
        "in postings",
    )
    commission_refused_reason: str | None = Field(
        None,
        description="the ledger refused the live conversion (decision): its creator is paid "
        "nothing for this order, for this reason (e.g. CreatorSumOutOfRange, PeriodCompacted)",
    )


class OrderOutcomeAnswer(BaseModel):
    order_id: str
    outcomes: list[CampaignOutcome]


def _visible_campaigns(
    request: Request, ingestor: Ingestor, directory: CampaignDirectory, settings: OrdersSettings
) -> list[str]:
    refuse_credential_params(request)  # the admin's token too (as every admin route)
    authorization = request.headers.get("authorization")
    if authorization is not None:
        check_admin_token(settings.admin_token_value(), authorization)
        return sorted(directory.campaign_ids())
    merchant = ingestor.authenticate(
        one_header(request, signing.MERCHANT_HEADER),
        one_header(request, signing.SIGNATURE_HEADER),
        request_line(request),
        signed="the request line",
    )
    return sorted(
        c for c in directory.campaign_ids() if directory.latest(c).terms.merchant_id == merchant
    )


class LedgerAnswer(NamedTuple):
    postings: list[dict[str, Any]] | None
    error: str | None
    refusals: list[dict[str, Any]]
    lines: list[dict[str, Any]] | None = None


async def _postings(
    settings: OrdersSettings, campaign_id: str, order_id: str, affiliates: tuple[str, ...]
) -> LedgerAnswer:
    if not affiliates:
        return LedgerAnswer([], None, [], [])
    if not settings.payouts_url:
        return LedgerAnswer(None, "the ledger was not asked: AFFLUX_PAYOUTS_URL is not set", [])
    token = settings.admin_token_value() or ""
    # Ids are the merchant's: any character, so each is one encoded path segment.
    path = f"/v1/campaigns/{quote(campaign_id, safe='')}/orders/{quote(order_id, safe='')}"
    url = f"{settings.payouts_url.rstrip('/')}{path}/postings"
    try:
        async with httpx.AsyncClient(verify=tls_context(), timeout=LEDGER_TIMEOUT_S) as client:
            answer = await client.get(
                url,
                params=[("affiliate_id", a) for a in affiliates],
                headers={"Authorization": f"Bearer {token}"},
            )
        if answer.status_code == 503:  # rebuilt or replaying: half its postings
            return LedgerAnswer(
                None, "the ledger cannot be read now (being rebuilt or replayed): ask again", []
            )
        answer.raise_for_status()
        body = answer.json()
        postings: list[dict[str, Any]] = body["postings"]
        refusals, lines = body.get("refusals", []), body.get("lines", [])
        if not isinstance(refusals, list) or not isinstance(lines, list):
            raise ValueError("refusals or lines is not a list")
        return LedgerAnswer(postings, None, refusals, lines)
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        return LedgerAnswer(None, f"the ledger did not answer: {type(exc).__name__}", [])


@router.get(
    "/v1/orders/{order_id:path}",
    response_model=OrderOutcomeAnswer,
    responses={
        401: problem("missing, stale or wrong signature, or wrong admin token"),
        404: problem("no such order in the caller's campaigns"),
        503: problem("starting: campaign terms not loaded yet", retry=True),
    },
    summary="What became of an order (merchant-signed or admin)",
)
async def order_outcome_route(
    request: Request,
    ingestor: IngestDep,
    directory: DirectoryDep,
    settings: SettingsDep,
    order_id: str,
    campaign_id: Annotated[str | None, Query(description="only this campaign")] = None,
    x_afflux_merchant: Annotated[str | None, Header(description="the merchant id")] = None,
    x_afflux_signature: Annotated[
        str | None,
        Header(description='t=<unix s>,v1=<HMAC-SHA256 hex of "<t>.GET <path>[?<query>]">'),
    ] = None,
) -> dict[str, Any]:
    del x_afflux_merchant, x_afflux_signature  # read raw from the request by the check
    campaigns = _visible_campaigns(request, ingestor, directory, settings)
    if campaign_id is not None:
        campaigns = [c for c in campaigns if c == campaign_id]
    index: OutcomeIndex = request.app.state.outcome_index
    stored = await index.events(campaigns, order_id) if campaigns else {}
    if not stored:
        raise Rejected(404, "order_id", "no order with this id in your campaigns")
    outcomes = []
    for cid, found in stored.items():
        outcome = order_outcome(cid, order_id, found.events, found.copies)
        ledger = await _postings(settings, cid, order_id, outcome.affiliates)
        outcomes.append(
            outcome_json(outcome)
            | {
                "truncated": found.truncated,
                "postings": ledger.postings,
                "lines": ledger.lines if ledger.postings is not None else None,
                "postings_error": ledger.error,
                "ledger_refusals": ledger.refusals,
                "commission_refused_reason": commission_refused_reason(
                    outcome, ledger.refusals, ledger.postings
                ),
            }
        )
    return {"order_id": order_id, "outcomes": outcomes}
