"""The webhooks admin API (admin token): endpoints, their dead letters, replays.

``POST /v1/webhooks/endpoints`` answers the endpoint's signing secret once; it is kept
in Redis (signing needs it) and never shown again.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field, ValidationInfo, field_validator

from afflux.payouts import params
from afflux.payouts.deps import AdminDep, ClockDep, DirectoryDep
from afflux.payouts.errors import ERROR_RESPONSES
from afflux.payouts.settings import PayoutsSettings
from afflux.payouts.webhooks import signing
from afflux.payouts.webhooks.delivery import LookupFailed, Refused, check_destination
from afflux.payouts.webhooks.policy import EVENT_TYPES, Endpoint
from afflux.payouts.webhooks.redis_store import (
    TooManyEndpoints,
    UnreadableEndpoint,
    WebhookStore,
)
from afflux.payouts.webhooks.replay import ReplayIncomplete, replay
from afflux.shared.core.clock import from_ms
from afflux.shared.core.ids import new_id
from afflux.shared.core.terms import MAX_CREATOR_ID_LENGTH, creator_id_problem, merchant_id_problem
from afflux.shared.io.http.bodies import NAMES_ONCE_AFTER_ADMIN
from afflux.shared.io.http.problems import Problem
from afflux.shared.io.http.state import started_dep, state_dep

router = APIRouter(prefix="/v1/webhooks", responses=ERROR_RESPONSES, tags=["webhooks"])
WebhookStoreDep = Annotated[WebhookStore, Depends(started_dep("webhooks"))]
SettingsDep = Annotated[PayoutsSettings, Depends(state_dep("settings"))]
EventType = Literal["conversion.attributed", "conversion.reversed", "payout.issued"]


class NewEndpoint(BaseModel):
    owner_kind: Literal["merchant", "affiliate"] = Field(
        description="whose events: a merchant's campaigns, or a creator's"
    )
    owner_id: str = Field(
        min_length=1,
        max_length=MAX_CREATOR_ID_LENGTH,
        description="merchant_id (at most 64 characters) or affiliate_id (as a creator's"
        " links take it)",
    )
    url: str = Field(min_length=1, max_length=2048, description="http(s) URL that is POSTed to")
    event_types: list[EventType] = Field(min_length=1, max_length=len(EVENT_TYPES))
    description: str = Field("", max_length=200)

    @field_validator("owner_id")
    @classmethod
    def _an_owner_events_can_name(cls, owner_id: str, info: ValidationInfo) -> str:
        """An id no event can carry ("creator-01 " with a space, a look-alike letter, a
        control character) registered an endpoint that silently received nothing."""
        if info.data.get("owner_kind") == "affiliate":
            problem = creator_id_problem(owner_id)
        else:
            problem = merchant_id_problem(owner_id)
        if problem is not None:
            raise ValueError(problem)
        return owner_id


# 10^11 ms is 1973-03-03: a replay since a time before it is a time in seconds.
SECONDS_LOOK_LIKE_MS_BELOW = 10**11


class ReplayRequest(BaseModel):
    since: str | int = Field(description="re-send events published at or after (ms or ISO)")


async def _endpoint(store: WebhookStore, endpoint_id: str) -> Endpoint:
    try:
        endpoint = await store.get(endpoint_id)
    except UnreadableEndpoint:
        raise Problem(
            409,
            "endpoint_id",
            f"webhook endpoint {endpoint_id}'s stored record cannot be read by this version"
            " (written by a newer one, or damaged); run the version that wrote it, or remove"
            " the endpoint and register it again",
        ) from None
    if endpoint is None:
        raise Problem(404, "endpoint_id", f"no webhook endpoint {endpoint_id}")
    return endpoint


# An endpoint's stored record this version cannot read (``_endpoint``).
UNREADABLE_ENDPOINT: dict[int | str, dict[str, Any]] = {
    409: ERROR_RESPONSES[404]
    | {"description": "the endpoint's stored record cannot be read by this version"}
}


@router.post(
    "/endpoints",
    status_code=201,
    dependencies=[NAMES_ONCE_AFTER_ADMIN],
    responses={
        409: ERROR_RESPONSES[404]
        | {"description": "the owner has the most endpoints an owner may have already"}
    },
)
async def add_endpoint(
    _: AdminDep,
    store: WebhookStoreDep,
    settings: SettingsDep,
    clock: ClockDep,
    body: NewEndpoint,
) -> dict[str, Any]:
    try:
        await check_destination(
            body.url, allow_private=settings.private_addresses_allowed(settings.env)
        )
    except Refused as exc:
        raise Problem(422, "url", str(exc)) from None
    except LookupFailed as exc:  # nothing to check yet; a delivery would try again instead
        raise Problem(422, "url", f"{exc}; register it once the name resolves") from None
    endpoint = Endpoint(
        endpoint_id=new_id("ep"),
        owner_kind=body.owner_kind,
        owner_id=body.owner_id,
        url=body.url,
        event_types=tuple(dict.fromkeys(body.event_types)),
        secret=signing.secret_from_bytes(secrets.token_bytes(signing.SECRET_BYTES)),
        created_at=clock(),
        description=body.description,
    )
    try:
        await store.add(endpoint)
    except TooManyEndpoints as exc:
        raise Problem(409, "owner_id", str(exc)) from None
    return endpoint.public() | {"secret": endpoint.secret}


@router.get("/endpoints")
async def list_endpoints(
    _: AdminDep,
    store: WebhookStoreDep,
    owner_kind: Literal["merchant", "affiliate"] | None = None,
    owner_id: str | None = None,
) -> dict[str, Any]:
    found = await store.all()
    readable = sorted((e for e in found.values() if e is not None), key=lambda e: e.created_at)
    endpoints: list[dict[str, Any]] = [
        e.public()
        for e in readable
        if (owner_kind is None or e.owner_kind == owner_kind)
        and (owner_id is None or e.owner_id == owner_id)
    ]
    # A record this version cannot read (one of a newer version, damage) is listed under
    # every filter, its owner unknown: one such record answered 500 for the whole list.
    endpoints += [
        {"endpoint_id": i, "unreadable": True} for i, e in sorted(found.items()) if e is None
    ]
    return {"endpoints": endpoints}


@router.get("/endpoints/{endpoint_id}", responses=UNREADABLE_ENDPOINT)
async def get_endpoint(_: AdminDep, store: WebhookStoreDep, endpoint_id: str) -> dict[str, Any]:
    endpoint = await _endpoint(store, endpoint_id)
    return endpoint.public() | {"pending": await store.pending(endpoint_id)}


@router.delete("/endpoints/{endpoint_id}", status_code=204)
async def remove_endpoint(_: AdminDep, store: WebhookStoreDep, endpoint_id: str) -> Response:
    if not await store.remove(endpoint_id):
        raise Problem(404, "endpoint_id", f"no webhook endpoint {endpoint_id}")
    return Response(status_code=204)


@router.get("/endpoints/{endpoint_id}/dead-letters", responses=UNREADABLE_ENDPOINT)
async def dead_letters(
    _: AdminDep,
    store: WebhookStoreDep,
    endpoint_id: str,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    await _endpoint(store, endpoint_id)
    return {"dead_letters": await store.dead_letters(endpoint_id, limit)}


@router.post(
    "/endpoints/{endpoint_id}/replay",
    dependencies=[NAMES_ONCE_AFTER_ADMIN],
    responses=UNREADABLE_ENDPOINT,
)
async def replay_endpoint(
    _: AdminDep,
    store: WebhookStoreDep,
    settings: SettingsDep,
    directory: DirectoryDep,
    clock: ClockDep,
    endpoint_id: str,
    body: ReplayRequest,
) -> dict[str, Any]:
    endpoint = await _endpoint(store, endpoint_id)
    try:
        since = params.as_of(str(body.since), clock())
    except Problem as exc:
        raise Problem(422, "since", exc.reason) from None
    if 0 < since < SECONDS_LOOK_LIKE_MS_BELOW and str(body.since).strip().isdigit():
        # The webhook-timestamp header is in seconds, and passed back as ms it replayed
        # from January 1970: every event again.
        raise Problem(
            422,
            "since",
            f"{since} ms is {from_ms(since).isoformat()}: it looks like seconds; give "
            f"milliseconds ({since * 1000}) or an ISO time (0 replays from the start)",
        )
    try:
        result = await replay(
            store,
            directory,
            settings.kafka_bootstrap,
            endpoint,
            since_ms=since,
            now=clock(),
            max_events=settings.webhooks_replay_max_events,
            max_body_bytes=settings.webhooks_max_body_bytes,
        )
    except ReplayIncomplete as exc:  # answering 200 would say every event was replayed
        raise Problem(503, None, f"{exc}; nothing was scheduled: run the replay again") from None
    return {
        "events": result.events,
        "scheduled": result.scheduled,
        "already_scheduled": result.already_scheduled,
        "queue_full": result.queue_full,
        "truncated": result.truncated,
        "resume_since": result.resume_since,
    }
