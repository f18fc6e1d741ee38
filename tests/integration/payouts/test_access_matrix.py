"""Every operation of every service's OpenAPI document (and every route left out of it,
such as the portal's pages), asked by every role about its own object and another's:
generated from the documents and routes, so a new endpoint without access control
fails here.

Payouts (in process on a real Redis, afflux.payouts seeded by ``access_app``):

- without a credential, or with a wrong or revoked key: 401 with a problem body naming
  ``Authorization`` and ``WWW-Authenticate: Bearer`` (a portal page: a 303 to the login
  form instead), except the public operations;
- admin: never 401 or 403;
- a creator or merchant key, about another's object: never a 2xx, and a 404 is the very
  answer (status, body, headers) an id that does not exist gets;
- about its own object: a 2xx, unless the role may not use the operation at all (then
  the same refusal as for another's object);
- an operation without an object answers a creator or merchant only when it is about
  the caller itself (``SELF``); otherwise it refuses them;
- every state-changing request made with a session cookie but without its CSRF token,
  from our origin or another, is refused (401 or 403).

Clicks and orders know no creator or merchant keys: each non-public operation refuses a
request without credentials and one with such a key, and the admin token is accepted
where the admin API is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from access_app import (
    ADMIN_TOKEN,
    CREATOR,
    OTHER_CAMPAIGN,
    OTHER_CREATOR,
    AccessWorld,
    http_client,
    own_content,
    post,
)
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from afflux.clicks.app import create_app as clicks_app
from afflux.clicks.settings import ClicksSettings
from afflux.oracle.ledger_scenarios import CAMPAIGN
from afflux.orders.app import create_app as orders_app
from afflux.orders.settings import OrdersSettings
from afflux.payouts.app import create_app as payouts_app
from afflux.payouts.settings import PayoutsSettings
from afflux.shared.core.access import ADMIN

pytestmark = pytest.mark.integration

# Anyone may call these: health, metrics (operators; docs/portal.md), the login form.
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/c/{code}"),
    ("HEAD", "/c/{code}"),
    ("GET", "/portal/assets/{name}"),  # the portal's script, style and chart library
    ("GET", "/favicon.ico"),  # the portal's icon, which a browser asks for beside each page
}
# About the caller itself, whoever it is (the portal's landing page lists its own).
SELF = {("GET", "/v1/me"), ("POST", "/logout"), ("GET", "/portal")}
# The same length as the real ids, so a 404's headers (Content-Length) may be compared.
UNKNOWN = {"affiliate_id": "zzz", "campaign_id": "camp-zzzzz"}
OWNED = {"creator": "affiliate_id", "merchant": "campaign_id"}
# Decisions on a held conversion: its campaign is found from the conversion, and an
# unknown conversion answers the same 404 as another merchant's (checked end to end in
# tests/e2e/payouts/test_overrides_reviews_http.py).
BY_CONVERSION = {
    ("POST", "/v1/reviews/{conversion_id}/approve"),
    ("POST", "/v1/reviews/{conversion_id}/decline"),
}
# The portal's link forms ask the clicks service, which this world does not run: past
# access control they answer the 503 that says so (with the service: in
# tests/e2e/payouts/test_portal_browser.py).
NEEDS_CLICKS = {
    ("POST", "/portal/creators/{affiliate_id}/links"),
    ("POST", "/portal/creators/{affiliate_id}/links/{code}/deactivate"),
}
# A content's stats and its release: the content's campaign and creator are found from the
# content itself, so another's content must answer as an unknown one does (checked below in
# test_another_creators_or_campaigns_content_answers_as_an_unknown_one).
BY_CONTENT = {
    ("POST", "/v1/content/{platform}/{content_id}/stats"),
    ("POST", "/v1/content/{platform}/{content_id}/release"),
}
SIGNED_FIELDS = {"Authorization", "X-Afflux-Signature", "X-Afflux-Merchant", "sig", "t"}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    path_params: tuple[str, ...]
    required_query: tuple[str, ...]
    optional_query: tuple[str, ...]
    has_body: bool

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"

    def objects(self) -> tuple[str, ...]:
        """The owned ids it is about: its path's, else an owner named in its query."""
        in_path = tuple(p for p in self.path_params if p in UNKNOWN)
        if in_path:
            return in_path
        return tuple(p for p in (*self.required_query, *self.optional_query) if p in UNKNOWN)


def operations(app: FastAPI) -> list[Operation]:
    """Every operation of the app's OpenAPI document, and every route left out of it
    (pages): hiding a route from the reference does not hide it from this test."""
    found = [*hidden_operations(app)]
    for path, methods in app.openapi()["paths"].items():
        for method, spec in methods.items():
            params = spec.get("parameters", [])
            found.append(
                Operation(
                    method.upper(),
                    path,
                    tuple(p["name"] for p in params if p["in"] == "path"),
                    tuple(p["name"] for p in params if p["in"] == "query" and p.get("required")),
                    tuple(
                        p["name"] for p in params if p["in"] == "query" and not p.get("required")
                    ),
                    "requestBody" in spec,
                )
            )
    return found


def hidden_operations(app: FastAPI) -> list[Operation]:
    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or context.include_in_schema:
            continue
        path = context.path_format or route.path_format
        queries, bodies, dependants = [], [], [route.dependant]
        while dependants:  # the route's own parameters and its dependencies'
            dependant = dependants.pop()
            queries += dependant.query_params
            bodies += dependant.body_params
            dependants += dependant.dependencies
        path_params = tuple(dict.fromkeys(re.findall(r"{(\w+)(?::\w+)?}", path)))
        required = tuple(q.alias for q in queries if q.field_info.is_required())
        optional = tuple(q.alias for q in queries if not q.field_info.is_required())
        for method in sorted(context.methods or ()):
            found.append(Operation(method, path, path_params, required, optional, bool(bodies)))
    return found


def _payouts_operations() -> list[Operation]:
    return operations(payouts_app(PayoutsSettings(admin_token=ADMIN_TOKEN)))


OWN_IDS = {"affiliate_id": CREATOR, "campaign_id": CAMPAIGN}
OTHER_IDS = {"affiliate_id": OTHER_CREATOR, "campaign_id": OTHER_CAMPAIGN}


def _request(op: Operation, ids: dict[str, str]) -> tuple[str, dict[str, str], Any]:
    """The URL, query and JSON body of ``op`` about the objects ``ids`` names."""
    path = op.path
    for name in op.path_params:
        path = path.replace("{" + name + "}", ids.get(name, "x-1"))
    query = {name: ids.get(name, "x-1") for name in op.required_query}
    for name in op.optional_query:
        if name in ids and name in op.objects():
            query[name] = ids[name]
    return path, query, ({} if op.has_body else None)


async def _ask(
    world: AccessWorld, op: Operation, ids: dict[str, str], bearer: str | None
) -> httpx.Response:
    url, query, body = _request(op, ids)
    headers = {"authorization": f"Bearer {bearer}"} if bearer else {}
    async with http_client(world) as http:
        return await http.request(op.method, url, params=query, json=body, headers=headers)


def _same_answer(a: httpx.Response, b: httpx.Response, ids_a: str, ids_b: str) -> bool:
    """The same status, headers and body but for the id asked about (and the length of
    the body, when the two ids differ in length)."""
    headers_a, headers_b = dict(a.headers), dict(b.headers)
    if len(ids_a) != len(ids_b):
        headers_a.pop("content-length"), headers_b.pop("content-length")
    return (
        a.status_code == b.status_code
        and headers_a == headers_b
        and _with_id(a.content, ids_a, ids_b) == b.content
    )


def _with_id(content: bytes, old: str, new: str) -> bytes:
    """``content`` with the id ``old`` (a whole id, not part of a word) read as ``new``."""
    return re.sub(rf"(?<![\w-]){re.escape(old)}(?![\w-])".encode(), new.encode(), content)


def _assert_unauthorized(answer: httpx.Response, who: str, op: Operation) -> None:
    if op.path.startswith("/portal") and answer.status_code == 303:
        # A page sends a browser without a session to the login form instead.
        assert answer.headers["location"].startswith("/login"), f"{who} {op.name}"
        return
    assert answer.status_code == 401, f"{who} {op.name}: {answer.status_code} {answer.text}"
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.json()["detail"][0]["field"] == "Authorization"


def test_the_payouts_document_lists_the_operations_this_test_covers() -> None:
    names = {op.name for op in _payouts_operations()}
    # If these moved, the matrix would test nothing of them.
    assert "GET /v1/creators/{affiliate_id}/balance" in names
    assert "GET /v1/kpis/campaigns/{campaign_id}" in names
    assert "GET /reports/creators/{affiliate_id}" in names


PAYOUTS_OPS = _payouts_operations()


@pytest.mark.parametrize("op", PAYOUTS_OPS, ids=lambda op: op.name)
async def test_payouts_operation_refuses_anyone_without_a_good_credential(
    world: AccessWorld, op: Operation
) -> None:
    if (op.method, op.path) in PUBLIC:
        return
    for who, bearer in (
        ("anonymous", None),
        ("a wrong key", "afx_ck_" + "x" * 43),
        ("a revoked key", world.revoked_key),
        ("a wrong admin token", ADMIN_TOKEN + "x"),
    ):
        _assert_unauthorized(await _ask(world, op, OWN_IDS, bearer), who, op)


@pytest.mark.parametrize("op", PAYOUTS_OPS, ids=lambda op: op.name)
async def test_payouts_operation_is_never_refused_to_admin(
    world: AccessWorld, op: Operation
) -> None:
    if (op.method, op.path) in PUBLIC:
        return
    for ids in (OWN_IDS, OTHER_IDS, UNKNOWN):
        answer = await _ask(world, op, ids, ADMIN_TOKEN)
        assert answer.status_code not in (401, 403, 500), f"{op.name}: {answer.text}"


@pytest.mark.parametrize("role", ["creator", "merchant"])
@pytest.mark.parametrize("op", PAYOUTS_OPS, ids=lambda op: op.name)
async def test_payouts_operation_answers_a_key_only_about_its_own_objects(
    world: AccessWorld, op: Operation, role: str
) -> None:
    if (op.method, op.path) in PUBLIC:
        return
    key = world.creator_key if role == "creator" else world.merchant_key
    own = await _ask(world, op, OWN_IDS, key)
    if (op.method, op.path) in NEEDS_CLICKS and own.status_code == 503:
        assert "AFFLUX_CLICKS_URL is not set" in own.text, f"{op.name}: {own.text}"
    else:
        assert own.status_code < 500, f"{op.name}: {own.text}"
    objects = op.objects()
    if not objects:
        if (op.method, op.path) in BY_CONVERSION and role == "merchant":
            assert own.status_code == 404, f"{op.name}: {own.text}"
            return
        if (op.method, op.path) in BY_CONTENT:  # an unknown content, or a body without fields
            assert own.status_code in (403, 404, 422), f"{op.name}: {own.text}"
            return
        if (op.method, op.path) in SELF:
            assert own.status_code < 400, f"{op.name}: {own.text}"
        else:
            assert own.status_code in (401, 403, 422), f"{role} may {op.name}: {own.text}"
        return
    kind = objects[0]
    other = await _ask(world, op, OTHER_IDS, key)
    unknown = await _ask(world, op, UNKNOWN, key)
    assert not 200 <= other.status_code < 400, f"{role} reads another's {op.name}"
    assert other.status_code in (401, 403, 404), f"{op.name}: {other.text}"
    if other.status_code == 404:
        assert _same_answer(other, unknown, OTHER_IDS[kind], UNKNOWN[kind]), (
            f"{op.name}: another's object and an unknown one answer differently:\n"
            f"{other.headers} {other.text}\n{unknown.headers} {unknown.text}"
        )
    if own.status_code not in (401, 403, 404):  # past access control
        assert OWNED[role] in objects, f"{role} reads {op.name}, which is not about its own"
    else:  # the role may not use this operation at all: refused as for another's object
        assert _same_answer(own, other, OWN_IDS[kind], OTHER_IDS[kind]), (
            f"{op.name}: {role}'s own object refused unlike another's: {own.text} / {other.text}"
        )


@pytest.mark.parametrize("op", PAYOUTS_OPS, ids=lambda op: op.name)
async def test_a_creator_reads_its_own_figures_and_a_merchant_its_campaigns(
    world: AccessWorld, op: Operation
) -> None:
    if op.method != "GET" or not op.path_params or op.path_params[0] not in OWNED.values():
        return
    role = next(r for r, kind in OWNED.items() if kind == op.path_params[0])
    key = world.creator_key if role == "creator" else world.merchant_key
    answer = await _ask(world, op, OWN_IDS, key)
    if answer.status_code == 401 and (await _ask(world, op, OWN_IDS, ADMIN_TOKEN)).is_success:
        admin_only = answer.json()["detail"][0]["reason"] == "wrong admin token"
        assert admin_only, f"{op.name}: {answer.text}"
        return
    assert answer.is_success, f"{role} cannot read its own {op.name}: {answer.text}"


def _other_services() -> list[tuple[str, FastAPI, Operation]]:
    apps = {
        "clicks": clicks_app(
            ClicksSettings(admin_token=ADMIN_TOKEN, ip_hash_secret="access-matrix-secret")
        ),
        "orders": orders_app(OrdersSettings(admin_token=ADMIN_TOKEN)),
    }
    return [(name, app, op) for name, app in apps.items() for op in operations(app)]


OTHER_OPS = _other_services()


@pytest.mark.parametrize(
    ("service", "app", "op"), OTHER_OPS, ids=[f"{s} {op.name}" for s, _, op in OTHER_OPS]
)
async def test_clicks_and_orders_refuse_anonymous_and_portal_keys(
    service: str, app: FastAPI, op: Operation, world: AccessWorld
) -> None:
    if (op.method, op.path) in PUBLIC:
        return
    url, query, body = _request(op, OWN_IDS)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as http:
        for who, bearer in (
            ("anonymous", None),
            ("a creator key", world.creator_key),
            ("a merchant key", world.merchant_key),
        ):
            headers = {"authorization": f"Bearer {bearer}"} if bearer else {}
            answer = await http.request(op.method, url, params=query, json=body, headers=headers)
            # 401, or 422 for a merchant-signed call without its signature headers; the
            # orders intake answers 503 before any check until its Kafka ingestor runs (not
            # here: its signatures are tested in tests/integration/orders).
            refusals = (401, 422, 503) if service == "orders" else (401,)
            assert answer.status_code in refusals, f"{service} {op.name} {who}: {answer.text}"
            if answer.status_code == 401:
                [problem, *_] = answer.json()["detail"]
                assert problem["field"] in SIGNED_FIELDS, answer.text


STATE_CHANGING = [op for op in PAYOUTS_OPS if op.method not in ("GET", "HEAD", "OPTIONS")]


@pytest.mark.parametrize("role", ["admin", "creator", "merchant"])
@pytest.mark.parametrize("op", STATE_CHANGING, ids=lambda op: op.name)
async def test_every_state_changing_request_with_a_session_needs_its_csrf_token(
    world: AccessWorld, op: Operation, role: str
) -> None:
    if (op.method, op.path) in PUBLIC:
        return  # the login form has its own double-submit token (test_access_sessions)
    store = world.app.state.access
    credential = {
        "admin": ADMIN_TOKEN,
        "creator": world.creator_key,
        "merchant": world.merchant_key,
    }[role]
    principal = ADMIN if role == "admin" else await store.principal_of_key(credential)
    session_id, _ = await store.begin_session(principal, credential, 600)
    url, query, _ = _request(op, OWN_IDS)
    async with http_client(world, cookies={"afx_session": session_id}) as http:
        for origin in ("https://portal.test", "https://evil.example"):
            answer = await http.request(
                op.method,
                url,
                params=query,
                content=b"csrf_token=wrong" if not op.has_body else b"{}",
                headers={
                    "origin": origin,
                    "content-type": "application/x-www-form-urlencoded"
                    if not op.has_body
                    else "application/json",
                },
            )
            assert answer.status_code in (401, 403), (
                f"{role} session {op.name} from {origin} without its CSRF token: "
                f"{answer.status_code} {answer.text[:300]}"
            )


CONTENTS = (("c-own1", CAMPAIGN, CREATOR), ("c-oth1", OTHER_CAMPAIGN, OTHER_CREATOR))
STATS = {
    "as_of": 1_000,
    "views": 10,
    "impressions": 20,
    "likes": 3,
    "comments": 0,
    "shares": 0,
    "saves": 0,
    "followers": 100,
}


@pytest.mark.parametrize(
    ("role", "action"),
    [("creator", "stats"), ("merchant", "stats"), ("merchant", "release")],
)
async def test_another_creators_or_campaigns_content_answers_as_an_unknown_one(
    world: AccessWorld, role: str, action: str
) -> None:
    for content_id, campaign, creator in CONTENTS:
        await own_content(world, content_id, campaign, creator)
    key = world.creator_key if role == "creator" else world.merchant_key
    body = STATS if action == "stats" else None

    async def ask(content_id: str) -> httpx.Response:
        return await post(world, f"/v1/content/insta/{content_id}/{action}", body, key)

    own, other, unknown = [await ask(c) for c in ("c-own1", "c-oth1", "c-zzz1")]
    # Past access control: this world has no broker, so its own content gets the 503 of a
    # service still starting, never the refusal the other two get.
    assert own.status_code == 503, own.text
    assert other.status_code == 404, other.text
    assert _same_answer(other, unknown, "insta:c-oth1", "insta:c-zzz1"), (
        f"{other.headers} {other.text}\n{unknown.headers} {unknown.text}"
    )


# A creator's own figures narrowed to one campaign (``campaign_id`` in the query): the
# JSON API and the portal's pages, generated from the routes like the matrix above.
BY_CAMPAIGN_OF_CREATOR = [
    op
    for op in PAYOUTS_OPS
    if op.method == "GET" and op.path_params == ("affiliate_id",)
    and "campaign_id" in op.optional_query
]  # fmt: skip


def test_the_creator_operations_narrowed_to_a_campaign_are_the_ones_this_test_covers() -> None:
    names = {op.name for op in BY_CAMPAIGN_OF_CREATOR}
    assert {
        "GET /v1/creators/{affiliate_id}/ledger",
        "GET /v1/creators/{affiliate_id}/statement",
        "GET /v1/kpis/creators/{affiliate_id}",
        "GET /v1/kpis/creators/{affiliate_id}/series",
        "GET /v1/kpis/creators/{affiliate_id}/contents",
        "GET /portal/creators/{affiliate_id}/ledger",
        "GET /portal/creators/{affiliate_id}/statement",
    } <= names


async def _of_creator_in(
    world: AccessWorld, op: Operation, creator: str, campaign: str, bearer: str
) -> httpx.Response:
    url, _, _ = _request(op, {"affiliate_id": creator})
    async with http_client(world) as http:
        answer: httpx.Response = await http.get(
            url, params={"campaign_id": campaign}, headers={"authorization": f"Bearer {bearer}"}
        )
    return answer


@pytest.mark.parametrize("op", BY_CAMPAIGN_OF_CREATOR, ids=lambda op: op.name)
async def test_a_creator_asking_for_a_campaign_it_has_no_part_in_gets_the_unknown_campaign_404(
    world: AccessWorld, op: Operation
) -> None:
    """ana has a ledger in CAMPAIGN (whose terms name her), none in OTHER_CAMPAIGN: its
    ledger, statement (whose period would say the campaign's cadence) or KPIs narrowed to
    OTHER_CAMPAIGN must not tell that it exists."""
    key = world.creator_key
    other = await _of_creator_in(world, op, CREATOR, OTHER_CAMPAIGN, key)
    unknown = await _of_creator_in(world, op, CREATOR, UNKNOWN["campaign_id"], key)
    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["detail"][0]["field"] == "campaign_id", unknown.text
    assert _same_answer(other, unknown, OTHER_CAMPAIGN, UNKNOWN["campaign_id"]), (
        f"{op.name}: another's campaign and an unknown one answer differently:\n"
        f"{other.status_code} {other.headers} {other.text[:300]}\n"
        f"{unknown.status_code} {unknown.headers} {unknown.text[:300]}"
    )


@pytest.mark.parametrize("op", BY_CAMPAIGN_OF_CREATOR, ids=lambda op: op.name)
@pytest.mark.parametrize(
    ("who", "creator", "campaign"),
    [
        ("ana, named in its terms and with a ledger there", CREATOR, CAMPAIGN),
        # ben's coupon is in no terms: his ledger in it alone makes it his (an agency's
        # override postings are its only part in a campaign)
        ("ben, with a ledger there", OTHER_CREATOR, OTHER_CAMPAIGN),
        ("admin, of any known campaign", CREATOR, OTHER_CAMPAIGN),
    ],
)
async def test_a_creator_reads_its_figures_in_a_campaign_it_has_a_part_in_and_admin_in_any(
    world: AccessWorld, op: Operation, who: str, creator: str, campaign: str
) -> None:
    if who.startswith("admin"):
        key = ADMIN_TOKEN
    else:
        key = world.creator_key if creator == CREATOR else world.other_creator_key
    answer = await _of_creator_in(world, op, creator, campaign, key)
    if answer.status_code == 404 and who.startswith("admin"):
        # no figures of ana in OTHER_CAMPAIGN: the KPIs say so, on the creator
        assert answer.json()["detail"][0]["field"] == "affiliate_id", answer.text
        return
    assert answer.is_success, f"{who}: {op.name}: {answer.text[:300]}"
