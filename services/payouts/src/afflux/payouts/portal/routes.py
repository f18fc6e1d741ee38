"""The portal's routes: its pages and the static assets they load (``/portal/assets/``:
uPlot and the portal's own script and style, shipped in the package)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from functools import cache
from importlib import resources
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException

from afflux.payouts.portal import (
    brand_pages,
    creator_pages,
    link_pages,
    review_page,
    whatif_page,
)
from afflux.payouts.portal.guard import Refused
from afflux.payouts.portal.html import HEADERS, esc, page
from afflux.shared.io.http.problems import Problem

ASSETS = {
    "uPlot.iife.min.js": "text/javascript; charset=utf-8",
    "uPlot.min.css": "text/css; charset=utf-8",
    "uPlot.LICENSE": "text/plain; charset=utf-8",
    "portal.js": "text/javascript; charset=utf-8",
    "portal.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
assets = APIRouter(include_in_schema=False)


@cache
def _asset(name: str) -> bytes:
    return (resources.files("afflux.payouts") / "portal_assets" / name).read_bytes()


@assets.get("/portal/assets/{name}")
async def asset(name: str) -> Response:
    if name not in ASSETS:
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(
        _asset(name),
        media_type=ASSETS[name],
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=3600"},
    )


@assets.get("/favicon.ico")
async def favicon() -> Response:
    """What a browser asks for beside every page (it logged a 404 for each)."""
    return await asset("favicon.svg")


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    return exc.response


_TITLES = {401: "Not logged in", 404: "Not found", 422: "Cannot show this", 503: "Unavailable"}
# Where a browser reads pages: the portal, its report pages and the login form.
_PAGES = ("/portal", "/reports", "/login", "/logout")
Answer = Callable[[Request, Exception], Awaitable[Response]]
Handler = Callable[[Request, Any], Response | Awaitable[Response]]


def _opened_by_browser(request: Request) -> bool:
    return request.url.path.startswith(_PAGES) and "text/html" in request.headers.get("accept", "")


def _error_page(request: Request, answer: Response) -> Response:
    """The JSON problem ``answer`` as a page: the same status and headers, each field and
    reason listed, and the ways on (the page without its filters, the portal)."""
    try:
        detail = orjson.loads(bytes(answer.body))["detail"]
        items = [(str(d.get("field") or ""), str(d.get("reason") or "")) for d in detail]
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        items = [("", "the request could not be answered")]
    reasons = "".join(
        f"<li>{esc(field + ': ' if field else '')}{esc(reason)}</li>" for field, reason in items
    )
    path = request.url.path
    back = "/login" if path.startswith(("/login", "/logout")) else path
    # Back is the page without its filters (a refused form's page, a page to retry); an
    # unknown path without any had no such page, and the link led to the same 404.
    links = (
        '<p id="ways-on"><a href="/portal">Portal home</a></p>'
        if answer.status_code == 404 and not request.url.query and back == path
        else f'<p id="ways-on"><a href="{esc(back)}">Back to {esc(back)}</a>'
        ' · <a href="/portal">Portal home</a></p>'
    )
    title = _TITLES.get(answer.status_code, "Cannot do this")
    kept = {
        k: v
        for k, v in answer.headers.items()
        if k.lower() not in ("content-type", "content-length")
    }
    return HTMLResponse(
        page(title, f'<ul class="error" id="problem">{reasons}</ul>{links}', logged_in=False),
        status_code=answer.status_code,
        headers={**kept, **HEADERS},
    )


def _as_page(json_answer: Handler) -> Answer:
    """``json_answer`` (the API's problem handler), a page when a browser opened a page:
    a statement of a campaign the creator has no part in, a wrong key at the login form,
    a malformed period, an unknown portal path all showed the API's JSON in the browser.
    API clients (no ``text/html`` in ``Accept``) and every other path get the JSON."""

    async def answer(request: Request, exc: Exception) -> Response:
        answered = json_answer(request, exc)
        if inspect.isawaitable(answered):
            answered = await answered
        return _error_page(request, answered) if _opened_by_browser(request) else answered

    return answer


def install_portal(app: FastAPI) -> None:
    app.include_router(assets)
    app.include_router(brand_pages.router)
    app.include_router(creator_pages.router)
    app.include_router(link_pages.router)
    app.include_router(whatif_page.router)
    app.include_router(review_page.router)
    app.add_exception_handler(Refused, _refused)
    # After install_problem_handlers: each of its JSON answers, as a page for browsers.
    for kind in (Problem, RequestValidationError, HTTPException):
        json_answer = app.exception_handlers.get(kind)
        if json_answer is not None:  # an app built without them (tests) keeps its own
            app.add_exception_handler(kind, _as_page(json_answer))
