"""The portal's routes: its pages and the static assets they load (``/portal/assets/``:
uPlot and the portal's own script and style, shipped in the package)."""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from afflux.payouts.portal import (
    brand_pages,
    creator_pages,
    link_pages,
    review_page,
    whatif_page,
)
from afflux.payouts.portal.guard import Refused

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


def install_portal(app: FastAPI) -> None:
    app.include_router(assets)
    app.include_router(brand_pages.router)
    app.include_router(creator_pages.router)
    app.include_router(link_pages.router)
    app.include_router(whatif_page.router)
    app.include_router(review_page.router)
    app.add_exception_handler(Refused, _refused)
