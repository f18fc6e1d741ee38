"""A JSON body naming a field twice is refused on every orders route that FastAPI routes
(the admin routes): 400 ``body`` naming the field, checked where the route parses its
body, so only after the admin token; the signed merchant routes are covered by
test_orders_rejected.py."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from tests.integration.repeated_names import (
    assert_refused_as_named_twice,
    assert_refused_without_credentials,
)

from .conftest import ADMIN_TOKEN, Campaigns

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}

# (method, path, body naming a field twice, the field): every route the app routes
# through FastAPI that takes a body.
ROUTES = [
    (
        "PUT",
        "/v1/campaigns/{campaign_id}",
        b'{"terms": {"campaign_id": "c-1", "merchant_id": "m-1", "merchant_id": "m-2"}}',
        "merchant_id",
    ),
    (
        "POST",
        "/v1/admin/backfill/orders",
        b'{"orders": [{"amount_minor": 1, "amount_minor": 250000}]}',
        "amount_minor",
    ),
    (
        "POST",
        "/v1/admin/backfill/refunds",
        b'{"refunds": [{"refund_id": "r-1", "refund_id": "r-2"}]}',
        "refund_id",
    ),
]

IDS = [f"{method} {path}" for method, path, _, _ in ROUTES]


def url(path: str, campaigns: Campaigns) -> str:
    return path.format(campaign_id=campaigns.shop.campaign_id)


@pytest.mark.parametrize(("method", "path", "body", "name"), ROUTES, ids=IDS)
async def test_a_name_given_twice_is_a_400_naming_it_on_each_admin_route(
    client: httpx.AsyncClient,
    campaigns: Campaigns,
    method: str,
    path: str,
    body: bytes,
    name: str,
) -> None:
    await assert_refused_as_named_twice(client, method, url(path, campaigns), body, name, ADMIN)


@pytest.mark.parametrize(("method", "path", "body", "name"), ROUTES, ids=IDS)
async def test_a_caller_without_the_admin_token_learns_nothing_of_its_body(
    client: httpx.AsyncClient,
    campaigns: Campaigns,
    method: str,
    path: str,
    body: bytes,
    name: str,
) -> None:
    headers = {"Content-Type": "application/json"}
    await assert_refused_without_credentials(client, method, url(path, campaigns), body, headers)


def test_the_table_names_every_routed_path_that_takes_a_body(orders_app: FastAPI) -> None:
    """A new admin route with a body must be added above, and so shown to refuse."""
    taking: set[tuple[str, str]] = set()
    for context in iter_route_contexts(orders_app.routes):
        if isinstance(context.original_route, APIRoute):  # not a signed direct route
            path = getattr(context, "path_format", context.original_route.path)
            taking |= {(m, path) for m in (context.methods or ()) & {"POST", "PUT", "PATCH"}}
    assert taking == {(method, path) for method, path, _, _ in ROUTES}
