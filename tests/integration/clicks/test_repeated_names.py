"""A JSON body naming a field twice is refused on every clicks route that reads a JSON body
(400 ``body`` naming the field), and only after the admin token: a caller without it is
answered 401, and a route that reads no JSON body does not read its body at all."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from tests.integration.repeated_names import (
    Watched,
    assert_refused_as_named_twice,
    assert_refused_without_credentials,
)

from .conftest import ADMIN

pytestmark = pytest.mark.integration

JSON = {"Content-Type": "application/json"}

# (method, path, body naming a field twice, the field): every route that reads a JSON body.
ROUTES = [
    (
        "POST",
        "/v1/links",
        b'{"affiliate_id":"a","campaign_id":"c","destination_url":"https://shop.example.com/",'
        b'"affiliate_id":"b"}',
        "affiliate_id",
    ),
]
IDS = [f"{method} {path}" for method, path, _, _ in ROUTES]
# The routes that change state without a JSON body.
OTHERS = [("DELETE", "/v1/links/{code}")]


def url(path: str) -> str:
    return path.format(code="no-such-code")


@pytest.mark.parametrize(("method", "path", "body", "name"), ROUTES, ids=IDS)
async def test_a_name_given_twice_is_a_400_naming_it_for_the_admin(
    client: httpx.AsyncClient, method: str, path: str, body: bytes, name: str
) -> None:
    await assert_refused_as_named_twice(client, method, url(path), body, name, {**ADMIN, **JSON})


@pytest.mark.parametrize(("method", "path", "body", "name"), ROUTES, ids=IDS)
async def test_a_caller_without_the_admin_token_is_a_401_whatever_its_body_names_twice(
    client: httpx.AsyncClient, method: str, path: str, body: bytes, name: str
) -> None:
    await assert_refused_without_credentials(client, method, url(path), body, JSON)


@pytest.mark.parametrize(("method", "path"), OTHERS, ids=str)
async def test_a_route_without_a_json_body_reads_nothing_of_an_unauthenticated_callers_body(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    body = Watched(b'{"code":"a","code":"b"}' + b" " * 100_000)
    answer = await client.request(method, url(path), content=body, headers=JSON)
    assert answer.status_code == 401, answer.text
    assert not body.read


def test_the_tables_name_every_route_that_changes_state(clicks_app: FastAPI) -> None:
    """A new route with a JSON body must be added to ROUTES, and so shown to refuse a
    repeated name after the admin token."""
    json_bodies, others = set(), set()
    for context in iter_route_contexts(clicks_app.routes):
        if isinstance(context.original_route, APIRoute):
            path = context.path_format or context.original_route.path_format
            methods = (context.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"}
            (json_bodies if context.body_field is not None else others).update(
                (method, path) for method in methods
            )
    assert json_bodies == {(method, path) for method, path, _, _ in ROUTES}
    assert others == set(OTHERS)
