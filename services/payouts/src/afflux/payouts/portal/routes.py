"""The portal's routes: its pages and the static assets they load (``/portal/assets/``:
uPlot and the portal's own script and style, shipped in the package)."""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

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


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    return exc.response


_TITLES = {404: "Not found", 422: "Cannot show this", 503: "Unavailable"}


async def _problem(request: Request, exc: Exception) -> Response:
    """A problem of a portal page a browser opened is a page, not JSON: a statement of a
    campaign the creator has no part in answered the API's JSON 404 in the browser. The
    same status and headers; API clients (no ``text/html`` in ``Accept``) and every other
    path get the JSON problem as before."""
    assert isinstance(exc, Problem)
    path, accept = request.url.path, request.headers.get("accept", "")
    if not (path.startswith("/portal") and "text/html" in accept):
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.response_headers())
    reasons = "".join(
        f"<li>{esc(item['field'] + ': ' if item['field'] else '')}{esc(item['reason'])}</li>"
        for item in exc.body()["detail"]
    )
    title = _TITLES.get(exc.status, "Cannot do this")
    body = f'<ul class="error" id="problem">{reasons}</ul>'
    return HTMLResponse(
        page(title, body, logged_in=False),
        status_code=exc.status,
        headers={**HEADERS, **(exc.response_headers() or {})},
    )


def install_portal(app: FastAPI) -> None:
    app.include_router(assets)
    app.include_router(brand_pages.router)
    app.include_router(creator_pages.router)
    app.include_router(link_pages.router)
    app.include_router(whatif_page.router)
    app.include_router(review_page.router)
    app.add_exception_handler(Refused, _refused)
    app.add_exception_handler(Problem, _problem)
