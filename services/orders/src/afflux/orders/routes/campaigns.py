"""Admin routes for campaign terms: publish a version, read the versions."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from afflux.orders.body import read_body
from afflux.orders.deps import AdminDep, DirectoryDep, TermsPublisherDep
from afflux.orders.errors import Rejected
from afflux.orders.ingest import parse
from afflux.shared.campaign_file import CampaignEntry
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.http.apidocs import problem
from afflux.shared.wire import MAX_RECORD_BYTES

VISIBLE_WAIT_S = 10.0
# A published version travels in one campaigns record, with every earlier version, and
# every reader refuses a record over MAX_RECORD_BYTES: a larger body could never be read
# back, so it is refused (413) as it arrives instead of being read whole into memory.
MAX_TERMS_BODY_BYTES = MAX_RECORD_BYTES

router = APIRouter()


def versions_json(directory: CampaignDirectory, campaign_id: str) -> list[dict[str, Any]]:
    return [v.model_dump(mode="json") for v in directory.versions(campaign_id)]


async def visible(directory: CampaignDirectory, campaign_id: str, version: int) -> bool:
    """Wait until this process's view holds ``version`` (read-your-writes for the caller)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + VISIBLE_WAIT_S
    while loop.time() < deadline:
        if campaign_id in directory and directory.latest(campaign_id).version >= version:
            return True
        await asyncio.sleep(0.05)
    return False


_BODY = {"$ref": "#/components/schemas/CampaignEntry"}
_VERSIONS = {
    "type": "object",
    "required": ["campaign_id", "versions"],
    "properties": {
        "campaign_id": {"type": "string"},
        "published": {"type": "boolean"},
        "version": {"type": ["integer", "null"]},
        "versions": {"type": "array", "items": {"type": "object"}},
    },
}
_ANSWER = {"content": {"application/json": {"schema": _VERSIONS}}}


@router.put(
    "/v1/campaigns/{campaign_id}",
    responses={
        200: {"description": "the same terms as the latest version: nothing published", **_ANSWER},
        201: {"description": "published as the campaign's next version", **_ANSWER},
        400: problem("malformed JSON"),
        413: problem(f"body larger than {MAX_TERMS_BODY_BYTES} bytes, a campaigns record's limit"),
        415: problem(
            "a body sent as something else than JSON (a Content-Type other than"
            " application/json, or a Content-Encoding): names the header"
        ),
        422: problem(
            "invalid terms, or terms in another currency or of another merchant than the"
            " campaign's: the field and the reason"
        ),
        503: problem(
            "the broker did not take it, or another publication of the campaign held it"
            " too long: nothing was published, retry",
            retry=True,
        ),
    },
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": _BODY}}}
    },
)
async def put_campaign(
    _: AdminDep,
    campaign_id: str,
    request: Request,
    directory: DirectoryDep,
    publisher: TermsPublisherDep,
) -> JSONResponse:
    """Publish ``{"effective_from"?: time, "terms": {...}}`` as the campaign's next version."""
    # The admin token is checked (AdminDep, first) before the body is read.
    entry = parse(CampaignEntry, await read_body(request, MAX_TERMS_BODY_BYTES))
    if entry.terms.campaign_id != campaign_id:
        raise Rejected(422, "terms.campaign_id", f"must equal the path id {campaign_id!r}")
    published = await publisher.publish(entry)
    if published:
        version = published[0].versions[-1].version
        await visible(directory, campaign_id, version)
        body: dict[str, Any] = {"published": True, "version": version}
        versions = [v.model_dump(mode="json") for v in published[0].versions]
    else:
        latest = directory.latest(campaign_id) if campaign_id in directory else None
        body = {"published": False, "version": latest.version if latest else None}
        versions = versions_json(directory, campaign_id) if latest else []
    return JSONResponse(
        {"campaign_id": campaign_id, **body, "versions": versions},
        status_code=201 if published else 200,
    )


@router.get(
    "/v1/campaigns/{campaign_id}",
    responses={200: {"description": "every version", **_ANSWER}, 404: problem("unknown campaign")},
)
async def get_campaign(_: AdminDep, campaign_id: str, directory: DirectoryDep) -> JSONResponse:
    if campaign_id not in directory:
        raise Rejected(404, "campaign_id", "unknown campaign")
    return JSONResponse(
        {"campaign_id": campaign_id, "versions": versions_json(directory, campaign_id)}
    )
