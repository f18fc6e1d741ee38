"""Reading a request's raw body under a byte limit.

Merchant requests are verified over their exact bytes before anything is parsed,
so their routes read the body themselves instead of letting FastAPI parse it.
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request

from afflux.orders.errors import Rejected
from afflux.shared.io.http.media import media_problem


def too_large(limit: int) -> Rejected:
    return Rejected(413, "body", f"larger than the {limit} byte limit")


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, or 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        # A client that hangs up mid-body is answered (to nobody) as a bad request, not
        # logged as a server error.
        raise Rejected(400, "body", "the client disconnected before the body ended") from None
    raw = b"".join(chunks)
    problem = media_problem(
        request.headers.get("content-type"), request.headers.get("content-encoding")
    )
    if raw and problem is not None:
        raise Rejected(415, *problem)
    return raw
