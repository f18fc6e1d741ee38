"""OpenAPI path items for the merchant endpoints.

They are direct routes (afflux.shared.io.http.direct), outside FastAPI's schema, so
their reference is written here and merged into ``/openapi.json``
(afflux.shared.io.http.apidocs). Request schemas are the models the routes parse
with (afflux.orders.rules); every status a route can answer is listed, and
tests/e2e/orders/test_merchant_openapi.py holds the main ones to the real service.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from afflux.orders import rules, signing
from afflux.orders.routes.backfill import RefundsBackfill
from afflux.orders.routes.postback import NOT_IN_POSTBACKS
from afflux.shared.campaign_file import CampaignEntry
from afflux.shared.io.http.apidocs import component_schemas, problem


class ProblemItem(BaseModel):
    field: str | None
    reason: str


class OrderAnswer(BaseModel):
    """202 when accepted, 200 when this order id was already accepted (nothing new)."""

    status: Literal["accepted", "duplicate"]
    order_id: str
    event_id: str


class RefundAnswer(BaseModel):
    status: Literal["accepted", "duplicate"]
    refund_id: str
    event_id: str


class RenewalAnswer(BaseModel):
    """202 when accepted, 200 when this renewal order id was already accepted."""

    status: Literal["accepted", "duplicate"]
    order_id: str
    renewal_order_id: str
    event_id: str


class BatchItemAnswer(BaseModel):
    """One order of a batch, judged on its own; ``error`` when rejected or unavailable."""

    index: int
    order_id: str | None = None
    status: Literal["accepted", "duplicate", "rejected", "unavailable"]
    event_id: str | None = None
    error: ProblemItem | None = None


class BatchAnswer(BaseModel):
    results: list[BatchItemAnswer]
    counts: dict[str, int]


MODELS: tuple[type[BaseModel], ...] = (
    rules.OrderRequest,
    rules.BatchRequest,
    rules.RefundRequest,
    rules.LeadConfirmRequest,
    rules.SurveyRequest,
    rules.RenewalRequest,
    OrderAnswer,
    RefundAnswer,
    RenewalAnswer,
    BatchAnswer,
    RefundsBackfill,
    CampaignEntry,
)

SIGNATURE_DOC = (
    "Each request is signed with one of the merchant's secrets (in development, "
    "`dev-secret-<merchant>`): `v1` is the hex HMAC-SHA256 of `<t>.<raw body>` and `t` "
    "the unix second of signing (docs/orders.md, Signing)."
)
PATH_SIGNATURE_DOC = (
    "Each request is signed with one of the merchant's secrets (in development, "
    "`dev-secret-<merchant>`) over its request line and body: `v1` is the hex HMAC-SHA256 "
    "of `<t>.POST <path>\\n<raw body>`, the path exactly as sent, and `t` the unix second "
    "of signing (docs/orders.md, Signing)."
)
_HEADERS: list[dict[str, Any]] = [
    {
        "name": signing.MERCHANT_HEADER,
        "in": "header",
        "required": True,
        "description": "the merchant id the request is signed for",
        "schema": {"type": "string", "minLength": 1},
    },
    {
        "name": signing.SIGNATURE_HEADER,
        "in": "header",
        "required": True,
        "description": "`t=<unix seconds>,v1=<hex HMAC-SHA256>` (of what: the operation's"
        " description); several `v1=` while a secret is rotated, hex in either case",
        "schema": {"type": "string", "pattern": r"^t=\d+(,v1=[0-9a-fA-F]{64})+$"},
        "example": "t=1767225600,v1=" + "0" * 64,
    },
]


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _errors(*extra: tuple[int, str]) -> dict[str, Any]:
    """The refusals every merchant endpoint shares, and ``extra`` ones."""
    answers: dict[int, dict[str, Any]] = {
        401: problem("missing, malformed, stale or wrong signature, or unknown merchant"),
        413: problem("body larger than the size limit"),
        415: problem(
            "a body sent as something else than JSON (a Content-Type other than"
            " application/json, or a Content-Encoding): names the header"
        ),
        422: problem(
            "invalid request: the field and the reason; a campaign the merchant may not name"
            " (unknown, or another merchant's: the same answer) names campaign_id, 'unknown"
            " campaign'"
        ),
        503: problem(
            "starting, or the broker or Redis could not take it: send the same request again"
            " unchanged (after a produce timeout it may have been recorded: the same order"
            " again is then answered as a duplicate, other terms under its id 409)",
            retry=True,
        ),
    }
    for status, description in extra:
        answers[status] = problem(description)
    return {str(status): answers[status] for status in sorted(answers)}


_BAD_JSON = (400, "malformed JSON, or the body ended early")
_ORDER_CONFLICT = (
    409,
    "the order id was accepted with other terms (names the field), or as a renewal's"
    " renewal order id (names order_id)",
)
_RENEWAL_CONFLICT = (
    409,
    "the renewal order id was accepted with another first order, number, amount or currency,"
    " or is another order's; or the renewal number was reported under another renewal order"
    " id (names the field)",
)


def _signed_post(
    summary: str,
    request: str,
    answers: dict[str, Any],
    description: str = "",
    signature_doc: str = SIGNATURE_DOC,
) -> dict[str, Any]:
    return {
        "post": {
            "tags": ["merchant"],
            "summary": summary,
            "description": f"{description}\n\n{signature_doc}".strip(),
            "parameters": list(_HEADERS),
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref(request)}},
            },
            "responses": answers,
        }
    }


def _order_fields() -> list[dict[str, Any]]:
    """The order's fields as postback query parameters (items are not supported there)."""
    schema = rules.OrderRequest.model_json_schema()
    required = set(schema.get("required", ()))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required and name != "occurred_at",
            "schema": {"type": "string"},
            "description": field.get("description", f"the order's {name}"),
        }
        for name, field in schema["properties"].items()
        if name not in NOT_IN_POSTBACKS
    ]


def _postback() -> dict[str, Any]:
    signing_params = [
        {"name": "merchant", "in": "query", "required": True, "schema": {"type": "string"}},
        {
            "name": "t",
            "in": "query",
            "required": True,
            "description": "unix seconds of signing",
            "schema": {"type": "string", "pattern": r"^\d+$"},
        },
        {
            "name": signing.SIG_PARAM,
            "in": "query",
            "required": True,
            "description": "last parameter: hex HMAC-SHA256 of '<t>.<query before &sig>'",
            "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
        },
    ]
    return {
        "get": {
            "tags": ["merchant"],
            "summary": "An order as signed query parameters (a server-to-server postback)",
            "description": "`occurred_at` defaults to now; numbers and booleans are read "
            "from text. The signature covers the raw query up to `&sig=`.",
            "parameters": _order_fields() + signing_params,
            "responses": {
                "200": _json("OrderAnswer", "already accepted (a duplicate order id)"),
                "202": _json("OrderAnswer", "accepted"),
                # A GET has no body: none of the body's refusals.
                **{
                    status: answer
                    for status, answer in _errors(_ORDER_CONFLICT).items()
                    if status not in ("413", "415")
                },
            },
        }
    }


def merchant_paths() -> dict[str, Any]:
    """The path items of the merchant endpoints."""
    return {
        "/v1/orders": _signed_post(
            "Report an order (a sale, lead, install or other action)",
            "OrderRequest",
            {
                "200": _json("OrderAnswer", "already accepted (a duplicate order id)"),
                "202": _json("OrderAnswer", "accepted"),
                **_errors(_BAD_JSON, _ORDER_CONFLICT),
            },
            "Idempotent by `order_id` within the campaign; the same id with other terms"
            " (amount, items, kind, ...) is a 409 naming the field, and an id accepted as a"
            " renewal's `renewal_order_id` a 409 naming `order_id`.",
        ),
        "/v1/orders:batch": _signed_post(
            f"Report up to {rules.MAX_BATCH} orders, each judged on its own",
            "BatchRequest",
            {
                "200": _json("BatchAnswer", "one result per order, in order, and counts"),
                **_errors(_BAD_JSON),
            },
        ),
        "/v1/refunds": _signed_post(
            "Report a full or partial refund",
            "RefundRequest",
            {
                "200": _json("RefundAnswer", "already accepted (a duplicate refund id)"),
                "202": _json("RefundAnswer", "accepted"),
                **_errors(
                    _BAD_JSON,
                    (409, "the refund id is taken by another order's refund or another amount"),
                ),
            },
            "Idempotent by `refund_id`; refunds of an order never exceed its amount, nor"
            " refunds naming an item the order's amount of that item (422).",
        ),
        "/v1/renewals": _signed_post(
            "Report a subscription's renewal (recurring commissions)",
            "RenewalRequest",
            {
                "200": _json("RenewalAnswer", "already accepted (a duplicate renewal order id)"),
                "202": _json("RenewalAnswer", "accepted"),
                **_errors(_BAD_JSON, _RENEWAL_CONFLICT),
            },
            "Idempotent by `renewal_order_id` within the campaign (default"
            " `<order_id>:renewal-<renewal_number>`); sent again with another first order,"
            " number, amount or currency, or naming another order's id, it is a 409 naming"
            " the field. Its refunds name the renewal order id.",
        ),
        "/v1/leads/{order_id}/confirm": {
            "post": {
                **_signed_post(
                    "Confirm a lead (campaigns that require lead confirmation)",
                    "LeadConfirmRequest",
                    {
                        "200": _json("OrderAnswer", "already confirmed"),
                        "202": _json("OrderAnswer", "confirmed"),
                        **_errors(
                            _BAD_JSON,
                            (404, "no such order in this campaign"),
                            (409, "the order is not a lead, or the campaign confirms none"),
                        ),
                    },
                    signature_doc=PATH_SIGNATURE_DOC,
                )["post"],
                "parameters": [
                    {
                        "name": "order_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1},
                    },
                    *_HEADERS,
                ],
            }
        },
        "/v1/orders/{order_id}/survey": {
            "post": {
                **_signed_post(
                    "Give an order's post-purchase survey answer naming a creator",
                    "SurveyRequest",
                    {
                        "200": _json("OrderAnswer", "the same answer again"),
                        "202": _json("OrderAnswer", "accepted"),
                        **_errors(
                            _BAD_JSON,
                            (404, "no such order in this campaign"),
                            (
                                409,
                                "the order already has another survey answer, or the id is a"
                                " renewal's renewal_order_id",
                            ),
                        ),
                    },
                    "One answer per order; what it does is the campaign's `survey` terms.",
                    signature_doc=PATH_SIGNATURE_DOC,
                )["post"],
                "parameters": [
                    {
                        "name": "order_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1},
                    },
                    *_HEADERS,
                ],
            }
        },
        "/v1/postback": _postback(),
    }


def merchant_schemas() -> dict[str, Any]:
    return component_schemas(MODELS)
