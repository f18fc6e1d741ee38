"""Every route a service answers is in its OpenAPI document, with every error it can give.

The apps are built, not started: their routes (direct routes and the click redirect
included) are compared with ``app.openapi()``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import Mount, Route

from afflux.attribution.web import OPENAPI as ATTRIBUTION_OPENAPI
from afflux.attribution.web import WorkerWeb
from afflux.clicks.app import create_app as clicks_app
from afflux.clicks.settings import ClicksSettings
from afflux.orders.app import create_app as orders_app
from afflux.orders.settings import OrdersSettings
from afflux.payouts.app import create_app as payouts_app
from afflux.payouts.settings import PayoutsSettings
from afflux.shared.io.http.apidocs import OPENAPI_PATH

pytestmark = pytest.mark.unit

# The reference itself is not part of it.
REFERENCE = {OPENAPI_PATH, "/docs"}
# Nor are the portal's HTML pages and their assets (docs/portal.md): pages for people,
# which send a browser without a session to /login rather than answer an API client.
PAGES = ("/portal", "/favicon.ico")
ADMIN_ONLY_PREFIXES = ("/v1/links", "/v1/campaigns", "/v1/admin", "/v1/creators", "/v1/kpis")


def build(service: str) -> FastAPI:
    if service == "clicks":
        return clicks_app(ClicksSettings(ip_hash_secret="unit-test-ip-secret"))
    if service == "orders":
        return orders_app(OrdersSettings())
    return payouts_app(PayoutsSettings())


def served(app: FastAPI) -> set[tuple[str, str]]:
    """(path, method) of every route of ``app``, included routers' too."""
    pairs: set[tuple[str, str]] = set()
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, Mount) or not isinstance(route, Route):
            continue
        path = getattr(context, "path_format", route.path)
        for method in context.methods or ():
            if path not in REFERENCE and not path.startswith(PAGES) and method != "HEAD":
                pairs.add((path, method.lower()))
    return pairs


@pytest.mark.parametrize("service", ["clicks", "orders", "payouts"])
def test_every_route_is_documented_with_its_refusals(service: str) -> None:
    app = build(service)
    document = json.loads(json.dumps(app.openapi()))
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert served(app) <= documented
    for path, method in documented:
        answers: dict[str, Any] = document["paths"][path][method]["responses"]
        if path.startswith(ADMIN_ONLY_PREFIXES):
            assert "401" in answers, f"{method} {path}"
        assert "HTTPValidationError" not in json.dumps(answers), f"{method} {path}"
        if "requestBody" in document["paths"][path][method]:
            # Every body is plain JSON, refused otherwise (the backfills did not say so).
            assert "415" in answers, f"{method} {path}"
    if service == "clicks":
        assert {("/c/{code}", "get"), ("/c/{code}", "head")} <= documented


async def get(app: WorkerWeb, path: str) -> tuple[int, bytes, bytes]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "path": path, "method": "GET", "headers": []}
    await app(scope, None, send)
    content_type = dict(sent[0]["headers"])[b"content-type"]
    return sent[0]["status"], content_type, sent[1]["body"]


async def test_the_attribution_port_answers_its_reference_as_json_and_swagger_ui() -> None:
    web = WorkerWeb(lambda: (True, {"status": "ok"}), lambda: b"")
    status, content_type, body = await get(web, OPENAPI_PATH)
    assert (status, content_type) == (200, b"application/json")
    document = json.loads(body)
    assert document == json.loads(json.dumps(ATTRIBUTION_OPENAPI))
    for path in document["paths"]:
        assert (await get(web, path))[0] == 200, path
    status, content_type, body = await get(web, "/docs")
    assert status == 200
    assert content_type.startswith(b"text/html")
    assert b"/docs/assets/swagger-ui-bundle.js" in body
    assert (await get(web, "/docs/assets/swagger-ui-bundle.js"))[0] == 200
    assert (await get(web, "/docs/assets/../../secret"))[0] == 404
