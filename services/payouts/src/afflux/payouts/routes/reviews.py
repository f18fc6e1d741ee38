"""The review queue over HTTP: conversions held for review, and decisions on them.

- ``GET /v1/reviews?campaign_id=&status=``: the queue (``status`` ``held``, the
  default, or ``approved``, ``declined``, or ``all``: every conversion of the campaigns
  with review terms, ``not_held`` ones too), with each conversion's signals;
- ``POST /v1/reviews/{conversion_id}/approve`` and ``.../decline`` (body
  ``{"reason": "..."}``): a ``ConversionReviewed`` on the ``reviews`` topic, which the
  ledger applies (an approval dates the commission at the later of its lock's end and
  the decision; a decline reverses it with the reason).

Who: the admin token, or the merchant of the conversion's campaign (anyone else, and a
conversion the ledger does not know, gets 404); a creator key gets 403. A conversion
that is not held, or already decided, answers 409. The decision's event id derives from
the conversion, so a retried request is the same event; 202 once the broker has it. The
first decision asked is claimed in Redis before it is sent (``review_claims``), so
another decision asked before the ledger applied the first (the other one, or the same
one from someone else or with another reason) is a 409 naming the one that stands, never
a 202 the ledger then ignores; a decision the broker did not take (503) is released.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from afflux.payouts import reviews
from afflux.payouts.deps import ClockDep, DirectoryDep, PrincipalDep, StoreDep
from afflux.payouts.errors import ERROR_RESPONSES
from afflux.payouts.review_claims import Claim, claim_decision, release_decision
from afflux.payouts.reviews import Entry
from afflux.shared.core import access
from afflux.shared.core.access import Principal
from afflux.shared.core.ids import derived_id
from afflux.shared.core.journal.review_queue import STATUSES
from afflux.shared.events import ConversionReviewed
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.http.bodies import NAMES_ONCE_AFTER_CSRF
from afflux.shared.io.http.principals import CsrfDep
from afflux.shared.io.http.problems import Problem
from afflux.shared.topics import REVIEWS
from afflux.shared.wire import encode

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES, tags=["reviews"])
ConversionPath = Annotated[str, Path(min_length=1, max_length=200)]
Status = Literal["held", "approved", "declined", "all"]


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=500, description="why: on the decline's posting")


class ReviewRow(BaseModel):
    conversion_id: str
    campaign_id: str
    period: str
    order_id: str
    affiliate_id: str
    occurred_at: int
    status: str = Field(description="held, approved, declined or not_held")
    signals: list[str] = Field(description="the signals that hold it")
    risk_signals: list[str] = Field(description="every signal the conversion carries")
    amount_minor: int
    commission_minor: int
    currency: str = Field(description="of amount_minor and commission_minor")
    rule: str
    decided_by: str | None
    reason: str | None


class ReviewList(BaseModel):
    reviews: list[ReviewRow] = Field(description="oldest first, at most ``limit``")
    total: int = Field(description="every conversion of the status asked, listed or not")
    counts: dict[str, int] = Field(description="held, approved and declined conversions")


class Decided(BaseModel):
    conversion_id: str
    decision: str
    event_id: str


def _merchant(directory: CampaignDirectory, campaign_id: str) -> str | None:
    return directory.latest(campaign_id).terms.merchant_id if campaign_id in directory else None


def reviewable_campaigns(principal: Principal, directory: CampaignDirectory) -> list[str] | None:
    """The campaigns whose queue the caller sees (None: all, for the admin)."""
    if principal.is_admin:
        return None
    if principal.role != "merchant":
        raise Problem(403, "Authorization", f"a {principal.role} key may not review conversions")
    return [c for c in directory.campaign_ids() if _merchant(directory, c) == principal.subject]


@router.get("/reviews", response_model=ReviewList)
async def review_queue(
    principal: PrincipalDep,
    store: StoreDep,
    directory: DirectoryDep,
    campaign_id: str | None = None,
    status: Annotated[Status, Query()] = "held",
    limit: Annotated[int, Query(ge=1, le=reviews.MAX_LISTED)] = reviews.MAX_LISTED,
) -> dict[str, Any]:
    """Conversions held for review (or decided), oldest first, at most ``limit``."""
    allowed = reviewable_campaigns(principal, directory)
    if campaign_id is not None:
        if allowed is not None and campaign_id not in allowed:
            raise Problem(404, "campaign_id", f"unknown_campaign: {campaign_id}")
        allowed = [campaign_id]
    # Only a campaign some version of whose terms reviews conversions has a queue.
    campaigns = [
        c
        for c in (directory.campaign_ids() if allowed is None else allowed)
        if c in directory and any(v.terms.review is not None for v in directory.versions(c))
    ]
    statuses = STATUSES if status == "all" else (status,)
    found = await reviews.queue(store, campaigns, statuses, limit, directory.versions)
    return {"reviews": [e.view() for e in found.rows], "total": found.total, "counts": found.counts}


async def decide(
    principal: Principal,
    store: Any,
    directory: CampaignDirectory,
    state: Any,
    now: int,
    conversion_id: str,
    decision: Literal["approve", "decline"],
    reason: str,
) -> ConversionReviewed:
    """Check and send one decision (the HTTP routes and the portal's form)."""
    if principal.role == "creator":
        raise Problem(403, "Authorization", "a creator key may not review conversions")
    found = await reviews.entry(store, conversion_id)
    if found is None or found.record is None or not _may_review(principal, directory, found):
        raise Problem(404, "conversion_id", f"unknown_conversion: {conversion_id}")
    if found.status == reviews.NOT_HELD:
        raise Problem(409, "conversion_id", f"not_held: {conversion_id} is not held for review")
    if found.status != reviews.HELD:
        raise Problem(409, "conversion_id", f"already_decided: {conversion_id} was {found.status}")
    event = ConversionReviewed(
        event_id=derived_id("review", conversion_id),  # one decision each: a retry is the same
        occurred_at=now,
        conversion_id=conversion_id,
        order_id=found.order_id,
        campaign_id=found.campaign_id,
        affiliate_id=found.affiliate_id,
        order_occurred_at=found.occurred_at,
        decision=decision,
        reason=reason,
        decided_by="admin" if principal.is_admin else f"merchant:{principal.subject}",
    )
    producer = getattr(state, "producer", None)  # after the checks: they need no broker
    if producer is None:
        raise Problem(503, None, "starting")
    asked = Claim(decision, reason, event.decided_by, secrets.token_hex(8))
    taken = await claim_decision(store, found, asked)
    if taken != asked and not taken.answers(asked):  # decided meanwhile, not yet applied
        raise Problem(409, "conversion_id", _already_decided(conversion_id, taken))
    try:
        sent = await producer.send(REVIEWS.name, encode(event), key=found.order_id.encode())
    except Exception as exc:  # never handed over: nothing can be on the topic
        with contextlib.suppress(Exception):  # so the retry may be either decision again
            await release_decision(store, conversion_id, asked)
        raise Problem(503, None, f"the broker did not take the decision: {exc}") from None
    try:
        await sent
    except Exception as exc:
        # Handed over, never confirmed: the broker may have stored it, and the ledger would
        # apply it. Released, the other decision got a 202 the ledger then ignored (the
        # first stands): a merchant told a fraud was declined while it was approved.
        raise Problem(
            503,
            None,
            f"the broker did not confirm the decision ({type(exc).__name__}); it may have"
            " taken it: send the same decision again (the other one is refused, as it"
            " would be by the ledger)",
        ) from None
    return event


def _already_decided(conversion_id: str, taken: Claim) -> str:
    was = reviews.DECLINED if taken.decision == "decline" else reviews.APPROVED
    by = f" by {taken.decided_by}" if taken.decided_by else ""
    why = f" ({taken.reason!r})" if taken.reason else ""
    return f"already_decided: {conversion_id} was {was}{by}{why}"


def _may_review(principal: Principal, directory: CampaignDirectory, found: Entry) -> bool:
    return access.may_read_campaign(principal, _merchant(directory, found.campaign_id))


@router.post(
    "/reviews/{conversion_id}/approve",
    status_code=202,
    response_model=Decided,
    dependencies=[NAMES_ONCE_AFTER_CSRF],
)
async def approve(
    conversion_id: ConversionPath,
    principal: PrincipalDep,
    __: CsrfDep,  # a POST: with a session cookie, only from our pages (docs/portal.md)
    store: StoreDep,
    directory: DirectoryDep,
    clock: ClockDep,
    request: Request,
    body: DecisionBody | None = None,
) -> dict[str, str]:
    """Approve a held conversion: approved from the later of its lock's end and now."""
    reason = body.reason if body is not None else ""
    event = await decide(
        principal, store, directory, request.app.state, clock(), conversion_id, "approve", reason
    )
    return {"conversion_id": conversion_id, "decision": "approve", "event_id": event.event_id}


@router.post(
    "/reviews/{conversion_id}/decline",
    status_code=202,
    response_model=Decided,
    dependencies=[NAMES_ONCE_AFTER_CSRF],
)
async def decline(
    conversion_id: ConversionPath,
    principal: PrincipalDep,
    __: CsrfDep,  # a POST: with a session cookie, only from our pages (docs/portal.md)
    store: StoreDep,
    directory: DirectoryDep,
    clock: ClockDep,
    request: Request,
    body: DecisionBody | None = None,
) -> dict[str, str]:
    """Decline a held conversion: its commission is reversed with the reason."""
    reason = body.reason if body is not None else ""
    event = await decide(
        principal, store, directory, request.app.state, clock(), conversion_id, "decline", reason
    )
    return {"conversion_id": conversion_id, "decision": "decline", "event_id": event.event_id}
