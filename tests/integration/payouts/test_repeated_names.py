"""A JSON body naming a field twice is refused on every payouts route that reads a JSON
body (400 ``body`` naming the field), and only after the caller's credentials: a caller
without them is answered 401, and a route that reads no JSON body (or reads its own form
only after the credentials) does not read an unauthenticated caller's body at all."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from access_app import ADMIN_TOKEN, AccessWorld, http_client
from fastapi import FastAPI
from fastapi.params import Form
from fastapi.routing import APIRoute, iter_route_contexts
from tests.integration.repeated_names import (
    Watched,
    assert_refused_as_named_twice,
    assert_refused_without_credentials,
)

from afflux.oracle.ledger_scenarios import CAMPAIGN
from afflux.payouts.app import create_app
from afflux.payouts.settings import PayoutsSettings

pytestmark = pytest.mark.integration

# (method, path, body naming a field twice, the field): every route that reads a JSON body.
ROUTES = [
    ("POST", "/v1/payouts/run", b'{"campaign_id":"beta","campaign_id":"acme"}', "campaign_id"),
    (
        "POST",
        "/v1/webhooks/endpoints",
        b'{"owner_kind":"merchant","url":"https://a.example/","url":"https://b.example/"}',
        "url",
    ),
    ("POST", "/v1/webhooks/endpoints/{endpoint_id}/replay", b'{"since":1,"since":2}', "since"),
    ("POST", "/v1/keys", b'{"role":"merchant","subject":"m","role":"creator"}', "role"),
    (
        "POST",
        "/v1/campaigns/{campaign_id}/whatif",
        b'{"terms":{"campaign_id":"a","campaign_id":"b"}}',
        "campaign_id",
    ),
    ("POST", "/v1/content", b'{"content_id":"p-1","content_id":"p-2"}', "content_id"),
    ("POST", "/v1/content/{platform}/{content_id}/stats", b'{"views":1,"views":9}', "views"),
    ("POST", "/v1/content/{platform}/{content_id}/release", b'{"note":"a","note":"b"}', "note"),
    ("POST", "/v1/reviews/{conversion_id}/approve", b'{"reason":"a","reason":"b"}', "reason"),
    ("POST", "/v1/reviews/{conversion_id}/decline", b'{"reason":"a","reason":"b"}', "reason"),
]
IDS = [f"{method} {path}" for method, path, _, _ in ROUTES]
# Anyone may log in: its form is read without credentials.
PUBLIC = {("POST", "/login")}
PATH_VALUES = {
    "campaign_id": CAMPAIGN,
    "endpoint_id": "ep-1",
    "platform": "youtube",
    "content_id": "c-1",
    "conversion_id": "conv-1",
    "affiliate_id": "ana",
    "key_id": "k-1",
    "code": "abc123",
    "decision": "approve",
}
JSON = {"Content-Type": "application/json"}
ADMIN = {**JSON, "Authorization": f"Bearer {ADMIN_TOKEN}"}


def url(path: str) -> str:
    return path.format(**PATH_VALUES)


def routes_with_a_body(app: FastAPI) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(method, path) of every routed operation that changes state: those FastAPI reads a
    JSON body into a model for, and the others."""
    json_bodies: set[tuple[str, str]] = set()
    others: set[tuple[str, str]] = set()
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute):
            continue
        path = context.path_format or context.original_route.path_format
        body = context.body_field
        reads_json = body is not None and not isinstance(body.field_info, Form)
        for method in (context.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"}:
            (json_bodies if reads_json else others).add((method, path))
    return json_bodies, others


JSON_ROUTES, OTHER_ROUTES = routes_with_a_body(create_app(PayoutsSettings(admin_token=ADMIN_TOKEN)))


@pytest.fixture
async def http(world: AccessWorld) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(world) as client:
        yield client


@pytest.mark.parametrize(("method", "path", "body", "name"), ROUTES, ids=IDS)
async def test_a_name_given_twice_is_a_400_naming_it_for_an_authenticated_caller(
    http: httpx.AsyncClient, method: str, path: str, body: bytes, name: str
) -> None:
    await assert_refused_as_named_twice(http, method, url(path), body, name, ADMIN)


@pytest.mark.parametrize(("method", "path", "body", "name"), ROUTES, ids=IDS)
async def test_a_caller_without_credentials_is_a_401_whatever_its_body_names_twice(
    http: httpx.AsyncClient, method: str, path: str, body: bytes, name: str
) -> None:
    await assert_refused_without_credentials(http, method, url(path), body, JSON)


@pytest.mark.parametrize(("method", "path"), sorted(OTHER_ROUTES - PUBLIC), ids=str)
async def test_a_route_without_a_json_body_reads_nothing_of_an_unauthenticated_callers_body(
    http: httpx.AsyncClient, method: str, path: str
) -> None:
    """The portal's forms (read only after the session and its CSRF token) and the
    routes that take no body: a body is not even read before the credentials are."""
    body = Watched(b'{"csrf_token":"a","csrf_token":"b"}' + b" " * 100_000)
    answer = await http.request(method, url(path), content=body, headers=JSON)
    if path.startswith("/portal") and answer.status_code == 303:
        assert answer.headers["location"].startswith("/login")
    else:
        assert answer.status_code == 401, answer.text
        assert answer.json()["detail"][0]["field"] == "Authorization"
    assert not body.read


def test_the_tables_name_every_route_that_changes_state() -> None:
    """A new route with a JSON body must be added to ROUTES, and so shown to refuse a
    repeated name after the credentials; the form routes are among the others."""
    assert {(method, path) for method, path, _, _ in ROUTES} == JSON_ROUTES
    assert ("POST", "/portal/creators/{affiliate_id}/links") in OTHER_ROUTES
    assert ("POST", "/portal/campaigns/{campaign_id}/whatif") in OTHER_ROUTES
