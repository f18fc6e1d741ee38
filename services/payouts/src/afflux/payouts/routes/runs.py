"""Payout runs: ``POST /v1/payouts/run`` (admin), of every campaign or one (``campaign_id``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from afflux.payouts import params
from afflux.payouts.deps import (
    AdminDep,
    ClockDep,
    DirectoryDep,
    MetricsDep,
    ProducerDep,
    StoreDep,
)
from afflux.payouts.errors import ERROR_RESPONSES, ProblemBody
from afflux.payouts.models import PayoutRunAnswer
from afflux.payouts.queries import current_period, known_campaign
from afflux.payouts.run import LedgerNotReady, PayoutConflict, RunStopped, run_payouts
from afflux.shared.core.event_time import DEFAULT_CLOCK_SKEW_MS
from afflux.shared.core.periods import CADENCE_NAMES, cadence_of, period_of
from afflux.shared.io.http.bodies import NAMES_ONCE_AFTER_ADMIN
from afflux.shared.io.http.problems import Problem

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


class RunRequest(BaseModel):
    # A misspelt field ("campaign" for campaign_id) ignored would pay every campaign; a
    # true read as 1 ms a cut-off in 1970: both refused, naming the field.
    model_config = ConfigDict(extra="forbid", strict=True)

    period: str | None = Field(None, description="YYYY-MM or YYYY-Www; default: the current one")
    as_of: str | int | None = Field(
        None, description="approval cut-off, at most 5 minutes ahead of now; default: now"
    )
    campaign_id: str | None = Field(None, description="pay only this campaign; default: all")

    @field_validator("as_of", mode="before")
    @classmethod
    def _a_time(cls, value: object) -> object:
        if value is None or (isinstance(value, str | int) and not isinstance(value, bool)):
            return value
        raise ValueError("must be epoch milliseconds (an integer) or an RFC 3339 time (a string)")


@router.post(
    "/payouts/run",
    response_model=PayoutRunAnswer,
    dependencies=[NAMES_ONCE_AFTER_ADMIN],
    responses={
        409: {
            "model": ProblemBody,
            "description": "other runs kept paying the same creator meanwhile: run again",
        },
        503: {
            "model": ProblemBody,
            "description": "nothing paid: the ledger is being rebuilt or has not replayed"
            " its topics yet, or the campaign terms are not loaded yet; or the broker did"
            " not take a payout's event: the run stopped there, and `results` lists the"
            " payouts it made (they stand; the one whose event is unsent says `announced:"
            " false`, and the next run sends it)",
        },
        422: {
            "model": ProblemBody,
            "description": "malformed period, as_of or body (the field and the reason); an"
            " as_of more than 5 minutes ahead; with campaign_id, a period of the other"
            " cadence than the campaign's (a week for a monthly campaign, a month for a"
            " weekly one), naming period and the campaign's cadence",
        },
    },
)
async def payouts_run(
    _: AdminDep,
    store: StoreDep,
    directory: DirectoryDep,
    producer: ProducerDep,
    metrics: MetricsDep,
    clock: ClockDep,
    body: RunRequest | None = None,
) -> dict[str, Any] | JSONResponse:
    wanted = body or RunRequest()
    now = clock()
    at = params.as_of(None if wanted.as_of is None else str(wanted.as_of), now)
    if at - now > DEFAULT_CLOCK_SKEW_MS:
        # A cut-off ahead would pay, today, commission its terms still hold (return window).
        raise Problem(
            422,
            "as_of",
            f"{at - now} ms in the future: a payout run pays only what is approved by now"
            f" (clock-skew allowance {DEFAULT_CLOCK_SKEW_MS} ms)",
        )
    period = params.period(wanted.period)
    known_campaign(directory, wanted.campaign_id)
    if period is not None and wanted.campaign_id is not None:
        # A payout is recorded under its period's name: a monthly campaign paid under a
        # week's name (or a weekly one under a month's) names a period its ledger has not.
        cadence = directory.at(wanted.campaign_id, at).terms.plan.period
        if cadence_of(period) != cadence:
            raise Problem(
                422,
                "period",
                f"{period!r} is {CADENCE_NAMES[cadence_of(period)]}, but campaign"
                f" {wanted.campaign_id} is paid by the {cadence} (its terms at as_of): name"
                f" {CADENCE_NAMES[cadence]}, such as {period_of(at, cadence)}",
            )
    try:
        results = await run_payouts(
            store,
            directory,
            producer,
            as_of=at,
            period=period,
            campaign=wanted.campaign_id,
            metrics=metrics,
            now=now,
        )
    except PayoutConflict as exc:  # what was recorded stays; a new run finishes the rest
        raise Problem(409, None, str(exc)) from None
    except RunStopped as exc:  # what was recorded stays; the next run announces it
        return JSONResponse(
            status_code=503,
            headers={"Retry-After": "30"},
            content={
                "detail": [
                    {
                        "field": None,
                        "reason": f"{exc}: the run stopped; the payouts in results are"
                        " recorded (announced: false: its event is sent by the next run) and"
                        f" stand; run again once {exc.unanswered} answers",
                    }
                ],
                "as_of": at,
                "results": exc.results,
            },
        )
    except LedgerNotReady as exc:  # nothing was paid
        raise Problem(
            503,
            None,
            f"no payout run now: {exc}; run again once the payouts consumers have replayed"
            ' (afflux_consumer_lag_messages{service="payouts"} 0) and /healthz answers 200',
        ) from None
    # The period paid: the one asked for, else the campaign's current one at as_of (the
    # month without a campaign; each result names its own: a campaign of the other
    # cadence than the one asked for is paid under its own period at as_of).
    paid = period or current_period(directory, wanted.campaign_id, at)
    return {"as_of": at, "period": paid, "campaign_id": wanted.campaign_id, "results": results}
