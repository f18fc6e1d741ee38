"""Admin API for tracking links: create, read, deactivate (``AdminDep``: the bearer token)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from afflux.clicks.deps import AdminDep, CacheDep, ClockDep, DirectoryDep, SettingsDep, StoreDep
from afflux.clicks.destinations import BadDestination, check_destination
from afflux.clicks.links import MAX_CODE_LENGTH, Link, LinkNotPublished, LinksRestoring, new_code
from afflux.shared.core.terms import creator_id_problem
from afflux.shared.io.campaign_view import CampaignDirectory
from afflux.shared.io.http.bodies import NAMES_ONCE_AFTER_ADMIN
from afflux.shared.io.http.problems import Problem

# A broker that took the change and did not answer in time may still store it: only the
# same request sent again makes the link's state certain (a Redis restore reads the topic).
_NOT_PUBLISHED = (
    "the broker did not acknowledge the change in time; the link is unchanged here, but"
    " the broker may still record it: send the same request again"
)
_RESTORING = "links are being restored from the links topic; try again in a moment"

Ident = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:@-]+$")]


def _a_creator_pages_can_name(affiliate_id: str) -> str:
    problem = creator_id_problem(affiliate_id)
    if problem is not None:
        raise ValueError(problem)
    return affiliate_id


# The pattern and length checked by creator_id_problem, in words (the bare pattern said
# "String should match pattern '^[A-Za-z0-9_.:@-]+$'" where terms and webhooks explain).
CreatorIdent = Annotated[str, AfterValidator(_a_creator_pages_can_name)]


class ProblemItem(BaseModel):
    field: str | None
    reason: str


class ProblemBody(BaseModel):
    """The error shape of every 4xx/5xx answer of the links API."""

    detail: list[ProblemItem]


class LinkOut(BaseModel):
    code: str
    affiliate_id: str
    campaign_id: str
    destination_url: str
    active: bool
    created_at: int
    url: str


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemBody, "description": what}
    for status, what in (
        (400, "a credential in the query string, or a JSON body naming a field twice"),
        (401, "missing or wrong admin token"),
        (404, "no such link"),
        (409, "the custom code is taken"),
        (415, "a body that is not plain JSON (Content-Type or Content-Encoding named)"),
        (422, "invalid request, unknown campaign or destination not allowed"),
        (
            503,
            "starting (campaign terms not loaded yet), the broker did not take the change, "
            "or links are being restored (Redis lost them or held one it could not read)",
        ),
    )
}


class LinkCreate(BaseModel):
    """A new tracking link for one creator in one campaign."""

    model_config = ConfigDict(extra="forbid")

    affiliate_id: CreatorIdent
    campaign_id: Ident
    destination_url: Annotated[str, Field(min_length=1, max_length=4096)]
    code: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{3,64}$")] | None = Field(
        None, description="a custom code; generated when omitted"
    )


def allowed_domains(directory: CampaignDirectory, campaign_id: str, now_ms: int) -> tuple[str, ...]:
    """The domains a link of ``campaign_id`` may redirect to under the terms at ``now_ms``."""
    return directory.at(campaign_id, now_ms).terms.allowed_domains


router = APIRouter(prefix="/v1/links", tags=["links"], responses=_ERRORS)


@router.post("", status_code=201, response_model=LinkOut, dependencies=[NAMES_ONCE_AFTER_ADMIN])
async def create_link(
    body: LinkCreate,
    _: AdminDep,
    store: StoreDep,
    cache: CacheDep,
    directory: DirectoryDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> JSONResponse:
    """Create a link; its destination must be on the campaign's allowed domains."""
    if not directory.ready.is_set():
        raise Problem(503, None, "starting: campaign terms not loaded yet")
    if body.campaign_id not in directory:
        raise Problem(422, "campaign_id", f"unknown campaign {body.campaign_id!r}")
    now = clock()
    try:
        check_destination(body.destination_url, allowed_domains(directory, body.campaign_id, now))
    except BadDestination as exc:
        raise Problem(422, "destination_url", str(exc)) from None
    for _attempt in range(5):
        link = Link(
            code=body.code or new_code(),
            affiliate_id=body.affiliate_id,
            campaign_id=body.campaign_id,
            destination_url=body.destination_url,
            active=True,
            created_at=now,
        )
        try:
            created = await store.create(link)
        except LinkNotPublished:
            raise Problem(503, None, _NOT_PUBLISHED) from None
        if created:
            cache.forget(link.code)
            return JSONResponse(link.public(settings.clicks_public_url), status_code=201)
        if body.code:
            raise Problem(409, "code", f"code {body.code!r} is taken")
    raise Problem(503, "code", "could not find a free code; try again")


class LinkList(BaseModel):
    affiliate_id: str
    links: list[LinkOut]


@router.get("", response_model=LinkList)
async def list_links(
    affiliate_id: Annotated[str, Query(min_length=1, max_length=200)],
    _: AdminDep,
    store: StoreDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Every link of one creator, deactivated ones included, by code."""
    try:
        links = await store.of_creator(affiliate_id)
    except LinksRestoring:
        raise Problem(503, None, _RESTORING) from None
    return {
        "affiliate_id": affiliate_id,
        "links": [link.public(settings.clicks_public_url) for link in links],
    }


@router.get("/{code}", response_model=LinkOut)
async def get_link(code: str, _: AdminDep, store: StoreDep, settings: SettingsDep) -> JSONResponse:
    try:
        link = await store.get(code) if len(code) <= MAX_CODE_LENGTH else None
    except LinksRestoring:
        raise Problem(503, None, _RESTORING) from None
    if link is None:
        raise Problem(404, "code", "no such link")
    return JSONResponse(link.public(settings.clicks_public_url))


@router.delete("/{code}", response_model=LinkOut)
async def deactivate_link(
    code: str, _: AdminDep, store: StoreDep, cache: CacheDep, settings: SettingsDep
) -> JSONResponse:
    """Deactivate: the code answers 404 from now on (within about a second everywhere)."""
    try:
        link = await store.deactivate(code) if len(code) <= MAX_CODE_LENGTH else None
    except LinkNotPublished:
        raise Problem(503, None, _NOT_PUBLISHED) from None
    except LinksRestoring:
        raise Problem(503, None, _RESTORING) from None
    if link is None:
        raise Problem(404, "code", "no such link")
    cache.forget(code)
    return JSONResponse(link.public(settings.clicks_public_url))
