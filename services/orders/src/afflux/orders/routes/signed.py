"""The raw body of a merchant request and the merchant whose signature it carries."""

from __future__ import annotations

from starlette.requests import Request

from afflux.orders import signing
from afflux.orders.body import read_body
from afflux.orders.errors import Rejected
from afflux.orders.ingest import Ingestor
from afflux.orders.metrics import UNKNOWN


async def signed_body(
    request: Request, ingestor: Ingestor, limit: int, *, refund: bool = False
) -> tuple[bytes, str]:
    """The body (at most ``limit`` bytes) and its merchant; a refusal counts as a rejected
    order (or refund) of an unknown campaign."""
    try:
        raw = await read_body(request, limit)
        merchant = ingestor.authenticate(
            request.headers.get(signing.MERCHANT_HEADER),
            request.headers.get(signing.SIGNATURE_HEADER),
            raw,
        )
    except Rejected:
        if refund:
            ingestor.metrics.refund(UNKNOWN, "rejected")
        else:
            ingestor.metrics.order(UNKNOWN, UNKNOWN, "rejected")
        raise
    return raw, merchant
