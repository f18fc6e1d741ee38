"""The raw body of a merchant request and the merchant whose signature it carries."""

from __future__ import annotations

from starlette.requests import Request

from afflux.orders import signing
from afflux.orders.body import read_body
from afflux.orders.errors import Rejected
from afflux.orders.ingest import Ingestor
from afflux.orders.metrics import UNKNOWN


def one_header(request: Request, name: str) -> str | None:
    """A signing header's value; 401 naming it when it is given more than once: of two
    merchant ids the first was taken (the signature bound to it), while a postback's
    ``merchant`` given twice is refused, so a proxy's or a client's added copy would be
    read differently by each reader."""
    values = request.headers.getlist(name)
    if len(values) > 1:
        raise Rejected(401, name, f"{name} given more than once")
    return values[0] if values else None


def request_line(request: Request) -> bytes:
    """The method, the raw path and the raw query, exactly as sent: what a merchant signs
    for a GET, and before the body for a POST whose path names its order."""
    path: bytes = request.scope.get("raw_path") or request.url.path.encode()
    query: bytes = request.scope.get("query_string", b"")
    return request.method.encode() + b" " + path + (b"?" + query if query else b"")


def signed_at_ms(request: Request) -> int:
    """The timestamp of a request's signature, verified already (``signed_body``), in ms
    by the merchant's clock: what the merchant's clock said as it sent the request."""
    header = one_header(request, signing.SIGNATURE_HEADER)
    return signing.parse_header(header).timestamp * 1000


async def signed_body(
    request: Request,
    ingestor: Ingestor,
    limit: int,
    *,
    refund: bool = False,
    binds_path: bool = False,
) -> tuple[bytes, str]:
    """The body (at most ``limit`` bytes) and its merchant; a refusal counts as a rejected
    order (or refund) of an unknown campaign. ``binds_path``: the route's path names the
    order it acts on, so its signature must cover the request line too."""
    try:
        raw = await read_body(request, limit)
        merchant_id = one_header(request, signing.MERCHANT_HEADER)
        signature = one_header(request, signing.SIGNATURE_HEADER)
        if binds_path:
            merchant = ingestor.authenticate_call(
                merchant_id, signature, request_line(request), raw
            )
        else:
            merchant = ingestor.authenticate(merchant_id, signature, raw)
    except Rejected:
        if refund:
            ingestor.metrics.refund(UNKNOWN, "rejected")
        else:
            ingestor.metrics.order(UNKNOWN, UNKNOWN, "rejected")
        raise
    return raw, merchant
