"""Admin routes for campaign terms: publish a version, read the versions."""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from afflux.orders.errors import Rejected
from afflux.orders.ingest import parse
from afflux.shared.campaign_file import CampaignEntry
from afflux.shared.campaign_publish import publish_terms
from afflux.shared.campaign_view import CampaignDirectory
from afflux.shared.settings import CommonSettings

_VISIBLE_WAIT_S = 10.0


def check_admin(request: Request) -> None:
    settings: CommonSettings = request.app.state.settings
    expected = settings.admin_token_value()
    given = request.headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    if not given:
        raise Rejected(401, "Authorization", "missing: use Authorization: Bearer <admin token>")
    if (
        expected is None
        or scheme.lower() != "bearer"
        or not hmac.compare_digest(token.encode(), expected.encode())
    ):
        raise Rejected(401, "Authorization", "wrong admin token")


def versions_body(directory: CampaignDirectory, campaign_id: str) -> dict[str, Any]:
    return {
        "campaign_id": campaign_id,
        "versions": [v.model_dump(mode="json") for v in directory.versions(campaign_id)],
    }


async def _visible(directory: CampaignDirectory, campaign_id: str, version: int) -> bool:
    """Wait until this process's view holds ``version`` (read-your-writes for the caller)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _VISIBLE_WAIT_S
    while loop.time() < deadline:
        if campaign_id in directory and directory.latest(campaign_id).version >= version:
            return True
        await asyncio.sleep(0.05)
    return False


def campaigns_router() -> APIRouter:
    router = APIRouter()
    publish_lock = asyncio.Lock()  # one publisher at a time in this process

    @router.put("/v1/campaigns/{campaign_id}")
    async def put_campaign(campaign_id: str, request: Request) -> JSONResponse:
        """Publish ``{"effective_from"?: time, "terms": {...}}`` as the campaign's next version."""
        check_admin(request)
        entry = parse(CampaignEntry, await request.body())
        if entry.terms.campaign_id != campaign_id:
            raise Rejected(422, "terms.campaign_id", f"must equal the path id {campaign_id!r}")
        directory: CampaignDirectory = request.app.state.directory
        settings: CommonSettings = request.app.state.settings
        async with publish_lock:
            try:
                published = await publish_terms(
                    settings.kafka_bootstrap, [(entry.terms, entry.effective_from)]
                )
            except Exception as exc:
                raise Rejected(503, None, f"broker unavailable: {type(exc).__name__}") from None
        if published:
            version = published[0].versions[-1].version
            await _visible(directory, campaign_id, version)
            body: dict[str, Any] = {"published": True, "version": version}
            versions = [v.model_dump(mode="json") for v in published[0].versions]
        else:
            latest = directory.latest(campaign_id) if campaign_id in directory else None
            body = {"published": False, "version": latest.version if latest else None}
            versions = versions_body(directory, campaign_id)["versions"] if latest else []
        return JSONResponse(
            {"campaign_id": campaign_id, **body, "versions": versions},
            status_code=201 if published else 200,
        )

    @router.get("/v1/campaigns/{campaign_id}")
    async def get_campaign(campaign_id: str, request: Request) -> JSONResponse:
        check_admin(request)
        directory: CampaignDirectory = request.app.state.directory
        if campaign_id not in directory:
            raise Rejected(404, "campaign_id", "unknown campaign")
        return JSONResponse(versions_body(directory, campaign_id))

    return router
