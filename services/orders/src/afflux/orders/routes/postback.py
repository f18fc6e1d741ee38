"""Merchant route for postbacks: ``GET /v1/postback?...&sig=...``, an order as signed
query parameters (a direct route: the signature is checked over the raw query)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from afflux.orders import signing
from afflux.orders.deps import ClockDep, IngestDep, MetricsDep, SettingsDep
from afflux.orders.errors import Rejected
from afflux.shared.io.http.direct import direct_route

_BOOL = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}

# Parameters that decide who signed: any doubt about them is a 401, before anything else.
_SIGNING_PARAMS = frozenset({"merchant", "t", signing.SIG_PARAM})


async def postback(
    request: Request,
    ingestor: IngestDep,
    settings: SettingsDep,
    clock: ClockDep,
    metrics: MetricsDep,
) -> Response:
    started = time.perf_counter()
    try:
        raw_query = request.scope["query_string"].decode("latin-1")
        if len(raw_query) > settings.orders_max_body_bytes:
            raise Rejected(413, "query", "longer than the body size limit")
        params, repeated = query_params(raw_query)
        t = params.pop("t", None)
        merchant = ingestor.authenticate_query(raw_query, params.pop("merchant", None), t)
        if repeated is not None:
            raise Rejected(422, *repeated)
        assert t is not None  # authenticated: unix seconds
        # An order without a time is dated at its receive time, as an unsigned report is
        # placed: its merchant's clock has nothing to say about it (dated ``t`` instead,
        # a ``t`` near the tolerance's edge made it a late report, 300 s back).
        timed = params.get("occurred_at", "") != ""
        order = postback_order(params, clock())
        signed_at_ms = int(t) * 1000 if timed else None
        outcome = await ingestor.order(
            merchant, order, signed_at_ms=signed_at_ms, undated=not timed
        )
    finally:
        metrics.took("postback", time.perf_counter() - started)
    return JSONResponse(outcome.body, status_code=outcome.status)


def query_params(raw_query: str) -> tuple[dict[str, str], tuple[str, str] | None]:
    """The signed parameters, and the first other parameter given twice or not UTF-8 once
    percent-decoded, with the reason (refused with 422 once the signature is known to be
    good). Every malformed signature is a 401."""
    try:
        signed, _ = signing.split_signed_query(raw_query)
    except signing.SignatureRejected as exc:
        raise Rejected(401, exc.field, exc.reason) from None
    params: dict[str, str] = {}
    refused: tuple[str, str] | None = None
    for pair in signed.split("&"):
        if not pair.isascii():  # read as Latin-1: "é" sent raw would be another id
            name = pair.partition("=")[0]
            refused = refused or (name, "raw non-ASCII bytes: percent-encode them as UTF-8")
            continue
        try:
            parsed = parse_qsl(pair, keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            # Replacing the bytes would make two different order ids one.
            name = pair.partition("=")[0]
            refused = refused or (name, "not UTF-8 once percent-decoded")
            continue
        for name, value in parsed:
            if name == signing.SIG_PARAM or (name in params and name in _SIGNING_PARAMS):
                raise Rejected(401, name, "given more than once")
            if name in params:
                refused = refused or (name, "given more than once")
                continue
            params[name] = value
    t = params.get("t")
    if t is not None and not signing.is_unix_seconds(t):
        raise Rejected(401, "t", "missing or not unix seconds")
    return params, refused


# Query values are text; the order model takes these only as integers.
_INTEGERS = ("amount_minor", "non_commissionable_minor")
# A JSON object a query cannot carry (``items``, ``survey``), and the buyer's hashed IP
# and email and the referrer (docs/orders.md): a postback URL is logged by every tracker
# and proxy it passes, so it is no place for facts about the buyer.
NOT_IN_POSTBACKS = ("items", "survey", "customer_ip_hash", "customer_email_hash", "referrer")


def _is_integer_text(text: str) -> bool:
    digits = text.removeprefix("-")
    return 0 < len(digits) <= 20 and digits.isascii() and digits.isdigit()


def postback_order(params: dict[str, str], now_ms: int) -> dict[str, Any]:
    """Query parameters as an order: numbers and booleans from text, time defaults to now."""
    order: dict[str, Any] = dict(params)
    when = order.get("occurred_at")
    if when is None or when == "":
        order["occurred_at"] = now_ms
    elif _is_integer_text(when):
        order["occurred_at"] = int(when)
    # Longer digit runs stay text and are refused by the model (int() raises past 4300).
    for name in _INTEGERS:
        value = order.get(name)
        if value is not None and _is_integer_text(value):
            order[name] = int(value)
    if "new_customer" in order:
        flag = _BOOL.get(order["new_customer"].lower())
        if flag is None:
            raise Rejected(422, "new_customer", "use true or false (or 1/0, yes/no)")
        order["new_customer"] = flag
    for name in NOT_IN_POSTBACKS:
        if name in order:
            raise Rejected(422, name, "not supported in a postback; use POST /v1/orders")
    return order


routes = [direct_route("/v1/postback", postback, ["GET"])]
