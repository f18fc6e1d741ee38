"""HTTP edge of the payouts service: balances, ledger lines, statements, KPIs, payout runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from redis.asyncio import Redis
from starlette.exceptions import HTTPException

from afflux.payouts import views
from afflux.payouts.consumer import LedgerConsumer
from afflux.payouts.divergence import RECOVERY
from afflux.payouts.metrics import PayoutsMetrics
from afflux.payouts.models import (
    BalanceAnswer,
    CreatorKpis,
    CreatorKpisList,
    KpiRow,
    LedgerAnswer,
    PayoutRunAnswer,
    SeriesAnswer,
    StatementAnswer,
)
from afflux.payouts.report import report_router
from afflux.payouts.run import run_payouts
from afflux.payouts.settings import PayoutsSettings
from afflux.payouts.store import LedgerStore
from afflux.shared.campaign_view import CampaignDirectory, follow_campaigns
from afflux.shared.clock_source import system_clock
from afflux.shared.core.clock import parse_event_time
from afflux.shared.core.commission import Line
from afflux.shared.core.periods import BadPeriod, period_bounds, period_of
from afflux.shared.core.terms import Period as PlanPeriod
from afflux.shared.kafka import new_producer

log = logging.getLogger(__name__)


class ProblemItem(BaseModel):
    field: str | None
    reason: str


class ProblemBody(BaseModel):
    """The error shape of every 4xx/5xx answer of the payouts API."""

    detail: list[ProblemItem]


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemBody, "description": what}
    for status, what in (
        (401, "missing or wrong admin token"),
        (404, "unknown creator or campaign"),
        (422, "malformed period, as_of or body: the field and the reason"),
        (503, "starting: campaign terms or the ledger not ready yet"),
    )
}

PROBLEM_REF = {"$ref": "#/components/schemas/ProblemBody"}


class Problem(Exception):
    def __init__(self, status: int, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.status, self.field, self.reason = status, field, reason


# 9998-12-31T23:59:59.999Z: the period of any earlier time still ends within what a
# datetime holds (year 9999); later cut-offs mean nothing.
_LATEST_MS = 253_370_764_799_999


def _problem(error: Any) -> dict[str, Any]:
    """One validation error as {field, reason}; a JSON syntax error's location is a
    character offset, so it names the body instead."""
    if error.get("type") == "json_invalid":
        return {"field": "body", "reason": f"malformed JSON: {error.get('msg')}"}
    return {
        "field": ".".join(str(p) for p in error.get("loc", ())) or None,
        "reason": error.get("msg"),
    }


def _as_of(value: str | None, now: int) -> int:
    if value is None or value == "":
        return now
    try:
        at = parse_event_time(int(value) if value.isascii() and value.isdigit() else value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise Problem(422, "as_of", f"not a time: {exc}") from None
    if at > _LATEST_MS:
        raise Problem(422, "as_of", "after 9998-12-31T23:59:59.999Z")
    return at


def _period(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    try:
        period_bounds(value)
    except BadPeriod as exc:
        raise Problem(422, "period", str(exc)) from None
    return value


def store_of(request: Request) -> LedgerStore:
    store: LedgerStore | None = getattr(request.app.state, "store", None)
    if store is None:
        raise Problem(503, None, "starting")
    return store


Store = Annotated[LedgerStore, Depends(store_of)]


class RunRequest(BaseModel):
    period: str | None = Field(None, description="YYYY-MM or YYYY-Www; default: the current one")
    as_of: str | int | None = Field(None, description="approval cut-off; default: now")


async def _follow_forever(directory: CampaignDirectory, bootstrap: str) -> None:
    """Campaign terms keep flowing across broker outages: restart the follower on failure."""
    while True:
        try:
            await follow_campaigns(directory, bootstrap)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("campaign follower failed; restarting")
        await asyncio.sleep(1)


def _exit_if_failed(task: asyncio.Task[None]) -> None:
    """A ledger that silently stops consuming is worse than a crash a supervisor restarts."""
    if task.cancelled() or task.exception() is None:
        return
    log.critical("background task failed; exiting", exc_info=task.exception())
    os._exit(70)


def create_app(settings: PayoutsSettings, *, clock: Callable[[], int] = system_clock) -> FastAPI:
    metrics = PayoutsMetrics()
    directory = CampaignDirectory()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = Redis.from_url(settings.redis_url)
        producer = new_producer(settings.kafka_bootstrap)
        await producer.start()
        store = LedgerStore(redis, cache_facts=settings.ledger_cache_facts)
        consumer = LedgerConsumer(
            bootstrap=settings.kafka_bootstrap,
            group_id=settings.payouts_group_id,
            instance_id=f"payouts-{settings.instance_id}" if settings.instance_id else None,
            store=store,
            directory=directory,
            producer=producer,
            metrics=metrics,
            clock=clock,
            max_records=settings.ledger_max_poll_records,
            verify_interval_s=settings.ledger_verify_interval_s,
        )
        tasks = [
            asyncio.create_task(_follow_forever(directory, settings.kafka_bootstrap)),
            asyncio.create_task(consumer.run()),
        ]
        tasks[1].add_done_callback(_exit_if_failed)
        app.state.store, app.state.producer, app.state.consumer = store, producer, consumer
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await producer.stop()
            await redis.aclose()  # type: ignore[attr-defined]

    app = FastAPI(
        title="afflux payouts",
        description="Commission ledger: balances, explained lines, statements, KPIs, payout runs.",
        lifespan=lifespan,
    )

    @app.exception_handler(Problem)
    async def problem(request: Request, exc: Problem) -> JSONResponse:
        return JSONResponse({"detail": [{"field": exc.field, "reason": exc.reason}]}, exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [_problem(e) for e in exc.errors()]
        return JSONResponse({"detail": detail or [{"field": None, "reason": "invalid"}]}, 422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(
            {"detail": [{"field": None, "reason": str(exc.detail)}]}, exc.status_code, exc.headers
        )

    @app.get("/healthz", include_in_schema=False)
    async def healthz(request: Request) -> JSONResponse:
        consumer: LedgerConsumer | None = getattr(request.app.state, "consumer", None)
        checks = {
            "campaigns": directory.ready.is_set(),
            "consumer": bool(consumer and consumer.ready.is_set()),
            "redis": False,
        }
        store: LedgerStore | None = getattr(request.app.state, "store", None)
        if store is not None:
            with contextlib.suppress(Exception):
                checks["redis"] = bool(await asyncio.wait_for(store.redis.ping(), 1))
        problems = consumer.health() if consumer is not None else []
        checks["ledger"] = not problems
        ok = all(checks.values())
        status = "ok" if ok else "starting"
        if consumer is not None and consumer.diverged:
            status = "diverged"
        elif consumer is not None and consumer.halted:
            status = "rebuilding"
        body: dict[str, Any] = {"status": status, "checks": checks}
        if problems:
            body["problems"] = problems
            body["diverged"] = [d.as_json() for d in consumer.diverged.values()] if consumer else []
            body["recovery"] = f"see docs/payouts.md: `{RECOVERY}`"
        return JSONResponse(body, 200 if ok else 503)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    api = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)

    async def creator_lines(store: LedgerStore, affiliate: str, campaign: str | None) -> list[Line]:
        cps = await store.campaign_periods(affiliate)
        if not cps:
            raise Problem(404, "affiliate_id", f"no ledger for creator {affiliate!r}")
        lines: list[Line] = []
        for cid, period in cps:
            if campaign is None or cid == campaign:
                lines += [x for x in await store.lines(cid, period) if x.affiliate_id == affiliate]
        return lines

    def known_campaign(campaign: str | None) -> None:
        if campaign is not None and campaign not in directory:
            raise Problem(404, "campaign_id", f"unknown campaign {campaign!r}")

    async def creator_payouts(
        store: LedgerStore, affiliate: str, campaign: str | None
    ) -> list[dict[str, Any]]:
        return [
            p
            for p in await store.payouts()
            if p["affiliate_id"] == affiliate and (campaign is None or p["campaign_id"] == campaign)
        ]

    @api.get("/creators/{affiliate_id}/balance", response_model=BalanceAnswer)
    async def balance(store: Store, affiliate_id: str, as_of: str | None = None) -> dict[str, Any]:
        at = _as_of(as_of, clock())
        lines = await creator_lines(store, affiliate_id, None)
        paid = await creator_payouts(store, affiliate_id, None)
        return {
            "affiliate_id": affiliate_id,
            "as_of": at,
            "balances": views.balances(lines, paid, at),
        }

    @api.get("/creators/{affiliate_id}/ledger", response_model=LedgerAnswer)
    async def ledger(
        store: Store, affiliate_id: str, campaign_id: str | None = None, as_of: str | None = None
    ) -> dict[str, Any]:
        at = _as_of(as_of, clock())
        known_campaign(campaign_id)
        lines = await creator_lines(store, affiliate_id, campaign_id)
        ordered = sorted(lines, key=lambda x: (x.occurred_at, x.line_id))
        return {
            "affiliate_id": affiliate_id,
            "as_of": at,
            "lines": [views.line_view(x, at) for x in ordered],
        }

    @api.get("/creators/{affiliate_id}/statement", response_model=StatementAnswer)
    async def statement(
        store: Store,
        affiliate_id: str,
        campaign_id: str | None = None,
        period: str | None = None,
        as_of: str | None = None,
    ) -> dict[str, Any]:
        at = _as_of(as_of, clock())
        known_campaign(campaign_id)
        wanted = _period(period) or _current_period(directory, campaign_id, at)
        lines = [
            x for x in await creator_lines(store, affiliate_id, campaign_id) if x.period == wanted
        ]
        paid = [
            p
            for p in await creator_payouts(store, affiliate_id, campaign_id)
            if p["period"] == wanted
        ]
        totals: dict[str, int] = {}
        for line in lines:
            totals[line.currency] = totals.get(line.currency, 0) + line.amount_minor
        return {
            "affiliate_id": affiliate_id,
            "period": wanted,
            "as_of": at,
            "lines": [
                views.line_view(x, at)
                for x in sorted(lines, key=lambda x: (x.occurred_at, x.line_id))
            ],
            "totals": [{"currency": c, "amount_minor": a} for c, a in sorted(totals.items())],
            "payouts": paid,
        }

    async def counts_for(
        store: Store, campaign: str | None, period: str | None
    ) -> dict[tuple[str, str], views._Counts]:
        """(campaign, affiliate) -> counts over the matching campaign-periods."""
        out: dict[tuple[str, str], views._Counts] = {}
        for cid, p in await store.campaign_periods():
            if (campaign is not None and cid != campaign) or (period is not None and p != period):
                continue
            if cid not in directory:
                continue
            stored, clicks = await store.period_state(cid, p)
            per_affiliate: dict[str, views._Counts] = {}
            currency = directory.latest(cid).terms.currency
            views.tally(stored, clicks, await store.lines(cid, p), currency, per_affiliate)
            for affiliate, counts in per_affiliate.items():
                key = (cid, affiliate)
                out[key] = views.combine([out[key], counts]) if key in out else counts
        return out

    @api.get("/kpis/campaigns/{campaign_id}", response_model=KpiRow)
    async def campaign_kpis(
        store: Store, campaign_id: str, period: str | None = None
    ) -> dict[str, Any]:
        known_campaign(campaign_id)
        counts = await counts_for(store, campaign_id, _period(period))
        total = views.combine(counts.values())
        total.currency = total.currency or directory.latest(campaign_id).terms.currency
        return {"campaign_id": campaign_id, "period": period, **views.kpi_row(total)}

    @api.get("/kpis/campaigns/{campaign_id}/series", response_model=SeriesAnswer)
    async def campaign_series(
        store: Store, campaign_id: str, period: str | None = None
    ) -> dict[str, Any]:
        known_campaign(campaign_id)
        total = views.combine((await counts_for(store, campaign_id, _period(period))).values())
        currency = directory.latest(campaign_id).terms.currency
        return {"campaign_id": campaign_id, "currency": currency, "buckets": views.series(total)}

    @api.get("/kpis/creators", response_model=CreatorKpisList)
    async def creators_kpis(
        store: Store, campaign_id: str | None = None, period: str | None = None
    ) -> dict[str, Any]:
        known_campaign(campaign_id)
        counts = await counts_for(store, campaign_id, _period(period))
        by_creator: dict[tuple[str, str], list[views._Counts]] = {}
        for (cid, affiliate), c in counts.items():
            # Without a campaign the rows are per creator and currency (money never mixes).
            key = (affiliate, cid if campaign_id else c.currency)
            by_creator.setdefault(key, []).append(c)
        rows = []
        for (affiliate, _scope), parts in sorted(by_creator.items()):
            row = views.kpi_row(views.combine(parts))
            rows.append({"affiliate_id": affiliate, "campaign_id": campaign_id, **row})
        return {"campaign_id": campaign_id, "period": period, "creators": rows}

    @api.get("/kpis/creators/{affiliate_id}", response_model=CreatorKpis)
    async def creator_kpis(
        store: Store, affiliate_id: str, campaign_id: str | None = None, period: str | None = None
    ) -> dict[str, Any]:
        known_campaign(campaign_id)
        counts = await counts_for(store, campaign_id, _period(period))
        mine = {k: v for k, v in counts.items() if k[1] == affiliate_id}
        if not mine:
            raise Problem(404, "affiliate_id", f"no activity for creator {affiliate_id!r}")
        per_currency: dict[str, list[views._Counts]] = {}
        for c in mine.values():
            per_currency.setdefault(c.currency, []).append(c)
        rows = [
            {
                "affiliate_id": affiliate_id,
                "campaign_id": campaign_id,
                **views.kpi_row(views.combine(p)),
            }
            for _, p in sorted(per_currency.items())
        ]
        return {"affiliate_id": affiliate_id, "period": period, "creators": rows, **rows[0]}

    @api.get("/kpis/creators/{affiliate_id}/series", response_model=SeriesAnswer)
    async def creator_series(
        store: Store, affiliate_id: str, campaign_id: str | None = None, period: str | None = None
    ) -> dict[str, Any]:
        known_campaign(campaign_id)
        counts = await counts_for(store, campaign_id, _period(period))
        mine = [v for k, v in counts.items() if k[1] == affiliate_id]
        if not mine:
            raise Problem(404, "affiliate_id", f"no activity for creator {affiliate_id!r}")
        total = views.combine(mine)
        return {
            "affiliate_id": affiliate_id,
            "currency": total.currency,
            "buckets": views.series(total),
        }

    @api.post("/payouts/run", response_model=PayoutRunAnswer)
    async def payouts_run(
        request: Request,
        store: Store,
        body: RunRequest | None = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        token = settings.admin_token_value()
        if not token or authorization != f"Bearer {token}":
            raise Problem(401, "Authorization", "admin bearer token required")
        wanted = body or RunRequest()
        at = _as_of(None if wanted.as_of is None else str(wanted.as_of), clock())
        period = _period(wanted.period)
        results = await run_payouts(
            store, directory, request.app.state.producer, as_of=at, period=period, metrics=metrics
        )
        return {"as_of": at, "period": period, "results": results}

    app.include_router(api)
    # Report pages answer HTML, their errors JSON: say so, or clients expect HTML errors.
    json_errors: dict[int | str, dict[str, Any]] = {
        status: {**spec, "content": {"application/json": {"schema": PROBLEM_REF}}}
        for status, spec in ERROR_RESPONSES.items()
        if status in (404, 422)
    }
    app.include_router(report_router(), responses=json_errors)
    return app


def _current_period(directory: CampaignDirectory, campaign: str | None, at: int) -> str:
    plan_period: PlanPeriod = "month"
    if campaign is not None and campaign in directory:
        plan_period = directory.at(campaign, at).terms.plan.period
    return period_of(at, plan_period)
